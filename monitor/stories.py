"""Near-duplicate story clustering: one story per event, not one per copy.

The same wire story reaches us from many outlets with another headline, a trimmed summary, an outlet
suffix or a prefix such as "EXCLUSIVE:". :class:`StoryIndex` keeps the entries of the last ``window``
(72 h by default) in memory and answers "which existing story is this a copy of?".

Decision rule (chosen by measurement on ``bench/data``; see ``bench/bench_dedup.py`` and ``docs/stories.md``):

* every entry becomes a bag of content terms (stemmed, common actor synonyms folded: Washington/US/American,
  Beijing/China/Chinese, ...), headline terms counting double. Terms are weighted by IDF over the documents of
  the window plus a fixed prior from the corpus shipped with the package, so a shared rare term ("Entity
  List", "toolmakers", "high-bandwidth memory", "140") weighs far more than "China" or "US";
* candidates are the stories of the members that share the entry's rarest terms (inverted index, at most
  ``LOOKUP_BUDGET`` posting keys read; see :meth:`StoryIndex._candidates`);
* an entry joins a candidate story when, against the story as a whole (its best-matching member, and the
  vocabulary of all its members):

  - a summary is a trimmed copy of a member's summary (word-trigram containment >= ``TEXT_SAME``), or
  - the weighted cosine with the best member is >= ``COS_SAME``, or
  - the story mentions at least ``COVER_SAME`` of the weight of the entry's headline (or the entry mentions
    that much of the lead's headline; a longer or shorter form of a word counts, "inaugurates" /
    "inauguration") and the cosine is >= ``COS_SUPPORT``, or
  - for a headline-only entry, ``COVER_TOLD`` of that weight with a cosine >= ``COS_TOLD``, when its headline
    leaves out only common words of the lead's headline and names nothing the story does not mention;

  unless the two disagree on specifics: different numbers in both headlines, names in both headlines that
  the other side never mentions, or conflicting stages of one process in the headlines ("proposes" vs
  "finalises", "charged" vs "found guilty", "elected" vs "sworn in", "unveils" vs "opens"), reversed roles
  of two countries ("Canada expels Chinese diplomat" vs "China expels Canadian diplomat"), or lists that
  differ ("gallium and germanium" vs "gallium, germanium and antimony"). The story disagrees when half the
  members compared do: one outlet's detail does not veto a story its other members agree with. A trailing
  attribution ("..., TechInsights finds") is not the event: its words count as summary words;
* among several qualifying stories the best score wins; the others it matches just as clearly
  (``BRIDGE_SAME``), and small headline-only stories whose headline the grown story's whole vocabulary covers,
  are reported as ``bridges``: the caller merges them into the oldest (:meth:`StoryIndex.merge`).

Entries are matched and indexed at :func:`story_time` (published, capped at first seen), live and on rebuild.

The index is pure and in memory; the store rebuilds it at start by calling :meth:`StoryIndex.add` for the
entries inside the window. Memory is bounded by the window: members older than it are evicted. Members are
stored compactly (:class:`_Member` and its share of the postings: about 2–2.5 KB each), and the text
features can be computed elsewhere (:func:`analyse` in the parser processes, handed over with
:meth:`StoryIndex.prime`).
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .story_text import ACT_TERMS, IMPLIES, IMPLYING, LISTED, SOURCE, StoryFeatures, analyse, corpus_prior

TEXT_SAME = 0.5  # summary-trigram containment that alone means "same story" (a trimmed copy)
COS_SAME = 0.55  # IDF-weighted cosine with a member that means "same story" absent contrary evidence
COVER_SAME = 0.6  # share of a headline's weight that the other side mentions ...
COS_SUPPORT = 0.2  # ... with at least this cosine, also means "same story"
# A headline-only entry that leaves out nothing distinctive of the lead's headline (see
# StoryIndex._keeps_headline) needs less: this share of its headline's weight, with this cosine.
COVER_TOLD = 0.45
COS_TOLD = 0.3
LEFT_OUT_IDF = 5.5  # a term this rare (in about 1 % of documents or fewer) is distinctive of a headline
TITLE_BOOST = 2.0  # headline terms count this much more than summary terms
RARE_LOOKUPS = 6  # rarest terms of an entry used to look up candidates
RARE_TITLE_LOOKUPS = 3  # ... and its rarest headline terms beyond those
# Candidate lookups read the postings of an entry's rarest terms, rarest first, up to this many member keys in
# all: a term in more window documents than this is too common to be evidence of a copy, and reading such
# postings (at random places in memory) would cost more than all the rest of the work for an entry.
LOOKUP_BUDGET = 200
# A term in more members than this drops its posting (it cannot be looked up, see above) and stops collecting
# one; it gets it back, rebuilt from the members, once evictions bring it down to LOOKUP_BUDGET. The gap
# between the two keeps a term near the limit from rebuilding often.
SATURATED = 2 * LOOKUP_BUDGET
CANDIDATES = 10  # candidate stories judged per entry (those sharing the most rare-term weight)
MEMBERS_COMPARED = 40  # newest members of a candidate story compared one by one
NAME_IDF = 4.0  # a capitalized headline word this rare counts as a name for the veto
PREFIX_MIN = 5  # a headline term this long is known to a side that has a term it begins or that begins it
BRIDGE_SAME = COS_SAME  # an entry this similar to two stories (not by the weaker cover rule) bridges them
MAX_BRIDGES = 2  # stories merged into the best one by one entry at most
HEADLINE_STORY_MAX = 2  # a story of at most this many headline-only entries may join by story profile
RECENT_ANALYSES = 256  # analysed entries kept for add() after match(): a feed's batch, usually

_CONFLICTS = {frozenset(p) for p in [("proposed", "final"), ("provisional", "final"), ("charged", "verdict"),
                                     ("start", "verdict"), ("elected", "inaugurated"),
                                     ("suspended", "restored"), ("introduced", "rescinded"),
                                     ("proposed", "rescinded"), ("final", "rescinded"),
                                     ("proposed", "ended"), ("start", "ended"), ("introduced", "start")]}


@dataclass(frozen=True)
class StoryMatch:
    """The best existing story for a new entry: its id, the score, and the member entry that matched.
    ``bridges``: other stories the entry is just as clearly a copy of (see ``BRIDGE_SAME``): the entry shows
    they are one story, and the caller merges them."""

    story_id: int
    similarity: float
    entry_key: int
    bridges: tuple[int, ...] = ()


class _Query:
    """A new entry's features, the document frequency of those of its terms in the index (for the candidate
    lookups), and, once it has a candidate to be judged against, its term weights under the IDF of that
    moment (:meth:`StoryIndex._weigh`): most entries have no candidate and never need them."""

    __slots__ = ("features", "indexed", "weights", "norm", "_shingles")

    def __init__(self, features: StoryFeatures, indexed: list[tuple[int, str]]) -> None:
        self.features = features
        # (members mentioning it, term) for the terms of at most LOOKUP_BUDGET members, rarest first
        self.indexed = indexed
        self.weights: dict[str, float] = {}  # term -> IDF x headline boost; empty until weighed
        self.norm = -1.0  # -1: not weighed yet
        self._shingles: frozenset[int] | None = None

    def shingles(self) -> frozenset[int]:
        """The summary trigrams as a set (they arrive from a parser process as an array)."""
        if self._shingles is None:
            raw = self.features.shingles
            self._shingles = raw if isinstance(raw, frozenset) else frozenset(raw)
        return self._shingles


class _Term:
    """What the index knows of one term: how many live members mention it, its count in the corpus prior,
    and the keys of the members that mention it (in the order added; removal is lazy, see
    :meth:`StoryIndex._forget_term`). One object per term, so that each term of a new entry costs one dict
    lookup (memory latency, not arithmetic, is what the per-entry work costs)."""

    __slots__ = ("term", "live", "prior", "posting")

    def __init__(self, term: str, prior: int = 0) -> None:
        self.term = term  # the one copy of the string that members' term tuples share
        self.live = 0
        self.prior = prior
        # member keys as 4-byte unsigned ints: half the memory of a list (a posting holds every entry of the
        # window that mentions the term; entry ids stay far below 2**32). None: saturated (see SATURATED).
        self.posting: array[int] | None = array("I")


class _Member:
    """An indexed entry, stored compactly: the window holds tens of thousands of them, so the term sets are
    tuples (one pointer per term, the term strings are shared) and the summary trigrams an array of hashes.
    The weights are not stored: they are computed from the current IDF when compared; the norm is kept from
    when the entry was weighed, or else computed the first time the member is compared (the window drifts
    slowly)."""

    __slots__ = ("key", "story_id", "when", "title", "body", "numbers", "names", "stages", "roles", "shingles",
                 "exact", "norm")

    def __init__(self, key: int, story_id: int, when: datetime, feats: StoryFeatures, shared: dict[str, str]) -> None:
        """``shared``: term -> the index's copy of that string (so the index holds one string per term)."""
        self.key, self.story_id, self.when, self.exact = key, story_id, when, feats.exact
        self.norm = -1.0  # not computed yet: most members are never compared (StoryIndex._norm)
        self.title: tuple[str, ...] = tuple(map(shared.__getitem__, feats.title))
        # a term in both counts as headline
        self.body: tuple[str, ...] = tuple(map(shared.__getitem__, feats.body - feats.title))
        self.numbers: tuple[str, ...] = tuple(feats.numbers)
        self.names: tuple[str, ...] = tuple(shared.get(t, t) for t in feats.names)
        self.stages: tuple[str, ...] = tuple(feats.stages)
        self.roles: tuple[tuple[str, str], ...] = tuple(feats.roles)
        # features from a parser process already carry an array (never changed): kept, not copied
        raw = feats.shingles
        self.shingles = raw if isinstance(raw, array) else array("I", raw)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.title + self.body


