"""Near-duplicate story clustering: real StoryIndex, small inline fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.models import Entry
from monitor.store import Store
from monitor.stories import StoryIndex
from monitor.story_text import StoryFeatures, analyse, normalize_text, normalize_title, shingles

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
WIRE = ("The US Commerce Department added Huawei Technologies and 70 affiliates to its Entity List, a move that "
        "bars the company from buying parts and components from US firms without government approval.")


def _feed(index: StoryIndex, items: list[tuple[str, str]], start: datetime = T0) -> list[int]:
    """Match-or-create for each item, 3 hours apart; returns the story id of each."""
    ids = []
    for i, (title, summary) in enumerate(items):
        when = start + timedelta(hours=3 * i)
        m = index.match(title, summary, when)
        story = m.story_id if m else 100 + len(index) + i
        index.add(1000 + i + len(index), story, title, summary, when)
        ids.append(story)
    return ids


def test_normalize_title_strips_outlets_and_entities() -> None:
    assert normalize_title("EXCLUSIVE: US puts Huawei on trade blacklist - Reuters") == "us puts huawei on trade blacklist"
    assert normalize_title("China&#8217;s &quot;Volt Typhoon&quot; | South China Morning Post") == "china volt typhoon"
    assert normalize_title("UPDATE 2-TSMC gets $6.6 billion grant") == "tsmc gets 6.6 billion grant"
    assert normalize_title("China hits back - again") == "china hits back again"


def test_normalize_text_drops_boilerplate() -> None:
    summary = ("WASHINGTON (AP) — Chips are scarce. […] The post Chips are scarce appeared first on Example News. ")
    assert normalize_text("Chips", summary) == "chips chips are scarce"
    assert normalize_text("X", "By Staff Writer | Chips are scarce. Continue reading…") == "x chips are scarce"


def test_shingles_short_text_is_one_shingle() -> None:
    assert shingles("a b", 3) == {"a b"}
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("", 3) == set()


def test_syndicated_variants_merge() -> None:
    ids = _feed(StoryIndex(), [
        ("US puts Huawei on trade blacklist - Reuters", WIRE),
        ("EXCLUSIVE: Huawei barred from buying US parts without approval | SCMP", WIRE.split(",")[0] + ". Read more"),
        ("America blacklists Huawei and 70 affiliates", "By Jane Doe (Reuters) - " + WIRE + " Continue reading…"),
        ("US puts Huawei on trade blacklist &#8212; AP News", ""),
    ])
    assert len(set(ids)) == 1


def test_headline_only_entries_cluster_by_title() -> None:
    ids = _feed(StoryIndex(), [
        ("Judge blocks Montana's TikTok ban - Reuters", ""),
        ("Judge blocks Montana&#8217;s TikTok ban | The Guardian", ""),
    ])
    assert ids[0] == ids[1]


def test_same_topic_distinct_stories_stay_apart() -> None:
    ids = _feed(StoryIndex(), [
        ("US adds SMIC and DJI to Entity List",
         ("The Commerce Department added China's biggest chipmaker SMIC and drone maker DJI to its trade "
          "blacklist, citing military ties.")),
        ("US adds YMTC and 35 other Chinese firms to Entity List",
         ("The Commerce Department added memory maker Yangtze Memory Technologies and 35 other Chinese entities "
          "to its trade blacklist.")),
        ("Chinese coast guard fires water cannon at Philippine ships near Scarborough Shoal",
         "Manila said a coast guard ship and a fisheries vessel were damaged near the shoal on Tuesday."),
        ("Chinese coast guard fires water cannon at Philippine ships near Second Thomas Shoal",
         "Manila said resupply boats were hit and several crew members were injured during the mission."),
    ])
    assert len(set(ids)) == 4


def test_copy_outside_window_is_a_new_story() -> None:
    index = StoryIndex(window=timedelta(hours=72))
    index.add(1, 7, "Judge blocks Montana's TikTok ban", WIRE, T0)
    assert index.match("Judge blocks Montana's TikTok ban", WIRE, T0 + timedelta(hours=71)) is not None
    assert index.match("Judge blocks Montana's TikTok ban", WIRE, T0 + timedelta(days=10)) is None


def test_eviction_bounds_memory() -> None:
    index = StoryIndex(window=timedelta(hours=24))
    for i in range(200):  # one entry an hour for 200 hours
        when = T0 + timedelta(hours=i)
        index.add(i, i, f"Story number {i} about topic{i}", f"Body words for entry {i} token{i} more words", when)
    assert len(index) <= 26
    held = len(index)
    assert index.evict(T0 + timedelta(days=30)) == held
    assert len(index) == 0


def test_evict_returns_count_and_match_ignores_old() -> None:
    index = StoryIndex(window=timedelta(hours=10))
    index.add(1, 1, "Old story about Nvidia antitrust probe", "", T0)
    index.add(2, 2, "New story about BYD sales record", "", T0 + timedelta(hours=5))
    assert index.evict(T0 + timedelta(hours=12)) == 1
    assert len(index) == 1
    assert index.match("Old story about Nvidia antitrust probe", "", T0 + timedelta(hours=12)) is None


def test_readding_a_key_replaces_it() -> None:
    index = StoryIndex()
    index.add(1, 1, "Huawei phone uses SMIC 7nm chip", WIRE, T0)
    index.add(1, 2, "Huawei phone uses SMIC 7nm chip", WIRE, T0)
    assert len(index) == 1
    m = index.match("Huawei phone uses SMIC 7nm chip", WIRE, T0)
    assert m is not None and m.story_id == 2


_titles = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80)
_words = st.lists(st.sampled_from(["china", "us", "chip", "huawei", "ban", "export", "tiktok", "court", "rule", "hack", "typhoon", "12", "140", "nvidia", "entity", "list", "treasury", "sanction", "the", "of"]), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(_titles)
def test_normalize_title_is_idempotent(title: str) -> None:
    once = normalize_title(title)
    assert normalize_title(once) == once


@settings(max_examples=60, deadline=None)
@given(_words, st.lists(st.sampled_from(["the", "rule", "was", "set", "by", "officials", "on", "monday", "after", "talks"]), max_size=20))
def test_same_text_twice_always_matches(title_words: list[str], summary_words: list[str]) -> None:
    title, summary = " ".join(title_words), " ".join(summary_words)
    index = StoryIndex()
    index.add(1, 42, title, summary, T0)
    m = index.match(title, summary, T0 + timedelta(hours=1))
    assert m is not None and m.story_id == 42


def test_demo_copies_merge_on_rare_shared_terms() -> None:
    """The offline demo's pair: different headlines, reworded summaries, shared rare terms (140, HBM)."""
    ids = _feed(StoryIndex(), [
        ("US adds 140 Chinese chip firms to Entity List in new export crackdown",
         ("The Commerce Department placed toolmakers and chip designers on its trade blacklist and widened curbs "
          "on high-bandwidth memory shipped to China.")),
        ("Washington blacklists 140 more Chinese chip companies - Demo Tech Daily",
         ("The Commerce Department added 140 toolmakers and chip designers to the Entity List and tightened curbs "
          "on high-bandwidth memory for China.")),
    ])
    assert ids[0] == ids[1]


