"""``FolderSync``: one watched folder mirrored to one remote, as an async context manager.

Entering it checks the root, starts the watcher (live mode), scans, and starts the dispatcher
that feeds a bounded number of transfer jobs. Leaving it cancels everything, discards the
staging of in-flight uploads (nothing half-written becomes visible) and marks the state clean.

It coordinates the rooms of the pipeline: watcher/scanner → planner (``plan.diff``) → delete
guard (``guard``, every delete passes it first) → job queue (``jobqueue``: merging per path,
delays, parking, path locks) → operations (``operations``: what a job does, decided when it
runs from the disk and the entry index, ``entries``) → remote. The pacer (``pacer``) says when
jobs may go after failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from syncapp.config import FolderConfig, parse_duration
from syncapp.engine.adopt import adopt, list_remote_tree
from syncapp.engine.entries import EntryMap as EntryMap  # re-exported
from syncapp.engine.events import (
    CountsChanged,
    EventBus,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    PathSkipped,
    PlanQueued,
    RemoteOnline,
    ScanFinished,
    ScanProgressed,
    ScanStarted,
    SyncProgress,
)
from syncapp.engine.failures import Failures
from syncapp.engine.failures import remote_problem as remote_problem  # re-exported
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.jobqueue import Job as Job  # re-exported
from syncapp.engine.jobqueue import JobKind as JobKind  # re-exported
from syncapp.engine.jobqueue import JobQueue
from syncapp.engine.learned import learn_remote
from syncapp.engine.operations import Operations, _Requeue
from syncapp.engine.operations import conflict_name as conflict_name  # re-exported
from syncapp.engine.pacer import (
    Pacer,
    backoff,
)
from syncapp.engine.plan import Plan, ignored_path
from syncapp.engine.planner import Planner
from syncapp.engine.progress import RoundTally, Totals
from syncapp.engine.ratelimit import RateLimit
from syncapp.engine.scanner import (
    LocalEntry,
    ScanResult,
    printable,
    scan_tree,
)
from syncapp.engine.state import Entry, Pending, PendingStatus, StateDB
from syncapp.engine.versions import Version, Versions, pick
from syncapp.engine.watcher import Watcher
from syncapp.errors import (
    LocalError,
    RemoteError,
    RemoteNotFound,
)
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import Remote

log = logging.getLogger(__name__)

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
        self.planner = Planner(str(cfg.path), self.rules, follow_symlinks=cfg.follow_symlinks)
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
        # Remote files the state knew nothing of (first run, lost state) that differ from the
        # local file: from the one listing, so an overwrite keeps them without asking per file.
        self._unrecorded_remote: set[str] = set()
        # Until the first scan has run, the folder is "scanning", never "up to date".
        self.scanning = True
        self._root_ready = False
        self._learned = False
        self.watch_problem = ""
        self._state_word: FolderState | None = None
        self._state_reason = ""
        self._counts_handle: asyncio.TimerHandle | None = None
        self._counts_last = 0.0
        #: Uploads done of planned since the folder was last up to date (SyncProgress).
        self.tally = RoundTally()
        self._tally_sent = Totals()
        self.last_sync: float | None = None
        self.guard_deletes: list[str] = []
        self.failures = Failures(self)
        self._root_id: tuple[int, int] | None = None
        self._prescan: asyncio.Task[tuple[tuple[int, int] | None, ScanResult]] | None = None
        self.ops = Operations(
            self,
            cfg,
            remote,
            state,
            bus,
            rules=self.rules,
            versions=self.versions,
            tally=self.tally,
            limits=self.limits,
            concurrency=self.concurrency,
        )

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
        if self.failures.probe_task:
            tasks.append(self.failures.probe_task)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        # Abandon in-flight uploads: their staging names must not linger on the remote.
        self.ops.stale_uploads.update(self.ops.uploads_in_flight)
        self.ops.uploads_in_flight.clear()
        if self.ops.stale_uploads:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self.ops.discard_stale()
        if self._held_timer:
            self._held_timer.cancel()
        if self.failures.remote_retry:
            self.failures.remote_retry.cancel()
        if self._counts_handle:
            self._counts_handle.cancel()
        self._persist_queue_reasons()
        if self.ops.stale_uploads:
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
        self.failures.remote_error = ""
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
            plan = self.planner.full(result, self.entries).plan
            self._record_skipped(result.skipped)
            if remote_error is not None:
                self.failures.remote_unusable(remote_error, plan)
            else:
                self.failures.remote_usable()
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

    async def _ensure_remote_root(self) -> None:
        """Create the folder's ``remote_path`` (and its parents) remotely, once per session,
        and know what the server does (kept from an earlier run, or tried there now)."""

        async def learn() -> None:
            await learn_remote(self.remote, self.state, self.remote_root)
            self._learned = True

        if self._root_ready:
            if not self._learned:  # a known root: the kept facts cost no request
                await self._retrying(learn)
            return

        async def make() -> None:
            if self.remote_root and self.remote.capabilities.directories:
                parts = self.remote_root.split("/")
                for i in range(1, len(parts) + 1):
                    await self.remote.mkdir("/".join(parts[:i]))
            else:
                await self.remote.stat(self.remote_root)
            await learn()

        await self._retrying(make)
        self._root_ready = True
        self.failures.remote_failures = 0
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
        self.failures.remote_failures = 0

    def _record_skipped(self, skipped: dict[str, str]) -> None:
        items = []
        for p, reason in skipped.items():
            items.append(Pending(p, PendingStatus.SKIPPED, reason))
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
        self.failures.retry_remote_now()
        if "" in paths:
            if not await self._root_ok():
                return
            paths.discard("")
        planned = await self.planner.batch(paths, self.entries)
        if planned.skipped:
            self._record_skipped(planned.skipped)
        self._enqueue_plan(planned.plan, planned.local)

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
                self.name, (Pending(k, PendingStatus.QUEUED, "queued for upload") for k in keys)
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
            if job.kind is JobKind.SYNC:
                await self.ops.sync_path(job)
            elif job.kind is JobKind.DELETE:
                await self.ops.delete(job)
            else:
                await self.ops.move(job)
        except _Requeue:
            self._enqueue(Job(job.kind, job.path, job.src, job.is_dir), delay=0.05)
        except RemoteError as e:
            self.failures.job_failed(job, e)
        except LocalError as e:
            self.failures.fail(job, e.problem)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("job %s %s failed", job.kind, job.path)
            self.failures.fail(job, f"internal error: {e}")
        else:
            self.pacer.succeeded()
            if self.ops.stale_uploads and not self.ops.discarding:
                self.ops.discarding = True
                task = asyncio.create_task(self.ops.discard_stale_once())
                self._job_tasks.add(task)
                task.add_done_callback(self._job_tasks.discard)
        finally:
            self.jobs.finish(job)
            if job.path in self.tally and not self.jobs.holds(job.path):
                self.tally.dropped(job.path)  # not uploaded and not queued again: out of the round
            self.state.maybe_commit()
            self._wake.set()
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
                self.name,
                Pending(path, PendingStatus.QUEUED, "deleted locally; delete held briefly"),
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
                self.state.set_pending(self.name, Pending(p, PendingStatus.GUARD, trip.reason))
            self.bus.publish(
                GuardTripped(self.name, trip.reason, trip.files, trip.known, trip.paths[:10])
            )
            return
        self.guard.release()
        for p, is_dir in held.items():
            self._enqueue(Job(JobKind.DELETE, p, is_dir=is_dir))
        self._update_state()

    # -- entries (what operations call back into) --------------------------------------------------

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
        restored = await self.ops.restore(self.guard.held)
        for path in self.guard.held:
            # No longer held; the rescan gives whatever still differs its own reason.
            self.state.clear_pending(self.name, path)
        self.guard.held.clear()
        self.guard_deletes = []
        self.paused = False
        self.pause_reason = ""
        self.rescan()
        self._update_state()
        return restored

    async def _resync(self, path: str) -> None:
        """Plan ``path`` afresh against the state; for a folder, everything under it too."""
        planned = await self.planner.subtree(path, self.entries)
        if planned is None:
            self._enqueue(Job(JobKind.SYNC, path))
            return
        self._record_skipped(planned.skipped)
        self._enqueue_plan(planned.plan, planned.local)
