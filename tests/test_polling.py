"""Polling against a local server that records requests, with an injected clock (no sleeps)."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import brotli
import pytest
from helpers import cli
from polling_helpers import RSS, T0, FakeClock, FeedServer, due_of, feed_body, feed_row, make_app

from monitor.app import App
from monitor.parse import PARSER_NICENESS


@pytest.fixture
def server() -> Iterator[FeedServer]:
    s = FeedServer()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _app(config_dir: Path, tmp_path: Path, server: FeedServer, clock: FakeClock, paths: list[str],
         **settings: object) -> App:
    feeds = [{"url": server.url(p), "name": p.strip("/")} for p in paths]
    return make_app(config_dir, tmp_path / "state", feeds, clock, **settings)  # type: ignore[arg-type]


def test_due_times_follow_the_adaptive_interval_within_bounds(config_dir: Path, tmp_path: Path,
                                                              server: FeedServer, clock: FakeClock) -> None:
    server.routes["/hourly"] = (200, RSS, feed_body("Hourly", 20, every_h=1.0))
    server.routes["/daily"] = (200, RSS, feed_body("Daily", 5, every_h=24.0, prefix="d"))
    server.routes["/busy"] = (200, RSS, feed_body("Busy", 50, every_h=0.01, prefix="b"))
    app = _app(config_dir, tmp_path, server, clock, ["/hourly", "/daily", "/busy"],
               poll={"min_interval": "5m", "max_interval": "4h", "jitter": 0.0})
    app.pipeline.run_cycle()
    assert due_of(app, "hourly") == T0 + timedelta(minutes=30)  # 1 entry/h, 2 polls per entry
    assert due_of(app, "daily") == T0 + timedelta(hours=4)  # would be 12h: capped at max_interval
    assert due_of(app, "busy") == T0 + timedelta(minutes=5)  # would be 18s: raised to min_interval
    # a cycle before anything is due polls nothing
    clock.advance(60)
    before = len(server.requests)
    assert app.pipeline.run_cycle().feeds_polled == 0 and len(server.requests) == before
    # the estimate moves with what is observed: the busy feed goes quiet, its interval grows
    for _ in range(8):
        clock.to(due_of(app, "busy"))
        app.pipeline.run_cycle()
    rows = app.store.poll_rows()
    busy = feed_row(app, "busy").state.id
    assert 5 * 60 < rows[busy]["interval_eff_s"] <= 4 * 3600
    app.close()


def test_jitter_keeps_due_times_within_the_fraction(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                    clock: FakeClock) -> None:
    paths = [f"/j{i}" for i in range(6)]
    for p in paths:
        server.routes[p] = (200, RSS, feed_body(p, 1, prefix=p.strip("/")))
    app = _app(config_dir, tmp_path, server, clock, paths, poll={"jitter": 0.2, "interval": "10m"})
    app.pipeline.run_cycle()
    dues = [due_of(app, p.strip("/")) for p in paths]
    assert all(T0 + timedelta(minutes=8) <= d <= T0 + timedelta(minutes=12) for d in dues)
    assert len(set(dues)) > 1  # spread, not in lockstep
    app.close()


def test_backoff_grows_then_resets_after_success(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                 clock: FakeClock) -> None:
    server.routes["/flaky"] = (500, {}, b"oops")
    app = _app(config_dir, tmp_path, server, clock, ["/flaky"],
               poll={"interval": "10m", "adaptive": False, "backoff_max": "1h"})
    delays = []
    for _ in range(5):
        clock.to(due_of(app, "flaky"))
        start = clock.now
        app.pipeline.run_cycle()
        delays.append((due_of(app, "flaky") - start).total_seconds())
    assert delays == [600, 1200, 2400, 3600, 3600]
    assert feed_row(app, "flaky").state.error_count == 5
    server.routes["/flaky"] = (200, RSS, feed_body("Flaky", 3))
    clock.to(due_of(app, "flaky"))
    start = clock.now
    app.pipeline.run_cycle()
    assert feed_row(app, "flaky").state.error_count == 0
    assert (due_of(app, "flaky") - start).total_seconds() == 600
    assert len(server.requests) == 6  # never polled before it was due
    app.close()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(config_dir: Path, tmp_path: Path, server: FeedServer, clock: FakeClock,
                                 status: int) -> None:
    server.routes["/busy"] = (status, {"Retry-After": "7200"}, b"slow down")
    date = format_datetime(T0 + timedelta(hours=3), usegmt=True)
    server.routes["/dated"] = (status, {"Retry-After": date}, b"slow down")
    app = _app(config_dir, tmp_path, server, clock, ["/busy", "/dated"], poll={"interval": "10m"})
    app.pipeline.run_cycle()
    assert due_of(app, "busy") >= T0 + timedelta(hours=2)
    assert due_of(app, "dated") >= T0 + timedelta(hours=3)  # an HTTP date, read against our clock
    clock.advance(3600)
    app.pipeline.run_cycle()
    assert server.paths().count("/busy") == 1
    assert f"HTTP {status}" in (feed_row(app, "busy").state.last_error or "")
    app.close()


def test_permanent_redirect_updates_the_stored_url(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                   clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/old"] = (301, {"Location": server.url("/new")}, b"")
    server.routes["/new"] = (200, RSS, feed_body("Moved", 3))
    app = _app(config_dir, tmp_path, server, clock, ["/old"], poll={"interval": "10m"})
    app.pipeline.run_cycle()
    row = feed_row(app, "old")
    assert row.state.url == server.url("/new")
    clock.advance(3600)
    app.pipeline.run_cycle()  # sync_feeds still sees /old in feeds.yaml: it must not re-add it
    assert server.paths() == ["/old", "/new", "/new"]
    rows = app.store.feed_rows()
    assert len(rows) == 1 and rows[0].in_config and rows[0].state.error_count == 0
    app.close()


def test_gone_disables_the_feed_and_says_so(config_dir: Path, tmp_path: Path, server: FeedServer,
                                            clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/gone"] = (410, {}, b"gone")
    app = _app(config_dir, tmp_path, server, clock, ["/gone"])
    app.pipeline.run_cycle()
    clock.advance(86400)
    app.pipeline.run_cycle()
    assert server.paths() == ["/gone"]
    config, state = app.config.path, app.state_dir
    app.close()
    capsys.readouterr()
    assert cli(config, state, "feeds", "--json") == 0
    [feed] = json.loads(capsys.readouterr().out)
    assert feed["status"] == "disabled" and "410" in feed["disabled_reason"]


def test_server_ignoring_conditional_headers_costs_no_parse(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                            clock: FakeClock) -> None:
    server.routes["/same"] = (200, RSS, feed_body("Same", 10))  # no ETag, no Last-Modified, same bytes
    app = _app(config_dir, tmp_path, server, clock, ["/same"])
    first = app.pipeline.run_cycle()
    assert first.entries_new == 10
    clock.advance(86400)
    second = app.pipeline.run_cycle()
    assert second.feeds_not_modified == 1 and second.entries_new == 0 and second.entries_known == 0
    assert feed_row(app, "same").last_status == "200 unchanged body"
    app.close()


def test_seen_entries_are_skipped_before_normalization(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                       clock: FakeClock) -> None:
    server.routes["/f"] = (200, RSS, feed_body("F", 20))
    app = _app(config_dir, tmp_path, server, clock, ["/f"])
    app.pipeline.run_cycle()
    server.routes["/f"] = (200, RSS, feed_body("F", 21, start=T0 + timedelta(hours=1)))
    clock.advance(86400)
    stats = app.pipeline.run_cycle()
    # the new body renumbers nothing: item i is the same URL; 20 of 21 are already stored
    assert stats.entries_new + stats.entries_known == 21
    assert stats.entries_known >= 19
    app.close()


def test_gzip_and_brotli_bodies_are_decoded(config_dir: Path, tmp_path: Path, server: FeedServer,
                                            clock: FakeClock) -> None:
    body = feed_body("Zip", 4)
    server.routes["/gz"] = (200, {**RSS, "Content-Encoding": "gzip"}, gzip.compress(body))
    server.routes["/br"] = (200, {**RSS, "Content-Encoding": "br"}, brotli.compress(feed_body("Br", 4, prefix="br")))
    app = _app(config_dir, tmp_path, server, clock, ["/gz", "/br"])
    stats = app.pipeline.run_cycle()
    assert stats.feeds_ok == 2 and stats.entries_new == 8
    assert all("br" in headers.get("Accept-Encoding", "") for _, headers in server.requests)
    app.close()


def test_per_host_and_global_limits_are_never_exceeded(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                       clock: FakeClock) -> None:
    paths = [f"/h{i}" for i in range(10)]
    for p in paths:
        server.routes[p] = (200, RSS, feed_body(p, 2, prefix=p.strip("/")))
    server.hold_s = 0.05
    app = _app(config_dir, tmp_path, server, clock, paths, poll={"concurrency": 8, "per_host": 2, "parse_workers": 0})
    stats = app.pipeline.run_cycle()
    assert stats.feeds_ok == 10
    assert 1 <= server.max_in_flight <= 2
    app.close()


def test_parsing_in_a_process_pool_gives_the_same_entries(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                          clock: FakeClock) -> None:
    paths = [f"/p{i}" for i in range(10)]
    for p in paths:
        server.routes[p] = (200, RSS, feed_body(p, 5, prefix=p.strip("/")))
    app = _app(config_dir, tmp_path, server, clock, paths, poll={"parse_workers": 2})
    stats = app.pipeline.run_cycle()
    assert app.pipeline._pool is not None  # the pool was used (10 feeds >= POOL_MIN_FEEDS)
    assert stats.feeds_ok == 10 and stats.entries_new == 50
    # the parsers run at a lower priority than the daemon (its storing thread is the cycle's serial step)
    parsers = list(app.pipeline._pool._processes)  # type: ignore[attr-defined]
    assert parsers
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + PARSER_NICENESS, 19)
    deadline = time.monotonic() + 10  # a parser that got no job may still be running its initializer
    while any(os.getpriority(os.PRIO_PROCESS, pid) != expected for pid in parsers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in parsers] == [expected] * len(parsers)
    app.pipeline.close()
    app.close()


def test_long_failing_feed_is_flagged_and_alerted_once(config_dir: Path, tmp_path: Path, server: FeedServer,
                                                       clock: FakeClock, receiver,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/down"] = (500, {}, b"oops")
    feeds = [{"url": server.url("/down"), "name": "Down"}]
    app = make_app(config_dir, tmp_path / "state", feeds, clock, channels=[receiver.url()],
                   poll={"failing_after": 3, "failing_channel": "default", "backoff_max": "1h"})
    for _ in range(5):
        clock.to(due_of(app, "Down"))
        app.pipeline.run_cycle()
    assert [t for t in receiver.titles() if "failing" in t] == ["monitor: feed 'Down' is failing"]
    config, state = app.config.path, app.state_dir
    app.close()
    capsys.readouterr()
    assert cli(config, state, "feeds", "--json") == 0
    [feed] = json.loads(capsys.readouterr().out)
    assert feed["status"] == "failing" and feed["flagged"] and feed["error_count"] == 5
    assert cli(config, state, "status") == 0
    out = capsys.readouterr().out
    assert "FAILING since" in out and "Down" in out and "1 flagged" in out