def test_different_numbers_in_headlines_stay_apart() -> None:
    ids = _feed(StoryIndex(), [
        ("US adds 36 Chinese firms to Entity List", ""),
        ("US adds 140 Chinese firms to Entity List", ""),
    ])
    assert ids[0] != ids[1]


def test_conflicting_stages_stay_apart() -> None:
    ids = _feed(StoryIndex(), [
        ("US proposes ban on Chinese software in connected cars",
         "Commerce wants to bar Chinese and Russian software from connected vehicles, citing security risks."),
        ("US finalises ban on Chinese software in connected cars",
         "The final rule keeps Chinese and Russian code out of connected cars from the 2027 model year."),
    ])
    assert ids[0] != ids[1]


def test_discard_forgets_an_entry() -> None:
    index = StoryIndex()
    index.add(1, 7, "Judge blocks Montana's TikTok ban", WIRE, T0)
    assert index.discard(1) and not index.discard(1)
    assert len(index) == 0
    assert index.match("Judge blocks Montana's TikTok ban", WIRE, T0) is None


# -- bridging: an entry that is clearly a copy of two stories merges them ----------------------------------

def test_bridging_entry_reports_both_stories_and_index_merges_them() -> None:
    index = StoryIndex()
    index.add(1, 10, "US adds Huawei and 70 affiliates to Entity List", WIRE, T0)
    # two stories that are one (say the first copy of each arrived before the index knew the other)
    index.add(2, 20, "Huawei barred from buying US parts without approval", WIRE.split(",")[1],
              T0 + timedelta(hours=1))
    m = index.match("Huawei barred from buying US parts without approval", WIRE, T0 + timedelta(hours=2))
    assert m is not None and {m.story_id, *m.bridges} == {10, 20}
    index.merge(10, 20)
    again = index.match("Huawei barred from buying US parts without approval", "", T0 + timedelta(hours=3))
    assert again is not None and again.story_id == 10 and again.bridges == ()


