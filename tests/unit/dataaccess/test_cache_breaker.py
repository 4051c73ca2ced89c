"""CircuitBreaker state machine (pure logic, hand-driven clock)."""

from __future__ import annotations

import pytest

from dataaccess._breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(**kw: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(clock=clock, **kw), clock  # type: ignore[arg-type]


def test_opens_after_threshold_consecutive_failures():
    b, _ = make(failure_threshold=3, cooldown=2)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is BreakerState.CLOSED and not b.is_open
    b.record_failure()
    assert b.state is BreakerState.OPEN and b.is_open and b.opens == 1
    assert not b.allow()


def test_success_resets_the_failure_count():
    b, _ = make(failure_threshold=2)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_through():
    b, clock = make(failure_threshold=1, cooldown=2)
    b.record_failure()
    clock.now += 1.99
    assert not b.allow()
    clock.now += 0.01
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the probe
    assert not b.allow()  # others keep skipping while it is in flight
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()


def test_failed_probe_reopens_for_a_full_cooldown():
    b, clock = make(failure_threshold=3, cooldown=2)
    for _ in range(3):
        b.record_failure()
    clock.now += 2
    assert b.allow()
    b.record_failure()  # a single failure is enough when probing
    assert b.state is BreakerState.OPEN and b.opens == 2
    clock.now += 1
    assert not b.allow()
    clock.now += 1
    assert b.allow()


def test_lost_probe_is_replaced_after_probe_timeout():
    b, clock = make(failure_threshold=1, cooldown=1, probe_timeout=5)
    b.record_failure()
    clock.now += 1
    assert b.allow()  # probe that never reports (e.g. its task was cancelled)
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"cooldown": 0}, "cooldown"),
        ({"probe_timeout": -1}, "probe"),
    ],
)
def test_bad_settings(kw: dict[str, float], match: str):
    with pytest.raises(ValueError, match=match):
        CircuitBreaker(**kw)  # type: ignore[arg-type]
