"""Observability hooks: the pipeline reports what happens; a Prometheus endpoint is one optional listener.

prometheus-client is imported only here, and only when ``metrics.enabled`` is true, so the daemon runs
without it. The endpoint listens on localhost by default (``metrics.host``/``metrics.port``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CycleFigures(Protocol):
    feeds_polled: int
    feeds_ok: int
    feeds_not_modified: int
    feeds_failed: int
    entries_new: int
    stories_new: int
    alerts_queued: int
    alerts_sent: int
    alerts_failed: int
    alerts_pending: int
    duration_s: float


class Observer:
    """Does nothing: the default when metrics are off."""

    def poll(self, outcome: str, seconds: float) -> None:
        """One feed polled: outcome is ok | not_modified | error; seconds the request took."""

    def cycle(self, stats: CycleFigures) -> None:
        """One cycle finished."""

    def feeds(self, configured: int, failing: int) -> None:
        """Feed health after a cycle."""


class PrometheusObserver(Observer):
    """Counters and histograms in their own registry, served over HTTP by prometheus-client."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls by outcome", ["outcome"], registry=r)
        self.errors = Counter("monitor_poll_errors", "Feed polls that failed", registry=r)
        self.latency = Histogram("monitor_fetch_seconds", "Time to fetch one feed", registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
        self.entries = Counter("monitor_entries_new", "New entries stored", registry=r)
        self.stories = Counter("monitor_stories_new", "New stories created", registry=r)
        self.alerts = Counter("monitor_alerts", "Alerts by event", ["event"], registry=r)
        self.pending = Gauge("monitor_alerts_pending", "Alerts waiting in the outbox", registry=r)
        self.cycle_seconds = Histogram("monitor_cycle_seconds", "Duration of one polling cycle", registry=r,
                                       buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
        self.last_cycle = Gauge("monitor_last_cycle_timestamp_seconds", "When the last cycle ended", registry=r)
        self.configured = Gauge("monitor_feeds_configured", "Feeds in feeds.yaml", registry=r)
        self.failing = Gauge("monitor_feeds_failing", "Feeds flagged as failing", registry=r)

    def poll(self, outcome: str, seconds: float) -> None:
        self.polls.labels(outcome).inc()
        if outcome == "error":
            self.errors.inc()
        self.latency.observe(seconds)

    def cycle(self, stats: CycleFigures) -> None:
        self.entries.inc(stats.entries_new)
        self.stories.inc(stats.stories_new)
        self.alerts.labels("queued").inc(stats.alerts_queued)
        self.alerts.labels("sent").inc(stats.alerts_sent)
        self.alerts.labels("failed").inc(stats.alerts_failed)
        self.pending.set(stats.alerts_pending)
        self.cycle_seconds.observe(stats.duration_s)
        self.last_cycle.set_to_current_time()

    def feeds(self, configured: int, failing: int) -> None:
        self.configured.set(configured)
        self.failing.set(failing)

    def serve(self, host: str, port: int) -> Any:
        """Start the HTTP endpoint in a background thread; returns the server (call shutdown() to stop)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)
        return server


def make_observer(enabled: bool) -> Observer:
    if not enabled:
        return Observer()
    try:
        return PrometheusObserver()
    except ImportError:
        log.error("metrics.enabled is true but prometheus-client is not installed (pip install prometheus-client)")
        return Observer()
