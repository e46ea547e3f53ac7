"""The outbox: when each alert goes out (policy, pure) and getting it there exactly once (the shell).

Policy: pure functions of a channel's settings and ``now`` decide, for each pending alert, to send it now,
hold it until the channel's quiet hours end, or move it to the channel's next digest (rate limit); and when a
channel's digest is due. Times of day are read in the configured time zone.

Guarantees (the shell, ``Deliverer``):
- every alert is an outbox row committed before any send; a digest's membership is committed (one
  transaction) before the digest is sent;
- a row (alert or digest) is marked sent only after apprise accepted it, per URL of the channel, each mark
  committed right after that URL's send; a restart after a crash at any point re-sends only what is unmarked;
- the one narrow window for a duplicate: the process dies after a service accepted a message but before the
  mark was committed (milliseconds); that one message is sent again to that one URL on restart;
- a refused send is retried with exponential backoff; after ``alerts.retry_max_age`` the row is marked failed,
  listed by `monitor alerts --failed` and `monitor status`, and reported in the next digest.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from . import schedule
from .config import ChannelSpec, Config
from .errors import NotifyError
from .models import Match, Route, StoryView
from .notify import Message, redact, send, target_key, url_format
from .render import DigestItem, FailureItem, render_alert, render_digest
from .store import AlertRow, DigestRow, FollowUpRow, Store

log = logging.getLogger(__name__)

DEFAULT_DIGEST_EVERY_S = 3600.0  # a channel that needs a digest but configures no schedule gets one hourly
RATE_WINDOW = timedelta(hours=1)
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)

# -- policy (pure) ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelPolicy:
    """What the delivery policy needs to know about one channel."""

    name: str
    urls: tuple[str, ...]
    zone: ZoneInfo
    mode: str = "instant"  # instant | digest
    digest_every_s: float | None = DEFAULT_DIGEST_EVERY_S
    digest_at: tuple[time, ...] = ()
    quiet: tuple[time, time] | None = None  # local start, end (end may be on the next day)
    rate_limit: int | None = None  # instant messages per hour
    format: str = "auto"

    @classmethod
    def from_spec(cls, name: str, spec: ChannelSpec, zone: ZoneInfo) -> ChannelPolicy:
        every = spec.digest.every if spec.digest else None
        at = tuple(_clock(value) for value in spec.digest.at) if spec.digest else ()
        if every is None and not at:
            every = DEFAULT_DIGEST_EVERY_S
        quiet = (_clock(spec.quiet_hours.start), _clock(spec.quiet_hours.end)) if spec.quiet_hours else None
        return cls(name=name, urls=tuple(spec.urls), zone=zone, mode=spec.mode, digest_every_s=every,
                   digest_at=at, quiet=quiet, rate_limit=spec.rate_limit, format=spec.format)


@dataclass(frozen=True)
class SendNow:
    pass


@dataclass(frozen=True)
class Hold:
    until: datetime
    reason: str


@dataclass(frozen=True)
class ToDigest:
    reason: str


Decision = SendNow | Hold | ToDigest


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_local_time(after: datetime, when: time, zone: ZoneInfo) -> datetime:
    """The first instant strictly after ``after`` whose local time is ``when`` (stepping by local calendar
    days, so a DST change does not skip or repeat a day)."""
    local_day = after.astimezone(zone).date()
    for offset in range(3):
        day = local_day + timedelta(days=offset)
        candidate = datetime.combine(day, when, tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a local time recurs within two days")


def quiet_until(policy: ChannelPolicy, now: datetime) -> datetime | None:
    """The end of the quiet window ``now`` falls in, or None outside quiet hours."""
    if policy.quiet is None or policy.quiet[0] == policy.quiet[1]:
        return None
    start, end = policy.quiet
    local = now.astimezone(policy.zone).time()
    inside = start <= local < end if start < end else (local >= start or local < end)
    return next_local_time(now, end, policy.zone) if inside else None


def decide(policy: ChannelPolicy, now: datetime, urgent: bool, sent_last_hour: int) -> Decision:
    """Send an instant alert now, hold it (quiet hours) or move it to the next digest (rate limit).
    Urgent alerts go at once whatever the quiet hours and the rate limit."""
    if urgent:
        return SendNow()
    end = quiet_until(policy, now)
    if end is not None:
        return Hold(end, "quiet hours")
    if policy.rate_limit is not None and sent_last_hour >= policy.rate_limit:
        return ToDigest("rate limit")
    return SendNow()


def next_digest(last: datetime, policy: ChannelPolicy) -> datetime:
    """The first scheduled digest time after ``last``."""
    candidates = [next_local_time(last, when, policy.zone) for when in policy.digest_at]
    if policy.digest_every_s:
        candidates.append(last + timedelta(seconds=policy.digest_every_s))
    return min(candidates)


def digest_due(last: datetime, now: datetime, policy: ChannelPolicy) -> datetime | None:
    """The end of the digest period to send now (the latest scheduled time not after ``now``), or None.
    Slots missed while the daemon was down collapse into one digest."""
    due = next_digest(last, policy)
    if due > now:
        return None
    if policy.digest_every_s and not policy.digest_at:  # skip whole periods arithmetically
        periods = int((now - due).total_seconds() // policy.digest_every_s)
        return due + timedelta(seconds=periods * policy.digest_every_s)
    while (following := next_digest(due, policy)) <= now:
        due = following
    return due


# -- the shell ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    sent: int = 0  # alerts delivered (alone or in a digest)
    retried: int = 0
    failed: int = 0
    held: int = 0  # held by quiet hours
    to_digest: int = 0  # moved to the next digest by the rate limit
    digests: int = 0  # digest messages sent
    follow_ups: int = 0  # story follow-up updates sent (stories.follow_up)


class _Tally:
    """Counts of one delivery pass, keyed by DeliveryOutcome's field names."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, result: str, count: int = 1) -> None:
        self.counts[result] = self.counts.get(result, 0) + count

    def outcome(self) -> DeliveryOutcome:
        return DeliveryOutcome(**self.counts)


