"""Watchlists: keyword rules on the query engine, shared entities, error positions, `tests:` examples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import cli

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.models import StoryView, Verdict
from monitor.watchlists import compile_all, load_entity_file, match_all, prepare, run_examples

SETTINGS = "channels: {default: [console://]}\nclassifier: {enabled: false}\nentities_file: entities.yaml\n"
ENTITIES = "entities:\n  huawei: [Huawei, HiSilicon, 华为, \"Honor Device\"]\n  us: [\"case:US\", Washington]\n"


def _config(root: Path, watchlists: dict[str, str], entities: str = ENTITIES) -> Path:
    (root / "watchlists").mkdir(parents=True, exist_ok=True)
    (root / "monitor.yaml").write_text(SETTINGS)
    (root / "feeds.yaml").write_text("feeds: []\n")
    (root / "entities.yaml").write_text(entities)
    for name, text in watchlists.items():
        (root / "watchlists" / name).write_text(text)
    return root / "monitor.yaml"


def _compile(root: Path, watchlists: dict[str, str], entities: str = ENTITIES):  # type: ignore[no-untyped-def]
    return compile_all(load_config(_config(root, watchlists, entities)).watchlists)


def _view(title: str, summary: str = "", verdict: Verdict | None = None, feed: str = "Wire",
          tags: tuple[str, ...] = ()) -> StoryView:
    return StoryView(id=1, title=title, summary=summary, link="https://example.org/1", feed_name=feed,
                     published=datetime(2025, 1, 1, tzinfo=UTC), feed_tags=tags, verdict=verdict)


def _problems(root: Path, watchlists: dict[str, str], entities: str = ENTITIES) -> str:
    with pytest.raises(ConfigError) as info:
        _compile(root, watchlists, entities)
    return "\n".join(info.value.problems)


# ---- keyword rules keep their documented meaning ---------------------------------------------------

KEYWORDS = """\
name: kw
keywords:
  any: [semiconductor, chips, Entity List]
  all:
    - [China, Chinese, Beijing, Huawei]
  none: [soybeans]
