"""The optional Prometheus endpoint counts polls, errors, entries, stories, alerts and latency."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from localparts import free_port
from polling_helpers import RSS, FakeClock, FeedServer, feed_body, make_app

from monitor.metrics import Observer, PrometheusObserver, make_observer


def test_metrics_endpoint_reports_a_cycle(config_dir: Path, tmp_path: Path) -> None:
    server = FeedServer()
    server.routes["/ok"] = (200, RSS, feed_body("Ok", 3))
    server.routes["/bad"] = (500, {}, b"no")
    feeds = [{"url": server.url("/ok"), "name": "Ok"}, {"url": server.url("/bad"), "name": "Bad"}]
    app = make_app(config_dir, tmp_path / "state", feeds, FakeClock())
    observer = PrometheusObserver()
    app.pipeline.observer = observer
    http = observer.serve("127.0.0.1", free_port())
    try:
        app.pipeline.run_cycle()
        observer.feeds(2, 0)
        port = http.server_address[1]
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        http.shutdown()
        http.server_close()
        server.close()
        app.close()
    assert 'monitor_polls_total{outcome="ok"} 1.0' in text
    assert 'monitor_polls_total{outcome="error"} 1.0' in text
    assert "monitor_poll_errors_total 1.0" in text
    assert "monitor_entries_new_total 3.0" in text
    assert "monitor_stories_new_total 3.0" in text
    assert "monitor_fetch_seconds_count 2.0" in text
    assert "monitor_feeds_configured 2.0" in text


def test_metrics_off_is_a_no_op() -> None:
    assert type(make_observer(False)) is Observer
