"""The pacer on a fake clock and fixed jitter: backoff, the server-wide hold, the probe."""

from __future__ import annotations

import itertools
import random

from syncapp.engine.pacer import (
    PROBE_FIRST,
    PROBE_MAX,
    Pacer,
    backoff,
    folder_retry_delay,
    probe_delays,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def top(lo: float, hi: float) -> float:
    return hi


def bottom(lo: float, hi: float) -> float:
    return lo


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, uniform=top) for n in range(1, 9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0
    ]
    assert backoff(0, uniform=top) == 0.5
    assert backoff(20, cap=15.0, uniform=top) == 15.0


def test_backoff_jitter_is_at_least_half() -> None:
    rnd = random.Random(1)
    for n in range(1, 12):
        for _ in range(50):
            d = backoff(n, uniform=rnd.uniform)
            full = min(60.0, 0.5 * 2 ** (n - 1))
            assert full / 2 <= d <= full
    assert backoff(3, uniform=bottom) == 1.0


def test_retry_after_is_a_floor_capped_at_five_minutes() -> None:
    assert backoff(1, 7.0, uniform=top) == 7.0
    assert backoff(8, 7.0, uniform=top) == 60.0  # the backoff is longer
    assert backoff(1, 3600.0, uniform=top) == 300.0


def test_folder_retry_delay() -> None:
    assert folder_retry_delay(1, None, fatal=False, uniform=bottom) == 1.0  # never below 1 s
    assert folder_retry_delay(10, None, fatal=False, uniform=top) == 60.0
    assert folder_retry_delay(1, None, fatal=True, uniform=top) == 30.0  # never below 30 s
    assert folder_retry_delay(12, None, fatal=True, uniform=top) == 300.0
    assert folder_retry_delay(1, 45.0, fatal=False, uniform=top) == 45.0


def test_probe_schedule() -> None:
    got = list(itertools.islice(probe_delays(), 7))
    assert got == [PROBE_FIRST, 1.0, 2.0, PROBE_MAX, PROBE_MAX, PROBE_MAX, PROBE_MAX]


def test_a_429_holds_every_job_then_one_probes() -> None:
    clock = Clock()
    p = Pacer(clock, uniform=top)
    assert not p.held(clock.now) and p.limit(8) == 8
    delay = p.hold(started=clock.now - 1, retry_after=None)
    assert delay == 0.5
    assert p.held(clock.now) and p.held(clock.now + 0.49)
    assert not p.held(clock.now + 0.5)
    assert p.limit(8) == 1  # after the hold, one job probes
    p.succeeded()
    assert p.limit(8) == 8


def test_jobs_in_flight_when_the_hold_began_count_once() -> None:
    clock = Clock()
    p = Pacer(clock, uniform=top)
    started = clock.now - 5  # eight uploads started together, all get a 503
    delays = [p.hold(started, None) for _ in range(8)]
    assert delays == [0.5] * 8
    clock.now += 1
    # The probe that started after the hold fails too: the next step.
    assert p.hold(clock.now - 0.1, None) == 1.0
    clock.now += 2
    assert p.hold(clock.now - 0.1, None) == 2.0
    p.succeeded()
    clock.now += 10
    assert p.hold(clock.now - 0.1, None) == 0.5  # from the bottom again


def test_retry_after_sets_the_hold() -> None:
    clock = Clock()
    p = Pacer(clock, uniform=top)
    assert p.hold(clock.now, 20.0) == 20.0  # above the hold's own 15 s cap: the server knows
    assert p.held(clock.now + 19.9) and not p.held(clock.now + 20.0)
    # A shorter hold later never shortens the one in force.
    clock.now += 1
    p.hold(clock.now, 1.0)
    assert p.hold_until == 1020.0
