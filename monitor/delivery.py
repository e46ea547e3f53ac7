"""The outbox: alerts are committed as rows first, then sent, and marked sent only after success.

Guarantee: a row is marked sent only after apprise accepted it, so a crash can never lose an alert.
The one narrow window for a duplicate: a send that succeeded but whose mark was not yet committed when the
process died; the alert is then sent again on restart (per URL, so only to that URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from . import schedule
from .config import Config
from .models import Match, Route, StoryView
from .notify import Message, redact, send, target_key, url_format
from .render import render_alert
from .store import AlertRow, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Deliverer:
    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime],
                 template_dir: Path | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.template_dir = template_dir

    def enqueue(self, view: StoryView, match: Match, route: Route, now: datetime) -> bool:
        """Queue one alert (story, watchlist, channel); False when it was already queued or sent."""
        return self.store.enqueue_alert(view.id, match.watchlist, route.channel, match.why, route.severity,
                                        now) is not None

    def deliver_due(self, ignore_backoff: bool = False) -> DeliveryOutcome:
        """Send every pending alert whose retry time has come (every pending one with ``ignore_backoff``)."""
        sent = retried = failed = 0
        horizon = datetime.max.replace(tzinfo=self.clock().tzinfo) if ignore_backoff else self.clock()
        for row in self.store.due_alerts(horizon):
            result = self._deliver(row)
            sent += result == "sent"
            retried += result == "retry"
            failed += result == "failed"
        return DeliveryOutcome(sent, retried, failed)

    def _deliver(self, row: AlertRow) -> str:
        alert = row.alert
        urls = self.config.channels.get(alert.channel)
        if urls is None:
            return self._fail_or_retry(row, f"channel '{alert.channel}' is no longer configured")
        story = self.store.story(alert.story_id)
        if story is None:
            self.store.mark_failed(alert.id, "story no longer in the database")
            return "failed"
        errors = []
        for url in urls:
            if target_key(url) in row.delivered:
                continue
            fmt = url_format(url)
            title, body = render_alert(story.view, alert.watchlist, row.why, fmt, self.template_dir)
            result = send(url, Message(title=title, body=body, body_format=fmt, severity=row.severity),
                          timeout=self.config.settings.alerts.send_timeout)
            if result.ok:
                self.store.mark_delivered_to(alert.id, result.target)
            else:
                errors.append(f"{redact(url)}: {result.reason}")
        if errors:
            return self._fail_or_retry(row, "; ".join(errors))
        self.store.mark_sent(alert.id, self.clock())
        log.info("alert %d sent to channel %r: %s", alert.id, alert.channel, alert.title)
        return "sent"

    def _fail_or_retry(self, row: AlertRow, error: str) -> str:
        now = self.clock()
        settings = self.config.settings.alerts
        alert = row.alert
        created = alert.created_at or now
        if (now - created).total_seconds() > settings.retry_max_age:
            self.store.mark_failed(alert.id, error)
            log.error("alert %d to channel %r failed for good after %d attempts: %s", alert.id, alert.channel,
                      alert.attempts + 1, error)
            return "failed"
        delay = schedule.retry_delay_s(alert.attempts + 1, settings.retry_base)
        self.store.mark_retry(alert.id, error, now + timedelta(seconds=delay))
        log.warning("alert %d to channel %r not delivered (will retry in %.0fs): %s", alert.id, alert.channel,
                    delay, error)
        return "retry"