def _store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path)
    store.db["feeds"].insert({"id": 1, "url": "https://a.example/feed", "name": "A", "created_at": "x"})
    return store


def _entry(guid: str, title: str) -> Entry:
    return Entry(feed_id=1, feed_name=f"Outlet {guid}", guid=guid, link=f"https://a.example/{guid}", title=title,
                 summary="", published=T0, published_known=True)


def _story(store: Store, guid: str) -> int:
    entry = _entry(guid, f"Story {guid}")
    return store.create_story(entry, store.insert_entry(entry, entry.link, T0, None), T0, alertable=True)


def test_merge_stories_moves_members_and_keeps_one_alert_per_channel(tmp_path: Path) -> None:
    store = _store(tmp_path)
    keep, gone = _story(store, "a"), _story(store, "b")
    with store.transaction():
        store.record_match(keep, "chips", "why", T0)
        store.record_match(gone, "chips", "why", T0)
        store.record_match(gone, "cyber", "why", T0)
        pending_twin = store.enqueue_alert(keep, "chips", "ops", "why", "info", T0)
        sent = store.enqueue_alert(gone, "chips", "ops", "why", "info", T0)
        moved = store.enqueue_alert(gone, "cyber", "ops", "why", "info", T0)
        assert pending_twin and sent and moved
        store.mark_sent(sent, T0)
        store.merge_stories(keep, gone)
    assert store.story(gone) is None
    row = store.story(keep)
    assert row is not None and row.size == 2 and set(row.view.sources) == {"Outlet a", "Outlet b"}
    assert {m["id"] for m in store.story_members(keep)} == {1, 2}
    assert set(store.story_matches(keep)) == {"chips", "cyber"}
    alerts = {(r.alert.watchlist, r.alert.state) for r in store.alerts()}
    # the merged story already went out for (chips, ops): the unsent twin is dropped, never sent again
    assert alerts == {("chips", "sent"), ("cyber", "pending")}
    assert all(r.alert.story_id == keep for r in store.alerts())
    store.close()


def test_merge_stories_keeps_the_older_pending_alert(tmp_path: Path) -> None:
    store = _store(tmp_path)
    keep, gone = _story(store, "a"), _story(store, "b")
    with store.transaction():
        older = store.enqueue_alert(keep, "chips", "ops", "why", "info", T0)
        store.enqueue_alert(gone, "chips", "ops", "why", "info", T0)
        store.merge_stories(keep, gone)
    assert [r.alert.id for r in store.alerts()] == [older]
    store.close()


def test_features_from_a_parser_process_decide_like_local_ones() -> None:
    """Parser processes send stories.analyse() results through pickle; an index primed with them must decide
    exactly as one that analyses the text itself (same terms, same trigram hashes, one string per term)."""
    import dataclasses
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from monitor.story_text import analyse

    items = [("US puts Huawei on trade blacklist - Reuters", WIRE),
             ("America blacklists Huawei and 70 affiliates", "By Jane Doe (Reuters) - " + WIRE),
             ("US adds YMTC and 35 other Chinese firms to Entity List",
              "The Commerce Department added memory maker Yangtze Memory Technologies and 35 other Chinese "
              "entities to its trade blacklist."),
             ("Huawei barred from buying US parts without approval | SCMP", WIRE.split(",")[0] + ". Read more")]
    with ProcessPoolExecutor(max_workers=1) as pool:  # another process: another string-hash salt
        remote = list(pool.map(analyse, *zip(*items, strict=True)))
    def comparable(features: StoryFeatures) -> StoryFeatures:  # trigrams arrive as an array, not a set
        return dataclasses.replace(features, shingles=frozenset(features.shingles))

    assert [comparable(f) for f in remote] == [comparable(analyse(t, s)) for t, s in items]
    assert [comparable(f) for f in remote] == [comparable(pickle.loads(pickle.dumps(f))) for f in remote]

    local, primed = StoryIndex(), StoryIndex()
    decisions = []
    for i, ((title, summary), features) in enumerate(zip(items, remote, strict=True)):
        when = T0 + timedelta(hours=i)
        primed.prime(title, summary, features)
        a, b = local.match(title, summary, when), primed.match(title, summary, when)
        assert a == b
        decisions.append(a)
        story = a.story_id if a else 100 + i
        local.add(i, story, title, summary, when)
        primed.add(i, story, title, summary, when)
    assert decisions[0] is None and decisions[1] is not None and decisions[3] is not None
    # one string per term in the index, however many members (and processes) it came from
    strings = {id(term) for member in primed._members.values() for term in member.terms}
    assert len(strings) == len({term for member in primed._members.values() for term in member.terms})


