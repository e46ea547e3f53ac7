"""One cycle of the monitor: poll feeds, store new entries, cluster stories, score, match, queue, deliver.

Each stage is a function of values; this module composes them. Only the stores, fetch and notify do I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import multiprocessing
import os
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from . import schedule
from .config import Config
from .delivery import Deliverer
from .errors import ParseError
from .fetch import FetchOptions, fetch_all
from .identity import canonical_url
from .metrics import Observer
from .models import Entry, FeedState, Fetched, FetchFailed, FetchResult, Match, NotModified, Route, StoryView, Verdict
from .notify import Message, send
from .parse import ParsedFeed, ParseJob, parser_process_init, run_job
from .store import PollInfo, Store, from_ts
from .stories import StoryIndex, story_time
from .watchlists import CompiledWatchlist, prepare

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Below this many feeds in a cycle, parsing in the daemon's own process is cheaper than feeding a pool.
POOL_MIN_FEEDS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    entries_known: int = 0  # entries skipped before normalization: already stored
    errors: list[str] = field(default_factory=list)
    _newly_failing: list[tuple[FeedState, str, int]] = field(default_factory=list)


@dataclass
class _Pending:
    """Entries accepted in one feed's transaction, added to the in-memory story index after commit."""

    index_adds: list[tuple[int, int, Entry]] = field(default_factory=list)
    index_merges: list[tuple[int, int]] = field(default_factory=list)  # (kept story, merged story)
    grown: dict[int, None] = field(default_factory=dict)  # existing stories that gained an outlet
    new_stories: list[int] = field(default_factory=list)
    leads: dict[int, tuple[Entry, bool]] = field(default_factory=dict)  # new story -> (lead entry, alertable)

    def current(self, story_id: int) -> int:
        """The story ``story_id`` is now, after the merges of this batch so far."""
        merged = {gone: keep for keep, gone in self.index_merges}
        while story_id in merged:
            story_id = merged[story_id]
        return story_id


