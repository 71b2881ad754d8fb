"""``FolderSync``: one watched folder mirrored to one remote, as an async context manager.

The flow of one change, and the room (module in ``syncapp/engine``) that does each step::

    scanloop ── when ──┬─ localroot: full scan ───┐
                       ├─ watcher: batches ───────┼─▶ planner ─▶ plan
                       └─ reconcile: first run ───┘                │
          ┌───── mkdirs, uploads, moves ──────────────────────────┤
          │                        guard ◀──── deletes ───────────┘
          ▼                          │  (those that may go)
       jobqueue ◀────────────────────┘
          │
       dispatch ─▶ operations ─▶ remote      (pacer: when calls may go; failures: what went wrong)

1. **Scan or watch.** ``scanloop`` says when: ``localroot`` checks the root and scans it (at
   start, on rescan, after the watcher overflows); ``watcher`` hands over debounced batches of
   changed paths. On a first run or after a crash, ``reconcile`` lists the remote once and
   adopts what is there.
2. **Plan.** ``planner`` turns a scan or a batch plus the entry index (``entries``) into a plan:
   mkdirs, uploads, moves, deletes, forgets (paths ignored now).
3. **Guard.** Every delete waits in ``guard`` (briefly in a live run); when the hold ends it
   decides: back on disk, ignored now, let through, or held for the user (the folder pauses).
4. **Queue.** ``jobqueue`` merges jobs per path, delays retries, parks children under a
   pending parent and never runs nested paths at once.
5. **Operations.** ``dispatch`` takes what may start (``pacer``: holds and probes after
   429/503) and ``operations`` does each job's remote calls, deciding from the disk at that
   moment; ``failures`` says what a failure means (retry, hold, offline, error).

Two-way folders (``direction = "both"``) also run ``remoteside``: its own loop polls the remote,
plans with ``twoway`` and applies downloads, trash, local renames and conflicts (see there).

This class wires those rooms for one folder, in that order below, and keeps its lifecycle;
the status word, counts and idleness live in ``status``, the reasons ``why`` reads in
``reasons``. A dry run (``dry_run=True``) is this same path with the operations held back in
``dispatch`` and recorded in ``heldback``; it runs against a copy of the state in memory.
Leaving the context cancels everything, discards the staging of in-flight uploads (nothing
half-written becomes visible) and marks the state clean.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from syncapp.config import FolderConfig, parse_duration
from syncapp.engine.conflictname import conflict_name as conflict_name  # re-exported
from syncapp.engine.deletes import DeleteDesk
from syncapp.engine.deletes import Hooks as DeskHooks
from syncapp.engine.dispatch import Dispatcher
from syncapp.engine.entries import EntryMap as EntryMap  # re-exported
from syncapp.engine.events import (
    EventBus,
    RemoteOnline,
    ScanStarted,
)
from syncapp.engine.failures import Failures
from syncapp.engine.failures import remote_problem as remote_problem  # re-exported
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.heldback import HeldBack
from syncapp.engine.jobqueue import Job as Job  # re-exported
from syncapp.engine.jobqueue import JobKind as JobKind  # re-exported
from syncapp.engine.jobqueue import JobQueue
from syncapp.engine.localroot import LocalRoot
from syncapp.engine.operations import Operations
from syncapp.engine.pacer import Pacer
from syncapp.engine.plan import Plan, ignored_path
from syncapp.engine.planner import Planner
from syncapp.engine.progress import RoundTally
from syncapp.engine.ratelimit import RateLimit
from syncapp.engine.reasons import Reasons
from syncapp.engine.reconcile import Reconciler
from syncapp.engine.remoteside import RemoteSide
from syncapp.engine.restoreheld import restore_held
from syncapp.engine.scanloop import ScanLoop, Steps
from syncapp.engine.scanner import LocalEntry, ScanResult
from syncapp.engine.state import Entry, Pending, StateDB
from syncapp.engine.status import FolderStatus as FolderStatus  # re-exported
from syncapp.engine.status import StatusBoard
from syncapp.engine.versions import Version, Versions, prune_if_due, restore, restore_version
from syncapp.errors import RemoteError
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import Remote

log = logging.getLogger(__name__)


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
        dry_run: bool = False,
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
        self.max_attempts_once = max_attempts_once
        self.remote_root = cfg.remote_path.strip("/")
        self.rules = IgnoreRules(cfg.ignore)
        #: What was synced, by path (read by views today; the engine's facade will own it).
        self.entries = EntryMap()
        # Remote files the state knew nothing of (first run, lost state) that differ from the
        # local file: from the one listing, so an overwrite keeps them without asking per file.
        self._unrecorded_remote: set[str] = set()
        self._first_run = False
        self._unclean_start = False
        #: The dry run's record of what it held back (None in a real run).
        self.held_back: HeldBack | None = HeldBack() if dry_run else None

        # The rooms, in the order a change passes them.
        self.local = LocalRoot(
            self.name, self.root, self.rules, bus, follow_symlinks=cfg.follow_symlinks
        )
        self.reconciler = Reconciler(
            remote,
            state,
            self.remote_root,
            self.rules,
            live=live,
            dry_run=dry_run,
            max_attempts_once=max_attempts_once,
        )
        self.planner = Planner(
            self.root, self.rules, follow_symlinks=cfg.follow_symlinks, renames=self._renames
        )
        self.guard = DeleteGuard(allow_mass_delete=allow_mass_delete)
        self.jobs = JobQueue(time.monotonic)
        self.pacer = Pacer(time.monotonic)
        self.versions = Versions(
            remote,
            self.remote_root,
            enabled=cfg.versions,
            keep_seconds=parse_duration(cfg.keep_versions),
            clock=clock,
        )
        self.tally = RoundTally()
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
        self.failures = Failures(self)
        self.dispatcher = Dispatcher(
            self.name,
            self.jobs,
            self.pacer,
            self.ops,
            self.failures,
            concurrency=self.concurrency,
            stopped=lambda: bool(self.flags.paused or self.flags.error or self.flags.offline),
            requeue=self._enqueue,
            done=self._job_done,
            after_pass=self._update_state,
            dry_run=dry_run,
        )
        self.board = StatusBoard(
            self.name,
            bus,
            state,
            self.tally,
            jobs=self.jobs,
            guard=self.guard,
            synced_files=lambda: self.entries.files,
            watch_waiting=lambda: self.scans.batches_waiting(),
            paused=cfg.paused,
        )
        self.flags = self.board.flags
        self.reasons = Reasons(self.name, state, bus)
        self.deletes = DeleteDesk(
            cfg,
            self.guard,
            self.reasons,
            bus,
            DeskHooks(
                entries=lambda: self.entries,
                enqueue=self._enqueue,
                forget=self._forget,
                forget_ignored=self._forget_ignored,
                pause=self.pause,
                check_idle=self.board.check_idle,
                update=self._update_state,
            ),
            rules=self.rules,
            delete_hold=delete_hold if live else 0.0,
            held_back=self.held_back,
        )
        self._failed = self.board.failed
        self._tasks: list[asyncio.Task[None]] = []
        self.scans = ScanLoop(
            self.name,
            self.root,
            Steps(
                root_ok=self._root_ok,
                full_scan=self._full_scan,
                plan_batch=self._plan_paths,
                watched=lambda paths: self._on_watch(paths),
                no_scan=self.board.no_scan,
                watch_problem=self.board.watch_problem,
                changed=self.board.check_idle,
                crashed=self.board.crashed,
            ),
            live=live,
            rescan_interval=cfg.rescan_interval,
        )
        # Two-way: the remote side's own loop (poll, plan, guard, apply); see remoteside.py.
        self.remote_side: RemoteSide | None = None
        if cfg.direction == "both":
            self.remote_side = RemoteSide(
                self, cfg, remote, state, bus, self.guard,
                rules=self.rules,
                scan=self.local.scan,
                idle=self._idle_now,
                stopped=lambda: bool(self.flags.paused or self.flags.error or self.flags.offline),
                held_back=self.held_back,
                sent=self.ops.sent,
            )  # fmt: skip

    # -- the flags views read ---------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.flags.paused

    @property
    def last_sync(self) -> float | None:
        return self.board.last_sync

    @property
    def watch_problem(self) -> str:
        return self.flags.watch_problem

    @property
    def guard_deletes(self) -> list[str]:
        """The deletes the guard stopped, sorted (empty when it holds none for the user)."""
        trip = self.guard.tripped
        return list(trip.paths) if trip is not None else []

    @property
    def remote_id(self) -> str:
        return f"{self.remote.display_url.rstrip('/')}/{self.remote_root}"

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not self.live:
            # The disk scan runs while the state loads (a live start has its watcher running
            # before it scans, so it cannot start this early).
            self.local.start_early_scan()
        try:
            record = self.state.open_folder(self.name, self.remote_id)
            self.entries = EntryMap(self.state.entries(self.name))
        except BaseException:
            await self.local.cancel_early_scan()
            raise
        self._unclean_start = record is not None and not record.clean
        self._first_run = record is None
        if record is not None:
            self.board.last_sync = record.last_sync
            if record.root_dev is not None and record.root_ino is not None:
                self.local.root_id = (record.root_dev, record.root_ino)
        # After a clean run that synced something, the remote_path is known to exist: no
        # request is needed before there is work (an upload that finds it gone recreates it).
        self.reconciler.ready = bool(record is not None and record.clean and self.entries)
        # Reasons are recomputed from scratch by the scan; stale ones would mislead `why`.
        self.state.clear_all_pending(self.name)
        self._spawn(self.dispatcher.run(), "dispatch")
        self._spawn(self.scans.run(), "main")
        if self.remote_side is not None:
            self._spawn(self.remote_side.run(live=self.live), "remote side")
        self._update_state()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _spawn(self, coro: Any, what: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"{self.name} {what}"))

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self.dispatcher.tasks]
        if self.local.early_scan is not None:
            tasks.append(self.local.early_scan)
        tasks += self.failures.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        # Abandon in-flight uploads: their staging names must not linger on the remote.
        lingering = await self.ops.abandon()
        self.deletes.close()
        self.board.reporter.close()
        self.reasons.queued(self.jobs.keys())
        if lingering:
            # Cleanup could not finish: stay "unclean" so the next start sweeps the remote.
            self.state.flush()
        else:
            self.state.close_folder(self.name)

    # -- public control ---------------------------------------------------------------------------

    def pause(self, reason: str = "paused by the user") -> None:
        self.flags.pause(reason)
        self._update_state()

    def resume(self) -> None:
        self.flags.unpause()
        self.flags.error = ""
        self.failures.remote_error = ""
        self.guard.tripped = None
        self.wake()
        self.rescan()
        self._update_state()

    def rescan(self) -> None:
        self.scans.request()
        if self.remote_side is not None:
            self.remote_side.request()

    def release_guard(self) -> None:
        """Let the held deletes go through once (the user confirmed them)."""
        self.flags.unpause()
        self.deletes.confirm()
        if self.remote_side is not None:
            self.remote_side.confirm()
        self._update_state()

    def retry_failed(self) -> None:
        failed = list(self._failed)
        for p in failed:
            self._enqueue(Job(JobKind.SYNC, p))
        self._failed.clear()
        self.reasons.queued(failed)  # no longer the old failure

    async def wait_idle(self) -> None:
        """Return when the first scan is done and nothing is queued, delayed or running."""
        await self.board.wait_idle()
        side = self.remote_side
        if side is not None and not self.flags.paused:
            await side.looked.wait()  # the remote side looked once, and what it found is done
            await self.board.wait_idle()

    def _idle_now(self) -> asyncio.Event:
        self.board.check_idle()
        return self.board.idle

    def status(self) -> FolderStatus:
        return self.board.status()

    def pending(self) -> list[Pending]:
        """Every path of this folder not in sync, with its reason (what `why` reads)."""
        return self.reasons.all()

    @property
    def bwlimit(self) -> int:
        """The tightest bandwidth limit on this folder's transfers in bytes/s; 0 for none."""
        rates = [lim.rate for lim in self.limits if lim.rate > 0]
        return min(rates) if rates else 0

    # -- the status word (status.py computes it and says it) --------------------------------------

    def _update_state(self) -> None:
        self.board.update()

    def _publish_counts(self) -> None:
        self.board.reporter.counts()

    def wake(self) -> None:
        """Let the dispatcher look at the queue again."""
        self.dispatcher.wake.set()

    # -- 1. scan or watch -------------------------------------------------------------------------

    async def _root_ok(self) -> bool:
        """The root exists, is a folder and is where it was: else error, and no deletes."""
        problem, new_id = await self.local.check()
        if problem:
            if self.flags.error != problem:
                self.flags.error = problem
                self._update_state()
            return False
        if new_id is not None:
            self.state.set_root(self.name, *new_id)
        if self.flags.error.startswith("folder root"):
            self.flags.error = ""
            self._update_state()
        return True

    async def _full_scan(self) -> None:
        self.flags.scanning = True
        self._update_state()
        self.bus.publish(ScanStarted(self.name))
        started = time.monotonic()
        try:
            remote_error: RemoteError | None = None
            try:
                await self._ensure_remote_root()
            except RemoteError as e:
                remote_error = e
            result = await self.local.scan()
            if remote_error is None and (self._first_run or self._unclean_start):
                try:
                    await self.reconciler.retrying(lambda: self._reconcile(result))
                except RemoteError as e:
                    remote_error = e
            plan = self.planner.full(result, self.entries).plan
            self.reasons.skipped(result.skipped)
            if remote_error is not None:
                self.failures.remote_unusable(remote_error, plan)
            else:
                self.failures.remote_usable()
                self._enqueue_plan(plan, result.entries)
                if self.held_back is None:
                    await prune_if_due(self.versions, self.state, self.name)
            self.board.reporter.scanned(result, len(plan), time.monotonic() - started)
        finally:
            self.flags.scanning = False
            self.board.scan_done.set()
            self._update_state()

    async def _ensure_remote_root(self, *, again: bool = False) -> None:
        """The remote_path made and the server's ways known (``again``: it vanished)."""
        if await self.reconciler.ensure_root(again=again):
            self.failures.remote_failures = 0
            if self.flags.offline:
                self.flags.offline = ""
                self.bus.publish(RemoteOnline(self.name))

    async def _reconcile(self, result: ScanResult) -> None:
        """First run or after a crash: what the remote already has (see reconcile.py)."""
        found = await self.reconciler.reconcile(
            result.entries,
            self.root,
            self.entries,
            after_crash=self._unclean_start,
            # Two-way: what only the remote has comes down; a first run is a union.
            mirror_deletes=self.cfg.mirror_deletes and self.cfg.direction != "both",
        )
        for entry in found.adopted:
            self._put_entry(entry)
        self._unrecorded_remote = found.unrecorded
        for entry in found.extras:
            # Known to the state as "synced" so the normal delete path (and guard) removes them.
            self.entries[entry.path] = entry
        self._first_run = self._unclean_start = False
        self.failures.remote_failures = 0

    # -- 2. plan ----------------------------------------------------------------------------------

    def _renames(self) -> bool:
        """The remote can rename (or copy) on the server: else a move is planned as an upload
        plus a delete, and that delete passes the guard like any other."""
        caps = self.remote.capabilities
        return caps.server_move or caps.server_copy

    def _on_watch(self, paths: set[str]) -> None:
        self.scans.add_batch(paths)

    async def _plan_paths(self, paths: set[str]) -> None:
        self.failures.retry_remote_now()
        if "" in paths:
            if not await self._root_ok():
                return
            paths.discard("")
        planned = await self.planner.batch(paths, self.entries)
        self.reasons.skipped(planned.skipped)
        self._enqueue_plan(planned.plan, planned.local)

    async def _resync(self, path: str) -> None:
        """Plan ``path`` afresh against the state; for a folder, everything under it too."""
        planned = await self.planner.subtree(path, self.entries)
        if planned is None:
            self._enqueue(Job(JobKind.SYNC, path))
            return
        self.reasons.skipped(planned.skipped)
        self._enqueue_plan(planned.plan, planned.local)

    def _enqueue_plan(self, plan: Plan, local: Mapping[str, LocalEntry]) -> None:
        """A plan goes on: its deletes to the guard, the rest to the queue."""
        self.board.reporter.planned(plan, local)
        if self.held_back is not None:
            self.held_back.planned(plan)
        self._forget_ignored(plan.forgets)
        for src, dst, is_dir in plan.moves:
            self._enqueue(Job(JobKind.MOVE, dst, src=src, is_dir=is_dir))
        for p in plan.mkdirs:
            self._enqueue(Job(JobKind.SYNC, p))
        for p in plan.uploads:
            self._enqueue(Job(JobKind.SYNC, p))
        if plan.deletes:
            self._hold_deletes(plan.deletes)
        self.reasons.queued([*plan.mkdirs, *plan.uploads, *(m[1] for m in plan.moves)])

    # -- 3. the delete guard (deletes.py holds them, guard.py decides) -------------------------

    def _hold_deletes(self, deletes: Iterable[tuple[str, bool]]) -> None:
        self.deletes.hold(deletes)

    # -- 4. the queue, 5. operations (dispatch.py runs them) ---------------------------------------

    def _enqueue(self, job: Job, delay: float = 0.0) -> None:
        self._failed.discard(job.path)
        if not self.jobs.put(job, delay):
            return
        self.board.idle.clear()
        self.wake()

    def _job_done(self, job: Job) -> None:
        if job.path in self.tally and not self.jobs.holds(job.path):
            self.tally.dropped(job.path)  # not uploaded and not queued again: out of the round
        self.state.maybe_commit()
        self._update_state()

    # -- the entry index (what operations call back into) ------------------------------------------

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
            self.reasons.forgotten(path, is_dir, self.rules)

    def _ignored(self, path: str, is_dir: bool) -> bool:
        return ignored_path(self.rules, path, is_dir)

    def _forget(self, path: str, is_dir: bool) -> None:
        self.entries.pop(path, None)
        if is_dir:
            for k in self.entries.below(path):
                del self.entries[k]
        self.state.delete_entry(self.name, path, recursive=is_dir)
        self.reasons.clear(path)

    # -- versions and restore (public) ------------------------------------------------------------

    async def list_versions(self, rel: str) -> list[Version]:
        return await self.versions.list(rel)

    async def restore(
        self, rel: str, *, at: float | None = None, dest: str | None = None
    ) -> Version:
        """Write the newest version of ``rel`` (or the newest at/before ``at``) back locally."""
        return await restore(self.versions, rel, self.root, at=at, dest=dest)

    async def restore_version(self, version: Version, *, dest: str | None = None) -> Version:
        """Write exactly ``version`` (one of ``list_versions``) back locally, or to ``dest``."""
        return await restore_version(self.versions, version, self.root, dest=dest)

    async def restore_held(self) -> int:
        """Guard released by restoring: download the held deletes back into the folder."""
        restored = await restore_held(self.ops, self.guard.held)
        if self.remote_side is not None:
            restored += len(self.remote_side.restore_held())  # they upload again
        self.deletes.restored()
        self.flags.unpause()
        self.rescan()
        self._update_state()
        return restored
