"""``FolderSync``: one watched folder mirrored to one remote, as an async context manager.

Entering it checks the root, starts the watcher (live mode), scans, and starts the dispatcher
that feeds a bounded number of transfer jobs. Leaving it cancels everything, discards the
staging of in-flight uploads (nothing half-written becomes visible) and marks the state clean.

Jobs are keyed by path; a newer change to a queued path replaces the older one (the last one
wins). What to do for a path is decided when its job runs, from the disk and the state database
at that moment, so a burst of changes to one file costs one upload. Jobs whose paths are the
same or nested never run at the same time. Every delete passes the delete guard first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiofiles

from syncapp.config import FolderConfig, parse_duration
from syncapp.engine.adopt import adopt, list_remote_tree, remote_changed, same_mtime
from syncapp.engine.entries import EntryMap as EntryMap  # re-exported
from syncapp.engine.events import (
    ConflictKept,
    CountsChanged,
    EventBus,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    PathSkipped,
    PlanQueued,
    RemoteOffline,
    RemoteOnline,
    RemoteStillOffline,
    ScanFinished,
    ScanProgressed,
    ScanStarted,
    SyncProgress,
)
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.jobqueue import Job as Job  # re-exported
from syncapp.engine.jobqueue import JobKind as JobKind  # re-exported
from syncapp.engine.jobqueue import JobQueue
from syncapp.engine.learned import learn_remote
from syncapp.engine.pacer import (
    PROBE_FIRST,
    REMOTE_WIDE,
    Pacer,
    backoff,
    folder_retry_delay,
    probe_delays,
)
from syncapp.engine.plan import Plan, diff, ignored_path
from syncapp.engine.progress import RoundTally, Totals
from syncapp.engine.ratelimit import RateLimit, limited
from syncapp.engine.scanner import (
    LocalEntry,
    ScanResult,
    lstat_entry,
    parents,
    printable,
    scan_tree,
)
from syncapp.engine.state import Entry, Pending, StateDB
from syncapp.engine.versions import Version, Versions, pick
from syncapp.engine.watcher import Watcher
from syncapp.errors import (
    LocalError,
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteUnavailable,
)
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import PutResult, Remote, join

log = logging.getLogger(__name__)

SMALL_FILE = 256 * 1024
#: Files this small are read in the loop: a page-cache read of a few KiB costs less than the
#: thread hop aiofiles would make (measured: the hop was a tenth of a small file's CPU cost).
TINY_FILE = 64 * 1024
CHUNK = 1024 * 1024
PRUNE_EVERY = 3600.0


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


class _Requeue(Exception):
    """The job's path changed under it: run it again after a short delay."""




