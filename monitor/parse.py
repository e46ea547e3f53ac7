"""Feed bytes -> normalized entries. feedparser is imported only here.

feedparser never fetches anything: it gets the bytes and headers our fetcher received.
"""

from __future__ import annotations

import calendar
import html
import logging
import os
import re
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser

from .errors import ParseError
from .identity import canonical_url, entry_guid
from .models import Entry
from .story_text import StoryFeatures, analyse

log = logging.getLogger(__name__)

MAX_SUMMARY_CHARS = 2000
PARSER_NICENESS = 10  # added to the parser processes' nice value (see parser_process_init)
# An internal DTD subset can declare entities that expand exponentially ("billion laughs"). Real feeds
# never need one: a document that declares entities is refused before any XML parser sees it.
_INTERNAL_DTD = re.compile(rb"<!DOCTYPE[^\[>]*\[(.*?)\]\s*>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: tuple[Entry, ...]
    skipped: int  # entries dropped because they were broken
    ttl_s: float | None  # the feed's own hint of how often to poll (RSS <ttl>, sy:updatePeriod)
    warning: str | None  # feedparser's complaint about malformed XML, when entries were still found
    known: int = 0  # entries skipped before normalization because the store already has them
    # story-index features of each entry (stories.analyse), computed here so that a parser process does it
    story_features: tuple[StoryFeatures, ...] = ()


@dataclass(frozen=True)
class ParseJob:
    """Everything a parser process needs for one feed body (picklable)."""

    content: bytes
    headers: dict[str, str]
    url: str
    feed_id: int
    feed_name: str
    feed_tags: tuple[str, ...]
    now: datetime
    skip_guids: frozenset[str] = frozenset()


def parser_process_init() -> None:
    """Initializer of the parser processes. It lives here, not in the pipeline, so that a parser process
    imports only this module (and feedparser), not the daemon's whole dependency tree."""
    # Ctrl-C and SIGTERM are the parent's business: it shuts the pool down after the cycle in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Parsing is throughput work; the daemon's storing thread is the serial step of a cycle. At a lower
    # priority the parsers take what CPU it leaves, and stay ahead of it (a first cycle of 1,000 feeds on
    # two cores: ~23.5 s instead of ~27.5 s). It also keeps a big cycle from crowding other services.
    try:
        os.nice(PARSER_NICENESS)
    except OSError as exc:  # a syscall filter may refuse it: parsing at the daemon's priority still works
        log.debug("parser process: could not lower its priority: %s", exc)


def run_job(job: ParseJob) -> ParsedFeed:
    """Entry point for parser processes (a module-level function, so it pickles)."""
    return parse_feed(job.content, job.headers, job.url, job.feed_id, job.feed_name, job.feed_tags, job.now,
                      job.skip_guids)


def parse_feed(content: bytes, headers: dict[str, str], url: str, feed_id: int, feed_name: str,
               feed_tags: tuple[str, ...], now: datetime, skip_guids: frozenset[str] = frozenset()) -> ParsedFeed:
    """Parse one response body; raise ParseError when it is not a feed at all.

    Entries whose key is in ``skip_guids`` (already stored) are counted but not normalized: on a busy
    feed most entries of every poll are old, and HTML-to-text is the costly part after feedparser."""
    if not content.strip():
        raise ParseError(f"feed {feed_name!r}: empty body")
    dtd = _INTERNAL_DTD.search(content[:65536])
    if dtd is not None:
        if b"<!ENTITY" in dtd.group(1).upper():
            raise ParseError(f"feed {feed_name!r}: refused: the document declares XML entities "
                             f"(a possible entity-expansion attack)")
        content = content[:dtd.start()] + content[dtd.end():]
    # Without a base URI feedparser skips resolving every relative URI of the document (a third of its
    # time on a typical feed); the one URI we use, each entry's link, is resolved in _entry_link instead.
    parsed_headers = {k: v for k, v in headers.items() if k.lower() != "content-location"}
    try:
        # We keep plain text only (clean_text), so feedparser's HTML sanitizer and relative-URI rewriting
        # of content would be wasted work: together they are ~3/4 of its CPU time on a typical feed.
        result = feedparser.parse(content, response_headers=parsed_headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except Exception as exc:  # feedparser can raise on pathological input; one feed must not stop the cycle
        raise ParseError(f"feed {feed_name!r}: parser crashed: {type(exc).__name__}: {exc}") from exc
    if not result.entries and (result.bozo or not result.get("version")):
        raise ParseError(f"feed {feed_name!r}: not a feed ({_bozo_reason(result, content)})")
    entries, skipped, known = [], 0, 0
    for index, raw in enumerate(result.entries):
        if skip_guids and _quick_key(raw, url) in skip_guids:
            known += 1
            continue
        try:
            entries.append(normalize_entry(raw, feed_id, feed_name, feed_tags, now, url))
        except Exception as exc:  # one broken entry is skipped, not the feed
            skipped += 1
            log.warning("feed %r: skipped entry #%d: %s: %s", feed_name, index, type(exc).__name__, exc)
    warning = _bozo_reason(result, content) if result.bozo else None
    return ParsedFeed(title=clean_text(result.feed.get("title", "")), entries=tuple(entries), skipped=skipped,
                      ttl_s=_ttl_hint(result.feed), warning=warning, known=known,
                      story_features=tuple(analyse(e.title, e.summary) for e in entries))


def _quick_key(raw: Any, base: str) -> str | None:
    """The entry's identity when it can be had without normalizing its text (GUID or link)."""
    raw_id = raw.get("id")
    if raw_id and str(raw_id).strip():
        return str(raw_id).strip()
    link = _entry_link(raw, base)
    return canonical_url(link) if link else None


def _entry_link(raw: Any, base: str) -> str:
    """The entry's link, made absolute against the feed's URL (xml:base is already applied by feedparser)."""
    link = (raw.get("link") or "").strip()
    if link and "://" not in link[:12]:
        return urljoin(base, link)
    return link


def _bozo_reason(result: Any, content: bytes) -> str:
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "the server returned an HTML page"
    exc = result.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc else "no feed version recognised"


def normalize_entry(raw: Any, feed_id: int, feed_name: str, feed_tags: tuple[str, ...], now: datetime,
                    base: str = "") -> Entry:
    title = clean_text(raw.get("title", ""))
    summary = clean_text(_summary_html(raw))[:MAX_SUMMARY_CHARS]
    link = _entry_link(raw, base)
    if not title and not summary:
        raise ValueError("entry has neither title nor summary")
    published, known = _published(raw, now)
    tags = tuple(t for t in (clean_text(tag.get("term") or "") for tag in raw.get("tags", []) or []) if t)
    return Entry(feed_id=feed_id, feed_name=feed_name, guid=entry_guid(raw.get("id"), link, title, summary),
                 link=link, title=title or summary[:120], summary=summary, published=published,
                 published_known=known, author=clean_text(raw.get("author", "")) or None, tags=tags,
                 feed_tags=feed_tags, canonical_link=canonical_url(link))


def _summary_html(raw: Any) -> str:
    if raw.get("summary"):
        return str(raw["summary"])
    for content in raw.get("content", []) or []:
        if content.get("value"):
            return str(content["value"])
    return ""


def _published(raw: Any, now: datetime) -> tuple[datetime, bool]:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if value:
            when = datetime.fromtimestamp(calendar.timegm(value), UTC)
            # A date in the future is a publisher's clock or time-zone error; do not trust it.
            if when > now + timedelta(hours=1):
                return now, False
            return when, True
    return now, False


def _ttl_hint(feed: Any) -> float | None:
    ttl = str(feed.get("ttl", "")).strip()
    if ttl.isdigit() and int(ttl) > 0:
        return int(ttl) * 60.0
    period = str(feed.get("sy_updateperiod", "")).strip().lower()
    seconds = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000, "yearly": 31536000}.get(period)
    if seconds:
        frequency = str(feed.get("sy_updatefrequency", "1")).strip()
        return seconds / max(1, int(frequency) if frequency.isdigit() else 1)
    return None


# HTML -> text with three regular expressions (C speed; HTMLParser cost 3x as much, ~3 s of CPU per
# 50,000 entries). Same output as an HTMLParser-based extractor on every summary of our real-feed snapshots:
# script/style content dropped (to the end when unclosed), block tags become a space, other tags, comments
# and CDATA vanish; a "<" not followed by a tag name is text. Quoted attribute values may hold ">".
_SKIPPED = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|\Z)", re.DOTALL | re.IGNORECASE)
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|tr|h[1-6]|blockquote)\b(?:[^\"'>]|\"[^\"]*\"|'[^']*')*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<(?:!--.*?--|!\[CDATA\[.*?\]\]|[!?/]?[a-zA-Z](?:[^\"'>]|\"[^\"]*\"|'[^']*')*)>", re.DOTALL)


def clean_text(value: str) -> str:
    """HTML -> plain text: tags stripped, entities decoded (twice-escaped ones too), whitespace folded."""
    if not value:
        return ""
    text = str(value)
    if "<" in text:
        text = _ANY_TAG.sub("", _BLOCK_TAG.sub(" ", _SKIPPED.sub(" ", text)))
    if "&" in text:
        text = html.unescape(html.unescape(text))  # feeds often escape entities twice (&amp;#8217;)
    return " ".join(text.split())