"""


@pytest.mark.parametrize(("title", "expected"), [
    ("US adds Chinese firms to the Entity List", True),        # a phrase, any case
    ("US adds Chinese firms to the entity-list", True),        # punctuation between words does not matter
    ("CHINESE CHIPS: new curbs", True),                         # case-insensitive whole words
    ("Chinese chipsets sell well", False),                      # whole words only: "chipsets" is not "chips"
    ("Huawei's chips", True),                                   # a possessive still reads as the word
    ("Chinese chips and soybeans", False),                      # none:
    ("Semiconductor stocks rise in Tokyo", False),              # all: needs a Chinese actor
])
def test_keyword_rules_match_whole_words_and_phrases(tmp_path: Path, title: str, expected: bool) -> None:
    [watchlist] = _compile(tmp_path, {"kw.yaml": KEYWORDS})
    assert (watchlist.match(_view(title)) is not None) is expected


def test_match_explains_each_condition(tmp_path: Path) -> None:
    [watchlist] = _compile(tmp_path, {"kw.yaml": KEYWORDS})
    match = watchlist.match(_view("Beijing answers the Entity List move", "Chips again."))
    assert match is not None
    assert match.why == "keywords.any: chips, Entity List; keywords.all: Beijing"
    matched, results = watchlist.evaluate(_view("Chinese soybeans", "chips"))
    assert not matched
    assert [(r.label, r.passed, r.detail) for r in results] == [
        ("keywords.any", True, "chips"), ("keywords.all", True, "Chinese"),
        ("keywords.none", False, "excluded by soybeans")]


def test_one_doc_is_shared_by_many_watchlists(tmp_path: Path) -> None:
    lists = _compile(tmp_path, {"a.yaml": KEYWORDS, "b.yaml": "name: b\nquery: '@huawei NEAR/3 ban*'\n",
                                "c.yaml": "name: c\nquery: soybeans\n"})
    view = _view("Washington bans Huawei chips", "China protests.")
    doc = prepare(view)
    assert [w.name for w in lists if w.matches(doc)] == ["kw", "b"]
    assert [m.watchlist for m in match_all(lists, view)] == ["kw", "b"]
    assert lists[0].match(view, doc) is not None


# ---- entities --------------------------------------------------------------------------------------

def test_shared_entities_expand_in_queries_and_keywords(tmp_path: Path) -> None:
    lists = _compile(tmp_path, {
        "q.yaml": "name: q\nquery: '@huawei @us'\n",
        "k.yaml": "name: k\nkeywords:\n  any: ['@huawei']\n  all: [['@us', Congress]]\n",
    })
    for title in ("Washington weighs new curbs on HiSilicon", "US 制裁华为", "Honor Device sales: a US view"):
        assert [w.name for w in lists if w.matches(prepare(_view(title)))] == ["k", "q"], title
    # case:US in the shared group: the pronoun does not count
    assert not any(w.matches(prepare(_view("Huawei tells us about its plans"))) for w in lists)


def test_a_watchlist_entity_replaces_the_shared_one(tmp_path: Path) -> None:
    own = "name: own\nentities:\n  huawei: [ZTE]\nquery: '@huawei'\n"
    [watchlist] = _compile(tmp_path, {"own.yaml": own})
    assert watchlist.matches(prepare(_view("ZTE fined")))
    assert not watchlist.matches(prepare(_view("Huawei fined")))
    assert watchlist.entities["us"] == ("case:US", "Washington")  # the other shared groups are still there


def test_entity_file_errors_point_at_the_entry(tmp_path: Path) -> None:
    bad = "entities:\n  huawei: [Huawei, \"Hi*Silicon\"]\n  bad name: [x]\n"
    problems = _problems(tmp_path, {"q.yaml": "name: q\nquery: '@huawei'\n"}, bad)
    path = tmp_path / "entities.yaml"
    assert f"{path}:2:23: entity 'huawei': '*' can only end a word" in problems
    assert "      huawei: [Huawei, \"Hi*Silicon\"]\n" + " " * 26 + "^" in problems
    assert f"{path}:3:3: entity name 'bad name' must use letters, digits, _ or -" in problems
    # the valid entry of @huawei is kept, so the watchlist does not also report "unknown entity"
    assert "unknown entity" not in problems
    _, file_problems = load_entity_file(path)
    assert len(file_problems) == 2


def test_missing_entity_file_is_reported_once(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a.yaml": "name: a\nquery: x\n", "b.yaml": "name: b\nquery: y\n"})
    (tmp_path / "entities.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        compile_all(load_config(config).watchlists)
    missing = f"{tmp_path / 'entities.yaml'}:1: entity file not found (set by entities_file in monitor.yaml)"
    assert info.value.problems == [missing]


# ---- error positions in watchlist files ------------------------------------------------------------

def test_query_error_in_a_block_points_at_file_line_and_column(tmp_path: Path) -> None:
    text = "name: q\n# a comment\nquery: |\n  @huawei NEAR/5\n    (ban* OR sanction*\n"
    problems = _problems(tmp_path, {"q.yaml": text})
    assert problems.splitlines() == [f"{tmp_path / 'watchlists' / 'q.yaml'}:5:5: unclosed '('",
                                     "        (ban* OR sanction*", "        ^", "    hint: add a matching ')'"]


def test_query_error_in_a_quoted_scalar_counts_the_key_and_quote(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"q.yaml": 'name: q\nquery: "chips AND @huawie"\n'})
    path = tmp_path / "watchlists" / "q.yaml"
    assert problems.splitlines() == [f"{path}:2:19: unknown entity @huawie", '    query: "chips AND @huawie"',
                                     "                      ^", "    hint: did you mean @huawei?"]


def test_keyword_and_watchlist_entity_errors_point_at_the_item(tmp_path: Path) -> None:
    text = "name: k\nentities:\n  zte: [ZTE, '**']\nkeywords:\n  any: [chips, '@huawie']\n  all:\n    - [a, 'x*']\n"
    problems = _problems(tmp_path, {"k.yaml": text})
    path = tmp_path / "watchlists" / "k.yaml"
    assert f"{path}:3:15: entity 'zte': '**' is not a wildcard" in problems
    assert f"{path}:5:17: keyword '@huawie': unknown entity @huawie" in problems
    assert "hint: did you mean @huawei?" in problems
    assert f"{path}:7:13: keyword 'x*': a wildcard needs at least 2 letters before '*'" in problems


def test_check_reports_a_query_error_with_a_caret(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_dir / "watchlists" / "telecom-5g.yaml"
    text = path.read_text().replace("(5G OR 6G", "(5G OR OR 6G", 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "(5G OR OR 6G" in row)
    column = text.splitlines()[line - 1].index("OR 6G") + 1
    assert cli(config_dir / "monitor.yaml", config_dir.parent / "state", "check") == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}:{column}: expected a term after 'OR', found 'OR'" in err
    assert "\n" + " " * (column + 3) + "^\n" in err


# ---- watchlists as code ----------------------------------------------------------------------------

class _Scorer:
    """A stand-in model with a fixed opinion: relevant when the title names a chip, subtopic chips."""

    threshold = 0.5

    def predict(self, title: str, summary: str = "") -> Verdict:
        relevant = "chip" in title.lower()
        return Verdict(0.9 if relevant else 0.1, ("chips_export_controls",) if relevant else ())


def test_examples_report_file_line_and_the_failing_condition(tmp_path: Path) -> None:
    text = KEYWORDS + "tests:\n  match:\n    - Chinese chips\n    - Beijing soybeans chips\n  no_match:\n    - ok\n"
    [watchlist] = _compile(tmp_path, {"kw.yaml": text})
    [failure] = run_examples(watchlist)
    assert str(failure) == (f"{tmp_path / 'watchlists' / 'kw.yaml'}:10: watchlist 'kw': expected to match: "
                            f"'Beijing soybeans chips' (keywords.none: excluded by soybeans)")


def test_examples_of_classifier_watchlists_use_the_scorer(tmp_path: Path) -> None:
    text = ("name: s\nquery: 'China subtopic:chips_export_controls'\nmin_score: auto\n"
            "tests:\n  match: [China chip rules]\n  no_match: [China soybean rules]\n")
    [watchlist] = _compile(tmp_path, {"s.yaml": text})
    assert watchlist.uses_classifier
    assert run_examples(watchlist, _Scorer()) == []
    without = run_examples(watchlist)  # no verdicts: score and subtopic conditions fail
    assert [f.title for f in without] == ["China chip rules"]
    assert "score: no classifier score" in without[0].reason