_Side = StoryFeatures | _Member  # what the headline rules compare: a new entry or an indexed one


def story_time(published: datetime, first_seen: datetime) -> datetime:
    """The time an entry is matched and indexed at: its publication time, but never later than when we first
    saw it. Published time keeps two same-topic stories weeks apart apart even when a new feed brings the old
    one today; the cap keeps a publisher's clock error from moving the window (and evicting everything).
    An entry published long ago is indexed in the past and leaves the index at the next eviction."""
    return min(published, first_seen)


def _stages_conflict(a: Collection[str], b: Collection[str]) -> bool:
    """One headline names a stage (or act) that conflicts with one the other names, and neither names the
    other's: "proposes" / "finalises", "rams" / "fires water cannon at". A stage both name is no conflict."""
    only_a, only_b = set(a).difference(b), set(b).difference(a)
    return any(frozenset((x, y)) in _CONFLICTS for x in only_a for y in only_b)


def _acts_conflict(a: Collection[str], b: Collection[str], known_a: Iterable[str] | Counter[str],
                   known_b: Iterable[str] | Counter[str]) -> bool:
    """Each headline names an act of force that the other side never mentions: "fires water cannon at" and
    "rams" one vessel are two incidents, unless one side's text tells of both (one incident, two acts)."""
    def unknown(acts: Collection[str], other: Collection[str], known: Iterable[str] | Counter[str]) -> bool:
        return any(x in ACT_TERMS and x not in other and not any(t in known for t in ACT_TERMS[x]) for x in acts)
    return unknown(a, b, known_b) and unknown(b, a, known_a)


