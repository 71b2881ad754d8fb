"""From the engine's event stream to the UI: collapsed, batched and rate-limited.

The engine calls subscribers synchronously for every event; a sync of 10,000 files produces tens
of thousands of them. The relay buffers them, drops events made redundant by a newer one
(``can_replace``: progress and counts) and hands the rest on as one batch at most every
``interval`` seconds, and not before the previous batch was handled (``ack``), so a busy UI
slows the flow down instead of queueing without bound. After a big batch (a busy engine) the
next waits ``busy_interval``: each batch costs the UI a pass over its panels and a frame, much
the same for 50 events as for 500, and keys wait behind them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable

from syncapp.engine import Event


def _replaceable(event: Event) -> bool:
    return type(event).can_replace is not Event.can_replace


def _key(event: Event) -> Hashable:
    return (type(event), event.folder, getattr(event, "path", None))


class EventRelay:
    def __init__(
        self,
        deliver: Callable[[list[Event]], None],
        interval: float = 0.1,
        *,
        busy_interval: float = 0.25,
        busy_batch: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self.interval = interval
        self.busy_interval = max(interval, busy_interval)
        self.busy_batch = busy_batch
        #: The wait before the next batch: ``interval``, or ``busy_interval`` after a big one.
        self._pace = interval
        self._clock = clock
        self._buffer: list[Event | None] = []
        self._last: dict[Hashable, int] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._last_flush = -interval
        self._in_flight = False
        self._closed = False

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if _replaceable(event):
            key = _key(event)
            index = self._last.get(key)
            if index is not None:
                old = self._buffer[index]
                if old is not None and event.can_replace(old):
                    self._buffer[index] = None
            self._last[key] = len(self._buffer)
        self._buffer.append(event)
        self._arm()

    @property
    def pending(self) -> int:
        return sum(1 for e in self._buffer if e is not None)

    def _arm(self) -> None:
        if self._handle is not None or self._in_flight:
            return
        delay = max(0.0, self._pace - (self._clock() - self._last_flush))
        self._handle = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        """Hand the buffered events on now (the timer calls this)."""
        self._handle = None
        if self._closed or self._in_flight:
            return
        batch = [e for e in self._buffer if e is not None]
        self._buffer.clear()
        self._last.clear()
        if not batch:
            return
        self._last_flush = self._clock()
        self._pace = self.busy_interval if len(batch) >= self.busy_batch else self.interval
        self._in_flight = True
        self._deliver(batch)

    def ack(self) -> None:
        """The last batch was handled; the next may follow."""
        self._in_flight = False
        if self._buffer and not self._closed:
            self._arm()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buffer.clear()
        self._last.clear()
