"""One cycle of the monitor: poll feeds, store new entries, cluster stories, score, match, queue, deliver.

Each stage is a function of values; this module composes them. Only the stores, fetch and notify do I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from . import schedule
from .config import Config
from .delivery import Deliverer
from .errors import ParseError
from .fetch import FetchOptions, fetch_all
from .identity import canonical_url
from .models import Entry, FeedState, Fetched, FetchFailed, FetchResult, NotModified, Verdict
from .parse import parse_feed
from .store import Store
from .stories import StoryIndex
from .watchlists import CompiledWatchlist, fold

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Scorer(Protocol):
    @property
    def threshold(self) -> float: ...

    def predict(self, title: str, summary: str) -> Verdict: ...


@dataclass
class CycleStats:
    started_at: str = ""
    duration_s: float = 0.0
    feeds_polled: int = 0
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_new: int = 0
    stories_new: int = 0
    alerts_queued: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    alerts_pending: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    """Entries accepted in one feed's transaction, added to the in-memory story index after commit."""

    index_adds: list[tuple[int, int, Entry]] = field(default_factory=list)
    new_stories: list[int] = field(default_factory=list)


class Pipeline:
    def __init__(self, config: Config, store: Store, watchlists: Sequence[CompiledWatchlist],
                 scorer: Scorer | None = None, clock: Clock = utcnow, rng: random.Random | None = None,
                 template_dir: Path | None = None) -> None:
        self.config = config
        self.store = store
        self.watchlists = list(watchlists)
        self.scorer = scorer
        self.clock = clock
        self.rng = rng or random.Random()
        settings = config.settings
        self.window = timedelta(seconds=settings.stories.window)
        self.index = StoryIndex(window=self.window)
        self.deliverer = Deliverer(store, config, clock=clock,
                                   template_dir=template_dir or config.path.parent / "templates")
        self._rebuild_index()

    # -- configuration --------------------------------------------------------------------------------

    def reconfigure(self, config: Config, watchlists: Sequence[CompiledWatchlist]) -> None:
        """Swap in a new, already validated configuration (SIGHUP / hot reload)."""
        self.config = config
        self.watchlists = list(watchlists)
        self.deliverer = Deliverer(self.store, config, clock=self.clock,
                                   template_dir=config.path.parent / "templates")
        self.store.sync_feeds(config.feeds, self.clock())

    def fetch_options(self) -> FetchOptions:
        s = self.config.settings
        options = FetchOptions(connect_timeout=s.fetch.connect_timeout, read_timeout=s.fetch.read_timeout,
                               deadline=s.fetch.deadline, max_bytes=s.fetch.max_bytes,
                               max_redirects=s.fetch.max_redirects, concurrency=s.poll.concurrency,
                               per_host=s.poll.per_host)
        if s.fetch.user_agent:
            options = FetchOptions(**{**options.__dict__, "user_agent": s.fetch.user_agent})
        return options

    def _rebuild_index(self) -> None:
        since = self.clock() - self.window
        for row in self.store.entries_since(since):
            seen = datetime.strptime(row["first_seen_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            self.index.add(row["id"], row["story_id"], row["title"], row["summary"], seen)

    # -- the cycle ------------------------------------------------------------------------------------

    def run_cycle(self, all_feeds: bool = False) -> CycleStats:
        """Poll due feeds and deliver due alerts; ``all_feeds`` (run --once) polls every active feed and
        tries every pending alert now, whatever its retry time."""
        now = self.clock()
        stats = CycleStats(started_at=now.isoformat(timespec="seconds"))
        self.store.sync_feeds(self.config.feeds, now)
        feeds = self.store.active_feeds() if all_feeds else self.store.due_feeds(now)
        self.index.evict(now)
        if feeds:
            asyncio.run(fetch_all(feeds, self.fetch_options(),
                                  lambda feed, result: self._handle_result(feed, result, stats)))
        outcome = self.deliverer.deliver_due(ignore_backoff=all_feeds)
        stats.alerts_sent, stats.alerts_failed = outcome.sent, outcome.failed
        stats.alerts_pending = self.store.count_alerts().get("pending", 0)
        stats.duration_s = round((self.clock() - now).total_seconds(), 3)
        self.store.set_meta("last_cycle", stats.__dict__)
        log.info("cycle done: %d feeds polled (%d ok, %d unchanged, %d failed), %d new entries, %d new stories, "
                 "%d alerts queued, %d sent, %d pending", stats.feeds_polled, stats.feeds_ok,
                 stats.feeds_not_modified, stats.feeds_failed, stats.entries_new, stats.stories_new,
                 stats.alerts_queued, stats.alerts_sent, stats.alerts_pending)
        return stats

    def _handle_result(self, feed: FeedState, result: FetchResult, stats: CycleStats) -> None:
        stats.feeds_polled += 1
        try:
            self._record(feed, result, stats)
        except Exception as exc:  # one feed's bug must not stop the cycle
            log.exception("feed %r: processing failed", feed.name)
            self._record_error(feed, FetchFailed(feed.url, f"internal error: {type(exc).__name__}: {exc}"), stats)

    def _interval(self, feed: FeedState) -> float:
        return float(feed.interval_s or self.config.settings.poll.interval)

    def _record(self, feed: FeedState, result: FetchResult, stats: CycleStats) -> None:
        now = self.clock()
        poll = self.config.settings.poll
        if isinstance(result, NotModified):
            stats.feeds_not_modified += 1
            due = schedule.next_due_ok(now, self._interval(feed), poll.jitter, self.rng)
            self.store.record_feed_ok(feed.id, now, due, "304 not modified", keep_cache=True)
            log.debug("feed %r: not modified", feed.name)
            return
        if isinstance(result, FetchFailed):
            self._record_error(feed, result, stats)
            return
        assert isinstance(result, Fetched)
        try:
            parsed = parse_feed(result.content, result.headers, result.url, feed.id, feed.name, feed.tags, now)
        except ParseError as exc:
            self._record_error(feed, FetchFailed(feed.url, str(exc).split(": ", 1)[-1], result.status), stats)
            return
        if result.final_url and result.final_url != feed.url:
            log.info("feed %r: moved permanently to %s", feed.name, result.final_url)
            self.store.move_feed(feed.id, result.final_url)
        new_entries = self._store_entries(feed, parsed.entries, now, stats)
        due = schedule.next_due_ok(now, self._interval(feed), poll.jitter, self.rng, parsed.ttl_s)
        self.store.record_feed_ok(feed.id, now, due, f"HTTP {result.status}", etag=result.etag,
                                  last_modified=result.last_modified, title=parsed.title, new_entries=new_entries,
                                  ttl_s=parsed.ttl_s, warning=parsed.warning)
        stats.feeds_ok += 1
        log.info("feed %r: %d entries, %d new", feed.name, len(parsed.entries), new_entries)

    def _record_error(self, feed: FeedState, failure: FetchFailed, stats: CycleStats) -> None:
        now = self.clock()
        poll = self.config.settings.poll
        due = schedule.next_due_error(now, self._interval(feed), feed.error_count + 1, poll.backoff_max,
                                      poll.jitter, self.rng, failure.retry_after_s)
        status = f"HTTP {failure.status}" if failure.status else "error"
        count = self.store.record_feed_error(feed.id, now, due, status, failure.reason, disable=failure.permanent)
        stats.feeds_failed += 1
        stats.errors.append(f"{feed.name}: {failure.reason}")
        level = logging.ERROR if failure.permanent or count >= poll.failing_after else logging.WARNING
        log.log(level, "feed %r: %s (%d consecutive failures)%s", feed.name, failure.reason, count,
                "; feed disabled" if failure.permanent else "")

    # -- entries, stories, matches --------------------------------------------------------------------

    def _store_entries(self, feed: FeedState, entries: Sequence[Entry], now: datetime, stats: CycleStats) -> int:
        known = self.store.known_guids(feed.id, [e.guid for e in entries])
        fresh: dict[str, Entry] = {}
        for entry in entries:
            if entry.guid not in known and entry.guid not in fresh:
                fresh[entry.guid] = entry
        if not fresh:
            return 0
        pending = _Pending()
        with self.store.transaction():
            for entry in fresh.values():
                self._store_entry(entry, now, pending)
        for entry_id, story_id, entry in pending.index_adds:
            self.index.add(entry_id, story_id, entry.title, entry.summary, entry.published)
        stats.entries_new += len(fresh)
        stats.stories_new += len(pending.new_stories)
        for story_id in pending.new_stories:
            stats.alerts_queued += self._assess_story(story_id, now)
        return len(fresh)

    def _store_entry(self, entry: Entry, now: datetime, pending: _Pending) -> None:
        canonical = canonical_url(entry.link)
        same_url = self.store.entry_by_canonical_url(canonical)
        if same_url is not None:
            self.store.insert_entry(entry, canonical, now, same_url["story_id"], 1.0, duplicate_of=same_url["id"])
            if same_url["story_id"]:
                self.store.add_to_story(same_url["story_id"], entry.feed_name, now)
            return
        found = self.index.match(entry.title, entry.summary, entry.published)
        if found is not None:
            entry_id = self.store.insert_entry(entry, canonical, now, found.story_id, found.similarity)
            self.store.add_to_story(found.story_id, entry.feed_name, now)
            pending.index_adds.append((entry_id, found.story_id, entry))
            return
        entry_id = self.store.insert_entry(entry, canonical, now, None)
        story_id = self.store.create_story(entry, entry_id, now, alertable=self._alertable(entry, now))
        pending.index_adds.append((entry_id, story_id, entry))
        pending.new_stories.append(story_id)

    def _alertable(self, entry: Entry, now: datetime) -> bool:
        """Backlog guard: entries older than alerts.max_age when first seen are stored, never alerted."""
        max_age = self.config.settings.alerts.max_age
        return max_age is None or (now - entry.published).total_seconds() <= max_age

    def _assess_story(self, story_id: int, now: datetime) -> int:
        """Score a new story, match it against every watchlist and queue its alerts; return how many."""
        row = self.store.story(story_id)
        if row is None:
            return 0
        view = row.view
        if self.scorer is not None:
            verdict = self.scorer.predict(view.title, view.summary)
            if verdict.threshold is None:
                verdict = dataclasses.replace(verdict, threshold=self.scorer.threshold)
            self.store.set_verdict(story_id, verdict)
            row = self.store.story(story_id)
            assert row is not None
            view = row.view
        if not row.alertable:
            return 0
        queued = 0
        text = fold(f"{view.title}\n{view.summary}")
        with self.store.transaction():
            for watchlist in self.watchlists:
                match = watchlist.match(view, text)
                if match is None or not self.store.record_match(story_id, match.watchlist, match.why, now):
                    continue
                for route in match.routes:
                    if self.deliverer.enqueue(view, match, route, now):
                        queued += 1
        return queued
