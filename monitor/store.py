"""The only module with SQL: feeds, entries, stories, matches, alerts (the outbox) and labels.

Times are stored as ISO-8601 UTC strings with a fixed format, so they sort and compare as text.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .config import FeedConfig
from .errors import StoreError
from .migrations import migrate
from .models import Alert, Entry, FeedState, StoryView, Verdict

log = logging.getLogger(__name__)

DB_NAME = "monitor.db"


def ts(when: datetime) -> str:
    """The stored form of a time: UTC, ISO 8601 with microseconds and "Z" (sorts as text)."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)  # (3.11+ reads the "Z"; 40x faster than strptime)


@dataclass(frozen=True)
class FeedRow:
    """A feed with its health, for `monitor feeds` and `monitor status`."""

    state: FeedState
    in_config: bool
    disabled_reason: str | None
    last_polled_at: datetime | None
    last_ok_at: datetime | None
    next_due_at: datetime | None
    last_status: str | None
    entry_count: int


@dataclass(frozen=True)
class StoryRow:
    view: StoryView
    first_seen_at: datetime
    last_seen_at: datetime
    size: int
    alertable: bool


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    severity: str
    why: str
    sent_at: datetime | None
    delivered: frozenset[str] = frozenset()  # target keys of the channel's URLs that already accepted it
    mode: str = "instant"  # instant | digest (also set when the rate limit moved it to the digest)
    urgent: bool = False
    note: str | None = None  # why it went to a digest instead of out at once, e.g. "rate limit"
    digest_id: int | None = None
    failed_at: datetime | None = None
    requeued_at: datetime | None = None  # `monitor alerts retry`: the retry age counts from here


@dataclass(frozen=True)
class DigestRow:
    """A composed digest message (delivery section): its alerts are fixed when it is committed."""

    id: int
    channel: str
    period_start: datetime
    period_end: datetime
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered: frozenset[str]
    failures: tuple[int, ...]  # ids of failed alerts this digest reports


@dataclass(frozen=True)
class FollowUpRow:
    """A follow-up update of an alerted story on one channel (stories section)."""

    id: int
    story_id: int
    channel: str
    step: int
    outlets: int
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered: frozenset[str]
    title: str
    link: str


@dataclass(frozen=True)
class PollInfo:
    """A feed's scheduling state beyond FeedState (polling section)."""

    rate_per_h: float | None
    last_ok_at: datetime | None
    body_hash: str | None
    failing_since: datetime | None
    failing_notified: bool
    hint_s: float | None
    ttl_s: float | None
    config_url: str | None


@dataclass(frozen=True)
class SizeReport:
    """How big the database is and how much of it entry text takes (polling section: retention)."""

    file_bytes: int
    free_bytes: int
    wal_bytes: int
    entries: int
    pruned_entries: int
    entry_text_bytes: int


