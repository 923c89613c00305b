"""The retry policy alone: delays, budget, Retry-After parsing (no I/O, no sleeping)."""

from __future__ import annotations

import email.utils
import random

import pytest

from aiostreams import BackoffStrategy, RetryConfig
from aiostreams._retry import RetrySchedule, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def schedule(backoff: BackoffStrategy, clock: FakeClock | None = None) -> RetrySchedule:
    return RetrySchedule(
        RetryConfig(backoff=backoff), clock=clock or FakeClock(), rng=random.Random(42)
    )


def test_delays_grow_exponentially_with_equal_jitter_and_cap() -> None:
    backoff = BackoffStrategy(
        initial_interval=100, max_interval=1000, exponent=2.0, max_elapsed_time=10**9
    )
    s = schedule(backoff)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    for ceiling in ceilings:
        delay = s.next_delay()
        assert delay is not None
        assert ceiling / 2 <= delay <= ceiling
    assert s.attempts == len(ceilings)


def test_jitter_spreads_clients_that_failed_together() -> None:
    backoff = BackoffStrategy(initial_interval=1000, max_interval=1000, exponent=1.0)
    delays = {
        RetrySchedule(RetryConfig(backoff=backoff), rng=random.Random(seed)).next_delay()
        for seed in range(20)
    }
    assert len(delays) == 20


def test_no_retry_once_max_elapsed_time_would_be_exceeded() -> None:
    clock = FakeClock()
    backoff = BackoffStrategy(
        initial_interval=1000, max_interval=1000, exponent=1.0, max_elapsed_time=2500
    )
    s = schedule(backoff, clock)
    first = s.next_delay()
    assert first is not None and 0.5 <= first <= 1.0
    clock.now += 1.0  # elapsed 1 s: a wait of at most 1 s still fits in 2.5 s
    assert s.next_delay() is not None
    clock.now += 1.1  # elapsed 2.1 s: even the shortest wait (0.5 s) would not fit
    assert s.next_delay() is None
    assert s.attempts == 2


def test_strategy_none_never_retries() -> None:
    s = RetrySchedule(RetryConfig(strategy="none"))
    assert s.next_delay() is None
    assert s.next_delay(retry_after=0) is None


def test_retry_after_replaces_backoff_but_not_the_budget() -> None:
    backoff = BackoffStrategy(
        initial_interval=10, max_interval=10, exponent=1.0, max_elapsed_time=5000
    )
    s = schedule(backoff)
    assert s.next_delay(retry_after=3.0) == 3.0  # above max_interval: the server knows
    assert s.next_delay(retry_after=6.0) is None  # beyond max_elapsed_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 0 ", 0.0), (None, None), ("soon", None), ("-5", None), ("1.5", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    in_30s = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(in_30s, now=now) == pytest.approx(30.0)
    long_ago = email.utils.formatdate(now - 3600, usegmt=True)
    assert parse_retry_after(long_ago, now=now) == 0.0
    minus_zero = email.utils.formatdate(now + 10)  # "... -0000": parsed as GMT
    assert minus_zero.endswith("-0000")
    assert parse_retry_after(minus_zero, now=now) == pytest.approx(10.0)


def test_invalid_configuration_is_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="'backoff' or 'none'"):
        RetryConfig(strategy="exponential")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exponent"):
        BackoffStrategy(exponent=0.5)
    with pytest.raises(ValueError, match=">= 0 ms"):
        BackoffStrategy(initial_interval=-1)


def test_speakeasy_style_positional_construction() -> None:
    config = RetryConfig("backoff", BackoffStrategy(1, 50, 1.1, 100), False)
    assert config.enabled
    assert config.backoff.max_interval == 50
    assert not config.retry_connection_errors
