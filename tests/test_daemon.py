"""The daemon: hot reload of edited configuration files (in process), and as a real `monitor run`
subprocess under a fake systemd: sd_notify order, a watchlist edited while it runs, SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from feedgen import Item, rss
from helpers import write_config
from polling_helpers import RSS, FakeClock, FeedServer, make_app

from monitor.daemon import Daemon

WATCH = "name: test-watch\nchannels: [default]\nkeywords:\n  any: [{terms}]\n"


def _wait(predicate: Callable[[], object], what: str, deadline_s: float = 30.0) -> None:
    """Poll a condition with a deadline (a subprocess is involved: there is no clock to inject)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_edits_are_picked_up_and_broken_edits_keep_the_running_config(config_dir: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(config_dir, tmp_path / "state", [{"url": "https://a.example/rss", "name": "A"}], FakeClock())
    daemon = Daemon(app, app.config.path)
    assert daemon.check_reload() is False  # nothing changed
    feeds = config_dir / "feeds.yaml"
    feeds.write_text(feeds.read_text() + "- {url: 'https://b.example/rss', name: B}\n")
    assert daemon.check_reload() is True
    assert [f.name for f in app.pipeline.config.feeds] == ["A", "B"]

    watch = config_dir / "watchlists" / "test.yaml"
    watch.write_text("name: test-watch\nkeywrds: {any: [x]}\n")
    with caplog.at_level(logging.ERROR):
        assert daemon.check_reload() is False
    assert f"{watch}:2: unknown field 'keywrds'" in caplog.text
    assert [w.name for w in app.pipeline.watchlists] == ["test-watch"]
    assert app.pipeline.watchlists[0].config.spec.keywords is not None  # still the old, valid version
    caplog.clear()
    assert daemon.check_reload() is False and caplog.text == ""  # the same broken file is reported once

    daemon.request_reload()  # SIGHUP forces a re-read, broken or not
    with caplog.at_level(logging.ERROR):
        assert daemon.check_reload() is False
    assert "SIGHUP" in caplog.text
    watch.write_text(WATCH.format(terms="Huawei"))
    assert daemon.check_reload() is True
    app.close()


class NotifySocket:
    """A stand-in for systemd's notification socket: an AF_UNIX datagram socket whose messages a
    background thread collects (like systemd, it always reads, so the sender's queue never fills)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._closed.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def drain(self) -> list[str]:
        return list(self.messages)

    def index(self, key: str) -> int:
        return next(i for i, m in enumerate(self.drain()) if key in m.splitlines())

    def has(self, key: str) -> bool:
        return any(key in m.splitlines() for m in self.drain())


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


@pytest.mark.slow
def test_monitor_run_under_a_fake_systemd(config_dir: Path, tmp_path: Path, receiver,
                                          notify_socket: NotifySocket) -> None:
    server = FeedServer()
    items: list[Item] = [Item("Weather report: sunny", "https://news.example/weather", "Nice day.")]
    server.routes["/f.xml"] = lambda headers: (200, RSS, rss("F", items).encode())
    config = write_config(config_dir, [receiver.url()], [{"url": server.url("/f.xml"), "name": "F"}],
                          poll={"tick": 0.2, "interval": 1, "min_interval": 1, "jitter": 0},
                          alerts={"max_age": None})
    watch = config_dir / "watchlists" / "test.yaml"
    watch.write_text(WATCH.format(terms="Huawei"))
    log_path = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000",
           "PYTHONFAULTHANDLER": "1"}
    env.pop("WATCHDOG_PID", None)
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--config", str(config), "--state",
                                 str(tmp_path / "state"), "run"], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        def logged(text: str) -> Callable[[], bool]:
            return lambda: text in log_path.read_text()

        _wait(lambda: notify_socket.has("READY=1"), "READY=1")
        _wait(lambda: notify_socket.has("WATCHDOG=1"), "WATCHDOG=1")
        _wait(lambda: any(m.startswith("STATUS=last cycle") for m in notify_socket.drain()), "a STATUS line")
        assert notify_socket.index("READY=1") < notify_socket.index("WATCHDOG=1")

        # a valid watchlist edit is picked up without a restart
        watch.write_text(WATCH.format(terms="Huawei, TikTok"))
        _wait(logged("configuration reloaded (configuration files changed)"), "the reload")
        items.insert(0, Item("TikTok ban vote set for Friday", "https://news.example/tiktok", "Congress votes."))
        _wait(lambda: "TikTok ban vote set for Friday" in receiver.titles(), "the TikTok alert")

        # an invalid edit is rejected with the file named, and the running version stays active
        watch.write_text("name: test-watch\nchannels: [default]\nkeywrds:\n  any: [Storm]\n")
        _wait(logged(f"{watch}:3: unknown field 'keywrds'"), "the rejection")
        assert "reload (configuration files changed) rejected" in log_path.read_text()
        items.insert(0, Item("Shenzhen office of TikTok expands its hiring drive", "https://news.example/shenzhen",
                                "Recruiters are busy."))
        _wait(lambda: "Shenzhen office of TikTok expands its hiring drive" in receiver.titles(), "an alert from the still-active version")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack goes to the log
            proc.wait(timeout=10)
            proc.wait()
        server.close()
    assert notify_socket.has("STOPPING=1")
    assert notify_socket.index("READY=1") < notify_socket.index("WATCHDOG=1") < notify_socket.index("STOPPING=1")
    assert "monitor stopped" in log_path.read_text()
    assert receiver.titles().count("TikTok ban vote set for Friday") == 1
