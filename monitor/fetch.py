"""HTTP (and local file) fetching with timeouts, a size cap, conditional GET and bounded concurrency.

httpx is imported only here. A fetch never raises for a feed's own problems: it returns a
``Fetched``, ``NotModified`` or ``FetchFailed`` value that the pipeline records on the feed.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from . import USER_AGENT
from .models import FeedState, Fetched, FetchFailed, FetchResult, NotModified

log = logging.getLogger(__name__)

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True)
class FetchOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0
    max_bytes: int = 10 * 10**6
    max_redirects: int = 5
    concurrency: int = 16
    per_host: int = 4
    user_agent: str = USER_AGENT
    # the caller's clock (epoch seconds): a Retry-After given as an HTTP date is relative to it
    clock: Callable[[], float] = time.time


class BodyTooLarge(Exception):
    pass


def make_client(options: FetchOptions) -> httpx.AsyncClient:
    timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True,
                             max_redirects=options.max_redirects,
                             headers={"User-Agent": options.user_agent, "Accept": ACCEPT})


OnResult = Callable[[FeedState, FetchResult, float], Awaitable[None] | None]


async def fetch_all(feeds: Iterable[FeedState], options: FetchOptions, on_result: OnResult,
                    should_stop: Callable[[], bool] = lambda: False, max_pending: int | None = None) -> None:
    """Fetch every feed with bounded global and per-host concurrency; hand each result and the seconds it
    took to ``on_result``. Feeds not yet started when ``should_stop()`` turns true are left alone (they
    stay due and are polled on the next start). ``max_pending`` bounds the feeds fetched but not yet
    handled, so bodies do not pile up in memory when processing is slower than the network."""
    global_slots = asyncio.Semaphore(options.concurrency)
    pending = asyncio.Semaphore(max_pending or 1_000_000)
    host_slots: dict[str, asyncio.Semaphore] = {}

    async def one(client: httpx.AsyncClient, feed: FeedState) -> None:
        host = (urlsplit(feed.url).hostname or "").lower()
        host_limit = host_slots.setdefault(host, asyncio.Semaphore(options.per_host))
        async with pending:
            async with host_limit, global_slots:  # host first: a busy host must not hold global slots idle
                if should_stop():
                    return
                started = time.perf_counter()
                result = await fetch_feed(client, feed, options)
                elapsed = time.perf_counter() - started
            outcome = on_result(feed, result, elapsed)
            if asyncio.iscoroutine(outcome):
                await outcome

    async with make_client(options) as client:
        await asyncio.gather(*(one(client, feed) for feed in feeds))


async def fetch_feed(client: httpx.AsyncClient, feed: FeedState, options: FetchOptions) -> FetchResult:
    """Fetch one feed; every failure becomes a FetchFailed naming the reason."""
    if _is_local(feed.url):
        return _fetch_file(feed, options)
    try:
        async with asyncio.timeout(options.deadline):
            return await _fetch_http(client, feed, options)
    except TimeoutError:
        return FetchFailed(feed.url, f"timed out after {options.deadline:g}s (total deadline)")
    except BodyTooLarge:
        return FetchFailed(feed.url, f"body larger than {options.max_bytes} bytes, aborted")
    except httpx.TooManyRedirects:
        return FetchFailed(feed.url, f"too many redirects (more than {options.max_redirects})")
    except httpx.TimeoutException as exc:
        return FetchFailed(feed.url, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return FetchFailed(feed.url, f"{type(exc).__name__}: {exc}")
    except (OSError, ValueError) as exc:
        return FetchFailed(feed.url, f"{type(exc).__name__}: {exc}")


def conditional_headers(feed: FeedState) -> dict[str, str]:
    headers = {}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


async def _fetch_http(client: httpx.AsyncClient, feed: FeedState, options: FetchOptions) -> FetchResult:
    async with client.stream("GET", feed.url, headers=conditional_headers(feed)) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        moved_to = _permanent_redirect_target(response)
        if response.status_code == 304:
            return NotModified(feed.url, headers)
        if response.status_code >= 400:
            return _http_failure(feed.url, response.status_code, headers, options.clock())
        body = await _read_capped(response, options.max_bytes)
    return Fetched(url=feed.url, content=body, headers=headers, status=response.status_code,
                   etag=headers.get("etag"), last_modified=headers.get("last-modified"), final_url=moved_to)


def _permanent_redirect_target(response: httpx.Response) -> str | None:
    """The new address when every hop of the redirect chain was permanent (301/308)."""
    if response.history and all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _http_failure(url: str, status: int, headers: dict[str, str], now: float) -> FetchFailed:
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    reason = f"HTTP {status}"
    if status == 410:
        return FetchFailed(url, "HTTP 410 Gone: the feed was removed by its publisher", status, permanent=True)
    if retry_after is not None:
        reason += f" (Retry-After {retry_after:.0f}s)"
    return FetchFailed(url, reason, status, retry_after_s=retry_after)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _is_local(url: str) -> bool:
    return url.lower().startswith("file://")


def local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _fetch_file(feed: FeedState, options: FetchOptions) -> FetchResult:
    path = local_path(feed.url)
    try:
        stat = path.stat()
        stamp = email.utils.format_datetime(datetime.fromtimestamp(stat.st_mtime, UTC), usegmt=True)
        if feed.last_modified == stamp:
            return NotModified(feed.url)
        if stat.st_size > options.max_bytes:
            return FetchFailed(feed.url, f"file larger than {options.max_bytes} bytes")
        content = path.read_bytes()
    except OSError as exc:
        return FetchFailed(feed.url, f"cannot read file: {exc.strerror or exc}")
    return Fetched(url=feed.url, content=content, headers={}, status=200, last_modified=stamp)
