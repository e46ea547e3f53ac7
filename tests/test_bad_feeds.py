"""Broken feeds are recorded and skipped; they never stop or hang the cycle, and good feeds still alert."""

from __future__ import annotations

import json
import resource
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from feedgen import Item, rss
from helpers import cli, run_once, write_config

GOOD = rss("Good", [Item("Chinese hackers breached US chip designer", "https://news.example/good",
                         "The FBI tied the intrusion to a Beijing-backed group.")])
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<rss version="2.0"><channel><title>&g;</title><item><title>&g;</title></item></channel></rss>"""

BAD_PATHS = ["/500", "/slow", "/trickle", "/html", "/garbage", "/empty", "/loop", "/big", "/laughs", "/refused"]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        path = self.path
        if path == "/good":
            return self._send(200, GOOD.encode(), "application/rss+xml")
        if path == "/500":
            return self._send(500, b"oops", "text/plain")
        if path == "/slow":
            time.sleep(4)
            return self._send(200, GOOD.encode(), "application/rss+xml")
        if path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            try:
                self.wfile.write(b"<?xml version='1.0'?><rss><channel>")
                for _ in range(600):  # one byte every 100 ms for a minute: only a total deadline stops this
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return None
        if path == "/html":
            return self._send(200, b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>", "text/html")
        if path == "/garbage":
            return self._send(200, bytes(range(256)) * 40, "application/octet-stream")
        if path == "/empty":
            return self._send(200, b"", "application/rss+xml")
        if path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if path == "/big":
            return self._send(200, b"<rss>" + b"x" * 3_000_000 + b"</rss>", "application/rss+xml")
        if path == "/laughs":
            return self._send(200, LAUGHS, "application/rss+xml")
        return self._send(404, b"no", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bad_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_broken_feeds_do_not_stop_or_hang_the_cycle(tmp_path: Path, config_dir: Path, bad_server: str, receiver,
                                                    capsys) -> None:
    feeds = [{"url": bad_server + path, "name": path.strip("/")} for path in BAD_PATHS]
    feeds[-1]["url"] = "http://127.0.0.1:9/refused"  # nothing listens on the discard port
    feeds.append({"url": bad_server + "/good", "name": "good"})
    config = write_config(config_dir, [receiver.url()], feeds,
                          fetch={"connect_timeout": "2s", "read_timeout": "1s", "deadline": "3s",
                                 "max_bytes": "200KB", "max_redirects": 3})
    state = tmp_path / "state"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    assert run_once(config, state) == 0
    elapsed = time.monotonic() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

    assert elapsed < 20, f"cycle took {elapsed:.1f}s"
    assert grown_mb < 100, f"memory grew by {grown_mb:.0f} MB"
    assert receiver.titles() == ["Chinese hackers breached US chip designer"]

    capsys.readouterr()
    assert cli(config, state, "feeds", "--json") == 0
    health = {f["name"]: f for f in json.loads(capsys.readouterr().out)}
    assert health["good"]["status"] == "ok"
    for path in BAD_PATHS:
        feed = health[path.strip("/")]
        assert feed["status"] == "failing", feed
        assert feed["error_count"] == 1 and feed["last_error"], feed
    assert "500" in health["500"]["last_status"]
    assert "HTML" in health["html"]["last_error"]
    assert "redirect" in health["loop"]["last_error"]
    assert "larger than" in health["big"]["last_error"]
    assert "deadline" in health["trickle"]["last_error"] or "timed out" in health["trickle"]["last_error"]

    capsys.readouterr()
    assert cli(config, state, "feeds") == 0
    table = capsys.readouterr().out
    assert "failing" in table and "last error:" in table
