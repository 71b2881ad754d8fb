"""When a folder looks at its disk: the first scan, a rescan on request, every
``rescan_interval`` and every few seconds while the watcher is down, and the watcher's
batches in between (whatever arrived together is one plan).

It decides when, not what: the scan and the planning of a batch are the coordinator's
(scanner → planner). Before each scan the local root is checked; a root that is gone is looked
at again every few seconds (an unmounted disk must never look like a folder wiped clean). A
``--once`` run scans once and watches nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from syncapp.engine.watcher import Watcher

log = logging.getLogger(__name__)

#: A folder whose root is gone is looked at again this often (seconds).
ROOT_RETRY = 2.0
#: While the watcher is down, the folder is rescanned at least this often (seconds).
WATCH_DOWN_RESCAN = 5.0


@dataclass(slots=True)
class Steps:
    """What the loop calls on the folder."""

    #: The root is there and the same (else the folder says why and waits).
    root_ok: Callable[[], Awaitable[bool]]
    full_scan: Callable[[], Awaitable[None]]
    plan_batch: Callable[[set[str]], Awaitable[None]]
    #: Where the watcher's batches go (the folder hands them back to ``ScanLoop.add_batch``).
    watched: Callable[[set[str]], None]
    #: A --once run whose root is gone: no scan will run.
    no_scan: Callable[[], None]
    #: The watcher is down (a message) or back (""); changes may be missed meanwhile.
    watch_problem: Callable[[str], None]
    #: A batch arrived or was planned: the folder's idleness may have changed.
    changed: Callable[[], None]
    #: A bug: the folder must say it, not die silently.
    crashed: Callable[[Exception], None]


class ScanLoop:
    def __init__(
        self, name: str, root: str, steps: Steps, *, live: bool, rescan_interval: float
    ) -> None:
        self.name = name
        self.root = root
        self.steps = steps
        self.live = live
        self.rescan_interval = rescan_interval
        self._requested = asyncio.Event()
        self._batches: asyncio.Queue[set[str]] = asyncio.Queue()

    def request(self) -> None:
        """Scan again soon (the user asked, the remote is back, a problem cleared)."""
        self._requested.set()

    def batches_waiting(self) -> bool:
        return not self._batches.empty()

    async def run(self) -> None:
        try:
            while not await self.steps.root_ok():
                if not self.live:
                    self.steps.no_scan()
                    return
                await asyncio.sleep(ROOT_RETRY)
            if not self.live:
                await self.steps.full_scan()
                return
            watcher = Watcher(
                self.root,
                self.steps.watched,
                self._on_watch_error,
                on_recovered=self._on_watch_recovered,
            )
            async with watcher:
                consumer = asyncio.create_task(self._consume())
                try:
                    await self._rescans(watcher)
                finally:
                    consumer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await consumer
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("folder %s failed", self.name)
            self.steps.crashed(e)

    async def _rescans(self, watcher: Watcher) -> None:
        await self.steps.full_scan()
        while True:
            interval = self.rescan_interval or None
            if watcher.failed:
                interval = min(interval or WATCH_DOWN_RESCAN, WATCH_DOWN_RESCAN)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the event fires, and then shutdown hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._requested.wait()
            self._requested.clear()
            while not await self.steps.root_ok():
                await asyncio.sleep(ROOT_RETRY)
            await self.steps.full_scan()

    # -- the watcher ------------------------------------------------------------------------------

    def add_batch(self, paths: set[str]) -> None:
        """Changed paths the watcher saw: planned with whatever else arrived meanwhile."""
        self._batches.put_nowait(paths)
        self.steps.changed()

    def _on_watch_error(self, message: str) -> None:
        self.steps.watch_problem(message)
        self._requested.set()

    def _on_watch_recovered(self) -> None:
        self._requested.set()  # whatever happened while it was down
        self.steps.watch_problem("")

    async def _consume(self) -> None:
        while True:
            paths = await self._batches.get()
            # Merge whatever else has arrived: one plan for a burst.
            while not self._batches.empty():
                paths |= self._batches.get_nowait()
            try:
                await self.steps.plan_batch(paths)
            except Exception:
                log.exception("planning a watcher batch failed; rescanning")
                self._requested.set()
            self.steps.changed()
