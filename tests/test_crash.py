"""Crash safety of the outbox: `kill -9` of a real `monitor run` in the middle of a burst of alerts, then a
restart (stopped once more with SIGTERM mid-burst, then again): no alert lost, none doubled outside the
documented window (the one message a service had accepted when the process died, before its mark was
committed). Plus a digest composed but not sent before a crash."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from delivery_support import Clock, FeedSite, local, open_rig, story, write_config
from pytest_httpserver import HTTPServer

BURST = 40
RESPONSE_DELAY_S = 0.12  # a slow chat service: the burst takes about 5 s to deliver


@dataclass
class SlowReceiver:
    """A JSON endpoint that logs each post on arrival, then takes its time to answer (like a busy service)."""

    server: ThreadingHTTPServer
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def titles(self) -> list[str]:
        with self.lock:
            return [item["title"] for item in self.log]


@pytest.fixture
def slow_receiver() -> Iterator[SlowReceiver]:
    holder: dict[str, SlowReceiver] = {}
    answer = threading.Event()  # never set: wait() is the service being slow, not a test synchronization

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver = holder["r"]
            with receiver.lock:
                receiver.log.append(json.loads(body))
            answer.wait(RESPONSE_DELAY_S)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = SlowReceiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield holder["r"]
    server.shutdown()
    server.server_close()


def _wait(predicate: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Poll with a deadline: a subprocess is involved, so there is no clock to inject."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _alerts(state: Path) -> dict[str, str]:
    """Title -> delivery state, read straight from the database file."""
    with sqlite3.connect(state / "monitor.db") as conn:
        rows = conn.execute("SELECT s.title, a.state FROM alerts a "
                            "JOIN stories s ON s.id = a.story_id").fetchall()
    return dict(rows)


def _start(config: Path, state: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("a") as log_file:
        command = [sys.executable, "-m", "monitor.cli", "--config", str(config), "--state", str(state), "run"]
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_kill_9_during_a_burst_then_restart_loses_nothing_and_doubles_at_most_the_inflight_alert(
        tmp_path: Path, httpserver: HTTPServer, slow_receiver: SlowReceiver) -> None:
    from datetime import datetime

    site = FeedSite(httpserver)
    site.items.extend(story(f"burst {i}", datetime.now(UTC)) for i in range(BURST))
    port = slow_receiver.server.server_address[1]
    config = write_config(tmp_path / "config", {"default": [f"json://127.0.0.1:{port}/hook"]}, site.url,
                          poll={"tick": "1s"})
    state, log_path = tmp_path / "state", tmp_path / "daemon.log"
    expected = {item.title for item in site.items}

    proc = _start(config, state, log_path)
    try:
        _wait(lambda: len(slow_receiver.titles()) >= 8, "the burst to be under way")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    received_before = Counter(slow_receiver.titles())
    after_kill = _alerts(state)
    assert set(after_kill) == expected, "every alert was committed to the outbox before sending began"
    assert 8 <= len(received_before) < BURST, "killed in the middle of the burst"
    # the documented window: accepted by the service, mark not committed when the process died
    window = {title for title in received_before if after_kill[title] != "sent"}
    assert len(window) <= 1, window
    assert all(count == 1 for count in received_before.values())

    # restart; this time stop it cleanly (SIGTERM) in the middle: the send in flight completes and is marked,
    # the rest stays pending, nothing is doubled
    proc = _start(config, state, log_path)
    try:
        _wait(lambda: len(slow_receiver.titles()) >= sum(received_before.values()) + 8, "the restart to send")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    after_term = _alerts(state)
    assert "pending" in after_term.values(), "SIGTERM stopped the burst between two sends"
    sent_now = Counter(slow_receiver.titles())
    assert {t for t, n in sent_now.items() if n > 1} <= window
    marked = {title for title, state in after_term.items() if state == "sent"}
    assert {title for title in sent_now if title not in window} == marked - window

    proc = _start(config, state, log_path)
    try:
        _wait(lambda: set(_alerts(state).values()) == {"sent"}, "the restart to deliver the rest")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    received = Counter(slow_receiver.titles())
    assert set(received) == expected, "no alert lost"
    doubled = {title for title, count in received.items() if count > 1}
    assert doubled <= window, f"doubled outside the documented window: {doubled - window}"
    assert all(count <= 2 for count in received.values())
    assert "Traceback" not in log_path.read_text()


def test_a_digest_composed_before_a_crash_is_sent_once_after_restart(tmp_path: Path, httpserver: HTTPServer,
                                                                     receiver) -> None:
    clock = Clock(local("2030-03-04 07:00"))
    site = FeedSite(httpserver)
    channels = {"default": {"urls": [receiver.url()], "mode": "digest", "digest": {"at": "08:00"}}}
    config = write_config(tmp_path / "config", channels, site.url)
    rig = open_rig(config, tmp_path / "state", clock, site)
    items = [story(f"digest {i}", clock.now) for i in range(3)]
    rig.ingest(*items)
    clock.now = local("2030-03-04 08:01")
    receiver.status = 503  # the digest is composed and committed, then its send fails ...
    rig.deliver()
    assert receiver.refused == 1
    rig.store.db.conn.close()  # ... and the process dies without another word
    receiver.status = 200

    late = story("late", clock.now)
    rig = open_rig(config, tmp_path / "state", clock, site)
    try:
        site.items.append(late)
        rig.pipeline.run_cycle(all_feeds=True)  # restart: the composed digest goes out as it was
        assert len(receiver.received) == 1
        message = receiver.received[0]["message"]
        assert all(item.link in message for item in items) and late.link not in message
        clock.now = local("2030-03-05 08:01")
        rig.deliver()
        assert len(receiver.received) == 2 and late.link in receiver.received[1]["message"]
        assert set(rig.alert_states().values()) == {"sent"}
    finally:
        rig.close()

