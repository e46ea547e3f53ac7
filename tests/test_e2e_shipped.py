"""The acceptance run as an outside harness does it: the shipped config/, a subprocess, real local parts.

The shipped main watchlist uses the relevance model, so the first `run --once` trains it (auto_train)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from feedgen import Item, rss
from pytest_httpserver import HTTPServer

pytestmark = pytest.mark.slow

RELEVANT = [
    Item("US adds 140 Chinese chip companies to Entity List in sweeping export crackdown",
         "https://wire.example/entity-list-140",
         "The Commerce Department blacklisted Chinese chipmaking tool makers and tightened curbs on AI chips and "
         "high-bandwidth memory, citing national security."),
    Item("FBI and CISA warn Chinese state hackers Volt Typhoon are hiding in US critical infrastructure",
         "https://cyber.example/volt-typhoon-advisory",
         "The agencies said the Beijing-backed group pre-positioned itself in water and energy networks."),
]
IRRELEVANT = [
    Item("Storm brings heavy snow to the Alps", "https://wire.example/alps-snow", "Ski resorts welcomed the early snow."),
    Item("Premier League: late goal settles the derby", "https://sport.example/derby", ""),
]


def _monitor(config: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(config), "--state", str(state), *args],
                          capture_output=True, text=True, timeout=600, env=env)


def test_shipped_config_run_once_alerts_each_relevant_story_once(tmp_path: Path, config_dir: Path,
                                                                 httpserver: HTTPServer, receiver, smtp) -> None:
    httpserver.expect_request("/world.xml").respond_with_data(rss("World", [RELEVANT[0], *IRRELEVANT]),
                                                              content_type="application/rss+xml")
    httpserver.expect_request("/cyber.xml").respond_with_data(rss("Cyber", [RELEVANT[1]]),
                                                              content_type="application/rss+xml")
    (config_dir / "feeds.yaml").write_text(yaml.safe_dump({"feeds": [
        {"url": httpserver.url_for("/world.xml"), "name": "World"},
        {"url": httpserver.url_for("/cyber.xml"), "name": "Cyber"}]}))
    settings_path = config_dir / "monitor.yaml"
    settings = yaml.safe_load(settings_path.read_text())
    settings["channels"]["default"] = [receiver.url(), smtp.url()]
    settings_path.write_text(yaml.safe_dump(settings))
    state = tmp_path / "state"

    first = _monitor(settings_path, state, "run", "--once")
    assert first.returncode == 0, first.stderr
    titles = sorted(receiver.titles())
    assert titles == sorted(item.title for item in RELEVANT), first.stderr[-3000:]
    for message in receiver.received:
        link = next(item.link for item in RELEVANT if item.title == message["title"])
        assert link in message["message"].splitlines()
    assert sorted(smtp.subjects()) == sorted(item.title for item in RELEVANT)

    second = _monitor(settings_path, state, "run", "--once")
    assert second.returncode == 0, second.stderr
    assert len(receiver.received) == 2 and len(smtp.subjects()) == 2
