"""When is a feed due next? Pure functions of the feed's situation and ``now``.

The delay after a successful poll is built in three steps:

1. the feed's *interval*: its own ``interval`` from feeds.yaml when set (the user's word wins), else,
   with ``poll.adaptive``, one derived from the feed's observed publishing rate, else ``poll.interval``;
   adaptive intervals stay within ``poll.min_interval`` .. ``poll.max_interval``;
2. jitter (+/- a fraction) so that feeds added together do not stay in lockstep;
3. server hints as floors: RSS ``<ttl>`` / ``sy:updatePeriod``, ``Cache-Control: max-age`` and
   ``Retry-After``: we never come back sooner than the server asked (floors are capped so a typo on
   the server cannot silence a feed for a month).

After an error the delay doubles per consecutive error up to ``poll.backoff_max``, and a Retry-After is
honoured; a feed is never given up on (only HTTP 410 disables it), it is flagged as failing instead.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# A server hint longer than this is treated as this (a week): a hint is a wish, not a reason to go silent.
HINT_CAP_S = 7 * 86400.0
# Weight of the newest observation in the publishing-rate estimate (exponentially weighted moving average).
RATE_WEIGHT = 0.3
_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """The poll settings that scheduling needs (a plain value, so tests build it directly)."""

    interval_s: float = 600.0
    jitter: float = 0.1
    min_interval_s: float = 120.0
    max_interval_s: float = 6 * 3600.0
    backoff_max_s: float = 6 * 3600.0
    adaptive: bool = True
    polls_per_entry: float = 2.0


def with_jitter(interval_s: float, jitter: float, rng: random.Random) -> float:
    """Spread polls: the interval varied by +/- ``jitter`` (a fraction), never below 1 second."""
    return max(1.0, interval_s * (1.0 + rng.uniform(-jitter, jitter)))


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


# -- publishing rate ---------------------------------------------------------------------------------------

def rate_from_dates(published: list[datetime]) -> float | None:
    """Entries per hour implied by a feed's own publication dates (first poll), None when unknowable."""
    if len(published) < 2:
        return None
    span_h = (max(published) - min(published)).total_seconds() / 3600.0
    if span_h <= 0:
        return None
    return (len(published) - 1) / span_h


def update_rate(previous: float | None, new_entries: int, elapsed_s: float) -> float | None:
    """Fold one poll's observation (``new_entries`` in ``elapsed_s``) into the entries-per-hour estimate."""
    if elapsed_s <= 0:
        return previous
    sample = new_entries / (elapsed_s / 3600.0)
    if previous is None:
        return sample
    return RATE_WEIGHT * sample + (1.0 - RATE_WEIGHT) * previous


def interval_s(policy: Policy, feed_interval_s: float | None, rate_per_h: float | None) -> float:
    """The feed's interval before jitter and hints (see the module docstring)."""
    if feed_interval_s:
        return float(feed_interval_s)
    if not policy.adaptive or rate_per_h is None:
        return policy.interval_s
    if rate_per_h <= 0:
        return policy.max_interval_s
    return clamp(3600.0 / (rate_per_h * policy.polls_per_entry), policy.min_interval_s, policy.max_interval_s)


# -- server hints ----------------------------------------------------------------------------------------

def cache_max_age_s(headers: dict[str, str]) -> float | None:
    """Cache-Control max-age (or s-maxage) in seconds; None when absent or when caching is refused."""
    value = headers.get("cache-control", "")
    if not value or "no-store" in value.lower():
        return None
    found = [int(m.group(2)) for m in _MAX_AGE.finditer(value)]
    return float(max(found)) if found and max(found) > 0 else None


def hint_floor_s(*hints: float | None) -> float | None:
    """The strongest of the server's hints, capped at HINT_CAP_S; None when there are none."""
    present = [h for h in hints if h and h > 0]
    return min(max(present), HINT_CAP_S) if present else None


# -- next due --------------------------------------------------------------------------------------------

def next_due_ok(now: datetime, interval: float, jitter: float, rng: random.Random,
                server_floor_s: float | None = None) -> datetime:
    """After a successful poll: the interval (with jitter), but never sooner than the server asked."""
    delay = with_jitter(interval, jitter, rng)
    if server_floor_s:
        delay = max(delay, min(server_floor_s, HINT_CAP_S))
    return now + timedelta(seconds=delay)


def backoff_s(interval: float, consecutive_errors: int, maximum_s: float) -> float:
    """Exponential backoff from the normal interval: 1x, 2x, 4x ... capped at ``maximum_s``."""
    return min(maximum_s, interval * (2 ** min(60, max(0, consecutive_errors - 1))))


def next_due_error(now: datetime, interval: float, consecutive_errors: int, maximum_s: float, jitter: float,
                   rng: random.Random, retry_after_s: float | None = None) -> datetime:
    """After a failed poll: exponential backoff (with jitter), never sooner than a Retry-After."""
    delay = with_jitter(backoff_s(interval, consecutive_errors, maximum_s), jitter, rng)
    if retry_after_s:
        delay = max(delay, min(retry_after_s, HINT_CAP_S))
    return now + timedelta(seconds=delay)


def retry_delay_s(attempts: int, base_s: float, maximum_s: float = 3600.0) -> float:
    """Delay before re-sending an alert after ``attempts`` failed tries."""
    return min(maximum_s, base_s * (2 ** max(0, attempts - 1)))
