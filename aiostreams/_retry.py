"""Retry policy for opening a stream: pure decisions, no I/O and no sleeping.

The configuration mirrors Speakeasy-generated SDKs (``RetryConfig`` and
``BackoffStrategy``, every interval in **milliseconds**) so code written for the
generated eventstreams SDK keeps working.  ``_request.send`` runs the loop; this
module only answers "retry, and after how long?".

Only the *opening* of a response is retried: once an event has been handed to
the caller, replaying the request could repeat events (resuming is a separate,
``Last-Event-ID``-based mechanism).
"""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "RETRYABLE_STATUSES",
    "BackoffStrategy",
    "RetryConfig",
    "RetrySchedule",
    "parse_retry_after",
]

#: The longest wait a server can dictate (``Retry-After``, ``retry:``), in seconds,
#: unless the caller sets another bound: a typo or a hostile value of years must
#: not park a client forever.  Ten minutes covers real rate limiters.
DEFAULT_MAX_SERVER_WAIT: Final = 600.0

#: Too Many Requests and the 5xx statuses that mean "try again later"; never 501
#: (Not Implemented) or 4xx client errors, which a retry cannot fix.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BackoffStrategy:
    """Exponential backoff; every value in milliseconds (Speakeasy's defaults).

    The n-th retry (n = 0, 1, ...) waits a random time in ``[d/2, d]`` where
    ``d = min(initial_interval * exponent**n, max_interval)`` ("equal jitter":
    clients that failed together spread out, yet none retries immediately).
    No retry starts once ``max_elapsed_time`` would be exceeded.
    """

    initial_interval: int = 500
    max_interval: int = 60_000
    exponent: float = 1.5
    max_elapsed_time: int = 3_600_000

    def __post_init__(self) -> None:
        if self.initial_interval < 0 or self.max_interval < 0 or self.max_elapsed_time < 0:
            raise ValueError(f"backoff intervals must be >= 0 ms, got {self!r}")
        if self.exponent < 1:
            raise ValueError(f"backoff exponent must be >= 1, got {self.exponent}")


@dataclass(frozen=True)
class RetryConfig:
    """When and how to retry opening a stream.

    Args:
        strategy: ``"backoff"`` retries per ``backoff``; ``"none"`` never retries.
        backoff: the intervals (default :class:`BackoffStrategy()`).
        retry_connection_errors: also retry when the server cannot be reached or
            does not answer in time (off by default: the request may have arrived).

    Retried: statuses 429, 500, 502, 503, 504 (honouring ``Retry-After``) and,
    if enabled, connection errors; only before the first event is delivered.
    """

    strategy: Literal["backoff", "none"] = "backoff"
    backoff: BackoffStrategy = field(default_factory=BackoffStrategy)
    retry_connection_errors: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in ("backoff", "none"):
            raise ValueError(
                f"RetryConfig.strategy must be 'backoff' or 'none', got {self.strategy!r}"
            )

    @property
    def enabled(self) -> bool:
        return self.strategy == "backoff"


NO_RETRIES: Final = RetryConfig(strategy="none")


class RetrySchedule:
    """The state of one request's retries.  ``clock`` and ``rng`` are injectable for tests.

    Usage::

        schedule = RetrySchedule(config)
        while True:
            outcome = await attempt()
            delay = schedule.next_delay(retry_after=...)   # seconds, or None: give up
            if not retryable(outcome) or delay is None: ...
            await asyncio.sleep(delay)
    """

    __slots__ = ("_clock", "_rng", "_start", "attempts", "config")

    def __init__(
        self,
        config: RetryConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.attempts = 0  # retries scheduled so far
        self._clock = clock
        self._rng = rng or random.Random()
        self._start = clock()

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when out of budget.

        ``retry_after`` (seconds, from the server) replaces the computed backoff:
        the server knows when it will be ready.  Either way the wait must end
        within ``max_elapsed_time`` of the first attempt, else ``None``.
        """
        if not self.config.enabled:
            return None
        backoff = self.config.backoff
        if retry_after is not None:
            delay = min(max(0.0, retry_after), DEFAULT_MAX_SERVER_WAIT)
        else:
            # min(): exponent**attempts overflows a float after ~1000 attempts
            ceiling = min(
                backoff.initial_interval * backoff.exponent ** min(self.attempts, 64),
                float(backoff.max_interval),
            )
            delay = self._rng.uniform(ceiling / 2, ceiling) / 1000
        elapsed = self._clock() - self._start
        if elapsed + delay > backoff.max_elapsed_time / 1000:
            return None
        self.attempts += 1
        return delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    Returns ``None`` for a missing or malformed value (then backoff applies).
    A date in the past means "now" (0).  Never raises: whatever the server sent
    (``"²"``, thousands of digits, a date in year 9999) is a number >= 0 or
    ``None``; callers clamp it to their own maximum.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone accepts "²"
        return float(value) if len(value) <= 15 else 1e15  # float("9"*5000) is inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT anyway
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = time.time() if now is None else now
    try:
        return max(0.0, when.timestamp() - current)
    except (OverflowError, ValueError, OSError):
        return None
