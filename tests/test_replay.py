"""`monitor replay`, `monitor explain` and `monitor check` against a store seeded by the real pipeline.

The store is built once per module: local feed files, the shipped configuration (all its watchlists), and a
small relevance model trained on the shipped corpus (``TrainConfig.fast()``) so stories carry verdicts.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedgen import Item, rss
from helpers import cli, run_once, write_config

from monitor import classify
from monitor.classify import TrainConfig
from monitor.store import Store

pytestmark = pytest.mark.slow  # trains a small model once (a few seconds)

ROOT = Path(__file__).resolve().parent.parent
CHIPS = Item("US adds Chinese chipmakers to Entity List over military ties", "https://news.example/entity-list",
             "Commerce blacklisted dozens of Chinese firms.")
HUAWEI = Item("Huawei unveils chip made despite US export curbs", "https://news.example/huawei-chip",
              "The phone's processor shows China's progress.")
GALLIUM = Item("China curbs gallium and germanium exports to the US", "https://news.example/gallium",
               "Beijing tightened export licensing for the two metals.")
HACK = Item("Salt Typhoon hackers breached more US telecom carriers", "https://news.example/salt-typhoon",
            "Officials tied the intrusions to Beijing.")
SNOW = Item("Storm brings snow to the Alps", "https://news.example/alps", "Ski resorts welcome it.")
OLD = Item("Chinese chipmakers face new Entity List curbs", "https://news.example/old-entity-list",
           "An old story, stored as backlog.", published=datetime.now(UTC) - timedelta(days=20))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(monitor.yaml, state dir) after one real cycle over two local feeds."""
    root = tmp_path_factory.mktemp("replay")
    config_dir = root / "config"
    shutil.copytree(ROOT / "config", config_dir)
    (root / "world.xml").write_text(rss("World", [CHIPS, HUAWEI, GALLIUM, SNOW, OLD]))
    (root / "cyber.xml").write_text(rss("Cyber", [HACK]))
    config = write_config(config_dir, ["console://"],
                          [{"url": str(root / "world.xml"), "name": "World"},
                           {"url": str(root / "cyber.xml"), "name": "Cyber", "tags": ["cyber"]}],
                          classifier=True, keyword_watchlist=False)
    state = root / "state"
    classify.save(classify.train(config=TrainConfig.fast(), seed=0), state)
    assert run_once(config, state) == 0
    return config, state


def _ids(state: Path) -> dict[str, int]:
    store = Store.open(state)
    try:
        return {row.view.title: row.view.id for row in store.stories_since(None)}
    finally:
        store.close()


def _counts(state: Path) -> dict[str, int]:
    store = Store.open(state)
    try:
        return store.counts()
    finally:
        store.close()


def _edited_chips(config: Path, target: Path) -> Path:
    """The shipped chips watchlist with Huawei excluded and critical minerals let in."""
    text = (config.parent / "watchlists" / "chips-export-controls.yaml").read_text()
    text = text.replace('NOT ("potato chip*"', 'NOT Huawei NOT ("potato chip*"', 1)
    text = text.replace('OR "Hong Kong")', 'OR "Hong Kong" OR @minerals)', 1)
    text = text.replace('("Entity List" OR', '("Entity List" OR "export licensing" OR', 1)
    text = text.replace("keywords:\n  # a broad topical gate: a chip word somewhere in the title or summary\n  any: [",
                        "keywords:\n  any: [gallium, ", 1)
    target.write_text(text)
    return target


