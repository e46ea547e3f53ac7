"""Frozen records passed between pipeline stages.

Flow: FeedState -> Fetched -> Entry -> Story -> Verdict -> Match -> Alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FeedState:
    """A feed as the store knows it: identity, HTTP cache state and health."""

    id: int
    url: str
    name: str
    tags: tuple[str, ...] = ()
    interval_s: int = 600
    enabled: bool = True
    etag: str | None = None
    last_modified: str | None = None
    error_count: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A successful HTTP (or file) response with a body to parse."""

    url: str
    content: bytes
    headers: dict[str, str]
    status: int
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None


@dataclass(frozen=True)
class NotModified:
    """The server answered 304: nothing new since the last poll."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchFailed:
    """A fetch that failed; recorded on the feed, never raised through the cycle."""

    url: str
    reason: str
    status: int | None = None
    retry_after_s: float | None = None
    permanent: bool = False


FetchResult = Fetched | NotModified | FetchFailed


@dataclass(frozen=True)
class Entry:
    """One normalized feed entry."""

    feed_id: int
    feed_name: str
    guid: str
    link: str
    title: str
    summary: str
    published: datetime  # UTC, tz-aware; first-seen time when the feed gives none
    published_known: bool
    author: str | None = None
    tags: tuple[str, ...] = ()
    feed_tags: tuple[str, ...] = ()
    canonical_link: str | None = None  # identity.canonical_url(link), when the parser computed it already


@dataclass(frozen=True)
class Verdict:
    """The classifier's opinion on a story."""

    score: float  # calibrated probability of relevance, 0..1
    subtopics: tuple[str, ...] = ()
    top_terms: tuple[str, ...] = ()
    model_version: str = ""
    threshold: float | None = None  # the model's alert threshold (chosen on held-out data) when scored


@dataclass(frozen=True)
class StoryView:
    """What watchlists evaluate: a story's lead entry plus classifier output and sources."""

    id: int
    title: str
    summary: str
    link: str
    feed_name: str
    published: datetime
    feed_tags: tuple[str, ...] = ()
    entry_tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Route:
    """One destination of a watchlist's alerts."""

    channel: str
    mode: str | None = None  # instant | digest | None (the channel's own mode)
    severity: str = "info"
    urgent: bool = False  # sent even during the channel's quiet hours


@dataclass(frozen=True)
class Match:
    """A story that satisfied a watchlist, with a human-readable reason."""

    story_id: int
    watchlist: str
    routes: tuple[Route, ...]
    why: str
    severity: str = "info"

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(route.channel for route in self.routes)


@dataclass(frozen=True)
class Alert:
    """An outbox row: one story, one watchlist, one channel."""

    id: int
    story_id: int
    watchlist: str
    channel: str
    title: str
    body: str
    link: str
    state: str  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
