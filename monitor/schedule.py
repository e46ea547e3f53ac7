"""When is a feed due next? Pure functions of the feed's situation and ``now``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def with_jitter(interval_s: float, jitter: float, rng: random.Random) -> float:
    """Spread polls: the interval varied by +/- ``jitter`` (a fraction), never below 1 second."""
    return max(1.0, interval_s * (1.0 + rng.uniform(-jitter, jitter)))


def next_due_ok(now: datetime, interval_s: float, jitter: float, rng: random.Random,
                server_floor_s: float | None = None) -> datetime:
    """After a successful poll: the interval (with jitter), but never sooner than the server asked."""
    delay = with_jitter(interval_s, jitter, rng)
    if server_floor_s:
        delay = max(delay, server_floor_s)
    return now + timedelta(seconds=delay)


def backoff_s(interval_s: float, consecutive_errors: int, maximum_s: float) -> float:
    """Exponential backoff from the normal interval: 1x, 2x, 4x ... capped at ``maximum_s``."""
    return min(maximum_s, interval_s * (2 ** max(0, consecutive_errors - 1)))


def next_due_error(now: datetime, interval_s: float, consecutive_errors: int, maximum_s: float, jitter: float,
                   rng: random.Random, retry_after_s: float | None = None) -> datetime:
    delay = with_jitter(backoff_s(interval_s, consecutive_errors, maximum_s), jitter, rng)
    if retry_after_s:
        delay = max(delay, retry_after_s)
    return now + timedelta(seconds=delay)


def retry_delay_s(attempts: int, base_s: float, maximum_s: float = 3600.0) -> float:
    """Delay before re-sending an alert after ``attempts`` failed tries."""
    return min(maximum_s, base_s * (2 ** max(0, attempts - 1)))
