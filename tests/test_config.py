"""Configuration validation: every problem reported at once, each with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config, parse_duration, parse_size
from monitor.errors import ConfigError


def _write(root: Path, settings: str, feeds: str = "feeds: []\n", watchlists: dict[str, str] | None = None) -> Path:
    (root / "watchlists").mkdir(parents=True, exist_ok=True)
    (root / "monitor.yaml").write_text(settings)
    (root / "feeds.yaml").write_text(feeds)
    for name, text in (watchlists or {"w.yaml": "name: w\nkeywords: {any: [chip]}\n"}).items():
        (root / "watchlists" / name).write_text(text)
    return root / "monitor.yaml"


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_all_errors_are_reported_with_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "channels:\n  default: [console://]\npoll:\n  intervl: 5m\n  jitter: lots\n",
                  feeds="feeds:\n  - url: https://a.example/feed\n  - name: no url here\n  - url: ftp://x/y\n",
                  watchlists={"chips.yaml": "name: chips\nchannels: [defualt]\n\nkeywrds:\n  any: [chip]\n"})
    problems = _problems(path)
    text = "\n".join(problems)
    assert f"{path}:4: unknown field 'intervl' in 'poll.intervl' (did you mean 'interval'?)" in text
    assert f"{path}:5: field 'poll.jitter'" in text
    feeds = tmp_path / "feeds.yaml"
    assert f"{feeds}:3: field 'feeds.1.url' is required" in text
    assert f"{feeds}:4: field 'feeds.2.url'" in text and "expected an http(s)://" in text
    chips = tmp_path / "watchlists" / "chips.yaml"
    assert f"{chips}:4: unknown field 'keywrds'" in text and "did you mean 'keywords'?" in text
    assert f"{chips}:2: field 'channels.0': unknown channel 'defualt' (did you mean 'default'?)" in text
    assert len(problems) == 6


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "channels:\n  default: [console://\nlog_level: INFO\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_default_channel_is_required_and_env_vars_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "channels:\n  team: [console://]\n")
    assert any("'default' is required" in p for p in _problems(path))
    monkeypatch.setenv("HOOK_PORT", "8123")
    path = _write(tmp_path, "channels:\n  default:\n    - json://127.0.0.1:${HOOK_PORT}/x\n    - json://h/${MISSING_VAR}\n")
    (problem,) = _problems(path)
    assert f"{path}:4:" in problem and "MISSING_VAR is not set" in problem
    path = _write(tmp_path, "channels:\n  default: ['json://127.0.0.1:${HOOK_PORT}/x']\n")
    assert load_config(path).channels["default"] == ["json://127.0.0.1:8123/x"]


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "local.xml").write_text("<rss/>")
    path = _write(tmp_path, "channels: {default: [console://]}\nalerts: {max_age: null}\n",
                  feeds="feeds:\n  - url: local.xml\n  - {url: 'https://a.example/rss', interval: 15m, tags: [x]}\n")
    config = load_config(path)
    assert config.settings.alerts.max_age is None
    assert config.settings.poll.interval == 600
    assert config.feeds[0].url == (tmp_path / "local.xml").resolve().as_uri()
    assert config.feeds[1].interval_s == 900 and config.feeds[1].name == "a.example"
    assert [w.name for w in config.watchlists] == ["w"]


def test_durations_and_sizes() -> None:
    assert parse_duration("48h") == 172800 and parse_duration("90s") == 90 and parse_duration(30) == 30
    assert parse_size("10MB") == 10_000_000 and parse_size("512KiB") == 524288
    with pytest.raises(ValueError):
        parse_duration("soon")