def test_a_term_too_common_to_look_up_drops_its_posting_and_gets_it_back_when_rare_again() -> None:
    """Postings of terms in more than SATURATED members are dropped (a lookup never reads them); when evictions
    bring a term back to LOOKUP_BUDGET members, its posting is rebuilt and copies are found by it again."""
    from monitor.stories import LOOKUP_BUDGET, SATURATED

    index = StoryIndex(window=timedelta(hours=SATURATED + 100), use_prior=False)
    count = SATURATED + 50
    words = [f"w{i:04d}" for i in range(3 * count)]
    for i in range(count):  # every headline names Zebracorp, plus three words of its own
        index.add(i, i, f"Zebracorp {words[3 * i]} {words[3 * i + 1]} {words[3 * i + 2]}", "", T0 + timedelta(hours=i))
    term = next(t for t in index._terms if t.startswith("zebracorp"))
    assert index._terms[term].live == count and index._terms[term].posting is None

    # the window moves on: all but the newest LOOKUP_BUDGET - 1 members are evicted
    index.evict(T0 + timedelta(hours=count - LOOKUP_BUDGET + 1) + index.window)
    posting = index._terms[term].posting
    assert len(index._members) == LOOKUP_BUDGET - 1
    # (keys of evicted members may stay in a posting until it is compacted: removal is lazy)
    assert posting is not None and sorted({k for k in posting if k in index._members}) == sorted(index._members)
    last = count - 1
    found = index.match(f"Zebracorp {words[3 * last]} {words[3 * last + 1]} {words[3 * last + 2]} again", "",
                        T0 + timedelta(hours=last))
    assert found is not None and found.story_id == last


# -- headline rules of round 2 (attribution, story-level veto, derived forms, stages, lists) --------------

CHIP_FIND = ("TSMC stopped shipping to Chinese chip designer Sophgo after a teardown found a die made by TSMC "
             "inside a Huawei Ascend AI processor, a possible breach of US export rules.")


def test_attribution_is_not_the_event() -> None:
    feats = analyse("Huawei AI chip contained TSMC part, TechInsights finds", "")
    assert "techinsight" not in feats.title and "techinsight" in feats.body
    assert {"huawei", "tsmc"} <= feats.names
    # an unnamed source may be the actor: it stays in the headline
    assert "department" in analyse("Hackers breached the Treasury, department says", "").title


def test_headline_only_copy_with_an_attribution_joins_its_story() -> None:
    ids = _feed(StoryIndex(), [
        ("TSMC cuts off Sophgo after chip found in Huawei processor", CHIP_FIND),
        ("TSMC chip discovered inside Huawei Ascend AI processor", CHIP_FIND),
        ("Huawei AI chip contained TSMC part, TechInsights finds", ""),
    ])
    assert ids[0] == ids[1] == ids[2]


def test_two_reports_citing_two_sources_stay_apart() -> None:
    """Nearly the same words, two victims; the two sources named are what tells them apart."""
    ids = _feed(StoryIndex(), [
        ("Chinese hackers breach US telecoms, WSJ reports", ""),
        ("Chinese hackers breach US Treasury, Bloomberg reports", ""),
    ])
    assert ids[0] != ids[1]


