"""`monitor feeds add/remove/import/export` edit feeds.yaml as text, validated; OPML round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli

from monitor.config import load_config
from monitor.opml import OpmlFeed, parse_opml, to_opml

OPML = """<?xml version="1.0"?>
<opml version="1.0"><head><title>subs</title></head><body>
  <outline text="Government">
    <outline text="CISA" title="CISA Advisories" type="rss" xmlUrl="https://www.cisa.gov/advisories.xml"/>
    <outline text="BIS" type="rss" xmlUrl="https://www.bis.gov/rss" category="export,chips"/>
  </outline>
  <outline text="Ars" type="rss" xmlUrl="https://feeds.arstechnica.com/arstechnica/index"/>
  <outline text="dup" type="rss" xmlUrl="https://www.bis.gov/rss"/>
</body></opml>
"""


def _feeds(config_dir: Path) -> list:
    return list(load_config(config_dir / "monitor.yaml").feeds)


def test_add_appends_and_keeps_comments(config_dir: Path, tmp_path: Path, capsys) -> None:
    path = config_dir / "feeds.yaml"
    before = path.read_text()
    count = len(_feeds(config_dir))
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "add", "https://example.org/feed.xml",
               "--name", "Example: News", "--tags", "world, test", "--interval", "15m") == 0
    after = path.read_text()
    assert after.startswith(before.rstrip("\n"))  # nothing before the new item changed, comments included
    feeds = _feeds(config_dir)
    assert len(feeds) == count + 1
    new = feeds[-1]
    assert (new.url, new.name, new.tags, new.interval_s) == ("https://example.org/feed.xml", "Example: News",
                                                            ("world", "test"), 900.0)
    # adding it again is refused, and the file is unchanged
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "add", "https://example.org/feed.xml") == 1
    assert path.read_text() == after


def test_invalid_add_leaves_the_file_alone(config_dir: Path, tmp_path: Path, capsys) -> None:
    path = config_dir / "feeds.yaml"
    before = path.read_text()
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "add", "ftp://example.org/feed") == 1
    assert "expected an http(s):// URL" in capsys.readouterr().err
    assert path.read_text() == before
    assert not list(config_dir.glob(".feeds.yaml.*"))


def test_remove_by_name_or_url(config_dir: Path, tmp_path: Path) -> None:
    path = config_dir / "feeds.yaml"
    feeds = _feeds(config_dir)
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "remove", feeds[1].name) == 0
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "remove", feeds[2].url) == 0
    left = _feeds(config_dir)
    assert [f.url for f in left] == [f.url for f in feeds if f not in (feeds[1], feeds[2])]
    assert "# World news" in path.read_text()
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "remove", "no such feed") == 1


def test_block_style_file_can_be_edited_down_to_empty(config_dir: Path, tmp_path: Path) -> None:
    (config_dir / "feeds.yaml").write_text("# mine\nfeeds:\n  - url: https://a.example/rss\n    name: A\n"
                                           "  - url: https://b.example/rss  # keep?\n    tags: [x]\n# the end\n")
    config, state = config_dir / "monitor.yaml", tmp_path / "state"
    assert cli(config, state, "feeds", "add", "https://c.example/rss", "--name", "C") == 0
    assert [f.name for f in _feeds(config_dir)] == ["A", "b.example", "C"]
    assert cli(config, state, "feeds", "remove", "A") == 0
    assert cli(config, state, "feeds", "remove", "https://b.example/rss") == 0
    assert cli(config, state, "feeds", "remove", "C") == 0
    assert _feeds(config_dir) == []
    text = (config_dir / "feeds.yaml").read_text()
    assert text.startswith("# mine\n") and "# the end" in text


def test_import_opml_then_export_round_trips(config_dir: Path, tmp_path: Path, capsys) -> None:
    (config_dir / "feeds.yaml").write_text("feeds:\n  - {url: 'https://feeds.arstechnica.com/arstechnica/index'}\n")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML)
    config, state = config_dir / "monitor.yaml", tmp_path / "state"
    assert cli(config, state, "feeds", "import", str(opml), "--tags", "imported") == 0
    assert "imported 2 feeds" in capsys.readouterr().out
    feeds = {f.url: f for f in _feeds(config_dir)}
    assert feeds["https://www.cisa.gov/advisories.xml"].name == "CISA Advisories"
    assert feeds["https://www.cisa.gov/advisories.xml"].tags == ("Government", "imported")
    assert feeds["https://www.bis.gov/rss"].tags == ("Government", "export", "chips", "imported")
    out = tmp_path / "out.opml"
    assert cli(config, state, "feeds", "export", "-o", str(out)) == 0
    exported = parse_opml(out.read_bytes())
    assert {(f.url, f.tags) for f in exported} == {(f.url, f.tags) for f in _feeds(config_dir)}


def test_opml_round_trip_is_exact() -> None:
    feeds = [OpmlFeed("https://a.example/rss", "A & B <news>", ("x", "y")), OpmlFeed("https://b.example/atom")]
    back = parse_opml(to_opml(feeds))
    assert back == [OpmlFeed("https://a.example/rss", "A & B <news>", ("x", "y")),
                    OpmlFeed("https://b.example/atom", "https://b.example/atom")]


def test_opml_with_entities_or_garbage_is_refused(config_dir: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body/></opml>')
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "import", str(bad)) == 1
    assert "entities" in capsys.readouterr().err
    bad.write_text("not xml at all <")
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "import", str(bad)) == 1


def test_feeds_listing_still_works(config_dir: Path, tmp_path: Path, capsys) -> None:
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds") == 0
    assert "no feeds polled yet" in capsys.readouterr().out
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "feeds", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("flag", [[], ["--vacuum"]])
def test_prune_reports_sizes(config_dir: Path, tmp_path: Path, capsys, flag: list[str]) -> None:
    assert cli(config_dir / "monitor.yaml", tmp_path / "state", "prune", "--days", "30", *flag) == 0
    out = capsys.readouterr().out
    assert "pruned the text of 0 entries" in out and "database file" in out
