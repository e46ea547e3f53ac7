"""One story, one alert: syndicated copies from five outlets merge; distinct same-topic stories stay apart."""

from __future__ import annotations

import json
from pathlib import Path

from feedgen import Item, rss
from helpers import cli, run_once, write_config
from pytest_httpserver import HTTPServer

COPIES = [
    ("Reuters", Item("US adds 140 Chinese chip firms to Entity List - Reuters",
                     "https://reuters.example/technology/us-entity-list-140-chip-firms-2024-12-02/?utm_source=rss",
                     "The Commerce Department added 140 Chinese chip toolmakers and designers to the Entity List on "
                     "Monday and tightened curbs on high-bandwidth memory exports.")),
    ("AP", Item("Biden administration blacklists 140 Chinese chip companies",
                "https://apnews.example/article/china-chips-entity-list-140",
                "The Commerce Department on Monday added 140 Chinese chip toolmakers and designers to the Entity List "
                "and tightened curbs on exports of high-bandwidth memory.")),
    ("SCMP", Item("US adds 140 Chinese chip firms to trade blacklist | South China Morning Post",
                  "https://scmp.example/tech/article/3289000/us-adds-140-chinese-chip-firms",
                  "Washington added 140 Chinese chip toolmakers and designers to the Entity List, tightening "
                  "curbs on high-bandwidth memory exports.")),
    ("Tech Daily", Item("EXCLUSIVE: US Commerce adds 140 Chinese chip firms to Entity List",
                        "https://techdaily.example/2024/12/02/entity-list-140",
                        "")),
    ("Asia Wire", Item("U.S. puts 140 Chinese chipmaking firms on Entity List in new curbs",
                       "https://asiawire.example/news/20241202/us-entity-list-chip",
                       "The Commerce Department added 140 Chinese chip toolmakers and designers to the Entity List "
                       "and tightened high-bandwidth memory curbs.")),
]
OTHER_SAME_TOPIC = Item("US adds 80 Chinese firms including Inspur units to Entity List",
                        "https://reuters.example/technology/entity-list-80-firms-inspur",
                        "The Commerce Department blacklisted 80 companies, among them subsidiaries of server maker "
                        "Inspur, citing support for China's military supercomputing.")


def test_five_copies_make_one_story_and_one_alert(tmp_path: Path, config_dir: Path, httpserver: HTTPServer,
                                                 receiver, capsys) -> None:
    feeds = []
    for index, (outlet, item) in enumerate(COPIES):
        items = [item, OTHER_SAME_TOPIC] if index == 0 else [item]
        httpserver.expect_request(f"/feed{index}.xml").respond_with_data(rss(outlet, items),
                                                                         content_type="application/rss+xml")
        feeds.append({"url": httpserver.url_for(f"/feed{index}.xml"), "name": outlet})
    config = write_config(config_dir, [receiver.url()], feeds)
    state = tmp_path / "state"
    assert run_once(config, state) == 0

    assert len(receiver.received) == 2, receiver.titles()
    copy_alerts = [r for r in receiver.received if "140" in r["title"]]
    assert len(copy_alerts) == 1
    assert "also reported by 4" in copy_alerts[0]["message"]
    assert any("80 Chinese firms" in t for t in receiver.titles())

    capsys.readouterr()
    assert cli(config, state, "stories", "--json") == 0
    stories = json.loads(capsys.readouterr().out)
    merged = [s for s in stories if "140" in s["title"]]
    assert len(merged) == 1
    assert sorted(merged[0]["sources"]) == sorted(outlet for outlet, _ in COPIES)
    assert len(merged[0]["members"]) == 5
    capsys.readouterr()
    assert cli(config, state, "stories") == 0
    assert "also reported by 4 outlets" in capsys.readouterr().out


def test_entries_sharing_a_link_join_the_first_one_across_feeds_and_within_a_batch(
        tmp_path: Path, config_dir: Path, httpserver: HTTPServer, receiver, capsys) -> None:
    """The same article (same link up to tracking parameters) under unrelated headlines is one story: from
    another feed, and twice in one feed's batch under two GUIDs."""
    first = Item("Huawei unveils Ascend chip", "https://wire.example/a/1?utm_source=rss")
    relabelled = Item("Weekend reading: our picks", "https://wire.example/a/1")
    twice = [Item("Dutch lithography exports paused", "https://wire.example/b/2", guid="g-1"),
             Item("Morning briefing", "https://wire.example/b/2#top", guid="g-2")]
    httpserver.expect_request("/a.xml").respond_with_data(rss("Wire", [first]), content_type="application/rss+xml")
    httpserver.expect_request("/b.xml").respond_with_data(rss("Aggregator", [relabelled, *twice]),
                                                          content_type="application/rss+xml")
    feeds = [{"url": httpserver.url_for("/a.xml"), "name": "Wire"},
             {"url": httpserver.url_for("/b.xml"), "name": "Aggregator"}]
    config = write_config(config_dir, [receiver.url()], feeds, poll={"concurrency": 1})
    state = tmp_path / "state"
    assert run_once(config, state) == 0

    capsys.readouterr()
    assert cli(config, state, "stories", "--json") == 0
    stories = {s["title"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(stories) == {"Huawei unveils Ascend chip", "Dutch lithography exports paused"}
    assert sorted(stories["Huawei unveils Ascend chip"]["sources"]) == ["Aggregator", "Wire"]
    assert len(stories["Dutch lithography exports paused"]["members"]) == 2