class Deliverer:
    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime],
                 template_dir: Path | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.template_dir = template_dir if template_dir is not None else config.templates_dir
        self.zone = config.zone
        self.policies = {name: ChannelPolicy.from_spec(name, spec, self.zone)
                         for name, spec in config.channel_specs.items()}

    def enqueue(self, view: StoryView, match: Match, route: Route, now: datetime) -> bool:
        """Queue one alert (story, watchlist, channel); False when it was already queued or sent."""
        policy = self.policies.get(route.channel)
        mode = route.mode or (policy.mode if policy else "instant")
        alert_id = self.store.enqueue_alert(view.id, match.watchlist, route.channel, match.why,
                                            route.severity, now, mode=mode, urgent=route.urgent)
        return alert_id is not None

    def deliver_due(self, ignore_backoff: bool = False,
                    should_stop: Callable[[], bool] = lambda: False) -> DeliveryOutcome:
        """Send what is due: instant alerts (``ignore_backoff``: every pending one, whatever its retry time),
        then the digests whose time has come. Quiet hours and the rate limit apply either way.
        ``should_stop`` (SIGTERM) ends the pass between two sends; what is left stays pending."""
        now = self.clock()
        horizon = _FAR_FUTURE if ignore_backoff else now
        tally = _Tally()
        sent_last_hour: dict[str, int] = {}
        for row in self.store.due_alerts(horizon):
            if should_stop():
                return tally.outcome()
            self._instant(row, now, sent_last_hour, tally)
        for update in self.store.due_follow_ups(horizon):
            if should_stop():
                return tally.outcome()
            self._follow_up(update, now, tally)
        self._compose_digests(now)
        for digest in self.store.due_digests(horizon):
            if should_stop():
                break
            self._digest(digest, now, tally)
        return tally.outcome()

    # -- instant alerts

    def _instant(self, row: AlertRow, now: datetime, sent_last_hour: dict[str, int], tally: _Tally) -> None:
        alert = row.alert
        policy = self.policies.get(alert.channel)
        if policy is None:
            tally.add(self._alert_failed_or_retry(row, f"channel '{alert.channel}' is no longer configured"))
            return
        if alert.channel not in sent_last_hour:
            sent_last_hour[alert.channel] = self.store.instant_sent_since(alert.channel, now - RATE_WINDOW)
        decision = decide(policy, now, row.urgent, sent_last_hour[alert.channel])
        if isinstance(decision, ToDigest) and row.delivered:
            decision = SendNow()  # some URLs already have it alone: a digest would give it to them twice
        if isinstance(decision, Hold):
            if alert.next_attempt_at != decision.until:
                self.store.hold_alert(alert.id, decision.until, decision.reason)
                log.info("alert %d to channel %r held until %s (%s)", alert.id, alert.channel,
                         decision.until.astimezone(self.zone).strftime("%H:%M"), decision.reason)
            tally.add("held")
        elif isinstance(decision, ToDigest):
            self.store.move_to_digest(alert.id, decision.reason)
            log.info("alert %d to channel %r goes to the next digest (%s)", alert.id, alert.channel,
                     decision.reason)
            tally.add("to_digest")
        else:
            result = self._send_alert(row, policy)
            sent_last_hour[alert.channel] += result == "sent"
            tally.add(result)

    def _send_alert(self, row: AlertRow, policy: ChannelPolicy) -> str:
        alert = row.alert
        story = self.store.story(alert.story_id)
        if story is None:
            self.store.mark_failed(alert.id, "story no longer in the database", self.clock())
            return "failed"

        def message(fmt: str) -> Message:
            title, body = render_alert(story.view, alert.watchlist, row.why, fmt, self.template_dir,
                                       row.severity)
            return Message(title=title, body=body, body_format=fmt, severity=row.severity)

        errors = self._send_each(policy, row.delivered, message,
                                 lambda target: self.store.mark_delivered_to(alert.id, target))
        if errors:
            return self._alert_failed_or_retry(row, "; ".join(errors))
        self.store.mark_sent(alert.id, self.clock())
        log.info("alert %d sent to channel %r: %s", alert.id, alert.channel, alert.title)
        return "sent"

    def _send_each(self, policy: ChannelPolicy, delivered: frozenset[str], message: Callable[[str], Message],
                   mark_delivered: Callable[[str], None]) -> list[str]:
        """Send to every URL of the channel that does not have this message yet, rendered in the URL's
        format; commit each success at once (so a retry skips that URL). Return the failures' reasons, each
        naming the URL by its place in the channel and its redacted form (they go to logs and the outbox)."""
        errors = []
        for number, url in enumerate(policy.urls, start=1):
            if target_key(url) in delivered:
                continue
            fmt = url_format(url, policy.format)
            try:
                rendered = message(fmt)
            except NotifyError as exc:  # a broken template: the message stays pending with the reason
                errors.append(str(exc))
                continue
            result = send(url, rendered, timeout=self.config.settings.alerts.send_timeout)
            if result.ok:
                mark_delivered(result.target)
            else:
                errors.append(f"URL #{number} {redact(url)}: {result.reason}")
        return errors

    def _alert_failed_or_retry(self, row: AlertRow, error: str) -> str:
        alert = row.alert
        now = self.clock()
        since = row.requeued_at or alert.created_at or now
        if self._too_old(since, now):
            self.store.mark_failed(alert.id, error, now)
            log.error("alert %d to channel %r failed for good after %d attempts: %s", alert.id, alert.channel,
                      alert.attempts + 1, error)
            return "failed"
        delay = self._retry_delay(alert.attempts + 1)
        self.store.mark_retry(alert.id, error, now + delay)
        log.warning("alert %d to channel %r not delivered (retry in %.0fs): %s", alert.id, alert.channel,
                    delay.total_seconds(), error)
        return "retried"

    def _too_old(self, since: datetime, now: datetime) -> bool:
        return (now - since).total_seconds() > self.config.settings.alerts.retry_max_age

    def _retry_delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=schedule.retry_delay_s(attempts, self.config.settings.alerts.retry_base))

    # -- follow-up updates (stories.follow_up; the stories work)

    def _follow_up(self, update: FollowUpRow, now: datetime, tally: _Tally) -> None:
        """Send one "Update: <title> - now reported by N outlets" message. Quiet hours hold it like an
        alert; the rate limit does not apply (one update per step of growth is already rare). Apprise
        cannot thread a message under an earlier one for most services, so the update is a message of its
        own whose title names the story."""
        policy = self.policies.get(update.channel)
        if policy is None:
            error = f"channel '{update.channel}' is no longer configured"
            self.store.mark_follow_up(update.id, "failed", now, error)
            tally.add("failed")
            return
        until = quiet_until(policy, now)
        if until is not None:
            self.store.mark_follow_up(update.id, "pending", now, next_attempt=until)
            tally.add("held")
            return
        story = self.store.story(update.story_id)
        sources = story.view.sources if story is not None else ()

        def message(fmt: str) -> Message:
            title, body = follow_up_message(update, sources, fmt)
            return Message(title=title, body=body, body_format=fmt)

        errors = self._send_each(policy, update.delivered, message,
                                 lambda target: self.store.mark_follow_up_delivered_to(update.id, target))
        if not errors:
            self.store.mark_follow_up(update.id, "sent", self.clock())
            log.info("follow-up %d sent to channel %r: %s (%d outlets)", update.id, update.channel, update.title,
                     update.outlets)
            tally.add("follow_ups")
        elif self._too_old(update.created_at, now):
            self.store.mark_follow_up(update.id, "failed", now, "; ".join(errors))
            tally.add("failed")
        else:
            delay = self._retry_delay(update.attempts + 1)
            self.store.mark_follow_up(update.id, "pending", now, "; ".join(errors), next_attempt=now + delay)
            tally.add("retried")

    # -- digests

    def _compose_digests(self, now: datetime) -> None:
        """Commit a digest row for every channel whose digest time has come (not during its quiet hours)."""
        for name, policy in self.policies.items():
            if quiet_until(policy, now) is not None:
                continue
            last = self.store.last_digest_at(name, now)
            period_end = digest_due(last, now, policy)
            if period_end is None:
                continue
            digest_id = self.store.compose_digest(name, last, period_end, now,
                                                  report_failures_alone=policy.mode == "digest")
            if digest_id is not None:
                log.info("digest %d composed for channel %r", digest_id, name)

    def _digest(self, digest: DigestRow, now: datetime, tally: _Tally) -> None:
        policy = self.policies.get(digest.channel)
        if policy is None:
            error = f"channel '{digest.channel}' is no longer configured"
            tally.add(self._digest_failed_or_retry(digest, error))
            return
        if quiet_until(policy, now) is not None:  # a retry that falls in quiet hours waits for the end
            return
        alerts = self.store.digest_alerts(digest.id)
        items = self._digest_items(alerts)
        failures = [FailureItem(title=r.alert.title, link=r.alert.link, channel=r.alert.channel,
                                watchlist=r.alert.watchlist, error=r.alert.last_error or "")
                    for r in self.store.alerts_by_id(digest.failures)]

        def message(fmt: str) -> Message:
            title, body = render_digest(digest.channel, items, failures, digest.period_start, digest.period_end,
                                        self.zone, fmt, self.template_dir)
            return Message(title=title, body=body, body_format=fmt)

        errors = self._send_each(policy, digest.delivered, message,
                                 lambda target: self.store.mark_digest_delivered_to(digest.id, target))
        if errors:
            tally.add(self._digest_failed_or_retry(digest, "; ".join(errors)))
            return
        self.store.mark_digest_sent(digest.id, self.clock())
        log.info("digest %d sent to channel %r: %d alerts, %d failures reported", digest.id, digest.channel,
                 len(alerts), len(failures))
        tally.add("digests")
        tally.add("sent", sum(1 for r in alerts if r.alert.state == "pending"))

    def _digest_items(self, alerts: list[AlertRow]) -> list[DigestItem]:
        items = []
        for row in alerts:
            story = self.store.story(row.alert.story_id)
            if story is not None:
                items.append(DigestItem(story=story.view, watchlist=row.alert.watchlist, why=row.why,
                                        note=row.note))
        return items

    def _digest_failed_or_retry(self, digest: DigestRow, error: str) -> str:
        now = self.clock()
        if self._too_old(digest.created_at, now):
            self.store.mark_digest_failed(digest.id, error, now)
            log.error("digest %d to channel %r failed for good after %d attempts: %s", digest.id,
                      digest.channel, digest.attempts + 1, error)
            return "failed"
        delay = self._retry_delay(digest.attempts + 1)
        self.store.mark_digest_retry(digest.id, error, now + delay)
        log.warning("digest %d to channel %r not delivered (retry in %.0fs): %s", digest.id, digest.channel,
                    delay.total_seconds(), error)
        return "retried"


def follow_up_message(update: FollowUpRow, sources: tuple[str, ...], fmt: str) -> tuple[str, str]:
    """(title, body) of a follow-up update; the link sits on a line of its own, as in an alert."""
    title = f"Update: {update.title} \u2014 now reported by {update.outlets} outlets"
    outlets = ", ".join(sources)
    if fmt == "html":
        return title, (f"<p>Now reported by {update.outlets} outlets: {html.escape(outlets)}</p>\n"
                       f'<p><a href="{html.escape(update.link)}">{html.escape(update.link)}</a></p>')
    if fmt == "markdown":
        return title, f"Now reported by {update.outlets} outlets: {outlets}\n\n<{update.link}>"
    return title, f"Now reported by {update.outlets} outlets: {outlets}\n{update.link}"