def _prefix_known(term: str, known: Iterable[str] | Counter[str]) -> bool:
    """The other side mentions a longer or shorter form of the term ("inaugurat" / "inauguration", "export" /
    "exporter"): a derived word the stemmer does not fold. Five letters at least, so that short terms
    ("us", "chip", "ban") match only themselves."""
    if len(term) < PREFIX_MIN:
        return False
    return any(len(k) >= PREFIX_MIN and (k.startswith(term) or term.startswith(k)) for k in known)


def _unknown(name: str, known: Iterable[str] | Counter[str]) -> bool:
    """The other side never mentions the name, nor what it stands for ("Pentagon" where the other says "US")."""
    if name in known:
        return False
    implied = IMPLIES.get(name)
    if implied is None or any(t in known for t in IMPLYING if t != name):
        return True  # no stand-in, or the other side names another body ("Congress" / "Senate")
    return not any(t in known for t in implied)


def _numbers_disagree(a: Collection[str], b: Collection[str]) -> bool:
    """Both headlines give numbers of one kind (years, ordinals, quantities) and none of them agree: "36 firms"
    vs "140 firms". Kinds apart, since "China's 2023 growth" and "economy grows 5.2%" do not disagree."""
    if not a or not b or not set(a).isdisjoint(b):
        return False
    for kind in (_is_year, _is_ordinal, _is_quantity):
        xs, ys = [n for n in a if kind(n)], [n for n in b if kind(n)]
        if xs and ys and not any(_approximates(x, y) or _approximates(y, x) for x in xs for y in ys):
            return True
    return False


def _is_year(n: str) -> bool:
    return len(n) == 4 and n[:2] in ("19", "20") and n.isdigit()


def _is_ordinal(n: str) -> bool:
    return n.endswith(("st", "nd", "rd", "th")) and n[:-2].isdigit()


def _is_quantity(n: str) -> bool:
    return not _is_year(n) and not _is_ordinal(n)


def _approximates(rounded: str, exact: str) -> bool:
    """True when ``rounded`` is ``exact`` rounded to its own precision ("nearly $600bn" for $589 billion)."""
    if rounded == exact:
        return True
    zeros = len(rounded) - len(rounded.rstrip("0"))
    if not zeros or not rounded.isdigit():
        return False
    try:
        return round(float(exact), -zeros) == float(rounded)
    except ValueError:  # a designation such as "2024a"
        return False