class Store:
    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open (creating if needed) state_dir/monitor.db, enable WAL and run migrations."""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            path = state_dir / DB_NAME
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            raise StoreError(f"cannot open state database in {state_dir}: {exc}") from exc
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def _update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        """UPDATE one row by id; ``table`` and the column names come from our code, never from input."""
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])

    # -- feeds -----------------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[FeedConfig], now: datetime) -> None:
        """Make the feeds table follow feeds.yaml: add new feeds (due now), update changed ones and mark
        feeds no longer configured so they are not polled (their history is kept)."""
        configured = {feed.url: feed for feed in feeds}
        with self.transaction():
            # a feed that moved (301/308) is still known by the address written in feeds.yaml
            existing = {row["url"]: row for row in self._rows(
                "SELECT id, COALESCE(config_url, url) AS url, disabled_reason FROM feeds")}
            for url, feed in configured.items():
                values = {"name": feed.name, "tags": json.dumps(list(feed.tags)), "interval_s": feed.interval_s,
                          "in_config": 1}
                # db.table() rather than db[...]: the latter is typed Table | View and these are tables
                if url in existing:
                    if existing[url]["disabled_reason"] is None:
                        values["enabled"] = int(feed.enabled)
                    self.db.table("feeds").update(existing[url]["id"], values)
                else:
                    self.db.table("feeds").insert({"url": url, **values, "enabled": int(feed.enabled),
                                                   "created_at": ts(now), "next_due_at": ts(now)})
            gone = [row["id"] for url, row in existing.items() if url not in configured]
            for feed_id in gone:
                self.db.table("feeds").update(feed_id, {"in_config": 0})

    def active_feeds(self) -> list[FeedState]:
        return [self._feed_state(row) for row in self._rows(
            "SELECT * FROM feeds WHERE enabled = 1 AND in_config = 1 ORDER BY id")]

    def due_feeds(self, now: datetime, limit: int | None = None) -> list[FeedState]:
        sql = ("SELECT * FROM feeds WHERE enabled = 1 AND in_config = 1 AND "
               "(next_due_at IS NULL OR next_due_at <= ?) ORDER BY next_due_at")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._feed_state(row) for row in self._rows(sql, [ts(now)])]

    def feed_rows(self) -> list[FeedRow]:
        rows = self._rows("SELECT f.*, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id) AS n "
                          "FROM feeds f ORDER BY f.in_config DESC, f.name")
        return [FeedRow(state=self._feed_state(r), in_config=bool(r["in_config"]),
                        disabled_reason=r["disabled_reason"], last_polled_at=from_ts(r["last_polled_at"]),
                        last_ok_at=from_ts(r["last_ok_at"]), next_due_at=from_ts(r["next_due_at"]),
                        last_status=r["last_status"], entry_count=r["n"]) for r in rows]

    @staticmethod
    def _feed_state(row: dict[str, Any]) -> FeedState:
        return FeedState(id=row["id"], url=row["url"], name=row["name"], tags=tuple(json.loads(row["tags"])),
                         interval_s=int(row["interval_s"] or 0), enabled=bool(row["enabled"]),
                         etag=row["etag"], last_modified=row["last_modified"], error_count=row["error_count"],
                         last_error=row["last_error"])

    def record_feed_ok(self, feed_id: int, now: datetime, next_due: datetime, status: str, *,
                       etag: str | None = None, last_modified: str | None = None, keep_cache: bool = False,
                       title: str | None = None, new_entries: int = 0, ttl_s: float | None = None,
                       warning: str | None = None) -> None:
        values: dict[str, Any] = {"last_polled_at": ts(now), "last_ok_at": ts(now), "next_due_at": ts(next_due),
                                  "last_status": status, "last_error": warning, "error_count": 0,
                                  "last_new_entries": new_entries}
        if not keep_cache:
            values.update(etag=etag, last_modified=last_modified)
        if title:
            values["title"] = title
        if ttl_s:
            values["ttl_s"] = ttl_s
        self._update("feeds", feed_id, values)

    def record_feed_error(self, feed_id: int, now: datetime, next_due: datetime, status: str, error: str,
                          disable: bool = False) -> int:
        row = self.db.execute("SELECT error_count FROM feeds WHERE id = ?", [feed_id]).fetchone()
        if row is None:
            raise StoreError(f"feed #{feed_id} is not in the database")
        count = int(row[0]) + 1
        values: dict[str, Any] = {"last_polled_at": ts(now), "next_due_at": ts(next_due), "last_status": status,
                                  "last_error": error, "error_count": count}
        if disable:
            values.update(enabled=0, disabled_reason=error)
        self._update("feeds", feed_id, values)
        return count

    def move_feed(self, feed_id: int, new_url: str) -> None:
        """A permanent redirect: remember the new address (unless another feed already has it)."""
        if not self._rows("SELECT 1 FROM feeds WHERE url = ?", [new_url]):
            self.db.execute("UPDATE feeds SET config_url = COALESCE(config_url, url), url = ? WHERE id = ?",
                            [new_url, feed_id])

    # -- entries ---------------------------------------------------------------------------------------

    def known_guids(self, feed_id: int, guids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(guids), 500):
            marks = ",".join("?" * len(chunk))
            found.update(r["guid"] for r in self._rows(
                f"SELECT guid FROM entries WHERE feed_id = ? AND guid IN ({marks})", [feed_id, *chunk]))
        return found

    def entries_by_canonical_url(self, urls: Iterable[str]) -> dict[str, tuple[int, int | None]]:
        """url -> (id, story id) of the stored entry (not itself a duplicate) with that canonical link."""
        found: dict[str, tuple[int, int | None]] = {}
        for chunk in _chunks([url for url in set(urls) if url], 500):
            marks = ",".join("?" * len(chunk))
            for url, entry_id, story_id in self.db.execute(
                    f"SELECT canonical_url, id, story_id FROM entries WHERE canonical_url IN ({marks}) "
                    "AND duplicate_of IS NULL ORDER BY id", chunk):
                found.setdefault(url, (entry_id, story_id))
        return found

    # The per-entry writes below are plain parameterized SQL: sqlite-utils' table.insert/update/get introspect
    # the table's schema on every call, which cost more than the writes themselves on a first cycle.

    def insert_entry(self, entry: Entry, canonical: str, now: datetime, story_id: int | None,
                     similarity: float | None = None, duplicate_of: int | None = None) -> int:
        cursor = self.db.execute(
            "INSERT INTO entries (feed_id, guid, canonical_url, link, title, summary, author, tags, published_at, "
            "published_known, first_seen_at, story_id, similarity, duplicate_of) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry.feed_id, entry.guid, canonical or None, entry.link, entry.title, entry.summary, entry.author,
             json.dumps(list(entry.tags)), ts(entry.published), int(entry.published_known), ts(now), story_id,
             similarity, duplicate_of])
        return _inserted_id(cursor)

    def entries_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Lead and member entries first seen after ``since`` (to rebuild the story index at start)."""
        return self.db.query("SELECT id, story_id, title, summary, published_at, first_seen_at FROM entries "
                             "WHERE first_seen_at >= ? AND duplicate_of IS NULL AND story_id IS NOT NULL "
                             "AND pruned = 0 ORDER BY id", [ts(since)])

    def background_texts(self, limit: int = 20000) -> list[tuple[str, str]]:
        """Recent stored (title, summary) pairs, for training the classifier on the user's own stream."""
        return [(r["title"], r["summary"]) for r in self._rows(
            "SELECT title, summary FROM stories ORDER BY id DESC LIMIT ?", [limit])]

    # -- stories ---------------------------------------------------------------------------------------

    def create_story(self, entry: Entry, entry_id: int, now: datetime, alertable: bool) -> int:
        cursor = self.db.execute(
            "INSERT INTO stories (lead_entry_id, title, link, summary, feed_name, published_at, first_seen_at, "
            "last_seen_at, size, sources, alertable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            [entry_id, entry.title, entry.link, entry.summary, entry.feed_name, ts(entry.published), ts(now),
             ts(now), json.dumps([entry.feed_name]), int(alertable)])
        story_id = _inserted_id(cursor)
        self.db.execute("UPDATE entries SET story_id = ? WHERE id = ?", [story_id, entry_id])
        return story_id

    def add_to_story(self, story_id: int, feed_name: str, now: datetime) -> None:
        row = self.db.execute("SELECT size, sources FROM stories WHERE id = ?", [story_id]).fetchone()
        if row is None:
            raise StoreError(f"story #{story_id} is not in the database")
        sources = json.loads(row[1])
        if feed_name not in sources:
            sources.append(feed_name)
        self.db.execute("UPDATE stories SET size = ?, sources = ?, last_seen_at = ? WHERE id = ?",
                        [row[0] + 1, json.dumps(sources), ts(now), story_id])

    def set_verdict(self, story_id: int, verdict: Verdict) -> None:
        self._update("stories", story_id, {
            "score": verdict.score, "subtopics": json.dumps(list(verdict.subtopics)),
            "top_terms": json.dumps(list(verdict.top_terms)), "model_version": verdict.model_version,
            "score_threshold": verdict.threshold})

    def story(self, story_id: int) -> StoryRow | None:
        rows = self._rows(_STORY_SQL + " WHERE s.id = ?", [story_id])
        return _story_row(rows[0]) if rows else None

    def recent_stories(self, limit: int = 50, since: datetime | None = None) -> list[StoryRow]:
        sql = _STORY_SQL + (" WHERE s.first_seen_at >= ?" if since else "") + " ORDER BY s.id DESC LIMIT ?"
        params: list[Any] = [ts(since)] if since else []
        return [_story_row(r) for r in self._rows(sql, [*params, limit])]

    def story_members(self, story_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT e.id, e.title, e.link, e.published_at, e.first_seen_at, e.similarity, "
                          "f.name AS feed FROM entries e JOIN feeds f ON f.id = e.feed_id "
                          "WHERE e.story_id = ? ORDER BY e.id", [story_id])

    # -- matches and alerts (the outbox) -----------------------------------------------------------------

    def record_match(self, story_id: int, watchlist: str, why: str, now: datetime) -> bool:
        """Remember that a story matched a watchlist; False when it already had."""
        cursor = self.db.execute("INSERT OR IGNORE INTO matches (story_id, watchlist, why, created_at) "
                                 "VALUES (?, ?, ?, ?)", [story_id, watchlist, why, ts(now)])
        return cursor.rowcount > 0

    def enqueue_alert(self, story_id: int, watchlist: str, channel: str, why: str, severity: str,
                      now: datetime, not_before: datetime | None = None, *, mode: str = "instant",
                      urgent: bool = False) -> int | None:
        """Add an outbox row unless one exists for (story, watchlist, channel); return its id if new."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO alerts (story_id, watchlist, channel, severity, why, state, created_at, "
            "next_attempt_at, mode, urgent) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            [story_id, watchlist, channel, severity, why, ts(now), ts(not_before or now), mode, int(urgent)])
        return _inserted_id(cursor) if cursor.rowcount else None

    def due_alerts(self, now: datetime) -> list[AlertRow]:
        return [_alert_row(r) for r in self._rows(
            _ALERT_SQL + " WHERE a.state = 'pending' AND a.mode = 'instant' AND a.digest_id IS NULL "
            "AND a.next_attempt_at <= ? ORDER BY a.id", [ts(now)])]

    def alerts(self, state: str | None = None, limit: int = 50) -> list[AlertRow]:
        where = " WHERE a.state = ?" if state else ""
        params: list[Any] = [state] if state else []
        return [_alert_row(r) for r in self._rows(_ALERT_SQL + where + " ORDER BY a.id DESC LIMIT ?",
                                                  [*params, limit])]

    def mark_sent(self, alert_id: int, now: datetime) -> None:
        self.db.execute("UPDATE alerts SET state = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL "
                        "WHERE id = ?", [ts(now), alert_id])

    def mark_retry(self, alert_id: int, error: str, next_attempt: datetime) -> None:
        self.db.execute("UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                        "WHERE id = ?", [error, ts(next_attempt), alert_id])

    def mark_delivered_to(self, alert_id: int, target: str) -> None:
        """Remember one URL of the channel that accepted the alert, so a retry skips it."""
        self.db.execute("UPDATE alerts SET delivered = (SELECT json_group_array(value) FROM (SELECT value FROM "
                        "json_each(delivered) UNION SELECT ?)) WHERE id = ?", [target, alert_id])

    def mark_failed(self, alert_id: int, error: str, now: datetime | None = None) -> None:
        self.db.execute("UPDATE alerts SET state = 'failed', attempts = attempts + 1, last_error = ?, failed_at = ? "
                        "WHERE id = ?", [error, ts(now or datetime.now(UTC)), alert_id])

    def retry_alerts(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Put failed alerts (all, or the given ids) back in the queue; one that was in a failed digest
        goes into the channel's next digest."""
        requeue = ("UPDATE alerts SET state = 'pending', next_attempt_at = ?, digest_id = NULL, failed_at = NULL, "
                   "attempts = 0, requeued_at = ?")
        if ids is None:
            cursor = self.db.execute(requeue + " WHERE state = 'failed'", [ts(now), ts(now)])
        else:
            marks = ",".join("?" * len(ids))
            cursor = self.db.execute(requeue + f" WHERE id IN ({marks}) AND state != 'sent'", [ts(now), ts(now), *ids])
        return int(cursor.rowcount)

    def count_alerts(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self._rows("SELECT state, COUNT(*) AS n FROM alerts GROUP BY state")}

    # == delivery (issue 6: modes, digests, quiet hours, rate limits) ===================================
    # Outbox rows beyond the core: quiet-hour holds, rate-limit overflow, digests, and each channel's digest
    # clock. Every state change is one statement or one transaction, so a crash leaves a consistent outbox.

    def hold_alert(self, alert_id: int, until: datetime, note: str) -> None:
        """Quiet hours: try again when the window ends (not a failed attempt, so no backoff and no age)."""
        self.db.execute("UPDATE alerts SET next_attempt_at = ?, note = ? WHERE id = ?", [ts(until), note, alert_id])

    def move_to_digest(self, alert_id: int, note: str) -> None:
        """Rate-limit overflow: the alert waits for the channel's next digest instead of being dropped."""
        self.db.execute("UPDATE alerts SET mode = 'digest', note = ? WHERE id = ? AND state = 'pending' "
                        "AND digest_id IS NULL", [note, alert_id])

    def instant_sent_since(self, channel: str, since: datetime) -> int:
        """Alerts sent to the channel one by one (not in a digest) since ``since``: the rate limit's count."""
        return int(self._rows("SELECT COUNT(*) AS n FROM alerts WHERE channel = ? AND state = 'sent' AND "
                              "digest_id IS NULL AND sent_at >= ?", [channel, ts(since)])[0]["n"])

    def last_digest_at(self, channel: str, now: datetime) -> datetime:
        """When the channel's last digest period ended; the first call starts the channel's clock at ``now``."""
        self.db.execute("INSERT OR IGNORE INTO channel_state (channel, last_digest_at, composed_at) "
                        "VALUES (?, ?, ?)", [channel, ts(now), ts(now)])
        value = from_ts(self._rows("SELECT last_digest_at FROM channel_state WHERE channel = ?",
                                   [channel])[0]["last_digest_at"])
        assert value is not None
        return value

    def digest_clock(self) -> dict[str, datetime]:
        """Channel -> end of its last digest period, for `monitor status`."""
        return {r["channel"]: from_ts(r["last_digest_at"]) or datetime.min.replace(tzinfo=UTC)
                for r in self._rows("SELECT channel, last_digest_at FROM channel_state ORDER BY channel")}

    def waiting_for_digest(self, channel: str | None = None) -> int:
        where = " AND channel = ?" if channel else ""
        return int(self._rows("SELECT COUNT(*) AS n FROM alerts WHERE state = 'pending' AND mode = 'digest' AND "
                              "digest_id IS NULL" + where, [channel] if channel else [])[0]["n"])

    def compose_digest(self, channel: str, period_start: datetime, period_end: datetime, now: datetime,
                       report_failures_alone: bool) -> int | None:
        """In one transaction: gather the channel's waiting alerts and the alerts that failed (on any channel)
        since the last digest into a new digest row, and move the channel's digest clock to ``period_end``.
        None when there is nothing to send (the clock still moves)."""
        with self.transaction():
            waiting = self._rows("SELECT id FROM alerts WHERE channel = ? AND state = 'pending' AND mode = 'digest' "
                                 "AND digest_id IS NULL", [channel])
            composed = self._rows("SELECT composed_at FROM channel_state WHERE channel = ?", [channel])
            since = composed[0]["composed_at"] if composed else ts(period_start)
            failures = [r["id"] for r in self._rows(
                "SELECT id FROM alerts WHERE state = 'failed' AND failed_at > ? AND failed_at <= ? ORDER BY id",
                [since, ts(now)])]
            self.db.execute("INSERT INTO channel_state (channel, last_digest_at, composed_at) VALUES (?, ?, ?) "
                            "ON CONFLICT(channel) DO UPDATE SET last_digest_at = excluded.last_digest_at, "
                            "composed_at = excluded.composed_at", [channel, ts(period_end), ts(now)])
            if not waiting and not (failures and report_failures_alone):
                return None
            digest_id = _inserted_id(self.db.execute(
                "INSERT INTO digests (channel, period_start, period_end, state, created_at, next_attempt_at, "
                "failures) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                [channel, ts(period_start), ts(period_end), ts(now), ts(now), json.dumps(failures)]))
            self.db.execute("UPDATE alerts SET digest_id = ? WHERE channel = ? AND state = 'pending' AND "
                            "mode = 'digest' AND digest_id IS NULL", [digest_id, channel])
        return digest_id

    def due_digests(self, now: datetime) -> list[DigestRow]:
        return [_digest_row(r) for r in self._rows(
            "SELECT * FROM digests WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id", [ts(now)])]

    def digests(self, limit: int = 20) -> list[DigestRow]:
        return [_digest_row(r) for r in self._rows("SELECT * FROM digests ORDER BY id DESC LIMIT ?", [limit])]

    def digest_alerts(self, digest_id: int) -> list[AlertRow]:
        return [_alert_row(r) for r in self._rows(_ALERT_SQL + " WHERE a.digest_id = ? ORDER BY a.id", [digest_id])]

    def alerts_by_id(self, ids: Sequence[int]) -> list[AlertRow]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [_alert_row(r) for r in self._rows(_ALERT_SQL + f" WHERE a.id IN ({marks}) ORDER BY a.id", list(ids))]

    def mark_digest_delivered_to(self, digest_id: int, target: str) -> None:
        self.db.execute("UPDATE digests SET delivered = (SELECT json_group_array(value) FROM (SELECT value FROM "
                        "json_each(delivered) UNION SELECT ?)) WHERE id = ?", [target, digest_id])

    def mark_digest_sent(self, digest_id: int, now: datetime) -> None:
        with self.transaction():
            self.db.execute("UPDATE digests SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
                            "last_error = NULL WHERE id = ?", [ts(now), digest_id])
            self.db.execute("UPDATE alerts SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
                            "last_error = NULL WHERE digest_id = ? AND state = 'pending'", [ts(now), digest_id])

    def mark_digest_retry(self, digest_id: int, error: str, next_attempt: datetime) -> None:
        self.db.execute("UPDATE digests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                        "WHERE id = ?", [error, ts(next_attempt), digest_id])

    def mark_digest_failed(self, digest_id: int, error: str, now: datetime) -> None:
        with self.transaction():
            self.db.execute("UPDATE digests SET state = 'failed', attempts = attempts + 1, last_error = ? "
                            "WHERE id = ?", [error, digest_id])
            self.db.execute("UPDATE alerts SET state = 'failed', attempts = attempts + 1, failed_at = ?, "
                            "last_error = ? WHERE digest_id = ? AND state = 'pending'",
                            [ts(now), f"digest #{digest_id}: {error}", digest_id])

    # == end of delivery section ===========================================================================

    # -- labels and meta -------------------------------------------------------------------------------

    def add_label(self, story_id: int, label: int, subtopics: Sequence[str], now: datetime) -> None:
        story = self.db.table("stories").get(story_id)
        self.db.execute("INSERT INTO labels (story_id, title, summary, label, subtopics, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(story_id) DO UPDATE SET label = excluded.label, "
                        "subtopics = excluded.subtopics, created_at = excluded.created_at",
                        [story_id, story["title"], story["summary"], label, json.dumps(list(subtopics)), ts(now)])

    def labels(self) -> list[dict[str, Any]]:
        return [{**r, "subtopics": json.loads(r["subtopics"])} for r in self._rows("SELECT * FROM labels ORDER BY id")]

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                        "excluded.value", [key, json.dumps(value)])

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", [key])
        return json.loads(rows[0]["value"]) if rows else default

    def counts(self) -> dict[str, int]:
        return {table: int(self._rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])
                for table in ("feeds", "entries", "stories", "matches", "alerts", "labels")}

    # == watchlists (issue 7: replay and explain) ========================================================

    def stories_since(self, since: datetime | None) -> Iterator[StoryRow]:
        """Stories first seen at or after ``since`` (all when None), oldest first, with their stored verdicts."""
        sql = _STORY_SQL + (" WHERE s.first_seen_at >= ?" if since else "") + " ORDER BY s.first_seen_at, s.id"
        for row in self.db.query(sql, [ts(since)] if since else []):
            yield _story_row(row)

    def story_matches(self, story_id: int) -> dict[str, datetime | None]:
        """Watchlist name -> when the story matched it (as recorded by the pipeline)."""
        return {r["watchlist"]: from_ts(r["created_at"]) for r in self._rows(
            "SELECT watchlist, created_at FROM matches WHERE story_id = ? ORDER BY watchlist", [story_id])}

    # == end of watchlists section =========================================================================


    # == polling (issue 5: polling at scale) ==============================================================
    # Per-feed scheduling state beyond the core columns, failing flags, retention and size figures.

    def poll_info(self, feed_id: int) -> PollInfo:
        row = self._rows("SELECT rate_per_h, last_ok_at, body_hash, failing_since, failing_notified, hint_s, "
                         "ttl_s, config_url FROM feeds WHERE id = ?", [feed_id])[0]
        return PollInfo(rate_per_h=row["rate_per_h"], last_ok_at=from_ts(row["last_ok_at"]),
                        body_hash=row["body_hash"], failing_since=from_ts(row["failing_since"]),
                        failing_notified=bool(row["failing_notified"]), hint_s=row["hint_s"], ttl_s=row["ttl_s"],
                        config_url=row["config_url"])

    def record_poll_state(self, feed_id: int, *, rate_per_h: float | None, interval_s: float,
                          hint_s: float | None, fetch_ms: float | None, body_hash: str | None = None,
                          keep_hash: bool = False) -> None:
        """The scheduling figures of a successful poll; clears the failing flag."""
        values: dict[str, Any] = {"rate_per_h": rate_per_h, "interval_eff_s": interval_s, "hint_s": hint_s,
                                  "fetch_ms": fetch_ms, "failing_since": None, "failing_notified": 0}
        if not keep_hash:
            values["body_hash"] = body_hash
        self._update("feeds", feed_id, values)

    def mark_failing(self, feed_id: int, now: datetime) -> bool:
        """Flag a feed as failing (once); True when it was not flagged before."""
        cursor = self.db.execute("UPDATE feeds SET failing_since = ? WHERE id = ? AND failing_since IS NULL",
                                 [ts(now), feed_id])
        return cursor.rowcount > 0

    def mark_failing_notified(self, feed_id: int) -> None:
        self.db.execute("UPDATE feeds SET failing_notified = 1 WHERE id = ?", [feed_id])

    def feed_tags_of(self, feed_name: str) -> tuple[str, ...]:
        """The tags a story led by an entry of ``feed_name`` shows (as ``story()`` computes them), so the
        pipeline can build a new story's view without reading the story back."""
        row = self.db.execute(_FEED_TAGS_SQL, [feed_name]).fetchone()
        return tuple(json.loads(row[0])) if row else ()

    def recent_guids(self, feed_id: int, limit: int = 1000) -> frozenset[str]:
        """The feed's most recent entry keys, so the parser can skip entries already stored."""
        return frozenset(r["guid"] for r in self._rows(
            "SELECT guid FROM entries WHERE feed_id = ? ORDER BY id DESC LIMIT ?", [feed_id, limit]))

    def poll_rows(self) -> dict[int, dict[str, Any]]:
        """Scheduling columns per feed id, for `monitor feeds` and `monitor status`."""
        return {r["id"]: r for r in self._rows(
            "SELECT id, rate_per_h, interval_eff_s, hint_s, failing_since, fetch_ms, config_url FROM feeds")}

    def feed_health_counts(self) -> dict[str, int]:
        row = self._rows("SELECT COALESCE(SUM(in_config), 0) AS configured, "
                         "COALESCE(SUM(in_config AND enabled = 0), 0) AS disabled, "
                         "COALESCE(SUM(in_config AND enabled = 1 AND failing_since IS NOT NULL), 0) AS failing, "
                         "COALESCE(SUM(in_config AND enabled = 1 AND error_count > 0), 0) AS erroring FROM feeds")[0]
        return {key: int(value) for key, value in row.items()}

    def count_due(self, now: datetime) -> int:
        return int(self._rows("SELECT COUNT(*) AS n FROM feeds WHERE enabled = 1 AND in_config = 1 AND "
                              "(next_due_at IS NULL OR next_due_at <= ?)", [ts(now)])[0]["n"])

    def prune_entries(self, before: datetime) -> int:
        """Drop the text of entries first seen before ``before``. Identity keys (feed, guid, canonical URL,
        link, story) stay so an old entry is never taken for new, and entries of stories that produced an
        alert keep their text."""
        cursor = self.db.execute(
            "UPDATE entries SET summary = '', author = NULL, tags = '[]', pruned = 1 "
            "WHERE pruned = 0 AND first_seen_at < ? AND (story_id IS NULL OR story_id NOT IN "
            "(SELECT story_id FROM alerts))", [ts(before)])
        self.db.execute(
            "UPDATE stories SET summary = '' WHERE first_seen_at < ? AND summary != '' AND id NOT IN "
            "(SELECT story_id FROM alerts) AND id NOT IN (SELECT story_id FROM labels WHERE story_id IS NOT NULL)",
            [ts(before)])
        return int(cursor.rowcount)

    def size_report(self) -> SizeReport:
        page_size = int(self.db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self.db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self.db.execute("PRAGMA freelist_count").fetchone()[0])
        wal = self.path.with_name(self.path.name + "-wal")
        entries = self._rows("SELECT COUNT(*) AS n, COALESCE(SUM(pruned), 0) AS pruned, "
                             "COALESCE(SUM(LENGTH(summary) + LENGTH(title)), 0) AS text FROM entries")[0]
        return SizeReport(file_bytes=page_size * pages, free_bytes=page_size * free,
                          wal_bytes=wal.stat().st_size if wal.exists() else 0, entries=int(entries["n"]),
                          pruned_entries=int(entries["pruned"]), entry_text_bytes=int(entries["text"]))

    def optimize(self) -> None:
        """Let SQLite refresh its query-planner statistics where they are stale (cheap; run periodically)."""
        self.db.execute("PRAGMA optimize")

    def vacuum(self) -> None:
        """Rewrite the file to give freed pages back to the file system (takes a while on big databases)."""
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # == end of polling section ============================================================================

    # == stories (issue 4: merging the stories an entry bridges; follow-up updates) =====================

    def merge_stories(self, keep: int, gone: int) -> None:
        """Merge story ``gone`` into the older story ``keep`` (an entry showed they are one story), in the
        caller's transaction: members, sources, size and seen times move to ``keep``; its matches, alerts
        and label too. Alerts stay once per (story, watchlist, channel): when both stories have a row for
        one pair, the row that was sent (or handed to a digest) survives, else the older one, so a story
        that was already alerted is never alerted again."""
        rows = {r["id"]: r for r in self._rows("SELECT * FROM stories WHERE id IN (?, ?)", [keep, gone])}
        if keep == gone or len(rows) != 2:
            return
        a, b = rows[keep], rows[gone]
        sources = list(dict.fromkeys(json.loads(a["sources"]) + json.loads(b["sources"])))
        self.db.execute("UPDATE stories SET size = ?, sources = ?, first_seen_at = ?, last_seen_at = ? WHERE id = ?",
                        [a["size"] + b["size"], json.dumps(sources), min(a["first_seen_at"], b["first_seen_at"]),
                         max(a["last_seen_at"], b["last_seen_at"]), keep])
        self.db.execute("UPDATE entries SET story_id = ? WHERE story_id = ?", [keep, gone])
        self.db.execute("INSERT OR IGNORE INTO matches (story_id, watchlist, why, created_at) "
                        "SELECT ?, watchlist, why, created_at FROM matches WHERE story_id = ?", [keep, gone])
        self.db.execute("DELETE FROM matches WHERE story_id = ?", [gone])
        self._merge_alerts(keep, gone)
        self.db.execute("UPDATE labels SET story_id = ? WHERE story_id = ? AND NOT EXISTS "
                        "(SELECT 1 FROM labels WHERE story_id = ?)", [keep, gone, keep])
        self.db.execute("DELETE FROM labels WHERE story_id = ?", [gone])
        self.db.execute("UPDATE OR IGNORE story_follow_ups SET story_id = ? WHERE story_id = ?", [keep, gone])
        self.db.execute("DELETE FROM story_follow_ups WHERE story_id = ?", [gone])
        self.db.execute("DELETE FROM stories WHERE id = ?", [gone])

    def _merge_alerts(self, keep: int, gone: int) -> None:
        for row in self._rows("SELECT * FROM alerts WHERE story_id = ?", [gone]):
            twin = self._rows("SELECT * FROM alerts WHERE story_id = ? AND watchlist = ? AND channel = ?",
                              [keep, row["watchlist"], row["channel"]])
            if not twin:
                self.db.execute("UPDATE alerts SET story_id = ? WHERE id = ?", [keep, row["id"]])
            elif _outgoing(row) and not _outgoing(twin[0]):
                # the merged story went out as `gone`: its row stands for the pair, the unsent twin goes
                self.db.execute("DELETE FROM alerts WHERE id = ?", [twin[0]["id"]])
                self.db.execute("UPDATE alerts SET story_id = ? WHERE id = ?", [keep, row["id"]])
            elif _outgoing(row):
                # both went out already: keep both rows (history), re-pointed under distinct watchlist names
                self.db.execute("UPDATE alerts SET story_id = ?, watchlist = watchlist || ' (merged #' || ? "
                                "|| ')' WHERE id = ?", [keep, gone, row["id"]])
            else:
                self.db.execute("DELETE FROM alerts WHERE id = ?", [row["id"]])

    def follow_up_base(self, story_id: int, channel: str, outlets: int, now: datetime) -> None:
        """Remember how many outlets a story had when its alert to ``channel`` was queued (step 0)."""
        self.db.execute("INSERT OR IGNORE INTO story_follow_ups (story_id, channel, step, outlets, state, "
                        "created_at, next_attempt_at) VALUES (?, ?, 0, ?, 'base', ?, ?)",
                        [story_id, channel, outlets, ts(now), ts(now)])

    def queue_follow_ups(self, story_id: int, every: int, now: datetime) -> int:
        """Queue the update a grown story is due on each channel its alert went out to: step k once it has
        k * ``every`` more outlets than at its alert. Only the newest step is queued (a story that grew by
        two steps at once gets one update); an older step still pending is superseded. Returns how many."""
        story = self._rows("SELECT sources FROM stories WHERE id = ?", [story_id])
        if not story:
            return 0
        outlets = len(json.loads(story[0]["sources"]))
        queued = 0
        for base in self._rows(
                "SELECT f.channel, f.outlets FROM story_follow_ups f WHERE f.story_id = ? AND f.step = 0 AND "
                "EXISTS (SELECT 1 FROM alerts a WHERE a.story_id = f.story_id AND a.channel = f.channel "
                "AND a.state = 'sent')", [story_id]):
            step = (outlets - base["outlets"]) // every
            if step < 1:
                continue
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO story_follow_ups (story_id, channel, step, outlets, state, created_at, "
                "next_attempt_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                [story_id, base["channel"], step, outlets, ts(now), ts(now)])
            if cursor.rowcount:
                queued += 1
                self.db.execute("UPDATE story_follow_ups SET state = 'superseded' WHERE story_id = ? AND "
                                "channel = ? AND state = 'pending' AND step < ? AND delivered = '[]'",
                                [story_id, base["channel"], step])
        return queued

    def due_follow_ups(self, now: datetime) -> list[FollowUpRow]:
        return [_follow_up_row(r) for r in self._rows(
            "SELECT f.*, s.title, s.link FROM story_follow_ups f JOIN stories s ON s.id = f.story_id "
            "WHERE f.state = 'pending' AND f.next_attempt_at <= ? ORDER BY f.id", [ts(now)])]

    def follow_ups(self, story_id: int | None = None) -> list[FollowUpRow]:
        """Queued and sent updates (not the step-0 base rows), oldest first."""
        where = " AND f.story_id = ?" if story_id is not None else ""
        return [_follow_up_row(r) for r in self._rows(
            "SELECT f.*, s.title, s.link FROM story_follow_ups f JOIN stories s ON s.id = f.story_id "
            "WHERE f.step > 0" + where + " ORDER BY f.id", [story_id] if story_id is not None else [])]

    def mark_follow_up_delivered_to(self, follow_up_id: int, target: str) -> None:
        self.db.execute("UPDATE story_follow_ups SET delivered = (SELECT json_group_array(value) FROM "
                        "(SELECT value FROM json_each(delivered) UNION SELECT ?)) WHERE id = ?",
                        [target, follow_up_id])

    def mark_follow_up(self, follow_up_id: int, state: str, now: datetime, error: str | None = None,
                       next_attempt: datetime | None = None) -> None:
        """``state``: sent, failed, or pending (a retry at ``next_attempt``, or a quiet-hours hold when
        ``error`` is None: no attempt counted)."""
        counted = int(state != "pending" or error is not None)
        self.db.execute("UPDATE story_follow_ups SET state = ?, attempts = attempts + ?, last_error = ?, "
                        "next_attempt_at = COALESCE(?, next_attempt_at), "
                        "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                        [state, counted, error, ts(next_attempt) if next_attempt else None, state, ts(now),
                         follow_up_id])

    # == end of stories section ============================================================================

_STORY_SQL = ("SELECT s.*, COALESCE((SELECT json_group_array(t.tag) FROM (SELECT DISTINCT j.value AS tag FROM "
              "feeds f, json_each(f.tags) j WHERE f.name = s.feed_name) t), '[]') AS feed_tags FROM stories s")
# the same feed_tags as _STORY_SQL, for one feed name
_FEED_TAGS_SQL = ("SELECT COALESCE((SELECT json_group_array(t.tag) FROM (SELECT DISTINCT j.value AS tag FROM "
                  "feeds f, json_each(f.tags) j WHERE f.name = ?) t), '[]')")
_ALERT_SQL = "SELECT a.*, s.title AS title, s.link AS link FROM alerts a JOIN stories s ON s.id = a.story_id"


def _story_row(r: dict[str, Any]) -> StoryRow:
    verdict = None
    if r["score"] is not None:
        verdict = Verdict(score=r["score"], subtopics=tuple(json.loads(r["subtopics"])),
                          top_terms=tuple(json.loads(r["top_terms"])), model_version=r["model_version"] or "",
                          threshold=r["score_threshold"])
    sources = tuple(json.loads(r["sources"]))
    published = from_ts(r["published_at"])
    assert published is not None
    view = StoryView(id=r["id"], title=r["title"], summary=r["summary"], link=r["link"], feed_name=r["feed_name"],
                     published=published, feed_tags=tuple(json.loads(r["feed_tags"])), sources=sources,
                     verdict=verdict)
    return StoryRow(view=view, first_seen_at=from_ts(r["first_seen_at"]) or published,
                    last_seen_at=from_ts(r["last_seen_at"]) or published, size=r["size"],
                    alertable=bool(r["alertable"]))


def _alert_row(r: dict[str, Any]) -> AlertRow:
    alert = Alert(id=r["id"], story_id=r["story_id"], watchlist=r["watchlist"], channel=r["channel"],
                  title=r["title"], body="", link=r["link"], state=r["state"], attempts=r["attempts"],
                  last_error=r["last_error"], created_at=from_ts(r["created_at"]),
                  next_attempt_at=from_ts(r["next_attempt_at"]))
    return AlertRow(alert=alert, severity=r["severity"], why=r["why"], sent_at=from_ts(r["sent_at"]),
                    delivered=frozenset(json.loads(r["delivered"])), mode=r["mode"], urgent=bool(r["urgent"]),
                    note=r["note"], digest_id=r["digest_id"], failed_at=from_ts(r["failed_at"]),
                    requeued_at=from_ts(r["requeued_at"]))


def _digest_row(r: dict[str, Any]) -> DigestRow:
    start, end, created = from_ts(r["period_start"]), from_ts(r["period_end"]), from_ts(r["created_at"])
    assert start is not None and end is not None and created is not None
    return DigestRow(id=r["id"], channel=r["channel"], period_start=start, period_end=end, state=r["state"],
                     attempts=r["attempts"], last_error=r["last_error"], created_at=created,
                     sent_at=from_ts(r["sent_at"]), delivered=frozenset(json.loads(r["delivered"])),
                     failures=tuple(json.loads(r["failures"])))


def _follow_up_row(r: dict[str, Any]) -> FollowUpRow:
    created = from_ts(r["created_at"])
    assert created is not None
    return FollowUpRow(id=r["id"], story_id=r["story_id"], channel=r["channel"], step=r["step"],
                       outlets=r["outlets"], state=r["state"], attempts=r["attempts"], last_error=r["last_error"],
                       created_at=created, sent_at=from_ts(r["sent_at"]),
                       delivered=frozenset(json.loads(r["delivered"])), title=r["title"], link=r["link"])


def _outgoing(alert: dict[str, Any]) -> bool:
    """An alert row that was (partly) delivered or handed to a composed digest: it must not be re-sent."""
    return alert["state"] == "sent" or alert["digest_id"] is not None or alert["delivered"] != "[]"


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just added (lastrowid is typed optional: it is None until an INSERT
    on the cursor succeeds)."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