class Pipeline:
    def __init__(self, config: Config, store: Store, watchlists: Sequence[CompiledWatchlist],
                 scorer: Scorer | None = None, clock: Clock = utcnow, rng: random.Random | None = None,
                 template_dir: Path | None = None, observer: Observer | None = None) -> None:
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
                                   template_dir=template_dir or config.templates_dir)
        self.stop_requested = threading.Event()
        self.progress: Callable[[], None] | None = None  # called after each feed (the daemon's heartbeat)
        self.observer: Observer = observer or Observer()
        self._pool: ProcessPoolExecutor | None = None
        self._rebuild_index()

    # -- configuration --------------------------------------------------------------------------------

    def reconfigure(self, config: Config, watchlists: Sequence[CompiledWatchlist]) -> None:
        """Swap in a new, already validated configuration (SIGHUP / hot reload)."""
        self.config = config
        self.watchlists = list(watchlists)
        self.deliverer = Deliverer(self.store, config, clock=self.clock,
                                   template_dir=config.templates_dir)
        self.store.sync_feeds(config.feeds, self.clock())

    def fetch_options(self) -> FetchOptions:
        s = self.config.settings
        options = FetchOptions(connect_timeout=s.fetch.connect_timeout, read_timeout=s.fetch.read_timeout,
                               deadline=s.fetch.deadline, max_bytes=s.fetch.max_bytes,
                               max_redirects=s.fetch.max_redirects, concurrency=s.poll.concurrency,
                               per_host=s.poll.per_host, clock=lambda: self.clock().timestamp())
        if s.fetch.user_agent:
            options = FetchOptions(**{**options.__dict__, "user_agent": s.fetch.user_agent})
        return options

    def _rebuild_index(self) -> None:
        # The same time as in _store_entry (story_time: published, capped at first seen), so a rebuilt index
        # decides exactly as the one it replaces; entries whose time is already outside the window are skipped.
        since = self.clock() - self.window
        for row in self.store.entries_since(since):
            seen, published = from_ts(row["first_seen_at"]), from_ts(row["published_at"])
            assert seen is not None and published is not None  # NOT NULL columns
            when = story_time(published, seen)
            if when >= since:
                self.index.add(row["id"], row["story_id"], row["title"], row["summary"], when)

    # -- the cycle (polling: issue 5) ---------------------------------------------------------------------

    def run_cycle(self, all_feeds: bool = False) -> CycleStats:
        """Poll due feeds and deliver due alerts; ``all_feeds`` (run --once) polls every active feed and
        tries every pending alert now, whatever its retry time."""
        now = self.clock()
        stats = CycleStats(started_at=now.isoformat(timespec="seconds"))
        self.store.sync_feeds(self.config.feeds, now)
        feeds = self.store.active_feeds() if all_feeds else self.store.due_feeds(now)
        self.index.evict(now)
        if feeds:
            use_pool = len(feeds) >= POOL_MIN_FEEDS and self._parse_workers() > 1
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="record") as worker:
                asyncio.run(fetch_all(feeds, self.fetch_options(),
                                      lambda feed, result, took: self._on_result(feed, result, took, stats,
                                                                                 use_pool, worker),
                                      should_stop=self.stop_requested.is_set,
                                      max_pending=2 * self.config.settings.poll.concurrency))
        self._notify_failing(stats)
        if not self.stop_requested.is_set():
            outcome = self.deliverer.deliver_due(ignore_backoff=all_feeds,
                                                 should_stop=self.stop_requested.is_set)
            stats.alerts_sent, stats.alerts_failed = outcome.sent, outcome.failed
        stats.alerts_pending = self.store.count_alerts().get("pending", 0)
        stats.duration_s = round((self.clock() - now).total_seconds(), 3)
        self.store.set_meta("last_cycle", {k: v for k, v in stats.__dict__.items() if not k.startswith("_")})
        self.observer.cycle(stats)
        log.info("cycle done: %d feeds polled (%d ok, %d unchanged, %d failed), %d new entries, %d new stories, "
                 "%d alerts queued, %d sent, %d pending", stats.feeds_polled, stats.feeds_ok,
                 stats.feeds_not_modified, stats.feeds_failed, stats.entries_new, stats.stories_new,
                 stats.alerts_queued, stats.alerts_sent, stats.alerts_pending)
        return stats

    def request_stop(self) -> None:
        """SIGTERM: feeds not fetched yet are left due; results arriving from now on are dropped unrecorded,
        so nothing is half-stored (each feed's entries are committed in one transaction)."""
        self.stop_requested.set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- one feed -------------------------------------------------------------------------------------

    def _parse_workers(self) -> int:
        configured = self.config.settings.poll.parse_workers
        return (os.cpu_count() or 1) if configured is None else configured

    async def _on_result(self, feed: FeedState, result: FetchResult, took_s: float, stats: CycleStats,
                         use_pool: bool, worker: ThreadPoolExecutor) -> None:
        """Everything that touches the database (and the story index) runs in ``worker``, one thread, in
        order; the event loop only fetches, so slow processing never makes in-flight requests time out.
        Parsing runs in the process pool when there is one, else in the worker thread too."""
        if self.stop_requested.is_set():
            return
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(worker, self._parse_job, feed, result)
        parsed: ParsedFeed | ParseError | None = None
        if job is not None:
            if use_pool:
                parsed = await self._parse_in_pool(job)
            if parsed is None:
                parsed = await loop.run_in_executor(worker, _parse_here, job)
        await loop.run_in_executor(worker, self._finish, feed, result, parsed, took_s, stats)

    def _parse_job(self, feed: FeedState, result: FetchResult) -> ParseJob | None:
        """What to parse, or None: not a body, or the very same body as last time."""
        if not isinstance(result, Fetched):
            return None
        info = self.store.poll_info(feed.id)
        if self._unchanged(result, info):
            return None
        skip = self.store.recent_guids(feed.id) if info.last_ok_at is not None else frozenset()
        return ParseJob(result.content, result.headers, result.url, feed.id, feed.name, feed.tags, self.clock(),
                        skip)

    def _finish(self, feed: FeedState, result: FetchResult, parsed: ParsedFeed | ParseError | None,
                took_s: float, stats: CycleStats) -> None:
        if self.stop_requested.is_set():  # SIGTERM: drop it unrecorded; the feed stays due
            return
        stats.feeds_polled += 1
        try:
            self._record(feed, result, self.store.poll_info(feed.id), parsed, took_s, stats)
        except Exception as exc:  # one feed's bug must not stop the cycle
            log.exception("feed %r: processing failed", feed.name)
            self._record_error(feed, FetchFailed(feed.url, f"internal error: {type(exc).__name__}: {exc}"), stats)
        if self.progress is not None:
            self.progress()

    @staticmethod
    def _unchanged(result: Fetched, info: PollInfo) -> bool:
        """A server that ignores conditional headers sends the same bytes again: skip them cheaply."""
        return info.body_hash is not None and info.body_hash == _body_hash(result.content)

    async def _parse_in_pool(self, job: ParseJob) -> ParsedFeed | ParseError | None:
        """None when the pool broke (a worker died: OOM, a signal); the caller then parses it itself."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._parser_pool(), run_job, job)
        except ParseError as exc:
            return exc
        except BrokenProcessPool:
            log.warning("feed %r: parser process died; parsing in the main process", job.feed_name)
            self._pool = None
            return None

    def _parser_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(max_workers=self._parse_workers(),
                                             mp_context=multiprocessing.get_context(method),
                                             initializer=parser_process_init)
        return self._pool

    def _policy(self) -> schedule.Policy:
        poll = self.config.settings.poll
        return schedule.Policy(interval_s=poll.interval, jitter=poll.jitter, min_interval_s=poll.min_interval,
                               max_interval_s=poll.max_interval, backoff_max_s=poll.backoff_max,
                               adaptive=poll.adaptive, polls_per_entry=poll.polls_per_entry)

    def _interval(self, feed: FeedState, rate_per_h: float | None = None) -> float:
        return schedule.interval_s(self._policy(), feed.interval_s or None, rate_per_h)

    def _prior_rate(self) -> float:
        """Before anything is known, assume the rate that gives exactly poll.interval."""
        policy = self._policy()
        return 3600.0 / (policy.interval_s * policy.polls_per_entry)

    def _record(self, feed: FeedState, result: FetchResult, info: PollInfo,
                parsed: ParsedFeed | ParseError | None, took_s: float, stats: CycleStats) -> None:
        now = self.clock()
        if isinstance(result, FetchFailed):
            self.observer.poll("error", took_s)
            self._record_error(feed, result, stats)
            return
        if isinstance(parsed, ParseError):
            self.observer.poll("error", took_s)
            assert isinstance(result, Fetched)
            self._record_error(feed, FetchFailed(feed.url, str(parsed).split(": ", 1)[-1], result.status), stats)
            return
        if parsed is None:  # 304, or 200 with the very same body as last time
            self._record_unchanged(feed, result, info, took_s, now, stats)
            return
        assert isinstance(result, Fetched)
        self.observer.poll("ok", took_s)
        if result.final_url and result.final_url != feed.url:
            log.info("feed %r: moved permanently to %s (feeds.yaml may be updated to the new address)",
                     feed.name, result.final_url)
            self.store.move_feed(feed.id, result.final_url)
        for entry, features in zip(parsed.entries, parsed.story_features, strict=False):
            self.index.prime(entry.title, entry.summary, features)
        new_entries = self._store_entries(feed, parsed.entries, now, stats)
        stats.entries_known += parsed.known
        if info.last_ok_at is None:
            rate = schedule.rate_from_dates([e.published for e in parsed.entries if e.published_known])
        else:
            rate = schedule.update_rate(info.rate_per_h or self._prior_rate(), new_entries,
                                        (now - info.last_ok_at).total_seconds())
        hint = schedule.hint_floor_s(parsed.ttl_s, schedule.cache_max_age_s(result.headers))
        interval = self._interval(feed, rate)
        due = schedule.next_due_ok(now, interval, self.config.settings.poll.jitter, self.rng, hint)
        with self.store.transaction():
            self.store.record_feed_ok(feed.id, now, due, f"HTTP {result.status}", etag=result.etag,
                                      last_modified=result.last_modified, title=parsed.title,
                                      new_entries=new_entries, ttl_s=parsed.ttl_s, warning=parsed.warning)
            self.store.record_poll_state(feed.id, rate_per_h=rate, interval_s=interval, hint_s=hint,
                                         fetch_ms=round(took_s * 1000, 1), body_hash=_body_hash(result.content))
        stats.feeds_ok += 1
        log.info("feed %r: %d entries, %d new; next poll in %s", feed.name, len(parsed.entries) + parsed.known,
                 new_entries, _human(due - now))

    def _record_unchanged(self, feed: FeedState, result: FetchResult, info: PollInfo, took_s: float,
                          now: datetime, stats: CycleStats) -> None:
        stats.feeds_not_modified += 1
        self.observer.poll("not_modified", took_s)
        rate = info.rate_per_h
        if info.last_ok_at is not None:
            rate = schedule.update_rate(rate or self._prior_rate(), 0, (now - info.last_ok_at).total_seconds())
        headers = result.headers if isinstance(result, (Fetched, NotModified)) else {}
        hint = schedule.hint_floor_s(info.ttl_s, schedule.cache_max_age_s(headers))
        interval = self._interval(feed, rate)
        due = schedule.next_due_ok(now, interval, self.config.settings.poll.jitter, self.rng, hint)
        status = "304 not modified" if isinstance(result, NotModified) else "200 unchanged body"
        with self.store.transaction():
            # a 200 with an unchanged body may still carry a new ETag: keep what the server sent last
            if isinstance(result, Fetched):
                self.store.record_feed_ok(feed.id, now, due, status, etag=result.etag,
                                          last_modified=result.last_modified)
            else:
                self.store.record_feed_ok(feed.id, now, due, status, keep_cache=True)
            self.store.record_poll_state(feed.id, rate_per_h=rate, interval_s=interval, hint_s=hint,
                                         fetch_ms=round(took_s * 1000, 1), keep_hash=True)
        log.debug("feed %r: %s; next poll in %s", feed.name, status, _human(due - now))

    def _record_error(self, feed: FeedState, failure: FetchFailed, stats: CycleStats) -> None:
        now = self.clock()
        poll = self.config.settings.poll
        interval = self._interval(feed, self.store.poll_info(feed.id).rate_per_h)
        due = schedule.next_due_error(now, interval, feed.error_count + 1, poll.backoff_max,
                                      poll.jitter, self.rng, failure.retry_after_s)
        status = f"HTTP {failure.status}" if failure.status else "error"
        count = self.store.record_feed_error(feed.id, now, due, status, failure.reason, disable=failure.permanent)
        stats.feeds_failed += 1
        stats.errors.append(f"{feed.name}: {failure.reason}")
        if failure.permanent:
            log.error("feed %r: %s; feed disabled (remove it from feeds.yaml, or fix the URL)", feed.name,
                      failure.reason)
            stats._newly_failing.append((feed, failure.reason, count))
            return
        failing = count >= poll.failing_after
        log.log(logging.ERROR if failing else logging.WARNING, "feed %r: %s (%d consecutive failures; "
                "next try in %s)", feed.name, failure.reason, count, _human(due - now))
        if failing and self.store.mark_failing(feed.id, now):
            stats._newly_failing.append((feed, failure.reason, count))

    def _notify_failing(self, stats: CycleStats) -> None:
        """Feeds that just crossed poll.failing_after (or were disabled by a 410): flagged in `monitor feeds`
        and `monitor status`; told once to poll.failing_channel when one is configured."""
        channel = self.config.settings.poll.failing_channel
        for feed, reason, count in stats._newly_failing:
            log.error("feed %r is failing: %s (%d consecutive errors)", feed.name, reason, count)
            if channel is None:
                continue
            message = Message(title=f"monitor: feed {feed.name!r} is failing",
                              body=f"{feed.url}\n{reason}\n{count} consecutive errors; see `monitor feeds`.",
                              severity="warning")
            results = [send(url, message, self.config.settings.alerts.send_timeout)
                       for url in self.config.channels.get(channel, [])]
            if results and all(r.ok for r in results):
                self.store.mark_failing_notified(feed.id)
            else:
                log.warning("feed %r: could not tell channel %r that it is failing: %s", feed.name, channel,
                            "; ".join(r.reason for r in results if not r.ok))

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
        # computed by the parser process when there is one: this thread is a first cycle's bottleneck
        canonical = {guid: e.canonical_link if e.canonical_link is not None else canonical_url(e.link)
                     for guid, e in fresh.items()}
        # One transaction from entry to outbox row: a crash can never leave a stored (so "seen") entry
        # whose story was not matched and queued.
        with self.store.transaction():
            same_url = self.store.entries_by_canonical_url(canonical.values())  # one query for the batch
            for guid, entry in fresh.items():
                self._store_entry(entry, canonical[guid], same_url, now, pending)
            stats.alerts_queued += self._assess_stories(pending, now)
            follow_up = self.config.settings.stories.follow_up
            if follow_up.enabled:
                for story_id in pending.grown:
                    self.store.queue_follow_ups(story_id, follow_up.every, now)
        merged: dict[int, int] = {}
        for keep, gone in pending.index_merges:
            self.index.merge(keep, gone)
            merged[gone] = keep
        for entry_id, story_id, entry in pending.index_adds:
            while story_id in merged:  # an entry of this batch joined a story that a later one merged
                story_id = merged[story_id]
            self.index.add(entry_id, story_id, entry.title, entry.summary, story_time(entry.published, now))
        stats.entries_new += len(fresh)
        stats.stories_new += len(pending.new_stories)
        return len(fresh)

    def _store_entry(self, entry: Entry, canonical: str, same_url: dict[str, tuple[int, int | None]],
                     now: datetime, pending: _Pending) -> None:
        """Store one new entry: a copy of a stored link, a copy of a story, or a new story. ``same_url`` (the
        stored entries by canonical link) learns the entries of the batch as they are stored."""
        if canonical in same_url:
            original, stored_story = same_url[canonical]
            story_id = pending.current(stored_story) if stored_story else None
            self.store.insert_entry(entry, canonical, now, story_id, 1.0, duplicate_of=original)
            if story_id:
                self.store.add_to_story(story_id, entry.feed_name, now)
                pending.grown[story_id] = None
            return
        found = self.index.match(entry.title, entry.summary, story_time(entry.published, now))
        if found is not None:
            story_id = self._bridge(found.story_id, found.bridges, pending)
            entry_id = self.store.insert_entry(entry, canonical, now, story_id, found.similarity)
            self.store.add_to_story(story_id, entry.feed_name, now)
            pending.index_adds.append((entry_id, story_id, entry))
            pending.grown[story_id] = None
        else:
            entry_id = self.store.insert_entry(entry, canonical, now, None)
            alertable = self._alertable(entry, now)
            story_id = self.store.create_story(entry, entry_id, now, alertable=alertable)
            pending.index_adds.append((entry_id, story_id, entry))
            pending.new_stories.append(story_id)
            pending.leads[story_id] = (entry, alertable)
        if canonical:
            same_url[canonical] = (entry_id, story_id)

    def _bridge(self, story_id: int, bridges: Sequence[int], pending: _Pending) -> int:
        """An entry that is clearly a copy of several stories shows they are one: merge them into the oldest
        (the store keeps its alerts once per watchlist channel); the index follows after the commit."""
        keep = min(story_id, *bridges) if bridges else story_id
        for gone in sorted({story_id, *bridges} - {keep}):
            self.store.merge_stories(keep, gone)
            pending.index_merges.append((keep, gone))
            log.info("story %d merged into story %d (an entry bridges them)", gone, keep)
        return keep

    def _alertable(self, entry: Entry, now: datetime) -> bool:
        """Backlog guard: entries older than alerts.max_age when first seen are stored, never alerted."""
        max_age = self.config.settings.alerts.max_age
        return max_age is None or (now - entry.published).total_seconds() <= max_age

    def _assess_stories(self, pending: _Pending, now: datetime) -> int:
        """Score the batch's new stories (in one classifier call), match each alertable one against every
        watchlist and queue its alerts; return how many were queued."""
        stories = self._new_story_views(pending)
        if self.scorer is not None and stories:
            verdicts = self._predict([(view.title, view.summary) for view, _ in stories])
            for index, ((view, alertable), verdict) in enumerate(zip(stories, verdicts, strict=True)):
                if verdict.threshold is None:
                    verdict = dataclasses.replace(verdict, threshold=self.scorer.threshold)
                self.store.set_verdict(view.id, verdict)
                stories[index] = (dataclasses.replace(view, verdict=verdict), alertable)
        # backlog (non-alertable) stories are stored and scored, never matched
        return sum(self._assess_story(view, now) for view, alertable in stories if alertable)

    def _new_story_views(self, pending: _Pending) -> list[tuple[StoryView, bool]]:
        """(view, alertable) of each new story of the batch, as ``store.story()`` would give it, built from
        its lead entry instead of read back; a story that a bridge merged is read back (or gone)."""
        merged = {story for pair in pending.index_merges for story in pair}
        feed_tags: tuple[str, ...] | None = None
        views = []
        for story_id in pending.new_stories:
            if story_id in merged:
                row = self.store.story(story_id)
                if row is not None:
                    views.append((row.view, row.alertable))
                continue
            entry, alertable = pending.leads[story_id]
            if feed_tags is None:  # one feed per batch: its tags are looked up once
                feed_tags = self.store.feed_tags_of(entry.feed_name)
            views.append((StoryView(id=story_id, title=entry.title, summary=entry.summary, link=entry.link,
                                    feed_name=entry.feed_name, published=entry.published.astimezone(UTC),
                                    feed_tags=feed_tags, sources=(entry.feed_name,)), alertable))
        return views

    def _predict(self, items: list[tuple[str, str]]) -> list[Verdict]:
        assert self.scorer is not None
        # the Classifier scores a batch in one vectorized call; a scorer without predict_many goes one by one
        predict_many = getattr(self.scorer, "predict_many", None)
        if predict_many is not None:
            return list(predict_many(items))
        return [self.scorer.predict(title, summary) for title, summary in items]

    def _assess_story(self, view: StoryView, now: datetime) -> int:
        """Match one new, alertable story against every watchlist and queue its alerts; return how many."""
        story_id = view.id
        doc = prepare(view)  # normalized once, shared by every watchlist
        matches = []
        for watchlist in self.watchlists:
            match = watchlist.match(view, doc)
            if match is not None and self.store.record_match(story_id, match.watchlist, match.why, now):
                matches.append(match)
        queued = 0
        for channel_match, route in combine_by_channel(matches):
            if self.deliverer.enqueue(view, channel_match, route, now):
                queued += 1
                if self.config.settings.stories.follow_up.enabled:
                    self.store.follow_up_base(story_id, route.channel, len(view.sources), now)
        return queued


_SEVERITY_ORDER = ("info", "success", "warning", "failure")


def combine_by_channel(matches: Sequence[Match]) -> list[tuple[Match, Route]]:
    """One alert per story per channel: when several watchlists send the same story to one channel, their
    names and reasons are merged into one message (the most severe severity, urgent if any route is, and
    instant unless every route asks for the digest)."""
    by_channel: dict[str, list[tuple[Match, Route]]] = {}
    for match in matches:
        for route in match.routes:
            by_channel.setdefault(route.channel, []).append((match, route))
    combined = []
    for channel, pairs in by_channel.items():
        if len(pairs) == 1:
            combined.append(pairs[0])
            continue
        names = list(dict.fromkeys(m.watchlist for m, _ in pairs))
        why = "; ".join(f"[{m.watchlist}] {m.why}" for m, _ in pairs)
        modes = {r.mode for _, r in pairs}
        mode = None if None in modes else ("instant" if "instant" in modes else "digest")
        severity = max((r.severity for _, r in pairs), key=_SEVERITY_ORDER.index)
        route = Route(channel=channel, mode=mode, severity=severity, urgent=any(r.urgent for _, r in pairs))
        first = pairs[0][0]
        match = Match(story_id=first.story_id, watchlist=", ".join(names), routes=(route,), why=why,
                      severity=severity)
        combined.append((match, route))
    return combined


def _body_hash(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _human(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


def _parse_here(job: ParseJob) -> ParsedFeed | ParseError:
    try:
        return run_job(job)
    except ParseError as exc:
        return exc

