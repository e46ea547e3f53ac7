"""Append-only schema migrations, tracked with PRAGMA user_version.

Never edit a released step: add a new one at the end. A database written by a newer version is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Step = Callable[[sqlite3.Connection], None]


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would commit the surrounding transaction, so run statement by statement
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1_initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            interval_s REAL,
            enabled INTEGER NOT NULL DEFAULT 1,
            in_config INTEGER NOT NULL DEFAULT 1,
            disabled_reason TEXT,
            title TEXT,
            etag TEXT,
            last_modified TEXT,
            next_due_at TEXT,
            last_polled_at TEXT,
            last_ok_at TEXT,
            last_status TEXT,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            last_new_entries INTEGER NOT NULL DEFAULT 0,
            ttl_s REAL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            lead_entry_id INTEGER,
            title TEXT NOT NULL,
            link TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            feed_name TEXT NOT NULL,
            published_at TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 1,
            sources TEXT NOT NULL DEFAULT '[]',
            alertable INTEGER NOT NULL DEFAULT 1,
            score REAL,
            subtopics TEXT NOT NULL DEFAULT '[]',
            top_terms TEXT NOT NULL DEFAULT '[]',
            model_version TEXT,
            score_threshold REAL
        );
        CREATE INDEX stories_first_seen ON stories(first_seen_at);
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            guid TEXT NOT NULL,
            canonical_url TEXT,
            link TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '',
            author TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            published_at TEXT NOT NULL,
            published_known INTEGER NOT NULL DEFAULT 1,
            first_seen_at TEXT NOT NULL,
            story_id INTEGER REFERENCES stories(id),
            similarity REAL,
            duplicate_of INTEGER,
            pruned INTEGER NOT NULL DEFAULT 0,
            UNIQUE(feed_id, guid)
        );
        CREATE INDEX entries_canonical ON entries(canonical_url);
        CREATE INDEX entries_story ON entries(story_id);
        CREATE INDEX entries_first_seen ON entries(first_seen_at);
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id),
            watchlist TEXT NOT NULL,
            why TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE(story_id, watchlist)
        );
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id),
            watchlist TEXT NOT NULL,
            channel TEXT NOT NULL,
            severity TEXT NOT NULL DEFAULT 'info',
            why TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            delivered TEXT NOT NULL DEFAULT '[]',
            UNIQUE(story_id, watchlist, channel)
        );
        CREATE INDEX alerts_state ON alerts(state, next_attempt_at);
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            story_id INTEGER REFERENCES stories(id),
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            label INTEGER NOT NULL,
            subtopics TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            UNIQUE(story_id)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def _v2_delivery(conn: sqlite3.Connection) -> None:
    """Delivery modes: digests, quiet hours, rate limits (owned by the delivery work).

    An alert in digest mode (or moved there by the rate limit) waits with ``digest_id`` NULL until its
    channel's digest is composed: the digest row and the alerts' ``digest_id`` are committed together before
    the digest is sent, so a crash never loses or regroups them.
    """
    _run_script(
        conn,
        """
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            delivered TEXT NOT NULL DEFAULT '[]',
            failures TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX digests_state ON digests(state, next_attempt_at);
        CREATE TABLE channel_state (
            channel TEXT PRIMARY KEY,
            last_digest_at TEXT NOT NULL,  -- end of the last digest period (a scheduled time)
            composed_at TEXT NOT NULL      -- when it was composed: failures after this go in the next one
        );
        ALTER TABLE alerts ADD COLUMN mode TEXT NOT NULL DEFAULT 'instant';
        ALTER TABLE alerts ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alerts ADD COLUMN note TEXT;
        ALTER TABLE alerts ADD COLUMN digest_id INTEGER REFERENCES digests(id);
        ALTER TABLE alerts ADD COLUMN failed_at TEXT;
        ALTER TABLE alerts ADD COLUMN requeued_at TEXT;
        CREATE INDEX alerts_digest ON alerts(channel, state, mode, digest_id);
        CREATE INDEX alerts_failed ON alerts(state, failed_at)
        """,
    )


def _v3_polling(conn: sqlite3.Connection) -> None:
    """Polling at scale: adaptive intervals, server hints, unchanged-body detection, failing flags, and
    ``config_url``: the address in feeds.yaml of a feed that moved (301/308), so the move survives a sync."""
    _run_script(
        conn,
        """
        ALTER TABLE feeds ADD COLUMN rate_per_h REAL;
        ALTER TABLE feeds ADD COLUMN interval_eff_s REAL;
        ALTER TABLE feeds ADD COLUMN hint_s REAL;
        ALTER TABLE feeds ADD COLUMN body_hash TEXT;
        ALTER TABLE feeds ADD COLUMN failing_since TEXT;
        ALTER TABLE feeds ADD COLUMN failing_notified INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE feeds ADD COLUMN fetch_ms REAL;
        ALTER TABLE feeds ADD COLUMN config_url TEXT;
        CREATE INDEX feeds_due ON feeds(enabled, in_config, next_due_at);
        CREATE INDEX feeds_name ON feeds(name);
        CREATE INDEX entries_prune ON entries(pruned, first_seen_at)
        """,
    )


def _v4_follow_ups(conn: sqlite3.Connection) -> None:
    """Stories: follow-up updates ("Update: <title> - now reported by N outlets"), an outbox of their own.
    Per (story, channel): a step-0 row in state 'base' records how many outlets the story had when its alert
    was queued; step k (state 'pending', then 'sent' or 'failed') is queued once the alert went out and the
    story has k * every more outlets than that. UNIQUE(story_id, channel, step): each step goes out once."""
    _run_script(
        conn,
        """
        CREATE TABLE story_follow_ups (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id),
            channel TEXT NOT NULL,
            step INTEGER NOT NULL,
            outlets INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            delivered TEXT NOT NULL DEFAULT '[]',
            UNIQUE(story_id, channel, step)
        );
        CREATE INDEX story_follow_ups_due ON story_follow_ups(state, next_attempt_at)
        """,
    )


MIGRATIONS: list[Step] = [_v1_initial, _v2_delivery, _v3_polling, _v4_follow_ups]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date in one transaction per step; return the final version."""
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise RuntimeError(f"database schema version {current} is newer than this monitor "
                           f"(knows up to {len(MIGRATIONS)}); upgrade monitor")
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
