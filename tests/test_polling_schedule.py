"""Scheduling is pure: jitter, adaptive intervals, server hints and backoff stay within their bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor import schedule
from monitor.schedule import Policy

NOW = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = Policy(interval_s=600, jitter=0.1, min_interval_s=120, max_interval_s=6 * 3600, backoff_max_s=6 * 3600)


@given(st.floats(1, 10**6), st.floats(0, 0.5), st.integers(0, 2**32))
def test_jitter_stays_within_its_fraction(interval: float, jitter: float, seed: int) -> None:
    delay = schedule.with_jitter(interval, jitter, random.Random(seed))
    assert max(1.0, interval * (1 - jitter)) - 1e-6 <= delay <= max(1.0, interval * (1 + jitter)) + 1e-6


@given(st.one_of(st.none(), st.floats(0, 10**6)))
def test_adaptive_interval_stays_within_min_and_max(rate: float | None) -> None:
    interval = schedule.interval_s(POLICY, None, rate)
    assert POLICY.min_interval_s <= interval <= POLICY.max_interval_s


def test_adaptive_interval_follows_the_publishing_rate() -> None:
    assert schedule.interval_s(POLICY, None, 1.0) == 1800  # one entry an hour, two polls per entry
    assert schedule.interval_s(POLICY, None, 1000.0) == POLICY.min_interval_s  # a firehose: the floor
    assert schedule.interval_s(POLICY, None, 0.0) == POLICY.max_interval_s  # silent: the ceiling
    assert schedule.interval_s(POLICY, None, None) == POLICY.interval_s  # unknown: the default
    assert schedule.interval_s(POLICY, 900, 1000.0) == 900  # a feed's own interval wins
    fixed = Policy(interval_s=600, adaptive=False)
    assert schedule.interval_s(fixed, None, 1000.0) == 600


def test_rate_estimates() -> None:
    dates = [NOW - timedelta(hours=h) for h in range(11)]
    assert schedule.rate_from_dates(dates) == 1.0
    assert schedule.rate_from_dates([NOW]) is None
    assert schedule.update_rate(None, 3, 3600) == 3.0
    assert schedule.update_rate(1.0, 0, 3600) == 0.7  # exponentially weighted: one quiet hour lowers it


def test_backoff_doubles_and_is_capped_and_never_gives_up() -> None:
    delays = [schedule.backoff_s(600, n, 3600) for n in range(1, 8)]
    assert delays == [600, 1200, 2400, 3600, 3600, 3600, 3600]
    assert schedule.backoff_s(600, 10_000, 3600) == 3600  # huge error counts do not overflow


def test_server_hints_are_floors() -> None:
    rng = random.Random(1)
    due = schedule.next_due_ok(NOW, 600, 0.0, rng, server_floor_s=7200)
    assert due == NOW + timedelta(seconds=7200)
    assert schedule.next_due_ok(NOW, 600, 0.0, rng, server_floor_s=60) == NOW + timedelta(seconds=600)
    # a absurd hint is capped: a feed is not silenced for a year
    assert schedule.next_due_ok(NOW, 600, 0.0, rng, 365 * 86400) == NOW + timedelta(seconds=schedule.HINT_CAP_S)
    assert schedule.next_due_error(NOW, 600, 1, 3600, 0.0, rng, retry_after_s=5000) == NOW + timedelta(seconds=5000)


def test_cache_control_max_age() -> None:
    assert schedule.cache_max_age_s({"cache-control": "public, max-age=1800"}) == 1800
    assert schedule.cache_max_age_s({"cache-control": "max-age=60, s-maxage=900"}) == 900
    assert schedule.cache_max_age_s({"cache-control": "no-store, max-age=900"}) is None
    assert schedule.cache_max_age_s({"cache-control": "max-age=0"}) is None
    assert schedule.cache_max_age_s({}) is None
    assert schedule.hint_floor_s(None, 300.0, 1200.0) == 1200.0
    assert schedule.hint_floor_s(None, None) is None
