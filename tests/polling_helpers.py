"""Shared parts of the polling tests: an injected clock, an app wired to a temp config, feed bodies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from feedgen import Item, rss
from helpers import write_config

from monitor.app import App, open_app

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def to(self, when: datetime) -> None:
        self.now = max(self.now, when)


def feed_body(title: str, count: int, start: datetime = T0, every_h: float = 1.0, prefix: str = "e") -> bytes:
    """An RSS feed of ``count`` entries published ``every_h`` hours apart, newest first."""
    items = [Item(f"{title} item {i}", f"https://news.example/{prefix}/{i}", f"Summary {i} of {title}.",
                  published=start - timedelta(hours=every_h * i)) for i in range(count)]
    return rss(title, items).encode()


def make_app(config_dir: Path, state: Path, feeds: list[dict[str, Any]], clock: FakeClock,
             channels: list[str] | None = None, **settings: Any) -> App:
    poll = {"jitter": 0.0, **settings.pop("poll", {})}
    config = write_config(config_dir, channels or ["json://127.0.0.1:9/none"], feeds, poll=poll,
                          alerts={"max_age": None}, **settings)
    app = open_app(config, state, clock=clock, with_scorer=False)
    app.store.sync_feeds(app.config.feeds, clock())  # as the first cycle would: feeds known, due now
    return app


def due_of(app: App, name: str) -> datetime:
    row = next(r for r in app.store.feed_rows() if r.state.name == name)
    assert row.next_due_at is not None
    return row.next_due_at


def feed_row(app: App, name: str) -> Any:
    return next(r for r in app.store.feed_rows() if r.state.name == name)


Reply = tuple[int, dict[str, str], bytes]


class FeedServer:
    """A local HTTP server that records every request and counts requests in flight.

    ``routes`` maps a path to a reply (status, headers, body) or to a function of the request headers
    returning one. ``hold_s`` keeps each request open that long (to observe concurrency limits)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold_s = 0.0
        self._lock = threading.Lock()
        self._quiet = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner._serve(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def _serve(self, handler: Any) -> None:
        headers = {k: v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append((handler.path, headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold_s:
                self._quiet.wait(self.hold_s)  # the server being slow, not a test synchronization
            route = self.routes.get(handler.path, (404, {}, b"not found"))
            status, extra, body = route(headers) if callable(route) else route
            handler.send_response(status)
            for key, value in extra.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


RSS = {"Content-Type": "application/rss+xml"}