def _containment(a: frozenset[int], b: array) -> float:
    """Share of the smaller trigram set found in the other (a trimmed copy contains most of its original)."""
    if not a or not b:
        return 0.0
    return len(a.intersection(b)) / min(len(a), len(b))


class StoryIndex:
    """In-memory near-duplicate index over the entries of the last ``window``."""

    def __init__(self, window: timedelta = timedelta(hours=72), use_prior: bool = True) -> None:
        self.window = window
        self._prior_n, prior_df = corpus_prior() if use_prior else (0, Counter())
        self._members: dict[int, _Member] = {}
        self._story_of: dict[int, int] = {}  # member key -> story id (a plain dict: the hot lookup)
        # idf(t) = log(N + prior_n + 1) - log(df(t) + 1) + 1, df = live documents + the prior's
        self._log_total = math.log(self._prior_n + 1)
        # every term of the prior or of a live member (document frequencies and postings, see _Term)
        self._terms: dict[str, _Term] = {term: _Term(term, n) for term, n in prior_df.items()}
        self._exact: dict[int, list[int]] = {}  # normalized-text hash -> member keys
        self._heap: list[tuple[datetime, int]] = []
        self._story_members: dict[int, list[int]] = {}  # member keys, oldest (the lead) first
        # every term the story's members mention, with counts; only for stories of two members or more
        # (most stories are one entry: its vocabulary is its own terms, see _vocab)
        self._story_terms: dict[int, Counter[str]] = {}
        self._newest: datetime | None = None
        # The pipeline matches a feed's new entries, commits, then adds them: the analyses of the batch are
        # kept for add() (and a re-sent entry), with the weights they were matched with.
        self._recent: dict[tuple[str, str], _Query] = {}
        self._primed: dict[tuple[str, str], StoryFeatures] = {}  # analysed elsewhere (prime), not yet matched

    def __len__(self) -> int:
        return len(self._members)

    # -- public ------------------------------------------------------------------------------------------

    def match(self, title: str, summary: str, when: datetime) -> StoryMatch | None:
        """The best story within the window that this entry is a copy of, or None for a new story."""
        return self._best(self._analyse(title, summary), when)

    def add(self, entry_key: int, story_id: int, title: str, summary: str, when: datetime) -> None:
        """Remember an entry as a member of ``story_id``; evicts members older than the window."""
        if entry_key in self._members:
            self._remove(entry_key)
        matched = (title, summary) in self._recent
        q = self._analyse(title, summary)
        if not matched:  # added without a match just before (a rebuild): weigh it now, in one go
            self._weigh(q)
        feats = q.features
        terms, shared = self._terms, {}
        for term in feats.terms:
            stats = terms.get(term)
            if stats is None:
                stats = terms[term] = _Term(term)
            stats.live += 1
            posting = stats.posting
            if posting is not None:
                if stats.live > SATURATED:
                    stats.posting = None
                else:
                    posting.append(entry_key)
            shared[term] = stats.term
        member = _Member(entry_key, story_id, when, feats, shared)
        # known when the entry was weighed (own mention left out of the df); -1 when it was matched and had no
        # candidate: the norm is then taken when the member is first compared (most never are)
        member.norm = q.norm
        self._members[entry_key] = member
        self._story_of[entry_key] = story_id
        self._log_total = math.log(len(self._members) + self._prior_n + 1)
        self._exact.setdefault(member.exact, []).append(entry_key)
        keys = self._story_members.setdefault(story_id, [])
        keys.append(entry_key)
        if len(keys) == 2:
            self._story_terms[story_id] = Counter(self._members[keys[0]].terms)
        if len(keys) >= 2:
            self._story_terms[story_id].update(member.terms)
        heapq.heappush(self._heap, (when, entry_key))
        if self._newest is None or when > self._newest:
            self._newest = when
            self.evict(when)

    def discard(self, entry_key: int) -> bool:
        """Forget one entry (deleted or pruned); False when the index did not hold it."""
        if entry_key not in self._members:
            return False
        self._remove(entry_key)
        return True

    def evict(self, now: datetime) -> int:
        """Drop members older than ``now - window``; returns how many were dropped."""
        cutoff, dropped = now - self.window, 0
        while self._heap and self._heap[0][0] < cutoff:
            when, key = heapq.heappop(self._heap)
            member = self._members.get(key)
            if member is not None and member.when == when:
                self._remove(key)
                dropped += 1
        return dropped

    def merge(self, keep: int, gone: int) -> None:
        """Story ``gone`` was merged into ``keep`` (a bridging entry): its members now belong to ``keep``."""
        if gone not in self._story_members:
            return
        terms = self._vocab(gone)
        keys = self._story_members.pop(gone)
        self._story_terms.pop(gone, None)
        for key in keys:
            self._members[key].story_id = keep
            self._story_of[key] = keep
        vocab = Counter(self._vocab(keep)) if keep in self._story_members else Counter()
        vocab.update(terms)
        into = self._story_members.get(keep, []) + keys
        # the lead (first key) stays the oldest member
        self._story_members[keep] = sorted(into, key=lambda k: (self._members[k].when, k))
        if len(into) >= 2:
            self._story_terms[keep] = vocab

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _remove(self, key: int) -> None:
        member = self._members.pop(key)
        del self._story_of[key]
        self._log_total = math.log(len(self._members) + self._prior_n + 1)
        for term in member.terms:
            self._forget_term(term)
        same = self._exact[member.exact]
        same.remove(key)
        if not same:
            del self._exact[member.exact]
        story = member.story_id
        keys = self._story_members[story]
        keys.remove(key)
        if not keys:
            del self._story_members[story]
        elif len(keys) == 1:
            del self._story_terms[story]
        else:
            vocab = self._story_terms[story]
            vocab.subtract(member.terms)
            self._story_terms[story] = +vocab

    def _forget_term(self, term: str) -> None:
        stats = self._terms[term]
        live = stats.live = stats.live - 1
        if not live:
            if stats.prior:
                stats.posting = array("I")
            else:
                del self._terms[term]
            return
        posting = stats.posting
        if posting is None:
            if live <= LOOKUP_BUDGET:  # usable for lookups again (the member going away is already gone)
                stats.posting = array("I", [k for k, m in self._members.items() if term in m.title or term in m.body])
            return
        # Mostly dead keys: keep the live ones, once each. (A key re-added with other terms may stay in the
        # posting of a term it no longer has: a spurious candidate, which the judge then turns down.)
        if len(posting) > 2 * live + 8:
            members = self._members
            stats.posting = array("I", [k for k in dict.fromkeys(posting) if k in members])

    def prime(self, title: str, summary: str, features: StoryFeatures) -> None:
        """Hand over the features of an entry about to be matched, computed elsewhere with :func:`analyse`."""
        if len(self._primed) >= RECENT_ANALYSES:
            self._primed.clear()
        self._primed[(title, summary)] = features

    def _analyse(self, title: str, summary: str) -> _Query:
        key = (title, summary)
        q = self._recent.get(key)
        if q is None:
            if len(self._recent) >= RECENT_ANALYSES:
                self._recent.clear()
            feats = self._primed.pop(key, None) or analyse(title, summary)
            q = self._recent[key] = self._query(feats)
        return q

    def _vocab(self, story: int) -> Counter[str] | frozenset[str]:
        """Every term the story's members mention."""
        vocab = self._story_terms.get(story)
        if vocab is not None:
            return vocab
        return frozenset(self._members[self._story_members[story][0]].terms)

    # -- similarity --------------------------------------------------------------------------------------

    def _df(self, term: str) -> int:
        """Documents mentioning the term: live members and the prior's."""
        stats = self._terms.get(term)
        return stats.live + stats.prior if stats is not None else 0

    def _idf(self, term: str) -> float:
        return self._log_total + 1.0 - math.log(self._df(term) + 1)

    def _query(self, feats: StoryFeatures) -> _Query:
        # This runs for every term of every new entry: one lookup per term, no weights yet (see _weigh). Only
        # terms that _candidates can use are kept: in more than LOOKUP_BUDGET members, a term is never read.
        get = self._terms.get
        indexed = [(stats.live, t) for t in feats.terms
                   if (stats := get(t)) is not None and 0 < stats.live <= LOOKUP_BUDGET]
        indexed.sort()
        return _Query(feats, indexed)

    def _weigh(self, q: _Query) -> None:
        """The entry's term weights (_idf inlined, times the headline boost) and norm, under the IDF of now."""
        if q.norm >= 0:
            return
        top, get, log, title = self._log_total + 1.0, self._terms.get, math.log, q.features.title
        weights, square_sum = q.weights, 0.0
        for t in q.features.terms:
            stats = get(t)
            w = top - log((stats.live + stats.prior if stats is not None else 0) + 1)
            if t in title:
                w *= TITLE_BOOST
            weights[t] = w
            square_sum += w * w
        q.norm = math.sqrt(square_sum)

    def _norm(self, member: _Member) -> float:
        """A member's norm, with the weights of :meth:`_dot`, taken the first time it is compared."""
        if member.norm < 0:
            own = self._own_idf
            member.norm = math.sqrt(sum((TITLE_BOOST * own(t)) ** 2 for t in member.title) +
                                    sum(own(t) ** 2 for t in member.body))
        return member.norm

    def _similarity(self, q: _Query, member: _Member) -> tuple[float, float]:
        """Summary containment and weighted cosine of a new entry and a member. The cosine is skipped when
        the containment alone makes them the same story; both are 0 when they share no term at all."""
        feats = q.features
        if feats.exact == member.exact:
            return 1.0, 0.0
        in_title = feats.terms.intersection(member.title)
        in_body = feats.terms.intersection(member.body)
        if not in_title and not in_body:
            return 0.0, 0.0
        text = _containment(q.shingles(), member.shingles)
        if text >= TEXT_SAME:
            return text, 0.0
        return text, self._dot(q, member, in_title, in_body)

    def _query_cosine(self, q: _Query, member: _Member) -> float:
        terms = q.features.terms
        return self._dot(q, member, terms.intersection(member.title), terms.intersection(member.body))

    def _dot(self, q: _Query, member: _Member, in_title: Iterable[str], in_body: Iterable[str]) -> float:
        """Cosine of the entry and a member from the terms they share (in the member's headline, and only in
        its summary). Like the entry's, the member's weights are the IDF over the *other* documents (its own
        mention left out of the document frequency, as when it was added and its norm was taken); times
        the boost for its headline."""
        self._weigh(q)
        norm = self._norm(member)
        if not q.norm or not norm:
            return 0.0
        weights, own = q.weights, self._own_idf
        dot = TITLE_BOOST * sum(weights[t] * own(t) for t in in_title) + sum(weights[t] * own(t) for t in in_body)
        return min(dot / (q.norm * norm), 1.0)

    def _own_idf(self, term: str) -> float:
        """IDF of a term that a member mentions, over the documents other than that member."""
        return self._log_total + 1.0 - math.log(self._df(term))

    def _member_cosine(self, a: _Member, b: _Member) -> float:
        """Weighted cosine of two members (weights as in :meth:`_dot`)."""
        norm_a, norm_b = self._norm(a), self._norm(b)
        if not norm_a or not norm_b:
            return 0.0
        title_a, title_b = frozenset(a.title), frozenset(b.title)
        dot = sum(self._own_idf(t) ** 2 * (TITLE_BOOST if t in title_a else 1.0) *
                  (TITLE_BOOST if t in title_b else 1.0) for t in frozenset(a.terms).intersection(b.terms))
        return min(dot / (norm_a * norm_b), 1.0)

    def _cover(self, terms: Iterable[str], known: Iterable[str] | Counter[str]) -> float:
        """IDF-weighted share of ``terms`` (a headline) that ``known`` mentions (itself, or a form of it that
        one of them begins: see :func:`_prefix_known`)."""
        idf = [(self._idf(t), t in known or _prefix_known(t, known)) for t in terms]
        total = sum(w for w, _ in idf)
        return sum(w for w, found in idf if found) / total if total else 0.0

    def _conflict(self, a: _Side, b: _Side, known_a: Iterable[str] | Counter[str],
                  known_b: Iterable[str] | Counter[str]) -> bool:
        """True when the headlines disagree on specifics (``known_x`` is everything side x mentions): both
        name numbers and none is shared; conflicting stages of one process; or each names a number or a
        rare name that the other side never mentions."""
        if _numbers_disagree(a.numbers, b.numbers):
            return True
        if a.stages and b.stages and _stages_conflict(a.stages, b.stages):
            return True
        if any((y, x) in b.roles for x, y in a.roles):
            return True
        if a.stages and b.stages and _acts_conflict(a.stages, b.stages, known_a, known_b):
            return True
        if self._lists_differ(a, b, known_b) or self._lists_differ(b, a, known_a):
            return True
        return self._specific(a, b, known_b) and self._specific(b, a, known_a)

    def _lists_differ(self, side: _Side, other: _Side, known: Iterable[str] | Counter[str]) -> bool:
        """Both headlines list items, share one, and ``side``'s list has a rare item the other side never
        mentions: "gallium and germanium" and "gallium, germanium and antimony" are two measures."""
        mine = [n[len(LISTED):] for n in side.names if n.startswith(LISTED)]
        theirs = [n[len(LISTED):] for n in other.names if n.startswith(LISTED)]
        if not mine or not theirs or not set(mine).intersection(theirs):
            return False
        return any(t not in known and self._idf(t) >= NAME_IDF for t in mine)

    def _specific(self, side: _Side, other: _Side, known: Iterable[str] | Counter[str]) -> bool:
        """Does ``side``'s headline name a rare name (or else a number) that the other side never mentions?
        The source of an attribution counts only against a headline that names a source too: "..., WSJ
        reports" and "..., Bloomberg reports" are two reports; a copy that leaves the source out is not."""
        cites = SOURCE in other.names
        for name in side.names:
            if name.startswith(LISTED):
                continue
            if name.startswith(SOURCE):
                if not cites or name == SOURCE:
                    continue
                name = name[len(SOURCE):]
            if _unknown(name, known) and self._idf(name) >= NAME_IDF:
                return True
        return any(n not in known for n in side.numbers)

    def _judge(self, q: _Query, story: int, when: datetime) -> tuple[float, int]:
        """Score of the entry against one candidate story (0 when it is not the same story), and the member.

        Two passes with the decision of one: the cheap figures (text containment, cosine) first, so that the
        common hopeless candidate costs no veto check; the vetoes only when some member could qualify."""
        feats = q.features
        keys = self._story_members[story]
        recent = keys[-MEMBERS_COMPARED:] if len(keys) > MEMBERS_COMPARED else keys
        if len(recent) > 2 and not self._may_match(q, self._vocab(story), recent):
            return 0.0, keys[0]
        figures = []
        hopeful = False
        for key in recent:
            member = self._members[key]
            if abs(when - member.when) > self.window:
                continue
            text, cos = self._similarity(q, member)
            hopeful = hopeful or text >= TEXT_SAME or cos >= COS_SUPPORT
            figures.append((key, member, text, cos))
        if not hopeful:
            return 0.0, keys[0]
        # a trimmed copy of a member's summary is that story, whatever its headline says
        copied = max(((text, key) for key, _, text, _ in figures if text >= TEXT_SAME), default=None)
        if copied is not None:
            return 1.0 + copied[0], copied[1]
        best, best_key, vocab, conflicts = 0.0, keys[0], self._vocab(story), 0
        for key, member, _, cos in figures:
            if self._conflict(feats, member, feats.terms, vocab):
                # The story disagrees when half the members compared do; a member whose headline names what
                # the others do not (one outlet's detail) does not veto a story the rest of it agrees with.
                conflicts += 1
                if 2 * conflicts >= len(figures):
                    return 0.0, key
                continue
            if cos > best:
                best, best_key = cos, key
        if best >= COS_SAME:
            return best, best_key
        if best >= COS_SUPPORT:
            lead = self._members[keys[0]]
            cover = max(self._cover(feats.title, vocab), self._cover(lead.title, feats.terms))
            if cover >= COVER_SAME:
                return best, best_key
            # a headline-only copy has no summary to show it: a weaker coverage will do when its headline
            # leaves out nothing distinctive of the story's and names nothing the story does not know
            if (not feats.body and best >= COS_TOLD and cover >= COVER_TOLD
                    and self._keeps_headline(feats, lead, vocab)):
                return best, best_key
        return 0.0, best_key

    def _keeps_headline(self, feats: StoryFeatures, lead: _Member, vocab: Counter[str] | frozenset[str]) -> bool:
        """Does a reworded headline keep the story's? Every term of the lead's headline that the entry does not
        mention is a common word (IDF below ``LEFT_OUT_IDF``, and no rare name): "Graphite curbs from China
        target EV supply chain" leaves out only "require", "export" and "permits" of "China to require export
        permits for graphite". And every rare name the entry's headline gives is one the story itself mentions (not
        only what it stands for: "Treasury" is not known to a story that says "US"). Two stories on one topic
        each tell something the other does not ("disrupts botnet" / "disinformation campaign")."""
        known = feats.terms
        for term in lead.title:
            if term in known or _prefix_known(term, known):
                continue
            idf = self._idf(term)
            if idf >= LEFT_OUT_IDF or (idf >= NAME_IDF and term in lead.names):
                return False
        return all(name in vocab or self._idf(name) < NAME_IDF for name in feats.names
                   if not name.startswith((LISTED, SOURCE)))

    def _may_match(self, q: _Query, vocab: Counter[str] | frozenset[str], keys: list[int]) -> bool:
        """Cheap necessary condition for :meth:`_judge`. By Cauchy-Schwarz the cosine with any member is at
        most the norm of the entry's vector restricted to the terms the story mentions, over its full norm;
        below ``COS_SUPPORT`` only an identical text or a trimmed summary can still make it the same story."""
        self._weigh(q)
        weights, feats = q.weights, q.features
        if q.norm and math.sqrt(sum(weights[t] ** 2 for t in feats.terms.intersection(vocab))) >= COS_SUPPORT * q.norm:
            return True
        members = self._members
        return any(feats.exact == members[k].exact or
                   _containment(q.shingles(), members[k].shingles) >= TEXT_SAME for k in keys)

    def _candidates(self, q: _Query) -> set[int]:
        """Stories sharing the entry's rarest terms: at most ``CANDIDATES``, those sharing the most of them."""
        feats, terms, sized = q.features, self._terms, q.indexed
        # the rarest terms overall, and the rarest headline terms too: a summary full of terms that only one
        # story mentions would otherwise hide the other stories that share the headline
        lookups = sized[:RARE_LOOKUPS]
        lookups += [x for x in sized[RARE_LOOKUPS:] if x[1] in feats.title][:RARE_TITLE_LOOKUPS]
        same_text = {self._members[k].story_id for k in self._exact.get(feats.exact, ())}
        groups: list[set[int | None]] = []  # per lookup term, the stories of its posting
        get_story, scanned = self._story_of.get, 0
        for size, term in lookups:
            if scanned + size > LOOKUP_BUDGET:
                continue
            scanned += size
            stories = set(map(get_story, terms[term].posting or ()))  # (never saturated at this size)
            stories.discard(None)  # keys of removed members, left in lazily cleaned postings
            groups.append(stories)
        shared: Counter[int | None] = Counter()  # story -> lookup terms it shares; counted in C
        for group in groups:
            shared.update(group)
        if len(shared) <= CANDIDATES:
            found = set(shared)
        else:
            # The stories that share two or more of the rare terms, most first; then, rarest term first, the
            # stories that share just that term, when they all fit. Beyond CANDIDATES a pick among them would
            # be blind, and a term with that many one-term hits is not distinctive enough to find a copy by.
            several = [s for s, n in shared.items() if n > 1]
            found = set(heapq.nlargest(CANDIDATES, several, key=shared.__getitem__))
            for group in groups:
                alone = group - found
                if len(found) + len(alone) > CANDIDATES:
                    break
                found |= alone
        return {s for s in found if s is not None} | same_text

    def _best(self, q: _Query, when: datetime) -> StoryMatch | None:
        scored = []
        candidates = self._candidates(q)
        for story in candidates:
            sim, key = self._judge(q, story, when)
            if sim > 0:
                scored.append((sim, story, key))
        if not scored:
            return None
        scored.sort(reverse=True)
        sim, story, key = scored[0]
        bridges = tuple(s for score, s, _ in scored[1:MAX_BRIDGES + 1] if score >= BRIDGE_SAME) \
            if sim >= BRIDGE_SAME else ()
        if len(bridges) < MAX_BRIDGES:
            found = {s for _, s, _ in scored}
            bridges += tuple(other for other in candidates - found
                             if self._headline_story_of(other, story, q, when))[:MAX_BRIDGES - len(bridges)]
        return StoryMatch(story, min(sim, 1.0), key, bridges)

    def _headline_story_of(self, other: int, story: int, q: _Query, when: datetime) -> bool:
        """Story-level profile: is ``other``, a story of headline-only entries, the same story as ``story``
        once the entry joins it? A lone headline is judged against single members badly (a reworded headline
        shares little with any one summary), but the vocabulary of the whole story (all members and the
        entry) may mention most of its weight. Same rule as :meth:`_judge` (coverage and a supporting
        cosine, no veto), applied to the other story's lead and the grown story."""
        keys = self._story_members[other]
        if len(keys) > HEADLINE_STORY_MAX:
            return False
        members = [self._members[k] for k in keys]
        if any(m.body or m.shingles or abs(when - m.when) > self.window for m in members):
            return False
        lead, feats = members[0], q.features
        profile = Counter(self._vocab(story)) + Counter(feats.terms)
        if self._cover(lead.title, profile) < COVER_SAME:
            return False
        mine = [self._members[k] for k in self._story_members[story][-MEMBERS_COMPARED:]]
        cos = max([self._query_cosine(q, lead)] + [self._member_cosine(lead, m) for m in mine])
        if cos < COS_SUPPORT:
            return False
        theirs = self._vocab(other)
        sides: list[_Side] = [feats, *mine]
        return not any(self._conflict(lead, side, theirs, profile) for side in sides)