def test_one_member_naming_a_detail_does_not_veto_the_story() -> None:
    """The copy names a firm the story never mentions, and one member names a customer the copy does not: the
    two other members agree with the copy, so the story takes it (before, the one member vetoed it)."""
    ids = _feed(StoryIndex(), [
        ("TSMC chip found in Huawei AI processor", CHIP_FIND),
        ("TSMC halts shipments to Sophgo", CHIP_FIND),
        ("Huawei processor contained TSMC-made chip", CHIP_FIND),
        ("Canadian teardown firm TechInsights spots TSMC chip in Huawei AI processor", ""),
    ])
    assert len(set(ids)) == 1


def test_a_story_whose_members_all_name_another_firm_stays_apart() -> None:
    ids = _feed(StoryIndex(), [
        ("TSMC halts shipments to Sophgo", CHIP_FIND),
        ("TSMC cuts off Sophgo over Huawei chip", CHIP_FIND),
        ("TSMC halts shipments to Bitmain", ""),
    ])
    assert ids[0] == ids[1] != ids[2]


def test_a_derived_form_of_a_word_counts_as_mentioned() -> None:
    """"inaugurates" and "inauguration" (the stemmer keeps them apart): the headline-only copy is known to the
    story, which mentions the inauguration in its summary."""
    ids = _feed(StoryIndex(), [
        ("Lai Ching-te sworn in as Taiwan's president",
         ("Lai Ching-te was sworn in as Taiwan's president on Monday and called on Beijing to stop its "
          "intimidation at his inauguration ceremony in Taipei.")),
        ("Taiwan inaugurates Lai as China watches", ""),
    ])
    assert ids[0] == ids[1]


def test_an_unveiling_and_an_opening_are_two_stories() -> None:
    ids = _feed(StoryIndex(), [
        ("Baidu unveils Ernie chatbot; shares slide", ""),
        ("Baidu opens Ernie chatbot to the public", ""),
    ])
    assert ids[0] != ids[1]


def test_a_longer_list_is_another_measure() -> None:
    ids = _feed(StoryIndex(), [
        ("China restricts gallium and germanium exports", "Exporters will need licences for the two metals."),
        ("China bans gallium, germanium and antimony exports to US", ""),
    ])
    assert ids[0] != ids[1]


def test_the_same_list_in_other_words_is_one_story() -> None:
    ids = _feed(StoryIndex(), [
        ("China restricts gallium and germanium exports", "Exporters will need licences for the two metals."),
        ("Beijing to curb exports of gallium and germanium", ""),
    ])
    assert ids[0] == ids[1]


# -- round 3: a headline-only copy that keeps the story's headline ----------------------------------------

ASML_RULE = ("The Dutch government said ASML will need export licences to ship its most advanced DUV lithography "
             "machines to China from September.")


def test_a_reworded_headline_only_copy_that_keeps_the_story_headline_joins_it() -> None:
    """The copy's headline shares less than COVER_SAME of its weight with the story, but it leaves out only
    common words of the lead's headline and names nothing the story does not know."""
    ids = _feed(StoryIndex(), [
        ("Netherlands to require licences for ASML lithography exports", ASML_RULE),
        ("Dutch curb exports of ASML chip machines", ASML_RULE),
        ("ASML lithography shipments to China face new Dutch hurdle", ""),
    ])
    assert len(set(ids)) == 1


def test_a_headline_only_copy_naming_a_firm_the_story_never_mentions_stays_apart() -> None:
    ids = _feed(StoryIndex(), [
        ("Netherlands to require licences for ASML lithography exports", ASML_RULE),
        ("Dutch curb exports of ASML chip machines", ASML_RULE),
        ("ASML lithography shipments to SMIC face new Dutch hurdle", ""),
    ])
    assert ids[0] == ids[1] != ids[2]


def test_a_headline_that_leaves_out_what_the_story_tells_stays_apart() -> None:
    """Same person, same city: the story's headline tells of a postponed trip (rare words the other headline
    leaves out), the other of talks held. Two stories, although the coverage and cosine would allow it."""
    ids = _feed(StoryIndex(), [
        ("Raimondo postpones China trip over chip export row",
         "Commerce Secretary Gina Raimondo postponed her visit to Beijing after China protested the latest US "
         "restrictions on chip exports."),
        ("Raimondo holds talks in Beijing", ""),
    ])
    assert ids[0] != ids[1]
