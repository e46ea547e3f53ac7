"""Follow-up updates (stories.follow_up): one "Update: ... now reported by N outlets" per step of growth.

End to end through the CLI: local feeds (pytest-httpserver) and a local JSON receiver (apprise json://).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedgen import Item, rss
from helpers import run_once, write_config
from localparts import Receiver
from pytest_httpserver import HTTPServer

from monitor.store import Store

WIRE = ("The Commerce Department added 140 Chinese chip toolmakers and designers to the Entity List on Monday "
        "and tightened curbs on high-bandwidth memory exports.")
COPIES = [
    ("Reuters", Item("US adds 140 Chinese chip firms to Entity List - Reuters",
                     "https://reuters.example/us-entity-list-140", WIRE)),
    ("AP", Item("Biden administration blacklists 140 Chinese chip companies",
                "https://apnews.example/china-chips-entity-list-140", WIRE)),
    ("SCMP", Item("US adds 140 Chinese chip firms to trade blacklist | South China Morning Post",
                  "https://scmp.example/us-adds-140-chinese-chip-firms", WIRE)),
    ("Asia Wire", Item("U.S. puts 140 Chinese chipmaking firms on Entity List in new curbs",
                       "https://asiawire.example/us-entity-list-chip", WIRE)),
    ("Tech Daily", Item("EXCLUSIVE: US Commerce adds 140 Chinese chip firms to Entity List",
                        "https://techdaily.example/entity-list-140", WIRE)),
]


def _serve(httpserver: HTTPServer) -> list[dict[str, Any]]:
    feeds = []
    for index, (outlet, item) in enumerate(COPIES):
        httpserver.expect_request(f"/feed{index}.xml").respond_with_data(rss(outlet, [item]),
                                                                         content_type="application/rss+xml")
        feeds.append({"url": httpserver.url_for(f"/feed{index}.xml"), "name": outlet})
    return feeds


def _run(config_dir: Path, state: Path, receiver: Receiver, feeds: list[dict[str, Any]],
         follow_up: dict[str, Any]) -> None:
    config = write_config(config_dir, [receiver.url()], feeds, stories={"follow_up": follow_up})
    assert run_once(config, state) == 0


def test_one_update_per_step_of_growth(tmp_path: Path, config_dir: Path, httpserver: HTTPServer,
                                       receiver: Receiver) -> None:
    feeds, state, on = _serve(httpserver), tmp_path / "state", {"enabled": True, "every": 2}
    _run(config_dir, state, receiver, feeds[:1], on)
    assert len(receiver.received) == 1 and not receiver.titles()[0].startswith("Update:")

    _run(config_dir, state, receiver, feeds[:2], on)  # 2 outlets: less than a step
    assert len(receiver.received) == 1
    _run(config_dir, state, receiver, feeds[:3], on)  # 3 outlets: 2 more than at the alert
    assert len(receiver.received) == 2
    update = receiver.received[1]
    assert update["title"].startswith("Update: US adds 140 Chinese chip firms")
    assert update["title"].endswith("now reported by 3 outlets")
    assert "Reuters, AP, SCMP" in update["message"]

    _run(config_dir, state, receiver, feeds[:4], on)  # 4 outlets: still step 1
    _run(config_dir, state, receiver, feeds, on)  # 5 outlets: step 2
    assert [t.rsplit(" ", 2)[-2] for t in receiver.titles()[1:]] == ["3", "5"]
    _run(config_dir, state, receiver, feeds, on)  # nothing new: nothing sent again
    assert len(receiver.received) == 3

    store = Store.open(state)
    assert [(f.step, f.outlets, f.state) for f in store.follow_ups()] == [(1, 3, "sent"), (2, 5, "sent")]
    store.close()


def test_off_by_default(tmp_path: Path, config_dir: Path, httpserver: HTTPServer, receiver: Receiver) -> None:
    feeds, state = _serve(httpserver), tmp_path / "state"
    _run(config_dir, state, receiver, feeds[:1], {})
    _run(config_dir, state, receiver, feeds, {})
    assert len(receiver.received) == 1


def test_a_story_that_grew_at_once_gets_one_update(tmp_path: Path, config_dir: Path, httpserver: HTTPServer,
                                                   receiver: Receiver) -> None:
    feeds, state, on = _serve(httpserver), tmp_path / "state", {"enabled": True, "every": 1}
    _run(config_dir, state, receiver, feeds[:1], on)
    _run(config_dir, state, receiver, feeds, on)  # four more outlets in one cycle
    assert [t for t in receiver.titles() if t.startswith("Update:")] == [
        "Update: US adds 140 Chinese chip firms to Entity List - Reuters \u2014 now reported by 5 outlets"]
