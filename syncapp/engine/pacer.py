"""When calls to the remote may go after failures: backoff, the server-wide hold, the probe.

Pure policy, no asyncio: the folder asks it how long to wait and whether jobs may start.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

#: Statuses that speak for the whole server, not for one file.
REMOTE_WIDE = frozenset({429, 502, 503, 504})

#: While offline, the server is checked after this long, then twice as long each time, up to
#: PROBE_MAX seconds.
PROBE_FIRST = 0.5
PROBE_MAX = 4.0

Uniform = Callable[[float, float], float]


def backoff(
    attempts: int,
    retry_after: float | None = None,
    *,
    cap: float = 60.0,
    uniform: Uniform = random.uniform,
) -> float:
    """Capped exponential backoff with jitter; a server's Retry-After is a floor."""
    base = min(cap, 0.5 * 2 ** max(0, attempts - 1))
    delay: float = base * uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 300.0))
    return delay


def folder_retry_delay(
    failures: int, retry_after: float | None, *, fatal: bool, uniform: Uniform = random.uniform
) -> float:
    """How long a folder whose whole-folder remote step failed waits before it rescans.

    A fatal problem (password, quota) needs the user: tried now and then, never in a storm.
    """
    if fatal:
        return max(30.0, backoff(failures, retry_after, cap=300.0, uniform=uniform))
    return max(1.0, backoff(failures, retry_after, cap=60.0, uniform=uniform))


def probe_delays() -> Iterator[float]:
    """The waits between the offline probes: PROBE_FIRST, doubling, up to PROBE_MAX."""
    delay = PROBE_FIRST
    while True:
        yield delay
        delay = min(delay * 2, PROBE_MAX)


class Pacer:
    """The server-wide hold after a 429/503-like answer: no job starts until it ends, then a
    single job probes; the rest follow once one gets through (no retry storm)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, uniform: Uniform = random.uniform
    ) -> None:
        self.clock = clock
        self.uniform = uniform
        self.hold_until = 0.0
        self._hold_set_at = 0.0
        self._failures = 0
        self.probing = False

    def held(self, now: float) -> bool:
        return now < self.hold_until

    def limit(self, concurrency: int) -> int:
        """How many jobs may run: one while probing after a hold."""
        return 1 if self.probing else concurrency

    def hold(self, started: float, retry_after: float | None) -> float:
        """A job that started at ``started`` got a server-wide "not now": hold every job, and
        return the delay. Jobs already in flight when the hold began fail together: one failure."""
        if started >= self._hold_set_at:
            self._failures += 1
            self._hold_set_at = self.clock()
        delay = backoff(self._failures, retry_after, cap=15.0, uniform=self.uniform)
        self.hold_until = max(self.hold_until, self.clock() + delay)
        self.probing = True
        return delay

    def succeeded(self) -> None:
        """A job got through: the hold is over, and its backoff starts again from the bottom."""
        if self.probing or self._failures:
            self.probing = False
            self._failures = 0