class FolderSync:
    def __init__(
        self,
        cfg: FolderConfig,
        remote: Remote,
        state: StateDB,
        bus: EventBus,
        *,
        live: bool = True,
        concurrency: int = 8,
        limits: Iterable[RateLimit] = (),
        allow_mass_delete: bool = False,
        delete_hold: float = 1.0,
        max_attempts_once: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.root = str(cfg.path)
        self.remote = remote
        self.state = state
        self.bus = bus
        self.live = live
        self.concurrency = max(1, concurrency)
        self.limits = list(limits)
        # Deletes wait here, briefly, then for the user if there are too many.
        self.guard = DeleteGuard(allow_mass_delete=allow_mass_delete)
        self.delete_hold = delete_hold if live else 0.0
        self.max_attempts_once = max_attempts_once
        self.rules = IgnoreRules(cfg.ignore)
        self.remote_root = cfg.remote_path.strip("/")
        self.versions = Versions(
            remote,
            self.remote_root,
            enabled=cfg.versions,
            keep_seconds=parse_duration(cfg.keep_versions),
            clock=clock,
        )

        self.entries = EntryMap()
        self.jobs = JobQueue(time.monotonic)
        self._held_timer: asyncio.TimerHandle | None = None
        self._failed: set[str] = set()
        self._dir_futures: dict[str, asyncio.Future[None]] = {}
        self._uploads_in_flight: dict[str, str] = {}  # upload_id -> remote path
        self._stale_uploads: dict[str, str] = {}  # failed attempts whose staging may remain
        self._discarding = False
        self.pacer = Pacer(time.monotonic)

        self._tasks: list[asyncio.Task[None]] = []
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._scan_done = asyncio.Event()
        self._rescan_requested = asyncio.Event()
        self._watch_batches: asyncio.Queue[set[str]] = asyncio.Queue()

        self.paused = cfg.paused
        self.pause_reason = "paused by the user" if cfg.paused else ""
        self.error: str = ""
        self.offline: str = ""
        # An error a whole-folder remote step set (live): retried by itself with capped backoff,
        # at once on a rescan or a new local change; cleared by the next scan that gets through.
        self._remote_error = ""
        self._remote_failures = 0
        self._remote_retry: asyncio.TimerHandle | None = None
        self._remote_failed_at = 0.0
        # The last scan could not plan against the remote: the next answer must rescan.
        self._scan_failed = False
        # Remote files the state knew nothing of (first run, lost state) that differ from the
        # local file: from the one listing, so an overwrite keeps them without asking per file.
        self._unrecorded_remote: set[str] = set()
        # Until the first scan has run, the folder is "scanning", never "up to date".
        self.scanning = True
        self._root_ready = False
        self.watch_problem = ""
        self._state_word: FolderState | None = None
        self._state_reason = ""
        self._counts_handle: asyncio.TimerHandle | None = None
        self._counts_last = 0.0
        #: Uploads done of planned since the folder was last up to date (SyncProgress).
        self.tally = RoundTally()
        self._tally_sent = Totals()
        self._probe_task: asyncio.Task[None] | None = None
        self.last_sync: float | None = None
        self.guard_deletes: list[str] = []
        self._root_id: tuple[int, int] | None = None
        self._prescan: asyncio.Task[tuple[tuple[int, int] | None, ScanResult]] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def remote_id(self) -> str:
        return f"{self.remote.display_url.rstrip('/')}/{self.remote_root}"

    async def __aenter__(self) -> Self:
        if not self.live:
            # The disk scan runs while the state loads (a live start has its watcher running
            # before it scans, so it cannot start this early).
            self._prescan = asyncio.create_task(
                asyncio.to_thread(self._scan_with_root_id, self._scan_progress())
            )
        try:
            record = self.state.open_folder(self.name, self.remote_id)
            self.entries = EntryMap(self.state.entries(self.name))
        except BaseException:
            if self._prescan is not None:
                self._prescan.cancel()
                with contextlib.suppress(BaseException):
                    await self._prescan
            raise
        self._unclean_start = record is not None and not record.clean
        self._first_run = record is None
        if record is not None:
            self.last_sync = record.last_sync
            if record.root_dev is not None and record.root_ino is not None:
                self._root_id = (record.root_dev, record.root_ino)
        # After a clean run that synced something, the remote_path is known to exist: no
        # request is needed before there is work (an upload that finds it gone recreates it).
        self._root_ready = bool(record is not None and record.clean and self.entries)
        # Reasons are recomputed from scratch by the scan; stale ones would mislead `why`.
        self.state.clear_all_pending(self.name)
        self._tasks.append(asyncio.create_task(self._dispatch(), name=f"{self.name} dispatch"))
        self._tasks.append(asyncio.create_task(self._main(), name=f"{self.name} main"))
        self._update_state()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._job_tasks]
        if self._prescan is not None:
            tasks.append(self._prescan)
        if self._probe_task:
            tasks.append(self._probe_task)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        # Abandon in-flight uploads: their staging names must not linger on the remote.
        self._stale_uploads.update(self._uploads_in_flight)
        self._uploads_in_flight.clear()
        if self._stale_uploads:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._discard_stale()
        if self._held_timer:
            self._held_timer.cancel()
        if self._remote_retry:
            self._remote_retry.cancel()
        if self._counts_handle:
            self._counts_handle.cancel()
        self._persist_queue_reasons()
        if self._stale_uploads:
            # Cleanup could not finish: stay "unclean" so the next start sweeps the remote.
            self.state.flush()
        else:
            self.state.close_folder(self.name)

    # -- public control ---------------------------------------------------------------------------

    def pause(self, reason: str = "paused by the user") -> None:
        self.paused = True
        self.pause_reason = reason
        self._update_state()

    def resume(self) -> None:
        self.paused = False
        self.pause_reason = ""
        self.error = ""
        self._remote_error = ""
        self.guard_deletes = []
        self._wake.set()
        self.rescan()
        self._update_state()

    def rescan(self) -> None:
        self._rescan_requested.set()

    def release_guard(self) -> None:
        """Let the held deletes go through once (the user confirmed them)."""
        self.guard.allow_once = True
        self.paused = False
        self.pause_reason = ""
        self.guard_deletes = []
        self._release_held()
        self._update_state()

    def retry_failed(self) -> None:
        failed = list(self._failed)
        for p in failed:
            self._enqueue(Job(JobKind.SYNC, p))
        self._failed.clear()
        # What `why` and the UI read: queued again, no longer the old failure.
        self._persist_queue_reasons(only=failed)

    async def wait_idle(self) -> None:
        """Return when the first scan is done and nothing is queued, delayed or running."""
        await self._scan_done.wait()
        while True:
            self._check_idle()
            if self._idle.is_set():
                return
            self._idle.clear()
            await self._idle.wait()

    def status(self) -> FolderStatus:
        return FolderStatus(
            name=self.name,
            state=self._compute_state()[0],
            reason=self._compute_state()[1],
            in_sync=self.entries.files,
            queued=self.jobs.waiting + len(self.guard),
            failed=len(self._failed),
            in_flight=len(self.jobs.running),
            last_sync=self.last_sync,
        )

    # -- state word -------------------------------------------------------------------------------

    def _compute_state(self) -> tuple[FolderState, str]:
        if self.error:
            return FolderState.ERROR, self.error
        if self.paused:
            return FolderState.PAUSED, self.pause_reason
        if self.offline:
            return FolderState.OFFLINE, self.offline
        if self.scanning:
            return FolderState.SCANNING, ""
        if self.jobs.busy() or self.guard.held:
            return FolderState.SYNCING, ""
        if self._failed:
            return FolderState.ERROR, f"{len(self._failed)} path(s) failed to sync"
        return FolderState.UP_TO_DATE, self.watch_problem

    def _update_state(self) -> None:
        word, reason = self._compute_state()
        if word != self._state_word or reason != self._state_reason:
            self._state_word, self._state_reason = word, reason
            if word is FolderState.UP_TO_DATE:
                self.last_sync = time.time()
                self.state.mark_synced(self.name)
                self.state.flush()
            self.bus.publish(FolderStateChanged(self.name, word, reason))
        if not self._busy_with_jobs() and not self.scanning:
            self._end_round()
        self._publish_counts()
        self._check_idle()

    def _end_round(self) -> None:
        """Say the round's final totals at once (the last throttled update may not have gone
        out), then start the next round from zero."""
        totals = self.tally.totals()
        if totals != Totals():
            if totals != self._tally_sent:
                self._publish_progress(totals)
            self.tally.reset()
        self._tally_sent = Totals()

    def _publish_progress(self, totals: Totals) -> None:
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

    def _busy_with_jobs(self) -> bool:
        return self.jobs.busy() or bool(self.guard.held)

    def _publish_counts(self) -> None:
        # At most ten count updates a second: a sync of 10,000 files must not flood the UI.
        now = time.monotonic()
        if self._counts_handle is not None:
            return
        delay = max(0.0, 0.1 - (now - self._counts_last))

        def fire() -> None:
            self._counts_handle = None
            self._counts_last = time.monotonic()
            st = self.status()
            self.bus.publish(
                CountsChanged(self.name, st.in_sync, st.queued, st.failed, st.in_flight)
            )
            totals = self.tally.totals()
            if totals != self._tally_sent and totals != Totals():
                self._publish_progress(totals)

        self._counts_handle = asyncio.get_running_loop().call_later(delay, fire)

    def _check_idle(self) -> None:
        busy = (
            not self._scan_done.is_set()
            or self.scanning
            or self.jobs.busy()
            or (self.guard.held and not self.paused and not self.error)
            or not self._watch_batches.empty()
        )
        if self.paused or self.error:
            busy = self.scanning or bool(self.jobs.running)
        if busy:
            self._idle.clear()
        else:
            self._idle.set()

    # -- main loop --------------------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            while not await self._root_ok():
                if not self.live:
                    self.scanning = False  # no scan will run: `run --once` must not wait for one
                    self._scan_done.set()
                    self._check_idle()
                    return
                await asyncio.sleep(2.0)
            if self.live:
                watcher = Watcher(
                    self.root,
                    self._on_watch,
                    self._on_watch_error,
                    on_recovered=self._on_watch_recovered,
                )
                async with watcher:
                    consumer = asyncio.create_task(self._consume_watch())
                    try:
                        await self._rescan_loop(watcher)
                    finally:
                        consumer.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await consumer
            else:
                await self._full_scan()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug here must show, not kill the folder silently
            log.exception("folder %s failed", self.name)
            self.error = f"internal error: {e}"
            self._scan_done.set()
            self._update_state()

    async def _rescan_loop(self, watcher: Watcher) -> None:
        await self._full_scan()
        while True:
            interval = self.cfg.rescan_interval or None
            if watcher.failed:
                interval = min(interval or 5.0, 5.0)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the event fires, and then shutdown hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._rescan_requested.wait()
            self._rescan_requested.clear()
            while not await self._root_ok():
                await asyncio.sleep(2.0)
            await self._full_scan()

    async def _root_ok(self) -> bool:
        """The root exists, is a folder and is where it was: else error, and no deletes."""
        try:
            st = await asyncio.to_thread(os.stat, self.root)
        except OSError as e:
            problem = (
                "is missing"
                if isinstance(e, FileNotFoundError)
                else f"cannot be read ({e.strerror})"
            )
            self._set_error(
                f"folder root {self.root} {problem}; nothing is deleted remotely, "
                "syncing goes on when it is back"
            )
            return False
        import stat as statmod

        if not statmod.S_ISDIR(st.st_mode):
            self._set_error(f"folder root {self.root} is not a folder")
            return False
        if not os.access(self.root, os.R_OK | os.X_OK):
            self._set_error(f"folder root {self.root} cannot be read (permission denied)")
            return False
        if self._root_id is not None and self._root_id[0] != st.st_dev:
            self._set_error(
                f"folder root {self.root} is on another device than before "
                "(an unmounted disk?); nothing is deleted remotely until it is back"
            )
            return False
        if self._root_id is None:
            self._root_id = (st.st_dev, st.st_ino)
            self.state.set_root(self.name, st.st_dev, st.st_ino)
        if self.error.startswith("folder root"):
            self.error = ""
            self._update_state()
        return True

    def _set_error(self, message: str) -> None:
        if self.error != message:
            self.error = message
            self._update_state()

    # -- scanning ---------------------------------------------------------------------------------

    async def _full_scan(self) -> None:
        self.scanning = True
        self._update_state()
        self.bus.publish(ScanStarted(self.name))
        started = time.monotonic()
        try:
            remote_error: RemoteError | None = None
            try:
                await self._ensure_remote_root()
            except RemoteError as e:
                remote_error = e
            result = await self._take_prescan()
            if result is None:
                result = await asyncio.to_thread(
                    scan_tree,
                    self.root,
                    self.rules,
                    follow_symlinks=self.cfg.follow_symlinks,
                    progress=self._scan_progress(),
                )
            if remote_error is None and (self._first_run or self._unclean_start):
                try:
                    await self._retrying(lambda: self._reconcile_with_remote(result))
                except RemoteError as e:
                    remote_error = e
            plan = diff(
                result.entries, self.entries, protected=result.unreadable_dirs, rules=self.rules
            )
            self._record_skipped(result.skipped)
            if remote_error is not None:
                self._remote_unusable(remote_error, plan)
            else:
                self._remote_usable()
                self._enqueue_plan(plan, result.entries)
                await self._maybe_prune()
            dirs = sum(1 for e in result.entries.values() if e.is_dir)
            self.bus.publish(
                ScanFinished(
                    self.name,
                    files=len(result.entries) - dirs,
                    dirs=dirs,
                    changes=len(plan),
                    seconds=time.monotonic() - started,
                )
            )
        finally:
            self.scanning = False
            self._scan_done.set()
            self._update_state()

    def _scan_with_root_id(
        self, progress: Callable[[int, int], None] | None = None
    ) -> tuple[tuple[int, int] | None, ScanResult]:
        try:
            st = os.stat(self.root)
            root_id: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            root_id = None
        result = scan_tree(
            self.root, self.rules, follow_symlinks=self.cfg.follow_symlinks, progress=progress
        )
        return root_id, result

    def _scan_progress(self) -> Callable[[int, int], None]:
        """A callback for the scanner's thread: a ScanProgressed at most five times a second,
        published in the engine's loop."""
        loop = asyncio.get_running_loop()
        last = 0.0

        def report(files: int, dirs: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < 0.2:
                return
            last = now
            loop.call_soon_threadsafe(self.bus.publish, ScanProgressed(self.name, files, dirs))

        return report

    async def _take_prescan(self) -> ScanResult | None:
        """The scan started at entry, if it was of the root that passed the checks since."""
        task, self._prescan = self._prescan, None
        if task is None:
            return None
        root_id, result = await task
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        return result if root_id == (st.st_dev, st.st_ino) else None

    def _remote_unusable(self, e: RemoteError, plan: Plan) -> None:
        """The remote failed before anything could be planned against it.

        Every change waits with the error as its reason (so `why` can say so). Live mode goes
        offline and rescans when the remote answers again; --once stops the folder.
        """
        self._forget_ignored(plan.forgets)
        paths = [*plan.mkdirs, *plan.uploads, *(d for _, d, _ in plan.moves)]
        paths += [p for p, _ in plan.deletes]
        retry_at = None if not self.live else time.time() + 5.0
        status = "retrying" if self.live else "failed"
        reason = f"waiting for the remote: {e}" if self.live else f"remote unusable: {e}"
        self.state.set_pending_many(
            self.name, (Pending(p, status, reason, 1, retry_at) for p in paths)
        )
        self._scan_failed = True
        if not self.live:
            self.error = remote_problem(e)
            self._failed.update(paths)
            return
        if e.fatal_for_folder or not e.retryable:
            self._remote_failed(e)
            return
        self._note_remote_failure(e)

    def _remote_failed(self, e: RemoteError) -> None:
        """Live: a whole-folder remote step failed in a way waiting offline would not cure
        (a broken answer, 401, 507). Say what it was and rescan by itself after a capped
        backoff; a rescan or a new local change tries at once."""
        self._remote_failures += 1
        delay = folder_retry_delay(
            self._remote_failures, e.retry_after, fatal=e.fatal_for_folder
        )
        self._remote_error = f"{remote_problem(e)}; retrying in {math.ceil(delay)} s"
        self.error = self._remote_error
        self._remote_failed_at = time.monotonic()
        if self._remote_retry is not None:
            self._remote_retry.cancel()
        self._remote_retry = asyncio.get_running_loop().call_later(delay, self.rescan)
        log.warning("%s: %s", self.name, self._remote_error)
        self._update_state()

    def _remote_usable(self) -> None:
        """A scan got through to the remote: an error a failed one set is over."""
        self._scan_failed = False
        if self._remote_retry is not None:
            self._remote_retry.cancel()
            self._remote_retry = None
        if self._remote_error and self.error == self._remote_error:
            self.error = ""
            self._wake.set()
        self._remote_error = ""

    def _retry_remote_now(self) -> None:
        """A new local change while a remote error holds the folder: try again at once, but
        not more than once every few seconds (a busy folder must not hammer a broken server)."""
        if self._remote_error and time.monotonic() - self._remote_failed_at >= 5.0:
            self._remote_failed_at = time.monotonic()
            self.rescan()

    async def _ensure_remote_root(self) -> None:
        """Create the folder's ``remote_path`` (and its parents) remotely, once per session."""
        if self._root_ready:
            return

        async def make() -> None:
            if self.remote_root and self.remote.capabilities.directories:
                parts = self.remote_root.split("/")
                for i in range(1, len(parts) + 1):
                    await self.remote.mkdir("/".join(parts[:i]))
            else:
                await self.remote.stat(self.remote_root)
            await learn_remote(self.remote, self.state, self.remote_root)

        await self._retrying(make)
        self._root_ready = True
        self._remote_failures = 0
        if self.offline:
            self.offline = ""
            self.bus.publish(RemoteOnline(self.name))

    async def _retrying(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run a whole-folder step; in --once mode retry transient failures a few times (with
        backoff and Retry-After) before the run gives up. Live mode has its own offline probe."""
        attempt = 0
        while True:
            try:
                await step()
                return
            except RemoteError as e:
                attempt += 1
                if self.live or not e.retryable or attempt >= self.max_attempts_once:
                    raise
                await asyncio.sleep(backoff(attempt, e.retry_after))

    async def _reconcile_with_remote(self, result: ScanResult) -> None:
        """First run or after a crash: list the remote once.

        Files already identical remotely are adopted without upload; leftovers of our
        interrupted uploads are removed; after a crash, remote paths that exist neither locally
        nor in the state (an upload whose record was lost) are deleted as extras.
        """
        prefix = self.remote_root
        remote = await list_remote_tree(self.remote, prefix)
        for p in remote.staging:
            with contextlib.suppress(RemoteError):
                await self.remote.delete(p)
        with contextlib.suppress(RemoteError):
            await self.remote.cleanup_stale_uploads(prefix)
        now = time.time()
        for entry in await adopt(
            self.remote, prefix, self.root, result.entries, remote, self.entries, now=now
        ):
            self._put_entry(entry)
        self._unrecorded_remote = {
            rel
            for rel, le in result.entries.items()
            if not le.is_dir
            and rel not in self.entries
            and (r := remote.entries.get(rel)) is not None
            and not r.is_dir
        }
        if self._unclean_start and self.cfg.mirror_deletes:
            extras = [
                (rel, r.is_dir)
                for rel, r in remote.entries.items()
                if rel not in result.entries
                and rel not in self.entries
                and not self.rules.ignored(rel, is_dir=r.is_dir)
            ]
            if extras:
                # Known to the state as "synced" so the normal delete path (and guard) removes them.
                for rel, is_dir in extras:
                    self.entries[rel] = Entry(rel, is_dir, 0, 0, 0, None, now)
        self._first_run = False
        self._unclean_start = False
        self._remote_failures = 0

    def _record_skipped(self, skipped: dict[str, str]) -> None:
        items = []
        for p, reason in skipped.items():
            items.append(Pending(p, "skipped", reason))
            self.bus.publish(PathSkipped(self.name, p, reason))
        if items:
            self.state.set_pending_many(self.name, items)

    def _enqueue_plan(self, plan: Plan, local: Mapping[str, LocalEntry]) -> None:
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
        self._forget_ignored(plan.forgets)
        for src, dst, is_dir in plan.moves:
            self._enqueue(Job(JobKind.MOVE, dst, src=src, is_dir=is_dir))
        for p in plan.mkdirs:
            self._enqueue(Job(JobKind.SYNC, p))
        for p in plan.uploads:
            self._enqueue(Job(JobKind.SYNC, p))
        if plan.deletes:
            self._hold_deletes(plan.deletes)
        self._persist_queue_reasons(only=[*plan.mkdirs, *plan.uploads, *(m[1] for m in plan.moves)])

    # -- the watcher ------------------------------------------------------------------------------

    def _on_watch(self, paths: set[str]) -> None:
        self._watch_batches.put_nowait(paths)
        self._idle.clear()

    def _on_watch_error(self, message: str) -> None:
        self.watch_problem = message
        self.bus.publish(FolderStateChanged(self.name, self._compute_state()[0], message))
        self._rescan_requested.set()

    def _on_watch_recovered(self) -> None:
        self.watch_problem = ""
        self._rescan_requested.set()  # whatever happened while it was down
        self._update_state()

    async def _consume_watch(self) -> None:
        while True:
            paths = await self._watch_batches.get()
            # Merge whatever else has arrived: one plan for a burst.
            while not self._watch_batches.empty():
                paths |= self._watch_batches.get_nowait()
            try:
                await self._plan_paths(paths)
            except Exception:
                log.exception("planning a watcher batch failed; rescanning")
                self._rescan_requested.set()
            self._check_idle()

    async def _plan_paths(self, paths: set[str]) -> None:
        self._retry_remote_now()
        if "" in paths:
            if not await self._root_ok():
                return
            paths.discard("")
        local: dict[str, LocalEntry] = {}
        scope: set[str] = set()
        skipped: dict[str, str] = {}
        subtree_roots: list[str] = []
        for p in paths:
            if self.rules.ignored(p) or any(self.rules.ignored(a, is_dir=True) for a in parents(p)):
                continue
            scope.add(p)
            le, why = lstat_entry(self.root, p, self.rules, self.cfg.follow_symlinks)
            if why:
                skipped[printable(p)] = why
                continue
            if le is None:
                known = self.entries.get(p)
                if known is not None and known.is_dir:
                    scope.update(self.entries.below(p))
                continue
            local[p] = le
            if le.is_dir:
                known = self.entries.get(p)
                if known is None or not known.is_dir:
                    subtree_roots.append(p)
        for d in subtree_roots:
            sub = await asyncio.to_thread(
                scan_tree, self.root, self.rules, start=d, follow_symlinks=self.cfg.follow_symlinks
            )
            local.update(sub.entries)
            skipped.update(sub.skipped)
            scope.update(sub.entries)
            scope.update(self.entries.below(d))
        if skipped:
            self._record_skipped(skipped)
        plan = diff(local, self.entries, scope, rules=self.rules)
        self._enqueue_plan(plan, local)

    # -- queueing ---------------------------------------------------------------------------------

    def _enqueue(self, job: Job, delay: float = 0.0) -> None:
        key = job.path
        self._failed.discard(key)
        if not self.jobs.put(job, delay):
            return
        self._idle.clear()
        self._wake.set()

    def _persist_queue_reasons(self, only: Iterable[str] | None = None) -> None:
        keys = list(only) if only is not None else self.jobs.keys()
        if keys:
            self.state.set_pending_many(
                self.name, (Pending(k, "queued", "queued for upload") for k in keys)
            )

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            now = time.monotonic()
            self.jobs.release_due(now)
            if self.paused or self.error or self.offline or self.pacer.held(now):
                self._arm_delay_wakeup()
                self._update_state()
                continue
            self.jobs.unpark_ready()
            limit = self.pacer.limit(self.concurrency)
            for job in self.jobs.take(limit, max_skipped=4 * self.concurrency):
                self._start(job)
            self._arm_delay_wakeup()
            self._update_state()

    def _arm_delay_wakeup(self) -> None:
        due = self.jobs.next_due()
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"{self.name} {job.kind} {job.path}")
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    async def _run(self, job: Job) -> None:
        try:
            if job.kind == JobKind.SYNC:
                await self._sync_path(job)
            elif job.kind == JobKind.DELETE:
                await self._delete(job)
            else:
                await self._move(job)
        except _Requeue:
            self._enqueue(Job(job.kind, job.path, job.src, job.is_dir), delay=0.05)
        except RemoteError as e:
            self._handle_remote_error(job, e)
        except LocalError as e:
            self._fail(job, e.problem)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("job %s %s failed", job.kind, job.path)
            self._fail(job, f"internal error: {e}")
        else:
            self.pacer.succeeded()
            if self._stale_uploads and not self._discarding:
                self._discarding = True
                task = asyncio.create_task(self._discard_stale_once())
                self._job_tasks.add(task)
                task.add_done_callback(self._job_tasks.discard)
        finally:
            self.jobs.finish(job)
            if job.path in self.tally and not self.jobs.holds(job.path):
                self.tally.dropped(job.path)  # not uploaded and not queued again: out of the round
            self.state.maybe_commit()
            self._wake.set()
            self._update_state()

    # -- failures ---------------------------------------------------------------------------------

    def _fail(self, job: Job, reason: str, *, op: Op = Op.UPLOAD) -> None:
        self._failed.add(job.path)
        self.state.set_pending(self.name, Pending(job.path, "failed", reason, job.attempts))
        self.bus.publish(JobFailed(self.name, op, job.path, reason, None))

    def _handle_remote_error(self, job: Job, e: RemoteError) -> None:
        op = {JobKind.DELETE: Op.DELETE, JobKind.MOVE: Op.MOVE}.get(job.kind, Op.UPLOAD)
        if e.fatal_for_folder:
            self.error = str(e)
            self._enqueue(job)  # kept for when the problem is fixed
            self.bus.publish(JobFailed(self.name, op, job.path, str(e), None))
            self.state.set_pending(self.name, Pending(job.path, "failed", str(e), job.attempts))
            if self.live:
                # Try again much later by itself; the user can retry at once with resume.
                asyncio.get_running_loop().call_later(300, self._clear_fatal, str(e))
            return
        if isinstance(e, RemoteConflict) and self.jobs.pending_ancestor(job) is not None:
            # A file is still where our folder should be: its own job (replace the file with
            # the folder) came after this one started. Wait for it (parked) instead of failing.
            self._enqueue(job)
            self.state.set_pending(
                self.name,
                Pending(job.path, "queued", f"waiting for its parent folder to be synced: {e}"),
            )
            return
        if not e.retryable:
            self._fail(job, str(e), op=op)
            return
        job.attempts += 1
        if not self.live and job.attempts >= self.max_attempts_once:
            self._fail(job, f"gave up after {job.attempts} attempts: {e}", op=op)
            return
        if e.status in REMOTE_WIDE:
            # The server as a whole says "not now": every job waits, not just this one.
            delay = self.pacer.hold(job.started, e.retry_after)
            self._enqueue(job)
            self.jobs.to_front(job.path)
            asyncio.get_running_loop().call_later(delay, self._wake.set)
        else:
            delay = backoff(job.attempts, e.retry_after)
            self._enqueue(job, delay=delay)
        retry_at = time.time() + delay
        self.state.set_pending(
            self.name,
            Pending(job.path, "retrying", f"waiting to retry after: {e}", job.attempts, retry_at),
        )
        self.bus.publish(JobFailed(self.name, op, job.path, str(e), retry_at))
        if isinstance(e, RemoteUnavailable) and e.status is None:
            self._note_remote_failure(e)

    def _clear_fatal(self, message: str) -> None:
        if self.error == message:
            self.error = ""
            self._wake.set()
            self._update_state()

    def _note_remote_failure(self, e: RemoteError) -> None:
        if e.fatal_for_folder:
            self.error = str(e)
            self._update_state()
            return
        if not self.offline:
            self.offline = remote_problem(e)
            self.bus.publish(RemoteOffline(self.name, str(e), time.time() + PROBE_FIRST))
            self._update_state()
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        """While offline, check the remote now and then; resume everything when it answers."""
        delays = probe_delays()
        delay = next(delays)
        tries = 0
        while True:
            await asyncio.sleep(delay)
            tries += 1
            try:
                await self.remote.stat(self.remote_root)
            except RemoteError as e:
                if e.retryable:
                    if not self.live and tries >= self.max_attempts_once:
                        self._give_up_offline(remote_problem(e))
                        return
                    delay = next(delays)
                    self.offline = remote_problem(e)
                    self.bus.publish(RemoteStillOffline(self.name, str(e), time.time() + delay))
                    continue
                if e.fatal_for_folder:
                    self.offline = ""
                    if self.live:
                        self._remote_failed(e)
                    else:
                        self.error = str(e)
                        self._update_state()
                    return
            break
        self.offline = ""
        self.bus.publish(RemoteOnline(self.name))
        # A scan that ran while the remote was gone planned nothing: run it again.
        if not self._root_ready or self._scan_failed:
            self.rescan()
        # Everything waiting to retry goes now.
        self.jobs.release_all_delayed()
        self._wake.set()
        self._update_state()

    def _give_up_offline(self, error: str) -> None:
        for job in self.jobs.drain():
            self._fail(job, error)
        self.offline = ""
        self.error = error
        self._update_state()

    # -- the delete guard -------------------------------------------------------------------------

    def _hold_deletes(self, deletes: Iterable[tuple[str, bool]]) -> None:
        if not self.cfg.mirror_deletes:
            # Not mirrored: forget them so they are not "pending" forever.
            for path, is_dir in deletes:
                self._forget(path, is_dir)
            return
        for path, is_dir in deletes:
            self.guard.hold(path, is_dir)
            self.state.set_pending(
                self.name, Pending(path, "queued", "deleted locally; delete held briefly")
            )
        if self._held_timer:
            self._held_timer.cancel()
        self._held_timer = asyncio.get_running_loop().call_later(
            self.delete_hold, self._release_held
        )
        self._idle.clear()

    def _release_held(self) -> None:
        self._held_timer = None
        if not self.guard.held:
            return
        held = dict(self.guard.held)
        # A path back on disk is no longer a delete.
        for p, is_dir in list(held.items()):
            if self._ignored(p, is_dir):
                del held[p]
                self._forget_ignored([(p, is_dir)])
            elif os.path.lexists(os.path.join(self.root, p)):
                del held[p]
                self.guard.drop(p)
                self._enqueue(Job(JobKind.SYNC, p))
        trip = self.guard.review(self.entries, held, self.cfg.max_delete)
        if trip is not None:
            self.guard_deletes = list(trip.paths)
            self.pause(trip.reason)
            for p in held:
                self.state.set_pending(self.name, Pending(p, "guard", trip.reason))
            self.bus.publish(
                GuardTripped(self.name, trip.reason, trip.files, trip.known, trip.paths[:10])
            )
            return
        self.guard.release()
        for p, is_dir in held.items():
            self._enqueue(Job(JobKind.DELETE, p, is_dir=is_dir))
        self._update_state()

    # -- jobs -------------------------------------------------------------------------------------

    def _rpath(self, rel: str) -> str:
        return join(self.remote_root, rel)

    def _put_entry(self, e: Entry) -> None:
        self.entries[e.path] = e
        self.state.put_entry(self.name, e)

    def _forget_ignored(self, paths: Iterable[tuple[str, bool]]) -> None:
        """Synced paths that are ignored now: dropped from the state, remote copies left alone.

        Said once: once forgotten, no later scan or restart sees them again.
        """
        for path, is_dir in paths:
            if path not in self.entries:
                continue
            self.guard.drop(path)
            self._failed.discard(path)
            self._forget(path, is_dir)
            m = self.rules.match(path, is_dir=is_dir)
            why = m.describe() if m is not None else "inside an ignored folder"
            reason = f"{why}; no longer synced, the remote copy is left alone"
            log.info("%s: %s: %s", self.name, path, reason)
            self.bus.publish(PathSkipped(self.name, printable(path), reason))

    def _ignored(self, path: str, is_dir: bool) -> bool:
        return ignored_path(self.rules, path, is_dir)

    def _forget(self, path: str, is_dir: bool) -> None:
        self.entries.pop(path, None)
        if is_dir:
            for k in self.entries.below(path):
                del self.entries[k]
        self.state.delete_entry(self.name, path, recursive=is_dir)
        self.state.clear_pending(self.name, path)

    async def _sync_path(self, job: Job) -> None:
        path = job.path
        le, why = lstat_entry(self.root, path, self.rules, self.cfg.follow_symlinks)
        known = self.entries.get(path)
        if why:
            shown = printable(path)
            self.state.set_pending(self.name, Pending(shown, "skipped", why))
            self.bus.publish(PathSkipped(self.name, shown, why))
            return
        if le is None:
            if known is not None and self._ignored(path, known.is_dir):
                self._forget_ignored([(path, known.is_dir)])
            elif known is not None:
                self._hold_deletes([(path, known.is_dir)])
            else:
                self.state.clear_pending(self.name, path)
            return
        if known is not None and known.is_dir != le.is_dir:
            # The other kind stood here before: remove it remotely first (like an overwrite).
            await self._keep_versions_of(path, known.is_dir)
            await self.remote.delete(self._rpath(path))
            self._forget(path, known.is_dir)
            known = None
        if le.is_dir:
            if known is None:
                await self._ensure_dir(path, le)
            self.state.clear_pending(self.name, path)
            return
        if known is not None and known.size == le.size and known.mtime_ns == le.mtime_ns:
            self.state.clear_pending(self.name, path)
            return
        age = time.time() - le.mtime_ns / 1e9
        waited = time.monotonic() - job.first_seen
        if 0 <= age < self.cfg.settle and waited < 30.0:
            # Still being written: upload once it has been quiet for `settle` seconds, but never
            # wait more than 30 s for a file that is written continuously.
            self.state.set_pending(
                self.name, Pending(path, "settling", "waiting for the file to stop changing")
            )
            self._enqueue(job, delay=self.cfg.settle - age + 0.01)
            return
        await self._upload(job, le)

    async def _ensure_dir(self, path: str, le: LocalEntry | None = None) -> None:
        """Create ``path`` and its missing ancestors remotely, once even under concurrency."""
        for d in [*reversed(list(parents(path))), path]:
            e = self.entries.get(d)
            if e is not None and e.is_dir:
                continue
            fut = self._dir_futures.get(d)
            if fut is not None:
                await asyncio.shield(fut)
                continue
            fut = asyncio.get_running_loop().create_future()
            self._dir_futures[d] = fut
            try:
                if self.remote.capabilities.directories:
                    self.bus.publish(JobStarted(self.name, Op.MKDIR, d))
                    await self.remote.mkdir(self._rpath(d))
                    self.bus.publish(JobFinished(self.name, Op.MKDIR, d))
                st = le if (le is not None and d == path) else None
                if st is None:
                    try:
                        s = os.stat(os.path.join(self.root, d))
                        ino, mtime = s.st_ino, s.st_mtime_ns
                    except OSError:
                        ino, mtime = 0, 0
                else:
                    ino, mtime = st.ino, st.mtime_ns
                self._put_entry(Entry(d, True, 0, mtime, ino, None, time.time()))
                fut.set_result(None)
            except BaseException as e:
                fut.set_exception(e)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            finally:
                self._dir_futures.pop(d, None)

    async def _upload(self, job: Job, le: LocalEntry) -> None:
        path = job.path
        rpath = self._rpath(path)
        if "/" in path:
            await self._ensure_dir(path.rsplit("/", 1)[0])
        self.tally.started(path, le.size)
        self.bus.publish(JobStarted(self.name, Op.UPLOAD, path, le.size))
        started = time.monotonic()
        known = self.entries.get(path)
        if known is not None and not known.is_dir:
            await self._keep_remote_edit(path, known)
            await self.versions.keep(path, by_move=False)
        elif path in self._unrecorded_remote:
            # No record of it (state lost), but the listing showed a copy that differs.
            await self.versions.keep(path, by_move=False)
            self._unrecorded_remote.discard(path)
        upload_id = self._begin_upload(rpath)
        try:
            result = await self._put_file(path, rpath, le, upload_id, started)
        except (RemoteConflict, RemoteNotFound):
            # The parent vanished remotely (someone removed it): recreate it, and everything
            # we had synced below it, then try once more.
            self._upload_failed(upload_id)
            await self._recreate_parents(path)
            upload_id = self._begin_upload(rpath)
            try:
                result = await self._put_file(path, rpath, le, upload_id, started)
            except BaseException:
                self._upload_failed(upload_id)
                raise
        except BaseException:
            self._upload_failed(upload_id)
            raise
        self._uploads_in_flight.pop(upload_id, None)
        try:
            st = os.stat(os.path.join(self.root, path), follow_symlinks=self.cfg.follow_symlinks)
        except OSError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns, st.st_ino) != (le.size, le.mtime_ns, le.ino):
            # Deleted or changed while uploading: the remote now holds what we read, so record
            # that; the next look then deletes it or sends the new content.
            self._put_entry(self._uploaded(path, le, result))
            raise _Requeue
        self._put_entry(self._uploaded(path, le, result))
        self.state.clear_pending(self.name, path)
        self.tally.finished(path)
        self.bus.publish(
            JobFinished(self.name, Op.UPLOAD, path, le.size, time.monotonic() - started)
        )

    @staticmethod
    def _uploaded(path: str, le: LocalEntry, result: PutResult) -> Entry:
        return Entry(path, False, le.size, le.mtime_ns, le.ino, result.etag, time.time(),
                     result.mtime_ns)

    def _begin_upload(self, rpath: str) -> str:
        upload_id = uuid.uuid4().hex[:20]
        self._uploads_in_flight[upload_id] = rpath
        return upload_id

    def _upload_failed(self, upload_id: str) -> None:
        """Keep a failed attempt's id: its staging must be removed, now or later."""
        rpath = self._uploads_in_flight.pop(upload_id, None)
        if rpath is not None:
            self._stale_uploads[upload_id] = rpath

    async def _discard_stale(self) -> None:
        for upload_id, rpath in list(self._stale_uploads.items()):
            try:
                await self.remote.discard_upload(rpath, upload_id)
            except RemoteError:
                return  # still unreachable: later, or the next start sweeps
            self._stale_uploads.pop(upload_id, None)

    async def _discard_stale_once(self) -> None:
        try:
            await self._discard_stale()
        finally:
            self._discarding = False

    async def _recreate_parents(self, path: str) -> None:
        """After a 409/404 on upload: find the topmost missing ancestor remotely (the folder's
        remote_path itself included), recreate the chain, and queue everything we had synced
        below it (it went with the folder)."""
        top: str | None = None
        if self.remote_root and self.remote.capabilities.directories:
            found = await self.remote.stat(self.remote_root)
            if found is None or not found.is_dir:
                top = ""  # the whole remote_path is gone
                self._root_ready = False
                await self._ensure_remote_root()
        if top is None:
            for d in reversed(list(parents(path))):  # top-down
                found = await self.remote.stat(self._rpath(d))
                if found is None or not found.is_dir:
                    top = d
                    break
        if top is None:
            return
        if top:
            gone = [k for k in (top, *self.entries.below(top)) if k in self.entries]
        else:
            gone = list(self.entries)
        lost = [k for k in gone if not self.entries[k].is_dir]
        for k in gone:
            self.entries.pop(k, None)
        if top:
            self.state.delete_entry(self.name, top, recursive=True)
        else:
            for k in gone:
                self.state.delete_entry(self.name, k)
        if "/" in path:
            await self._ensure_dir(path.rsplit("/", 1)[0])
        for k in lost:
            if k != path:
                self._enqueue(Job(JobKind.SYNC, k))

    async def _put_file(
        self, path: str, rpath: str, le: LocalEntry, upload_id: str, started: float
    ) -> PutResult:
        body = self._read_file(path, le.size, started)
        if self.limits:
            body = limited(body, self.limits)
        return await self.remote.put(
            rpath, body, size=le.size, mtime_ns=le.mtime_ns, upload_id=upload_id
        )

    async def _read_file(self, path: str, size: int, started: float) -> AsyncIterator[bytes]:
        """The file's first ``size`` bytes: one read for small files, 1 MiB chunks otherwise."""
        full = os.path.join(self.root, path)
        try:
            if size <= TINY_FILE:
                yield _read_small(full, size)
                return
            if size <= SMALL_FILE:
                data = await asyncio.to_thread(_read_small, full, size)
                yield data
                return
            async with aiofiles.open(full, "rb") as fh:
                done = 0
                last = 0.0
                while done < size:
                    chunk = await fh.read(min(CHUNK, size - done))
                    if not chunk:
                        raise _Requeue  # shrank while uploading
                    done += len(chunk)
                    yield chunk
                    now = time.monotonic()
                    if now - last >= 0.2:
                        last = now
                        rate = done / max(now - started, 1e-6)
                        self.bus.publish(
                            JobProgressed(self.name, Op.UPLOAD, path, done, size, rate)
                        )
                        self.tally.sent(path, done)
                        self._publish_counts()
        except FileNotFoundError:
            raise _Requeue from None
        except PermissionError:
            raise LocalError(path, "permission denied while reading; fix its permissions") from None
        except IsADirectoryError:
            raise _Requeue from None
        except OSError as e:
            raise LocalError(path, f"cannot read: {e.strerror or e}") from None

    async def _delete(self, job: Job) -> None:
        path = job.path
        if os.path.lexists(os.path.join(self.root, path)):
            self._enqueue(Job(JobKind.SYNC, path))  # it came back
            return
        self.bus.publish(JobStarted(self.name, Op.DELETE, path))
        started = time.monotonic()
        moved = await self._keep_versions_of(path, job.is_dir)
        if not moved:
            await self.remote.delete(self._rpath(path))
        self._forget(path, job.is_dir)
        self.bus.publish(JobFinished(self.name, Op.DELETE, path, 0, time.monotonic() - started))

    async def _keep_remote_edit(self, path: str, known: Entry) -> None:
        """Never overwrite a remote edit silently.

        If the remote copy changed since our last upload (another size, or another mtime than
        we sent, or written after we synced where the server keeps no mtimes), it is first
        downloaded beside the local file as ``name.conflict-YYYYMMDD-HHMMSS.ext``; that copy
        then syncs like any new file, so both versions end up in both places.
        """
        remote = await self.remote.stat(self._rpath(path))
        if remote is None or remote.is_dir:
            return
        if not remote_changed(known, remote, server_mtime=self.remote.capabilities.server_mtime):
            return
        copy = conflict_name(path, time.time())
        mtime = remote.mtime_ns / 1e9 if remote.mtime_ns else None
        await self.versions.download(remote.path, os.path.join(self.root, copy), mtime=mtime)
        log.warning(
            "%s: %s changed remotely too; kept the remote copy as %s", self.name, path, copy
        )
        self.bus.publish(ConflictKept(self.name, path, copy))
        self._enqueue(Job(JobKind.SYNC, copy))

    async def _keep_versions_of(self, path: str, is_dir: bool) -> bool:
        """Keep what a delete removes; True when that already took the file away (a move)."""
        if not self.versions.enabled:
            return False
        if not is_dir:
            return await self.versions.keep(path, by_move=True)
        for f in [k for k in self.entries.below(path) if not self.entries[k].is_dir]:
            await self.versions.keep(f, by_move=True)
        return False

    async def _maybe_prune(self) -> None:
        """Prune old versions at most once an hour (remembered across runs: it lists the area)."""
        if not self.versions.enabled:
            return
        key = f"pruned:{self.name}"
        now = self.versions.clock()
        last = float(self.state.get_meta(key) or 0)
        if now - last < PRUNE_EVERY:
            return
        self.state.set_meta(key, str(now))
        try:
            n = await self.versions.prune()
        except RemoteError as e:
            log.warning("pruning versions of %s failed: %s", self.name, e)
            return
        if n:
            log.info("pruned %d old versions of %s", n, self.name)

    # -- versions and restore (public) ------------------------------------------------------------

    def pending(self) -> list[Pending]:
        """Every path of this folder not in sync, with its reason (what `why` reads)."""
        self.state.flush()
        return self.state.pending(self.name)

    @property
    def bwlimit(self) -> int:
        """The tightest bandwidth limit on this folder's transfers in bytes/s; 0 for none."""
        rates = [lim.rate for lim in self.limits if lim.rate > 0]
        return min(rates) if rates else 0

    async def list_versions(self, rel: str) -> list[Version]:
        return await self.versions.list(rel)

    async def restore(
        self, rel: str, *, at: float | None = None, dest: str | None = None
    ) -> Version:
        """Write the newest version of ``rel`` (or the newest at/before ``at``) back locally."""
        found = pick(await self.versions.list(rel), at)
        if found is None:
            raise RemoteNotFound(
                f"no version of {rel} kept{' at or before that time' if at else ''}"
            )
        return await self.restore_version(found, dest=dest)

    async def restore_version(self, version: Version, *, dest: str | None = None) -> Version:
        """Write exactly ``version`` (one of ``list_versions``) back locally, or to ``dest``.

        ``restore(rel, at=version.at)`` would not do: a kept version's ``at`` is when it was
        replaced, so the content current at that moment is its successor.
        """
        target = dest or os.path.join(self.root, version.path)
        await self.versions.download(version.remote_path, target, mtime=version.at)
        return version

    async def restore_held(self) -> int:
        """Guard released by restoring: download the held deletes back into the folder."""
        wanted: list[tuple[str, int, int | None]] = []  # (remote path, size, mtime_ns)
        for path, is_dir in self.guard.held.items():
            if is_dir:
                os.makedirs(os.path.join(self.root, path), exist_ok=True)
                # Collect first: a listing must not hold a connection while files download.
                listing = [e async for e in self.remote.list(self._rpath(path), recursive=True)]
                listed: set[str] = set()
                for e in listing:
                    listed.add(self._rel(e.path))
                    if e.is_dir:
                        os.makedirs(os.path.join(self.root, self._rel(e.path)), exist_ok=True)
                    elif not self.rules.ignored(self._rel(e.path)):
                        wanted.append((e.path, e.size, e.mtime_ns))
                # What we synced there but the listing left out (nginx's dav-ext hides names
                # starting with a dot) is asked for by name: a restore must bring back all.
                for rel in self.entries.below(path):
                    if rel not in listed and not self.entries[rel].is_dir:
                        found = await self.remote.stat(self._rpath(rel))
                        if found is not None and not found.is_dir:
                            wanted.append((found.path, found.size, found.mtime_ns))
            else:
                found = await self.remote.stat(self._rpath(path))
                if found is not None and not found.is_dir:
                    wanted.append((found.path, found.size, found.mtime_ns))
        for rpath, size, mtime_ns in wanted:
            rel = self._rel(rpath)
            known = self.entries.get(rel)
            if (
                known is not None
                and not known.is_dir
                and known.size == size
                and same_mtime(
                    known.mtime_ns, mtime_ns, server_mtime=self.remote.capabilities.server_mtime
                )
            ):
                # The copy we synced: its exact local mtime comes back (servers keep whole
                # seconds at best), so the restored file matches the state and is not re-sent.
                mtime_ns = known.mtime_ns
            await self.versions.download(rpath, os.path.join(self.root, rel), mtime_ns=mtime_ns)
        for path in self.guard.held:
            # No longer held; the rescan gives whatever still differs its own reason.
            self.state.clear_pending(self.name, path)
        self.guard.held.clear()
        self.guard_deletes = []
        self.paused = False
        self.pause_reason = ""
        self.rescan()
        self._update_state()
        return len(wanted)

    def _rel(self, remote_path: str) -> str:
        return remote_path[len(self.remote_root) + 1 :] if self.remote_root else remote_path

    async def _resync(self, path: str) -> None:
        """Plan ``path`` afresh against the state; for a folder, everything under it too."""
        le, _ = lstat_entry(self.root, path, self.rules, self.cfg.follow_symlinks)
        if le is None or not le.is_dir:
            self._enqueue(Job(JobKind.SYNC, path))
            return
        sub = await asyncio.to_thread(
            scan_tree, self.root, self.rules, start=path, follow_symlinks=self.cfg.follow_symlinks
        )
        self._record_skipped(sub.skipped)
        local = {path: le, **sub.entries}
        scope = {*local, *self.entries.below(path)}
        self._enqueue_plan(
            diff(local, self.entries, scope, protected=sub.unreadable_dirs, rules=self.rules),
            local,
        )

    async def _move_by_copy(self, src: str, dst: str, is_dir: bool) -> None:
        """A rename on a store without one (S3): server-side copies, then the source goes.

        Not a delete in the guard's sense: every byte stays on the remote under the new name.
        """
        rsrc, rdst = self._rpath(src), self._rpath(dst)
        if is_dir:
            # Everything under it, as a real rename would take (not just what we synced).
            listing = [e async for e in self.remote.list(rsrc, recursive=True) if not e.is_dir]
            keys = [e.path for e in listing]
        else:
            keys = [rsrc]
        gate = asyncio.Semaphore(self.concurrency)

        async def copy(key: str) -> None:
            async with gate:
                await self.remote.copy(key, rdst + key[len(rsrc) :])

        await asyncio.gather(*(copy(k) for k in keys))
        await self.remote.delete(rsrc)

    async def _move(self, job: Job) -> None:
        src, dst = job.src, job.path
        known = self.entries.get(src)
        le, _ = lstat_entry(self.root, dst, self.rules, self.cfg.follow_symlinks)
        still_valid = (
            known is not None
            and le is not None
            and le.ino == known.ino
            and not os.path.lexists(os.path.join(self.root, src))
        )
        caps = self.remote.capabilities
        if not still_valid or not (caps.server_move or caps.server_copy):
            # Upload what is at the destination now; the source goes as an ordinary delete.
            await self._resync(dst)
            if known is not None:
                self._hold_deletes([(src, known.is_dir)])
            return
        assert le is not None and known is not None
        if "/" in dst and caps.directories:
            await self._ensure_dir(dst.rsplit("/", 1)[0])
        self.bus.publish(JobStarted(self.name, Op.MOVE, src, 0, dst))
        started = time.monotonic()
        try:
            if caps.server_move:
                await self.remote.move(self._rpath(src), self._rpath(dst))
            else:
                await self._move_by_copy(src, dst, known.is_dir)
        except (RemoteNotFound, RemoteConflict, NotImplementedError):
            await self._resync(dst)
            self._forget(src, job.is_dir)
            return
        self.entries.move(src, dst)
        self.state.move_entries(self.name, src, dst)
        self.state.clear_pending(self.name, src)
        self.state.clear_pending(self.name, dst)
        self.bus.publish(JobFinished(self.name, Op.MOVE, src, 0, time.monotonic() - started, dst))
        # The moved file (or anything under the moved directory) may also have changed.
        if job.is_dir:
            await self._resync(dst)
        elif known is None or (le.size, le.mtime_ns) != (known.size, known.mtime_ns):
            self._enqueue(Job(JobKind.SYNC, dst))


def remote_problem(e: RemoteError) -> str:
    """What went wrong, in words: "unreachable" only when the server did not answer."""
    if e.fatal_for_folder:
        return str(e)
    if isinstance(e, RemoteUnavailable) and e.status is None:
        return f"remote unreachable: {e}"
    if isinstance(e, RemoteProtocolError):
        return f"remote answered something syncapp cannot read: {e}"
    return f"remote error: {e}"


def conflict_name(path: str, ts: float) -> str:
    """``notes/a.txt`` → ``notes/a.conflict-20261126-175500.txt`` (local time, like editors)."""
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dotfile such as ".bashrc"
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ts))
    new = f"{stem}.conflict-{stamp}{dot}{ext}"
    return f"{head}/{new}" if head else new


def _read_small(path: str, size: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(size)
    if len(data) != size:
        raise _Requeue
    return data
