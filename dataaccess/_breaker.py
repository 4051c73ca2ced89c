"""A small circuit breaker (closed / open / half-open) for the Redis-backed cache.

Why: when Redis is down every command costs a connect timeout. The breaker stops trying for a
cooldown after ``failure_threshold`` consecutive failures, so a dead Redis costs nothing per
request; after the cooldown one probe call is let through (half-open) and its outcome closes or
re-opens the breaker.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker.

    :param failure_threshold: consecutive failures that open the breaker. Default: ``3``.
    :param cooldown: seconds the breaker stays open before letting one probe through. Default: ``2.0``.
    :param probe_timeout: seconds after which an unanswered half-open probe is considered lost and
        another probe may go (guards against a probe cancelled before reporting). Default: ``10.0``.
    :param clock: monotonic clock, injectable for tests. Default: ``time.monotonic``.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_probe_started",
        "_state",
        "cooldown",
        "failure_threshold",
        "opens",
        "probe_timeout",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown: float = 2.0,
        probe_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if cooldown <= 0:
            raise ValueError(f"cooldown must be > 0 seconds, got {cooldown}")
        if probe_timeout <= 0:
            raise ValueError(f"probe_timeout must be > 0 seconds, got {probe_timeout}")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.probe_timeout = probe_timeout
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self.opens = 0
        """How many times the breaker went from closed/half-open to open."""

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose cooldown elapsed reports ``HALF_OPEN``."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def is_open(self) -> bool:
        """True while calls are being skipped (open, or half-open with a probe in flight)."""
        return self.state is not BreakerState.CLOSED

    def allow(self) -> bool:
        """Should the caller try Redis now? Claims the probe slot when half-open."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._probe_started is not None and now - self._probe_started < self.probe_timeout:
            return False  # another probe is in flight
        self._state = BreakerState.HALF_OPEN
        self._probe_started = now
        return True

    def record_success(self) -> None:
        """A Redis call succeeded: close the breaker and reset the failure count."""
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_started = None

    def record_failure(self) -> None:
        """A Redis call failed: count it; open on threshold or on a failed probe."""
        self._failures += 1
        half_open = self._state is BreakerState.HALF_OPEN or self._probe_started is not None
        if half_open or (self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold):
            self._trip()

    def _trip(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_started = None
        self.opens += 1
