"""The watchlist query language: parsing, matching, explanations, printing and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import QuerySyntaxError
from monitor.models import StoryView, Verdict
from monitor.query import (
    And,
    EntityRef,
    Field,
    Near,
    Node,
    Not,
    Or,
    Score,
    Source,
    Subtopic,
    Tag,
    Term,
    check_entities,
    parse,
    prepare,
    render_explanation,
    to_text,
)
from monitor.query_eval import TermError, compile_term

ENTITIES = {
    "huawei": ["Huawei", "HiSilicon", "华为", "Honor Device"],
    "smic": ["SMIC", "中芯国际", "Semiconductor Manufacturing International*"],
    "us_gov": ["Commerce Department", "case:BIS", "White House"],
}


def story(title: str = "", summary: str = "", **extra: object) -> StoryView:
    fields: dict = {"feed_name": "Reuters World", **extra}
    return StoryView(id=1, title=title, summary=summary, link="https://example.com/1",
                     published=datetime(2025, 1, 1, tzinfo=UTC), **fields)


def matches(query: str, title: str = "", summary: str = "", **extra: object) -> bool:
    return parse(query, ENTITIES).matches(story(title, summary, **extra))


def syntax_error(query: str, entities: dict | None = None) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query, ENTITIES if entities is None else entities)
    return info.value


# ---- structure and precedence ------------------------------------------------------------------

def test_juxtaposition_is_and_and_binds_tighter_than_or() -> None:
    assert parse("a OR b c").root == Or((Term("a"), And((Term("b"), Term("c")))))
    assert parse("a b OR c").root == Or((And((Term("a"), Term("b"))), Term("c")))
    assert parse("a AND b c").root == And((Term("a"), Term("b"), Term("c")))


def test_not_binds_tightest_and_minus_is_not() -> None:
    assert parse("NOT a b").root == And((Not(Term("a")), Term("b")))
    assert parse("-a b").root == parse("NOT a AND b").root
    assert parse("-(a OR b)").root == Not(Or((Term("a"), Term("b"))))
    assert parse("NOT a NEAR/3 b").root == Not(Near(Term("a"), Term("b"), 3))


def test_parentheses_keep_their_shape() -> None:
    assert parse("(a OR b) c").root == And((Or((Term("a"), Term("b"))), Term("c")))
    assert parse("a AND (b AND c)").root == And((Term("a"), And((Term("b"), Term("c")))))


def test_precedence_in_matching() -> None:
    assert matches("huawei OR zte sanctions", "ZTE faces sanctions")
    assert matches("huawei OR zte sanctions", "Huawei launches phone")
    assert not matches("huawei OR zte sanctions", "ZTE launches phone")
    assert not matches("(huawei OR zte) sanctions", "Huawei launches phone")
    assert matches("chips -opinion", "Chips news")
    assert not matches("chips -opinion", "Opinion: chips")


def test_lowercase_operators_are_errors_with_a_hint_and_quoting_searches_the_word() -> None:
    err = syntax_error("huawei or zte")
    assert err.column == 8 and "UPPERCASE" in err.hint and '"or"' in err.hint
    assert matches('"not" huawei', "Huawei is not banned")
    assert syntax_error("a near/5 b").column == 3


# ---- terms, phrases, wildcards -----------------------------------------------------------------

def test_terms_match_whole_words_case_insensitively() -> None:
    assert matches("ban", "US to BAN exports.")
    assert matches("ban", "A (ban) on chips")
    assert not matches("ban", "Bank stocks rally in urban areas")
    assert matches("Huawei's", "huawei’s new chip")  # curly apostrophe is punctuation like any other


def test_phrases_match_words_in_sequence_ignoring_punctuation() -> None:
    for text in ("Added to the Entity List", "entity-list additions", "ENTITY   list", "entity, list"):
        assert matches('"entity list"', text), text
    for text in ("list entity", "entity blacklist", "entity lists", "entity of list"):
        assert not matches('"entity list"', text), text
    assert matches("entity-list", "the Entity List")  # a hyphenated bare term is a phrase


def test_phrases_never_span_title_and_summary() -> None:
    assert not matches('"entity list"', "Commerce adds to entity", "list of firms grows")
    assert matches("entity list", "Commerce adds to entity", "list of firms grows")


def test_prefix_wildcards() -> None:
    assert matches("semiconduct*", "Semiconductors rally")
    assert matches("semiconduct*", "semiconductor")
    assert not matches("semiconduct*", "semi conductor")
    assert matches('"export control*"', "new export controls")
    assert not matches('"export control*"', "export of controls")
    assert matches("export control*", "controls on export")  # two terms, ANDed


@pytest.mark.parametrize("query, column, message", [
    ("*chip", 1, "must follow"),
    ("chip**", 5, "'**'"),
    ("chi*p", 4, "only end a word"),
    ("a*", 2, "at least 2"),
    ('x "export control**"', 18, "'**'"),
])
def test_bad_wildcards_point_at_the_star(query: str, column: int, message: str) -> None:
    err = syntax_error(query)
    assert err.column == column and message in err.message


def test_term_without_letters_is_an_error() -> None:
    err = syntax_error('a ""')
    assert err.column == 3 and "no letters" in err.message


# ---- case-sensitive terms --------------------------------------------------------------------

def test_case_prefix_makes_a_term_case_sensitive() -> None:
    assert matches("case:AI", "New AI chips")
    assert not matches("case:AI", "Said the ai")
    assert not matches("case:AI", "Ai Weiwei speaks")
    assert not matches("case:AI", "AIM-120 missiles")
    assert matches("AI", "Said the ai")
    assert matches('case:"Entity List"', "added to the Entity-List")
    assert not matches('case:"Entity List"', "added to the entity list")
    assert matches("title:case:US", "US bans", "us")
    assert not matches("title:case:US", "us bans", "US")


def test_case_sensitive_terms_work_in_near() -> None:
    assert matches("case:BIS NEAR/3 rule*", "BIS issues new rules")
    assert not matches("case:BIS NEAR/3 rule*", "bis issues new rules")


# ---- unicode and CJK ---------------------------------------------------------------------------

def test_cjk_terms_match_inside_unspaced_text() -> None:
    assert matches("华为", "美国制裁华为技术有限公司")
    assert matches("中芯国际", "中芯国际（SMIC）扩产")
    assert not matches("华为", "华 人")
    assert matches("title:华为", "华为发布新芯片")
    assert matches("Mate60", "华为Mate60发布")
    assert not matches("Mate", "华为Mate60发布")


def test_cjk_near_counts_characters() -> None:
    assert matches("华为 NEAR/2 制裁", "华为遭制裁")  # 华 为 遭 制 裁: 为 -> 制 is 2
    assert not matches("华为 NEAR/1 制裁", "华为遭制裁")


def test_accented_and_normalized_text() -> None:
    assert matches("zürich", "ZÜRICH talks")
    assert not matches("zürich", "Zurich talks")  # accents are not folded away
    assert not matches("café", "cafétéria")
    assert matches("AI", "ＡＩ chips")  # NFKC: fullwidth letters
    assert matches("office", "The oﬃce")  # NFKC: ligature
    assert matches("straße", "STRASSE closed")  # casefold
    assert matches('“entity list”', "entity list")  # curly quotes in the query
    assert matches("a –ban", "a list")  # en dash as NOT


def test_words_with_combining_marks_stay_whole() -> None:
    assert matches("हिन्दी", "यह हिन्दी है")
    assert not matches("हि", "यह हिन्दी है")


# ---- proximity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Huawei w1 w2 w3 w4 ban", "ban w1 w2 w3 w4 Huawei"])
def test_near_in_both_orders_at_the_edge_distance(text: str) -> None:
    assert matches("Huawei NEAR/5 ban", text)
    assert not matches("Huawei NEAR/4 ban", text)


def test_near_with_phrases_wildcards_entities_and_groups() -> None:
    assert matches('"entity list" NEAR/4 add*', "Commerce added firms to the entity list")
    assert not matches('"entity list" NEAR/3 add*', "Commerce added firms to the entity list")
    assert matches("@huawei NEAR/5 (ban* OR sanction*)", "New sanctions hit HiSilicon")
    assert matches("@huawei NEAR/5 ban*", "Honor Device makers banned")
    assert not matches("@huawei NEAR/2 (ban* OR sanction*)", "New sanctions hit chip designer HiSilicon")


def test_near_counts_from_the_end_of_a_phrase_and_needs_distinct_words() -> None:
    assert matches('"entity list" NEAR/1 expands', "Entity List expands")
    assert not matches("ban NEAR/5 ban*", "a ban")  # one word cannot be both operands
    assert matches("ban NEAR/5 ban*", "a ban and more bans")


def test_near_stays_within_one_field() -> None:
    assert not matches("Huawei NEAR/5 ban", "Huawei", "ban")
    assert matches("Huawei NEAR/5 ban", "Huawei", "Huawei ban")
    assert matches("title:(Huawei NEAR/2 ban)", "Huawei ban", "")
    assert not matches("summary:(Huawei NEAR/2 ban)", "Huawei ban", "")


# ---- fields ------------------------------------------------------------------------------------

def test_title_and_summary_scopes() -> None:
    assert matches("title:huawei", "Huawei news", "")
    assert not matches("title:huawei", "News", "Huawei")
    assert matches("summary:huawei", "News", "Huawei")
    assert matches('title:"entity list"', "Entity List grows")
    assert matches("title:(zte OR huawei) summary:ban*", "ZTE", "banned")
    assert not matches("title:(zte OR huawei) summary:ban*", "ZTE banned", "")
    assert matches("title:@huawei", "HiSilicon chips")


def test_source_is_a_case_insensitive_substring_of_feed_or_outlet() -> None:
    assert matches("source:reuters", "x")
    assert matches('source:"morning post"', "x", sources=("South China Morning Post",))
    assert matches("source:(xinhua OR reuters)", "x")
    assert not matches("source:xinhua", "x")


def test_tag_is_an_exact_case_insensitive_feed_or_entry_tag() -> None:
    assert matches("tag:policy", "x", feed_tags=("Policy",))
    assert matches('tag:"export controls"', "x", entry_tags=("Export Controls",))
    assert not matches("tag:polic", "x", feed_tags=("policy",))


# ---- classifier conditions --------------------------------------------------------------------

def test_score_comparisons() -> None:
    verdict = Verdict(score=0.6, subtopics=("chips_export_controls",))
    assert matches("score>=0.6", verdict=verdict)
    assert not matches("score>0.6", verdict=verdict)
    assert matches("score<=0.6", verdict=verdict)
    assert matches("score<0.7", verdict=verdict)
    assert matches("Score >= .5", verdict=verdict)


def test_without_a_verdict_score_and_subtopic_conditions_are_false() -> None:
    assert not matches("score>=0.0")
    assert not matches("score<0.5")
    assert matches("NOT score>=0.6")
    assert not matches("subtopic:chips_export_controls")


def test_subtopic_condition() -> None:
    verdict = Verdict(score=0.9, subtopics=("chips_export_controls", "cyber"))
    assert matches("subtopic:cyber", verdict=verdict)
    assert matches("subtopic:Chips_Export_Controls", verdict=verdict)
    assert not matches("subtopic:military", verdict=verdict)


def test_uses_classifier() -> None:
    assert parse("a OR title:(b) -score<0.2").uses_classifier
    assert parse("subtopic:cyber").uses_classifier
    assert not parse("a source:score").uses_classifier


# ---- entities ----------------------------------------------------------------------------------

def test_entity_expands_to_any_of_its_terms() -> None:
    ref = parse("@huawei", ENTITIES).root
    assert isinstance(ref, EntityRef) and len(ref.terms) == 4
    assert matches("@huawei", "HiSilicon unveils chip")
    assert matches("@huawei", "华为发布")
    assert matches("@huawei", "Honor-Device sales")
    assert not matches("@huawei", "Honor and device")
    assert matches("@smic", "Semiconductor Manufacturing International Corp")
    assert matches("@us_gov", "BIS rule")
    assert not matches("@us_gov", "bis rule")


def test_unknown_entity_points_at_it_and_suggests_close_names() -> None:
    err = syntax_error("chips\n  @huawie NEAR/5 ban")
    assert (err.line, err.column) == (2, 3)
    assert "@huawei" in err.hint
    assert "no entities are defined" in syntax_error("@huawei", {}).hint


def test_bad_entity_entries() -> None:
    err = syntax_error("x @bad", {"bad": ["ok", "*oops"]})
    assert err.column == 3 and "@bad" in err.message
    problems = check_entities({"bad": ["ok", "*oops"], "empty": [], "bad name!": ["x"], "fine": "Huawei"})
    assert [p.message.split(":")[0] for p in problems] == ["entity 'bad'", "entity 'empty' has no terms",
                                                           "entity name 'bad name!' must use letters, digits, _ or -"]
    assert check_entities(ENTITIES) == []


# ---- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, line, column, message", [
    ("", 1, 1, "empty query"),
    ("  \n ", 1, 1, "empty query"),
    ("(a OR b", 1, 1, "unclosed '('"),
    ("a (b OR (c)", 1, 3, "unclosed '('"),
    ("a OR b)", 1, 7, "unmatched ')'"),
    ("a AND", 1, 3, "'AND' has nothing after it"),
    ("OR a", 1, 1, "needs a term before it"),
    ("a AND OR b", 1, 7, "expected a term after 'AND'"),
    ("a\nNOT", 2, 1, "'NOT' has nothing after it"),
    ("a NEAR/0 b", 1, 8, "bad NEAR distance"),
    ("a NEAR/x b", 1, 8, "bad NEAR distance"),
    ("a NEAR/101 b", 1, 8, "bad NEAR distance"),
    ("a NEAR b", 1, 7, "NEAR needs a distance"),
    ("a NEAR/5", 1, 3, "'NEAR' has nothing after it"),
    ("a NEAR/5 b NEAR/5 c", 1, 12, "cannot be chained"),
    ("title:a NEAR/5 b", 1, 1, "cannot be a NEAR operand"),
    ("(a b) NEAR/5 c", 1, 1, "cannot be a NEAR operand"),
    ("a\n  titel:x", 2, 3, "unknown field 'titel'"),
    ('a "entity list', 1, 3, "unterminated quote"),
    ("a - b", 1, 3, "'-' must touch"),
    ("()", 1, 1, "empty parentheses"),
    ("title: a", 1, 7, "nothing after 'title:'"),
    ("title:(summary:x)", 1, 8, "cannot be used inside title:"),
    ("title:-x", 1, 7, "NOT cannot follow title:"),
    ("case:(a OR b)", 1, 1, "case: applies to one term"),
    ("score=0.5", 1, 6, "cannot be compared with '='"),
    ("score>=1.5", 1, 8, "out of range"),
    ("score>=high", 1, 8, "score needs a number"),
    ("score:0.5", 1, 1, "score needs a comparison"),
    ("@", 1, 1, "needs an entity name"),
    ("source:@huawei", 1, 8, "cannot be used inside source:"),
])
def test_syntax_errors_carry_exact_positions(query: str, line: int, column: int, message: str) -> None:
    err = syntax_error(query)
    assert (err.line, err.column) == (line, column), err.render()
    assert message in err.message
    assert err.hint


def test_error_render_shows_file_line_caret_and_hint() -> None:
    err = syntax_error("@huawei NEAR/5\n  (ban* OR sanction*\n")
    lines = err.render("watchlists/huawei.yaml", first_line=12).splitlines()
    assert lines[0] == "watchlists/huawei.yaml:13:3: unclosed '('"
    assert lines[1] == "      (ban* OR sanction*"
    assert lines[2] == "      ^"
    assert lines[3] == "    hint: add a matching ')'"


def test_unknown_field_hint_suggests_the_right_one() -> None:
    assert "title:" in syntax_error("titel:x").hint
    assert "quote it" in syntax_error("http://example.com").hint


# ---- explanations ------------------------------------------------------------------------------

def test_explain_reports_every_clause_with_matched_words() -> None:
    query = parse("@huawei NEAR/5 (ban* OR sanction*)\n  score>=0.6 -title:opinion", ENTITIES)
    view = story("US bans Huawei chips", "The 华为 unit", verdict=Verdict(0.8))
    results = query.explain(view)
    assert results[0].depth == 0 and results[0].matched and results[0].kind == "and"
    by_source = {r.source: r for r in results}
    near = by_source["@huawei NEAR/5 (ban* OR sanction*)"]
    assert near.matched and near.words == ("Huawei", "bans")
    assert by_source["@huawei"].words == ("Huawei", "华为")
    assert not by_source["sanction*"].matched
    assert by_source["score>=0.6"].words == ("score=0.80",)
    assert by_source["-title:opinion"].matched and not by_source["title:opinion"].matched
    text = render_explanation(results)
    assert text.splitlines()[0].startswith("+ @huawei NEAR/5 (ban* OR sanction*) score>=0.6")
    assert "    + @huawei    <- Huawei, 华为" in text
    assert "      - HiSilicon" in text


def test_explain_agrees_with_matches() -> None:
    query = parse("(chips OR semiconduct*) NOT opinion", ENTITIES)
    for title in ("Chips", "Opinion: chips", "Semiconductors", "Weather"):
        view = story(title)
        assert query.explain(view)[0].matched == query.matches(view)


def test_prepared_doc_is_shared_across_queries() -> None:
    doc = prepare(story("US adds Huawei to entity list", "Export controls tighten"))
    queries = [parse(q, ENTITIES) for q in ("@huawei", '"entity list"', "case:us", "title:export")]
    assert [q.matches_doc(doc) for q in queries] == [True, True, False, False]


# ---- printing and properties -------------------------------------------------------------------

def test_to_text_is_canonical() -> None:
    assert to_text(parse("a b OR -c", ENTITIES).root) == "a AND b OR NOT c"
    assert to_text(parse('title:(x OR "a b") source:(r OR "s t")').root) == \
        'title:(x OR "a b") AND (source:r OR source:"s t")'
    assert to_text(parse("NOT (a OR b) NEAR/3 c").root) == "NOT (a OR b) NEAR/3 c"
    assert to_text(Term("or")) == '"or"'
    assert to_text(Score(">=", 0.6)) == "score>=0.6"


def _valid_term(text: str) -> bool:
    try:
        compile_term(text)
    except TermError:
        return False
    return True


TERM_TEXT = st.one_of(
    st.sampled_from(["huawei", "Huawei", "chip*", "export-control*", "entity list", "华为", "中芯国际*", "5G",
                     "Zürich", "AND", "or", 'a"b', "score>=1", "title:x", "-x", "@x", "U.S.", "NEAR/5", "x)",
                     "(y", "back\\slash", "“curly”", "–dash"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(_valid_term),
)
VALUE_TEXT = st.text(min_size=1, max_size=10).filter(lambda v: v.strip() != "")
TERMS = st.builds(Term, TERM_TEXT, st.booleans())
ENTITY_REFS = st.sampled_from(sorted(ENTITIES)).map(EntityRef)
TEXT_ATOMS = st.one_of(TERMS, ENTITY_REFS)
NEAR_OPERANDS = st.one_of(TEXT_ATOMS, st.lists(TEXT_ATOMS, min_size=2, max_size=3).map(lambda c: Or(tuple(c))))
NEARS = st.builds(Near, NEAR_OPERANDS, NEAR_OPERANDS, st.integers(1, 100))
VALUES = st.one_of(st.builds(Source, VALUE_TEXT), st.builds(Tag, VALUE_TEXT), st.builds(Subtopic, VALUE_TEXT),
                   st.builds(Score, st.sampled_from([">=", ">", "<=", "<"]), st.floats(0, 1)))


def _boolean(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(children, min_size=2, max_size=3).map(lambda c: Or(tuple(c))),
    )


TEXT_TREES = st.recursive(st.one_of(TEXT_ATOMS, NEARS), _boolean, max_leaves=6)
FIELDS = st.builds(Field, st.sampled_from(["title", "summary"]), TEXT_TREES)
TREES = st.recursive(st.one_of(TEXT_ATOMS, NEARS, VALUES, FIELDS), _boolean, max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_round_trip_through_to_text(tree: Node) -> None:
    text = to_text(tree)
    assert parse(text, ENTITIES).root == tree, text
    assert to_text(parse(text, ENTITIES).root) == text


WORDS = st.sampled_from(["huawei", "Huawei", "chips", "Chip", "ban", "BANS", "entity", "List", "zürich",
                         "Straße", "华为", "Ärger", "export", "controls", "ΣΟΦΙΑ", "ai"])
SEPARATORS = st.sampled_from([" ", ", ", "-", " (", ") ", ". ", "’s "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=12),
       st.sampled_from(["huawei", "chip*", '"entity list"', "ban* NEAR/3 huawei", "@huawei -zürich",
                        "straße OR ärger", "title:(export control*)", "σοφια", "AI"]))
def test_case_insensitive_matching_ignores_the_texts_case(pieces: list[tuple[str, str]], query: str) -> None:
    text = "".join(w + s for w, s in pieces)
    q = parse(query, ENTITIES)
    expected = q.matches(story(text, text))
    for variant in (text.upper(), text.lower(), text.swapcase(), text.title()):
        assert q.matches(story(variant, variant)) == expected, variant


@settings(max_examples=100, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=10), st.sampled_from(["huawei", "ban* NEAR/2 chip*", '"export controls"']))
def test_explain_matches_matches(words: list[str], query: str) -> None:
    q = parse(query, ENTITIES)
    view = story(" ".join(words))
    assert q.explain(view)[0].matched == q.matches(view)


QUERY_PIECES = st.sampled_from(list('abAB华 ()"-*@:/\\\n“”–（') + [
    "AND ", "OR ", "NOT ", "NEAR/3 ", "NEAR/", "title:", "source:", "case:", "score>=0.5", "@huawei", "tag:",
    "subtopic:", "score", ">="])


@settings(max_examples=300, deadline=None)
@given(st.lists(QUERY_PIECES, max_size=15).map("".join))
def test_any_text_parses_or_raises_a_positioned_syntax_error(text: str) -> None:
    try:
        query = parse(text, ENTITIES)
    except QuerySyntaxError as err:
        assert 0 <= err.position <= len(text)
        return
    assert parse(to_text(query.root), ENTITIES) == query
    view = story("a b 华", "A B")
    assert query.explain(view)[0].matched == query.matches(view)
