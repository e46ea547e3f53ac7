"""End to end through the CLI with real local parts: HTTP feed server, JSON receiver, SMTP server."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

from feedgen import Item, rss
from helpers import cli, run_once, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

CHIPS = Item("US adds Chinese chip toolmakers to the Entity List", "https://news.example/chips-entity-list",
             "Commerce blacklisted dozens of Chinese firms over military ties.")
HACK = Item("Chinese hackers breached US telecom firms, FBI says", "https://news.example/salt-typhoon",
            "Investigators tied the intrusions to a Beijing-backed group.")
WEATHER = Item("Storm brings snow to the Alps", "https://news.example/alps-snow", "Ski resorts welcome it.")


def test_run_once_alerts_each_matching_story_once_by_chat_and_email(tmp_path: Path, config_dir: Path,
                                                                     httpserver: HTTPServer, receiver, smtp) -> None:
    httpserver.expect_request("/world.xml").respond_with_data(rss("World", [CHIPS, WEATHER]),
                                                              content_type="application/rss+xml")
    httpserver.expect_request("/cyber.xml").respond_with_data(rss("Cyber", [HACK]), content_type="application/rss+xml")
    config = write_config(config_dir, [receiver.url(), smtp.url()],
                          [{"url": httpserver.url_for("/world.xml"), "name": "World"},
                           {"url": httpserver.url_for("/cyber.xml"), "name": "Cyber"}])
    state = tmp_path / "state"

    assert run_once(config, state) == 0
    assert sorted(receiver.titles()) == sorted([CHIPS.title, HACK.title])
    bodies = {r["title"]: r["message"] for r in receiver.received}
    assert CHIPS.link in bodies[CHIPS.title].splitlines()
    assert HACK.link in bodies[HACK.title].splitlines()
    assert sorted(smtp.subjects()) == sorted([CHIPS.title, HACK.title])

    # a second cycle sends nothing
    assert run_once(config, state) == 0
    assert len(receiver.received) == 2 and len(smtp.subjects()) == 2

    # a new matching entry gives exactly one new alert
    fresh = Item("Huawei unveils chip made despite US export curbs", "https://news.example/huawei-chip",
                 "The phone's processor shows China's progress.")
    httpserver.clear()
    httpserver.expect_request("/world.xml").respond_with_data(rss("World", [fresh, CHIPS, WEATHER]),
                                                              content_type="application/rss+xml")
    httpserver.expect_request("/cyber.xml").respond_with_data(rss("Cyber", [HACK]), content_type="application/rss+xml")
    assert run_once(config, state) == 0
    assert [r["title"] for r in receiver.received[2:]] == [fresh.title]
    assert fresh.link in receiver.received[2]["message"]
    assert len(smtp.subjects()) == 3


def test_receiver_down_keeps_alerts_pending_then_delivers_each_once(tmp_path: Path, config_dir: Path,
                                                                   httpserver: HTTPServer, receiver, capsys) -> None:
    httpserver.expect_request("/f.xml").respond_with_data(rss("F", [CHIPS, HACK]), content_type="application/rss+xml")
    config = write_config(config_dir, [receiver.url()], [{"url": httpserver.url_for("/f.xml"), "name": "F"}])
    state = tmp_path / "state"
    receiver.status = 503
    assert run_once(config, state) == 0
    assert receiver.received == [] and receiver.refused == 2
    capsys.readouterr()
    assert cli(config, state, "alerts", "--pending", "--json") == 0
    pending = json.loads(capsys.readouterr().out)
    assert sorted(a["title"] for a in pending) == sorted([CHIPS.title, HACK.title])
    assert all(a["state"] == "pending" and a["last_error"] for a in pending)

    receiver.status = 200
    assert run_once(config, state) == 0
    assert sorted(receiver.titles()) == sorted([CHIPS.title, HACK.title])
    assert run_once(config, state) == 0
    assert len(receiver.received) == 2


def test_second_poll_is_conditional_and_304_is_handled(tmp_path: Path, config_dir: Path, httpserver: HTTPServer,
                                                       receiver) -> None:
    seen: list[dict[str, str]] = []
    body = rss("F", [CHIPS])

    def handler(request: Request) -> Response:
        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(body, headers={"ETag": '"v1"', "Last-Modified": "Mon, 02 Dec 2024 15:00:00 GMT"},
                        content_type="application/rss+xml")

    httpserver.expect_request("/f.xml").respond_with_handler(handler)
    config = write_config(config_dir, [receiver.url()], [{"url": httpserver.url_for("/f.xml"), "name": "F"}])
    state = tmp_path / "state"
    assert run_once(config, state) == 0
    assert run_once(config, state) == 0
    assert "If-None-Match" not in seen[0]
    assert seen[1]["If-None-Match"] == '"v1"'
    assert seen[1]["If-Modified-Since"] == "Mon, 02 Dec 2024 15:00:00 GMT"
    assert seen[0]["User-Agent"].startswith("monitor/")
    assert len(receiver.received) == 1


def test_old_entries_are_stored_but_not_alerted(tmp_path: Path, config_dir: Path, httpserver: HTTPServer,
                                                receiver, capsys) -> None:
    from datetime import datetime, timedelta

    old = Item("Chinese hackers stole chip designs, report says", "https://news.example/old",
               published=datetime.now(UTC) - timedelta(days=5))
    httpserver.expect_request("/f.xml").respond_with_data(rss("F", [old, CHIPS]), content_type="application/rss+xml")
    config = write_config(config_dir, [receiver.url()], [{"url": httpserver.url_for("/f.xml"), "name": "F"}])
    state = tmp_path / "state"
    assert run_once(config, state) == 0
    assert receiver.titles() == [CHIPS.title]
    capsys.readouterr()
    assert cli(config, state, "stories", "--json") == 0
    stories = json.loads(capsys.readouterr().out)
    assert {s["title"] for s in stories} == {old.title, CHIPS.title}


def test_check_reports_misspelt_key_with_file_and_line(config_dir: Path, capsys) -> None:
    watchlist = config_dir / "watchlists" / "chips-export-controls.yaml"
    text = watchlist.read_text().replace("keywords:", "keywrds:", 1)
    watchlist.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("keywrds:"))
    assert cli(config_dir / "monitor.yaml", config_dir.parent / "state", "check") == 1
    err = capsys.readouterr().err
    assert f"{watchlist}:{line}: unknown field 'keywrds'" in err
    assert "did you mean 'keywords'?" in err


def test_check_accepts_shipped_config(config_dir: Path, capsys) -> None:
    assert cli(config_dir / "monitor.yaml", config_dir.parent / "state", "check") == 0
    assert "OK" in capsys.readouterr().out


def test_invalid_config_makes_run_once_exit_nonzero(tmp_path: Path, config_dir: Path) -> None:
    (config_dir / "monitor.yaml").write_text("channels: {default: [console://]}\npoll: {interval: soon}\n")
    assert run_once(config_dir / "monitor.yaml", tmp_path / "state") == 1