def test_replay_lists_alerts_and_the_difference_from_the_configured_version(
        seeded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    before = _counts(state)
    candidate = _edited_chips(config, tmp_path / "chips.yaml")
    capsys.readouterr()
    assert cli(config, state, "replay", str(candidate), "--since", "7d") == 0
    out = capsys.readouterr().out
    ids = _ids(state)
    assert f"replay of 'chips-export-controls' ({candidate}) over 5 stories first seen since " in out
    assert "1 backlog stories skipped" in out
    assert "2 would have alerted:" in out
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    for item in (CHIPS, GALLIUM):
        assert f"  #{ids[item.title]} {day} " in out and f"[World] {item.title}\n      {item.link}\n" in out
    assert "1 added, 1 removed, 1 unchanged" in out
    assert f"+ #{ids[GALLIUM.title]} " in out and f"- #{ids[HUAWEI.title]} " in out
    assert OLD.title not in out
    assert _counts(state) == before  # replay writes nothing and sends nothing


def test_replay_includes_backlog_on_request_and_speaks_json(
        seeded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    candidate = _edited_chips(config, tmp_path / "chips.yaml")
    capsys.readouterr()
    assert cli(config, state, "replay", str(candidate), "--since", "all", "--include-backlog", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["watchlist"] == "chips-export-controls" and report["stories_examined"] == 6
    assert [s["title"] for s in report["matched"]] == [CHIPS.title, GALLIUM.title, OLD.title]
    assert report["matched"][0]["source"] == "World" and report["matched"][0]["link"] == CHIPS.link
    assert [s["title"] for s in report["baseline"]["added"]] == [GALLIUM.title]
    assert [s["title"] for s in report["baseline"]["removed"]] == [HUAWEI.title]


def test_replay_of_a_new_watchlist_uses_stored_verdicts(seeded: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    new = tmp_path / "minerals-by-model.yaml"
    new.write_text("name: minerals-by-model\nquery: subtopic:critical_minerals score>=0.5\n")
    capsys.readouterr()
    assert cli(config, state, "replay", str(new)) == 0
    out = capsys.readouterr().out
    assert "1 would have alerted:" in out and GALLIUM.title in out
    assert "no configured watchlist is named 'minerals-by-model'" in out


def test_replay_reports_errors_in_the_candidate_with_position(seeded: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nchannels: [defualt]\nquery: |\n  chips NEAR/500 China\n")
    assert cli(config, state, "replay", str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: field 'channels.0': unknown channel 'defualt' (did you mean 'default'?)" in err
    cli(config, state, "replay", str(bad.with_name("missing.yaml")))
    assert "file not found" in capsys.readouterr().err
    bad.write_text("name: bad\nquery: |\n  chips NEAR/500 China\n")
    assert cli(config, state, "replay", str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:14: " in err and "\n      chips NEAR/500 China\n" + " " * 17 + "^\n" in err


def test_explain_shows_each_watchlist_clause_and_the_verdict(seeded: tuple[Path, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    story = _ids(state)[HUAWEI.title]
    capsys.readouterr()
    assert cli(config, state, "explain", str(story)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"story #{story}: {HUAWEI.title}"
    assert any(line.startswith("classifier: score ") and "subtopics:" in line for line in lines)
    assert any(line.startswith("  top terms: ") and "huawei" in line.lower() for line in lines)
    chips = lines.index(next(line for line in lines if line.startswith("chips-export-controls: MATCH (alerted ")))
    block = lines[chips:lines.index("", chips)]
    assert "  + keywords.any: chip" in block
    assert "          + @huawei    <- Huawei" in block
    assert any("NEAR/6" in line and line.endswith("<- curbs, chip") for line in block)
    assert any(line.startswith("cyber-espionage: no match") for line in lines)
    # one watchlist only, and an unknown story
    assert cli(config, state, "explain", str(story), "-w", "cyber-espionage") == 0
    only = capsys.readouterr().out
    assert "cyber-espionage: no match" in only and "chips-export-controls" not in only
    assert cli(config, state, "explain", "9999") == 1
    assert "no story #9999" in capsys.readouterr().err


def test_check_scores_classifier_examples_with_the_trained_model(seeded: tuple[Path, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config, state = seeded
    config_dir = tmp_path / "config"
    shutil.copytree(config.parent, config_dir)
    (config_dir / "watchlists" / "us-china-tech-security.yaml").unlink()  # the lead's; tested elsewhere
    capsys.readouterr()
    assert cli(config_dir / "monitor.yaml", state, "check") == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "skipped" not in out
    # without a model, the classifier watchlists' examples are skipped with a note, and the rest still run
    assert cli(config_dir / "monitor.yaml", tmp_path / "empty-state", "check") == 0
    out = capsys.readouterr().out
    assert "note: " in out and "tests of 'ai' skipped" in out
    # a failing example of a classifier watchlist: exit 1, file:line and the example
    path = config_dir / "watchlists" / "military-space.yaml"
    text = path.read_text().replace("  no_match:\n", "  no_match:\n    - \"PLA stages drills around Taiwan as US"
                                                     " sends warships\"\n", 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "sends warships" in row)
    assert cli(config_dir / "monitor.yaml", state, "check") == 1
    err = capsys.readouterr().err
    assert (f"{path}:{line}: watchlist 'military-space': expected to not match: 'PLA stages drills around Taiwan "
            f"as US sends warships'") in err
