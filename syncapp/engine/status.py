"""A folder's lifecycle as views see it: the status word, the counts, and when it is idle.

One word (scanning, syncing, up to date, paused, offline, error) with its reason is computed
here from the folder's flags, and said once per change; the counts and the round's progress
go out at most ten times a second (a sync of 10,000 files must not flood a view). The
coordinator, the failure policy and the guard set the flags; nothing else decides the word.
``wait_idle`` (``run --once``, tests) ends here too: the first scan done, nothing queued,
delayed, running or held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from syncapp.engine.events import (
    CountsChanged,
    EventBus,
    FolderState,
    FolderStateChanged,
    PlanQueued,
    ScanFinished,
    SyncProgress,
)
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.jobqueue import JobQueue
from syncapp.engine.plan import Plan
from syncapp.engine.progress import RoundTally, Totals
from syncapp.engine.scanner import LocalEntry, ScanResult
from syncapp.engine.state import StateDB

#: At most this many count updates a second.
COUNTS_PER_SECOND = 10


@dataclass(frozen=True, slots=True)
class FolderStatus:
    name: str
    state: FolderState
    reason: str
    in_sync: int
    queued: int
    failed: int
    in_flight: int
    last_sync: float | None


@dataclass(slots=True)
class Flags:
    """What stops or colours a folder, each with its reason in words."""

    paused: bool = False
    pause_reason: str = ""
    #: Needs the user, or a retry later by itself (a remote error, a missing root).
    error: str = ""
    #: The remote does not answer; the failure policy probes it.
    offline: str = ""
    #: Until the first scan has run, the folder is "scanning", never "up to date".
    scanning: bool = True
    #: Said with "up to date": live changes may be missed (a rescan interval covers them).
    watch_problem: str = ""

    def word(self, *, busy: bool, failed: int) -> tuple[FolderState, str]:
        """The status word and its reason; ``busy``: jobs queued, running or deletes held."""
        if self.error:
            return FolderState.ERROR, self.error
        if self.paused:
            return FolderState.PAUSED, self.pause_reason
        if self.offline:
            return FolderState.OFFLINE, self.offline
        if self.scanning:
            return FolderState.SCANNING, ""
        if busy:
            return FolderState.SYNCING, ""
        if failed:
            return FolderState.ERROR, f"{failed} path(s) failed to sync"
        return FolderState.UP_TO_DATE, self.watch_problem

    def pause(self, reason: str) -> None:
        self.paused = True
        self.pause_reason = reason

    def unpause(self) -> None:
        self.paused = False
        self.pause_reason = ""


class Reporter:
    """Says the word when it changes, the counts (throttled) and the round's progress."""

    def __init__(
        self,
        name: str,
        bus: EventBus,
        tally: RoundTally,
        status: Callable[[], FolderStatus],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.bus = bus
        #: Uploads done of planned since the folder was last up to date (SyncProgress).
        self.tally = tally
        self.status = status
        self.clock = clock
        self._word: FolderState | None = None
        self._reason = ""
        self._counts_handle: asyncio.TimerHandle | None = None
        self._counts_last = 0.0
        self._tally_sent = Totals()

    def changed(self, word: FolderState, reason: str) -> bool:
        """Whether this is another word or reason than the last one said (then it is kept)."""
        if word == self._word and reason == self._reason:
            return False
        self._word, self._reason = word, reason
        return True

    def say(self, word: FolderState, reason: str) -> None:
        self.bus.publish(FolderStateChanged(self.name, word, reason))

    def planned(self, plan: Plan, local: Mapping[str, LocalEntry]) -> None:
        """A plan joins the round: its uploads count towards the progress, and it is said."""
        planned_bytes = 0
        for p in plan.uploads:
            le = local.get(p)
            size = le.size if le is not None else 0
            planned_bytes += size
            self.tally.planned(p, size)
        if plan:
            self.bus.publish(
                PlanQueued(
                    self.name,
                    uploads=len(plan.uploads),
                    bytes=planned_bytes,
                    deletes=len(plan.deletes),
                    moves=len(plan.moves),
                    mkdirs=len(plan.mkdirs),
                )
            )

    def scanned(self, result: ScanResult, changes: int, seconds: float) -> None:
        dirs = sum(1 for e in result.entries.values() if e.is_dir)
        files = len(result.entries) - dirs
        self.bus.publish(ScanFinished(self.name, files, dirs, changes, seconds))

    def end_round(self) -> None:
        """Say the round's final totals at once (the last throttled update may not have gone
        out), then start the next round from zero."""
        totals = self.tally.totals()
        if totals != Totals():
            if totals != self._tally_sent:
                self._progress(totals)
            self.tally.reset()
        self._tally_sent = Totals()

    def _progress(self, totals: Totals) -> None:
        self._tally_sent = totals
        self.bus.publish(
            SyncProgress(
                self.name,
                totals.files_done,
                totals.files_total,
                totals.bytes_done,
                totals.bytes_total,
            )
        )

    def counts(self) -> None:
        """Counts and progress soon: at most ``COUNTS_PER_SECOND`` times a second."""
        if self._counts_handle is not None:
            return
        gap = 1.0 / COUNTS_PER_SECOND
        delay = max(0.0, gap - (self.clock() - self._counts_last))
        self._counts_handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._counts_handle = None
        self._counts_last = self.clock()
        st = self.status()
        self.bus.publish(CountsChanged(self.name, st.in_sync, st.queued, st.failed, st.in_flight))
        totals = self.tally.totals()
        if totals != self._tally_sent and totals != Totals():
            self._progress(totals)

    def close(self) -> None:
        if self._counts_handle is not None:
            self._counts_handle.cancel()
            self._counts_handle = None


class StatusBoard:
    """One folder's flags, failed paths and last sync, and what follows from them."""

    def __init__(
        self,
        name: str,
        bus: EventBus,
        state: StateDB,
        tally: RoundTally,
        *,
        jobs: JobQueue,
        guard: DeleteGuard,
        synced_files: Callable[[], int],
        watch_waiting: Callable[[], bool],
        paused: bool = False,
    ) -> None:
        self.name = name
        self.state = state
        self.jobs = jobs
        self.guard = guard
        self.synced_files = synced_files
        self.watch_waiting = watch_waiting
        self.flags = Flags(paused=paused, pause_reason="paused by the user" if paused else "")
        #: Paths whose job failed for good (until retried or changed again).
        self.failed: set[str] = set()
        self.last_sync: float | None = None
        self.scan_done = asyncio.Event()
        self.idle = asyncio.Event()
        self.reporter = Reporter(name, bus, tally, self.status)

    def busy_with_jobs(self) -> bool:
        return self.jobs.busy() or bool(self.guard.held)

    def word(self) -> tuple[FolderState, str]:
        return self.flags.word(busy=self.busy_with_jobs(), failed=len(self.failed))

    def status(self) -> FolderStatus:
        word, reason = self.word()
        return FolderStatus(
            name=self.name,
            state=word,
            reason=reason,
            in_sync=self.synced_files(),
            queued=self.jobs.waiting + len(self.guard),
            failed=len(self.failed),
            in_flight=len(self.jobs.running),
            last_sync=self.last_sync,
        )

    def update(self) -> None:
        """Say the word if it changed (up to date: the time is kept), then the counts."""
        word, reason = self.word()
        if self.reporter.changed(word, reason):
            if word is FolderState.UP_TO_DATE:
                self.last_sync = time.time()
                self.state.mark_synced(self.name)
                self.state.flush()
            self.reporter.say(word, reason)
        if not self.busy_with_jobs() and not self.flags.scanning:
            self.reporter.end_round()
        self.reporter.counts()
        self.check_idle()

    def check_idle(self) -> None:
        flags = self.flags
        if flags.paused or flags.error:
            busy = flags.scanning or bool(self.jobs.running)
        else:
            busy = (
                not self.scan_done.is_set()
                or flags.scanning
                or self.jobs.busy()
                or bool(self.guard.held)
                or self.watch_waiting()
            )
        if busy:
            self.idle.clear()
        else:
            self.idle.set()

    async def wait_idle(self) -> None:
        """Return when the first scan is done and nothing is queued, delayed or running."""
        await self.scan_done.wait()
        while True:
            self.check_idle()
            if self.idle.is_set():
                return
            self.idle.clear()
            await self.idle.wait()

    # -- what the scan loop says ------------------------------------------------------------------

    def no_scan(self) -> None:
        """A --once run whose root is gone: no scan will run, and none must be waited for."""
        self.flags.scanning = False
        self.scan_done.set()
        self.check_idle()

    def crashed(self, e: Exception) -> None:
        self.flags.error = f"internal error: {e}"
        self.scan_done.set()
        self.update()

    def watch_problem(self, message: str) -> None:
        """The watcher is down (said at once, with the word) or back ("")."""
        self.flags.watch_problem = message
        if message:
            self.reporter.say(self.word()[0], message)
        else:
            self.update()
