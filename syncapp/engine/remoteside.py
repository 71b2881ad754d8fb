"""Two-way sync: the remote side of one folder (``direction = "both"``).

The room that brings remote changes down. Every ``remote_poll`` seconds, and when the folder
is rescanned, it waits until the upload side is idle (nothing queued, running or held), then:

1. **Look** at both sides: ``remotepoll.RemotePoller.poll`` (the remote snapshot) and a local
   scan (``localroot``), against the entry index as it was before the look.
2. **Plan**: ``twoway.plan_twoway`` (pure).
3. **Guard**: local deletes coming down pass the same rule as deletes going up
   (``guard.guard_tripped`` against ``max_delete``): a remote wipe pauses the folder with
   "N of M files were deleted on the remote", a ``GuardTripped`` event asks the user, and
   nothing of that look is applied until the user confirms (``confirm``) or
   ``--allow-mass-delete`` says so.
4. **Apply**, one action at a time, each only if the entry index still holds what the plan
   saw for its path (an upload that finished meanwhile wins; the next look sees again):
   downloads (``download.download``: atomic, remote mtime set, refused when the local file
   changed meanwhile), local renames, local folders, trash for remote deletes
   (``trash.trash``: never an unlink), conflicts (the local content keeps the name and is
   uploaded over the remote one; the remote content comes down under
   ``operations.conflict_name`` and then uploads like any new file), records and forgets.
   A file on one side and a folder on the other: the remote one replaces an unchanged local
   one (which goes to the trash), or is kept under the conflict name (moved there on the
   server where it can move, else downloaded there) while the local one keeps the name.
   Uploads, remote folders and remote deletes go to the upload side's queue and guard, as
   today.

Every local change made here is recorded in the entry index with the ``LocalEntry`` it left
(size, mtime_ns, ino) and the remote's ETag/mtime before the watcher's echo is planned, so the
echo is nothing to do: a download never becomes an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Protocol

from syncapp.config import FolderConfig
from syncapp.engine import conflictside, kindside
from syncapp.engine.download import (
    DownloadSkipped,
    LocalChanged,
    UnsafePath,
    download,
    sweep_partial_downloads,
)
from syncapp.engine.download import same_content as remote_same_content
from syncapp.engine.entries import EntryMap
from syncapp.engine.events import (
    Event,
    EventBus,
    FileDownloaded,
    FileTrashed,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    RenamedLocally,
)
from syncapp.engine.events import Op as EventOp
from syncapp.engine.guard import ON_REMOTE, DeleteGuard, Trip, guard_tripped
from syncapp.engine.heldback import HeldBack
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.learned import learn_tree_etags
from syncapp.engine.notes import note
from syncapp.engine.ownwrites import OwnWrites
from syncapp.engine.ratelimit import RateLimit
from syncapp.engine.remotepoll import RemotePoller, Snapshot
from syncapp.engine.scanner import LocalEntry, ScanResult, entry_from_stat, parents
from syncapp.engine.secondlook import SecondLook
from syncapp.engine.state import Entry, Pending, PendingStatus, StateDB
from syncapp.engine.trash import trash
from syncapp.engine.twoway import (
    LOCAL_REMOVALS,
    Action,
    Op,
    TwoWayPlan,
    kept_both,
    overruled,
    plan_twoway,
    record_entry,
    resolve_compare,
)
from syncapp.errors import RemoteError, RemoteNotFound
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import Remote, join

log = logging.getLogger(__name__)

#: The shortest wait between two looks (a settling look included).
MIN_GAP = 0.05


class Folder(Protocol):
    """What the remote side needs from its folder."""

    entries: EntryMap
    #: Bandwidth limits, shared by uploads and downloads.
    limits: list[RateLimit]

    def _enqueue(self, job: Job, delay: float = 0.0) -> None: ...

    def _hold_deletes(self, deletes: Iterable[tuple[str, bool]]) -> None: ...

    def _put_entry(self, e: Entry) -> None: ...

    def _forget(self, path: str, is_dir: bool) -> None: ...

    async def _resync(self, path: str) -> None: ...

    def pause(self, reason: str = ...) -> None: ...


class RemoteSide:
    def __init__(
        self,
        folder: Folder,
        cfg: FolderConfig,
        remote: Remote,
        state: StateDB,
        bus: EventBus,
        guard: DeleteGuard,
        *,
        rules: IgnoreRules,
        scan: Callable[[], Awaitable[ScanResult]],
        idle: Callable[[], asyncio.Event],
        stopped: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        held_back: HeldBack | None = None,
        sent: dict[str, bytes] | None = None,
    ) -> None:
        #: The dry run's record: a look is planned and recorded there, never applied.
        self.held_back = held_back
        self.folder = folder
        self.cfg = cfg
        self.name = cfg.name
        self.root = str(cfg.path)
        self.prefix = cfg.remote_path.strip("/")
        self.remote = remote
        self.state = state
        self.bus = bus
        self.guard = guard
        self.rules = rules
        self.poller = RemotePoller(remote, self.prefix, rules)
        self._scan = scan
        self._idle = idle
        self._stopped = stopped
        self.clock = clock
        self._wake = asyncio.Event()
        self._requested = False
        #: Set after each finished look (tests and ``run --once`` wait on it).
        self.looked = asyncio.Event()
        self.looks = 0
        #: Local deletes the guard holds (the paths the last tripped look would trash).
        self.held: dict[str, bool] = {}
        self._allow_once = False
        #: What waits for a second look (deletes, renames, copies): see ``secondlook``.
        self.second = SecondLook()
        #: Our own uploads and moves until a listing settles them (``ownwrites``).
        self.own = OwnWrites(remote, self.prefix, sent if sent is not None else {})
        #: Paths we uploaded that are not settled yet. Overwritten before that (no conditional
        #: PUT, or a server that says it honours If-Match and does not: rclone serve webdav),
        #: the local content is kept as a conflict, not replaced.
        self.unconfirmed = self.own.unconfirmed
        #: The last look of ``run --once``: every unsettled upload settles there.
        self._settle_all = False
        #: When the server's folder ETags were last looked up (learned.learn_tree_etags).
        self._tree_checked: float | None = None
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_event)

    def _on_event(self, ev: Event) -> None:
        if not isinstance(ev, JobFinished) or ev.folder != self.name:
            return
        if ev.op is EventOp.UPLOAD:
            self.own.uploaded(ev.path, ev.seconds)
            self._wake.set()  # the wait for the next look counts it in
        elif ev.op is EventOp.MOVE and ev.dest:
            self.own.moved.update([ev.dest, *self.folder.entries.below(ev.dest)])

    # -- control ----------------------------------------------------------------------------------

    def request(self) -> None:
        """Look now (rescan, resume)."""
        self._requested = True
        self._wake.set()

    def confirm(self) -> None:
        """The user confirmed the held local deletes: the next look applies them, once."""
        if self.held:
            self._allow_once = True
            self.held.clear()
            if not self.guard.held:
                self.guard.allow_once = False  # the confirmation was for these only
            self.request()

    def restore_held(self) -> list[str]:
        """The user chose to keep the local files the remote lost: they upload again."""
        paths = list(self.held)
        for p, is_dir in self.held.items():
            self.folder._forget(p, is_dir)
        self.held.clear()
        return paths

    async def run(self, *, live: bool) -> None:
        """The poll loop: look, then wait ``remote_poll`` seconds or a request."""
        try:
            await self._run(live=live)
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()

    async def _run(self, *, live: bool) -> None:
        # What downloads killed half-way (kill -9, power cut) left: never under a real name.
        swept = (
            []
            if self.held_back is not None
            else await asyncio.to_thread(sweep_partial_downloads, self.root)
        )
        if swept:
            log.info("%s: removed %d partial download(s)", self.name, len(swept))
        looked_twice = False
        while True:
            await self._wait_for_idle()
            if not self._stopped():
                # Uploads due by now are judged by this look, whatever becomes of it (a
                # failed poll is not retried at once for them: the poll's pace).
                self.own.judged(time.monotonic())
                try:
                    await self.look()
                except RemoteError as e:
                    # The upload side's failure policy handles the server; poll again later.
                    log.warning("%s: remote poll failed: %s", self.name, e)
                    self.poller.forget()
            self.looks += 1
            if (
                not live
                and (self.second.waiting or self.unconfirmed)
                and not looked_twice
                and not self._stopped()
            ):
                # run --once: remote deletes apply when a second look agrees (and copies
                # come down at the second look), and its uploads settle (10 s at most, then
                # all of them: nothing remembers them for the next run); take it now.
                looked_twice = True
                wait = min(self.cfg.remote_poll, 2.0) if self.second.waiting else 0.0
                later = self.own.next_settle(time.monotonic())
                if self.unconfirmed and later != float("inf"):
                    wait = max(wait, min(later, 10.0))
                self._settle_all = True
                await asyncio.sleep(wait)
                continue
            self.looked.set()
            if not live:
                return
            await self._until_next_look()

    async def _until_next_look(self) -> None:
        """Wait ``remote_poll`` seconds, or until a look is asked for, or until uploads are
        due to settle: they settle at the first look after their time, taken then, so a later
        edit by a machine that saw them is not taken for an unseen overwrite. An upload that
        finishes meanwhile may bring that time forward (``_on_event`` wakes the wait)."""
        deadline = time.monotonic() + self.cfg.remote_poll
        while not self._requested:  # (asked during the look: look again at once)
            now = time.monotonic()
            # (Paused or stopped, no look settles anything: the poll's own pace.)
            settle = float("inf") if self._stopped() else self.own.next_settle(now)
            wait = max(MIN_GAP, min(deadline - now, settle))
            if deadline - now <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                return
        self._requested = False

    async def _wait_for_idle(self) -> None:
        idle = self._idle()
        while not idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), 1.0)

    # -- 1. look, 2. plan, 3. guard ----------------------------------------------------------------

    async def _learn_tree_etags(self) -> bool:
        """Whether a poll may skip what did not change (folder ETags that follow their
        contents); asked of the state (or the server, once) every hour at most. True when
        it was asked (time passed: the upload side may have worked meanwhile)."""
        now = time.monotonic()
        if self._tree_checked is not None and now - self._tree_checked < 3600:
            return False
        tree = await learn_tree_etags(
            self.remote, self.state, self.prefix, probe=self.held_back is None
        )
        self._tree_checked = now
        if tree != self.poller.tree_etags:
            log.info("%s: the remote's folder ETags %s their contents", self.name,
                     "follow" if tree else "do not follow")  # fmt: skip
            self.poller.tree_etags = tree
            self.poller.forget()
        return True

    async def look(self) -> TwoWayPlan | None:
        if await self._learn_tree_etags():
            await self._wait_for_idle()  # the plan starts from a quiet upload side
        known = dict(self.folder.entries)
        snap = await self.poller.poll()
        for rel, why in snap.skipped.items():
            self.state.set_pending(self.name, Pending(rel, PendingStatus.SKIPPED, why))
        if not snap.root_exists:
            self.folder.pause("the remote folder is gone; nothing is deleted here")
            return None
        if snap.clashes and self.held_back is None:
            await kindside.resolve_clashes(self, snap)
        result = await self._scan()
        local = result.entries
        overwritten = await self._confirm_uploads(known, snap)
        now = self.clock()
        plan = plan_twoway(
            known,
            local,
            snap.entries,
            server_mtime=self.remote.capabilities.server_mtime,
            now=now,
            rules=self.rules,
        )
        if overwritten:
            plan = overruled(plan, [kept_both(p, local, snap.entries, now) for p in overwritten])
        if self.held_back is not None:
            self._hold_back(plan, known)
            return plan
        if not plan.actions:
            self.second.clear()
            return plan
        confirmed = self._allow_once
        if self._tripped(plan, known):
            return plan
        plan, later = self.second.agreed(plan, known, snap.entries, confirmed=confirmed)
        for p in later:
            why = "deleted on the remote; moved to the trash when the next look agrees"
            self.state.set_pending(self.name, Pending(p, PendingStatus.QUEUED, why))
        await self._apply(plan, known, snap)
        return plan

    async def _confirm_uploads(self, known: dict[str, Entry], snap: Snapshot) -> list[str]:
        """Record what the listing shows for our own uploads and moves, and settle the uploads
        that are due; returns those written over by a machine that never saw ours."""
        seen, overwritten = await self.own.settle(
            known, snap.entries, server_mtime=self.remote.capabilities.server_mtime,
            now=float("inf") if self._settle_all else time.monotonic(),
        )  # fmt: skip
        for e in seen:
            known[e.path] = e
            self.folder._put_entry(e)
        for p in overwritten:
            log.warning("%s: %s was written over on the remote with a stamp like ours; "
                        "both contents are kept", self.name, p)  # fmt: skip
        return overwritten

    def _hold_back(self, plan: TwoWayPlan, known: dict[str, Entry]) -> None:
        """Dry run: what this look would do here, and whether the guard would stop it."""
        assert self.held_back is not None
        here = (
            Op.DOWNLOAD,
            Op.DELETE_LOCAL,
            Op.REPLACE_LOCAL,
            Op.RENAME_LOCAL,
            Op.MKDIR_LOCAL,
            Op.CONFLICT,
            Op.COMPARE,
        )
        self.held_back.remote += [(a.op.value, a.path, a.dst or "") for a in plan.of(*here)]
        files = plan.local_deletes
        total = sum(1 for e in known.values() if not e.is_dir)
        trip = self.cfg.mirror_deletes and guard_tripped(self.cfg.max_delete, files, total)
        if trip and not self.guard.allow_mass_delete and self.held_back.trip is None:
            paths = tuple(sorted(a.path for a in plan.of(*LOCAL_REMOVALS)))
            self.held_back.trip = Trip(files, total, paths, where=ON_REMOTE)

    def _tripped(self, plan: TwoWayPlan, known: dict[str, Entry]) -> bool:
        deletes = plan.of(*LOCAL_REMOVALS)
        if not deletes or not self.cfg.mirror_deletes:
            return False
        allow = self.guard.allow_mass_delete or self._allow_once
        self._allow_once = False
        files = plan.local_deletes
        total = sum(1 for e in known.values() if not e.is_dir)
        if allow or not guard_tripped(self.cfg.max_delete, files, total):
            return False
        paths = tuple(sorted(a.path for a in deletes))
        trip = Trip(files, total, paths, where=ON_REMOTE)
        self.held = {a.path: a.is_dir for a in deletes}
        self.guard.tripped = trip
        self.folder.pause(trip.reason)
        for a in deletes:
            self.state.set_pending(self.name, Pending(a.path, PendingStatus.GUARD, trip.reason))
        self.bus.publish(
            GuardTripped(self.name, trip.reason, files, total, paths[:10], trip.direction)
        )
        return True

    # -- 4. apply ----------------------------------------------------------------------------------

    async def _apply(self, plan: TwoWayPlan, known: dict[str, Entry], snap: Snapshot) -> None:
        not_replaced: list[str] = []  # what is below these waits for the next look
        for a in plan.actions:
            if self._stopped():
                return
            if self.folder.entries.get(a.path) is not known.get(a.path):
                continue  # the upload side changed it meanwhile: the next look sees
            if not_replaced and any(a.path.startswith(p + "/") for p in not_replaced):
                continue
            if a.op is Op.REPLACE_LOCAL:
                not_replaced.append(a.path)  # until it is done
            try:
                await self._one(a, snap)
                if a.op is Op.REPLACE_LOCAL:
                    not_replaced.remove(a.path)
            except (LocalChanged, RemoteNotFound):
                continue  # changed under us on one side: the next look sees again
            except DownloadSkipped as e:
                self.state.set_pending(self.name, Pending(a.path, PendingStatus.SKIPPED, e.reason))
            except UnsafePath as e:
                self.state.set_pending(self.name, Pending(a.path, PendingStatus.SKIPPED, str(e)))
            except RemoteError as e:
                log.warning("%s: %s %s failed: %s", self.name, a.op.value, a.path, e)
            except OSError as e:
                log.warning("%s: %s %s failed locally: %s", self.name, a.op.value, a.path, e)
        self.state.maybe_commit()

    async def _one(self, a: Action, snap: Snapshot) -> None:
        op = a.op
        if op is Op.COMPARE:
            assert a.remote is not None
            same = await remote_same_content(
                self.remote, self._rpath(a.path), self._full(a.path), a.remote.etag
            )
            a = resolve_compare(a, same, self.clock())
            op = a.op
        if op is Op.DOWNLOAD and a.local is not None and a.path in self.unconfirmed:
            decided = await conflictside.overwritten_upload(self, a, snap)
            if decided is None:
                return
            a, op = decided, decided.op
        if op is Op.DOWNLOAD:
            await self._download(a)
        elif op is Op.MKDIR_LOCAL:
            os.makedirs(self._full(a.path), exist_ok=True)
            self._record_dirs([*reversed(list(parents(a.path))), a.path])
        elif op is Op.RENAME_LOCAL:
            self._rename(a, snap)
        elif op is Op.DELETE_LOCAL:
            if self.cfg.mirror_deletes:
                await self._trash(a)
        elif op is Op.REPLACE_LOCAL:
            await kindside.replace_local(self, a)
        elif op is Op.CONFLICT and a.local is not None and a.local.is_dir != a.is_dir:
            await kindside.keep_both(self, a, snap)
        elif op is Op.CONFLICT:
            await conflictside.keep_conflict(self, a)
        elif op is Op.RECORD:
            self.folder._put_entry(record_entry(a, self.clock()))
        elif op is Op.FORGET:
            self.folder._forget(a.path, a.is_dir)
        elif op in (Op.UPLOAD, Op.MKDIR_REMOTE):
            self.folder._enqueue(Job(JobKind.SYNC, a.path))
        elif op is Op.DELETE_REMOTE:
            self.folder._hold_deletes([(a.path, a.is_dir)])

    def _rpath(self, rel: str) -> str:
        return join(self.prefix, rel)

    def _full(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def _note(self, path: str, what: str, count: str = "", conflict: str = "") -> None:
        note(self.state, self.name, path, what, self.clock(), count=count, conflict=conflict)

    def _record_dirs(self, dirs: Iterable[str]) -> None:
        for d in dirs:
            e = self.folder.entries.get(d)
            if e is not None and e.is_dir:
                continue
            try:
                st = os.lstat(self._full(d))
            except OSError:
                continue
            le = entry_from_stat(d, st)
            if le.is_dir:
                self.folder._put_entry(Entry(d, True, 0, le.mtime_ns, le.ino, None, self.clock()))

    async def _download(self, a: Action, dst: str | None = None) -> LocalEntry:
        r = a.remote
        assert r is not None
        rel = dst or a.path
        started = time.monotonic()
        # Reported as a job, like an upload: the UI shows it in flight and rates it.
        self.bus.publish(JobStarted(self.name, EventOp.DOWNLOAD, rel, r.size))
        last = started

        def written(done: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.2:
                last = now
                rate = done / max(now - started, 1e-6)
                self.bus.publish(
                    JobProgressed(self.name, EventOp.DOWNLOAD, rel, done, r.size, rate)
                )

        try:
            le = await download(
                self.remote,
                self._rpath(a.path),
                self.root,
                rel,
                size=r.size,
                mtime_ns=r.mtime_ns,
                expect=None if dst else a.local,
                progress=written,
                limits=self.folder.limits,
            )
        except Exception as e:
            self._download_failed(rel, e)
            raise
        seconds = time.monotonic() - started
        self._record_dirs(reversed(list(parents(rel))))
        self.bus.publish(JobFinished(self.name, EventOp.DOWNLOAD, rel, le.size, seconds))
        if dst is None:
            # In sync with what the remote showed: the watcher's echo is nothing to do.
            now = self.clock()
            self.folder._put_entry(
                Entry(rel, False, le.size, le.mtime_ns, le.ino, r.etag, now, r.mtime_ns)
            )
            self.state.clear_pending(self.name, rel)
            self._note(rel, "downloaded from the remote", "downloaded")
            self.bus.publish(FileDownloaded(self.name, rel, le.size, seconds))
        return le

    def _download_failed(self, rel: str, e: Exception) -> None:
        """A download that did not finish ends as a failed job; the next look plans again."""
        next_look: float | None = self.clock() + self.cfg.remote_poll
        if isinstance(e, DownloadSkipped):
            why, next_look = e.reason, None
        elif isinstance(e, UnsafePath):
            why, next_look = str(e), None
        elif isinstance(e, LocalChanged):
            why = "changed here during the download; the local file is kept"
        else:
            why = str(e)
        self.bus.publish(JobFailed(self.name, EventOp.DOWNLOAD, rel, why, next_look))

    def _rename(self, a: Action, snap: Snapshot) -> None:
        assert a.dst is not None
        src, dst = self._full(a.path), self._full(a.dst)
        if os.path.lexists(dst) or not os.path.lexists(src):
            raise LocalChanged(f"{a.path} -> {a.dst}: the local side changed")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        self._record_dirs(reversed(list(parents(a.dst))))
        os.rename(src, dst)
        self.folder.entries.move(a.path, a.dst)
        self.state.move_entries(self.name, a.path, a.dst)
        # The server may give a renamed file a new ETag or mtime: record what it shows now.
        for p in [a.dst, *self.folder.entries.below(a.dst)]:
            e, r = self.folder.entries.get(p), snap.entries.get(p)
            if e is not None and r is not None and not e.is_dir:
                self.folder._put_entry(replace(e, etag=r.etag, remote_mtime_ns=r.mtime_ns))
        self._note(a.dst, f"renamed on the remote from {a.path}", "renamed")
        self.bus.publish(RenamedLocally(self.name, a.path, a.dst))

    def _still_as_seen(self, a: Action, is_dir: bool) -> None:
        """``LocalChanged`` when the local file is not what the look saw (edited or gone
        meanwhile: the next look sees it, and an edit uploads instead)."""
        le = a.local
        if le is None or is_dir:
            return
        try:
            now = entry_from_stat(a.path, os.lstat(self._full(a.path)))
        except FileNotFoundError:
            now = None
        if now is None or (now.size, now.mtime_ns) != (le.size, le.mtime_ns):
            raise LocalChanged(a.path)

    async def _trash(self, a: Action, why: str = "deleted on the remote") -> None:
        self._still_as_seen(a, a.is_dir)
        done = await asyncio.to_thread(trash, self.root, a.path)
        self.folder._forget(a.path, a.is_dir)
        self.state.clear_pending(self.name, a.path)
        self._note(a.path, f"{why}; moved to the trash: {done.where}", "trashed")
        self.bus.publish(FileTrashed(self.name, a.path, done.where))
