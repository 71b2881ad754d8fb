"""Operations: each one sequence of remote calls for one job, and the bookkeeping it needs.

Upload (with its journal of staging names to discard), mkdir, delete, move (or move by copy),
keep-a-version, conflict copy, and the restore of held deletes. What to do for a path is
decided when its job runs, from the disk and the entry index at that moment. This is the
room that sends: a delete the guard let through goes out here (``delete``). Whether a job may
run is the queue's and the dispatcher's business (``dispatch``), what a failure means the
failure policy's (``failures``); a dry run never gets here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import aiofiles

from syncapp.config import FolderConfig
from syncapp.engine.adopt import remote_changed
from syncapp.engine.conflictname import conflict_name, machine_tag
from syncapp.engine.entries import EntryMap
from syncapp.engine.events import (
    ConflictKept,
    EventBus,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    PathSkipped,
)
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.kinds import changed_remotely
from syncapp.engine.notes import note
from syncapp.engine.ownwrites import digesting, new_digest
from syncapp.engine.progress import RoundTally
from syncapp.engine.ratelimit import RateLimit, limited
from syncapp.engine.restamp import restamp
from syncapp.engine.scanner import LocalEntry, lstat_entry, parents, printable
from syncapp.engine.state import Entry, Pending, PendingStatus, StateDB
from syncapp.engine.versions import Versions
from syncapp.errors import (
    LocalError,
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemotePreconditionFailed,
)
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import PutResult, Remote, RemoteEntry, join

log = logging.getLogger(__name__)

SMALL_FILE = 256 * 1024
#: Files this small are read in the loop: a page-cache read of a few KiB costs less than the
#: thread hop aiofiles would make (measured: the hop was a tenth of a small file's CPU cost).
TINY_FILE = 64 * 1024
CHUNK = 1024 * 1024


class Folder(Protocol):
    """What operations need from their folder: the entry index, and the ways back into the
    queue, the guard and the state (a job may find more work than its own)."""

    entries: EntryMap
    _unrecorded_remote: set[str]

    def _enqueue(self, job: Job, delay: float = 0.0) -> None: ...

    def _hold_deletes(self, deletes: Iterable[tuple[str, bool]]) -> None: ...

    def _put_entry(self, e: Entry) -> None: ...

    def _forget(self, path: str, is_dir: bool) -> None: ...

    def _forget_ignored(self, paths: Iterable[tuple[str, bool]]) -> None: ...

    def _ignored(self, path: str, is_dir: bool) -> bool: ...

    def _publish_counts(self) -> None: ...

    async def _resync(self, path: str) -> None: ...

    async def _ensure_remote_root(self, *, again: bool = False) -> None: ...


class Operations:
    def __init__(
        self,
        folder: Folder,
        cfg: FolderConfig,
        remote: Remote,
        state: StateDB,
        bus: EventBus,
        *,
        rules: IgnoreRules,
        versions: Versions,
        tally: RoundTally,
        limits: list[RateLimit],
        concurrency: int,
    ) -> None:
        self.folder = folder
        self.cfg = cfg
        self.name = cfg.name
        self.root = str(cfg.path)
        self.remote_root = cfg.remote_path.strip("/")
        self.remote = remote
        self.state = state
        self.bus = bus
        self.rules = rules
        self.versions = versions
        self.tally = tally
        self.limits = limits
        self.concurrency = concurrency
        self._dir_futures: dict[str, asyncio.Future[None]] = {}
        # The upload journal: staging names on the remote that must not linger.
        self.uploads_in_flight: dict[str, str] = {}  # upload_id -> remote path
        self.stale_uploads: dict[str, str] = {}  # failed attempts whose staging may remain
        self.discarding = False
        #: Two-way: the digest of what the last upload of a path sent (``digesting``).
        self.sent: dict[str, bytes] = {}

    @property
    def entries(self) -> EntryMap:
        return self.folder.entries

    def rpath(self, rel: str) -> str:
        return join(self.remote_root, rel)

    async def sync_path(self, job: Job) -> None:
        path = job.path
        le, why = lstat_entry(self.root, path, self.rules, self.cfg.follow_symlinks)
        known = self.entries.get(path)
        if why:
            shown = printable(path)
            self.state.set_pending(self.name, Pending(shown, PendingStatus.SKIPPED, why))
            self.bus.publish(PathSkipped(self.name, shown, why))
            return
        if le is None:
            if known is not None and self.folder._ignored(path, known.is_dir):
                self.folder._forget_ignored([(path, known.is_dir)])
            elif known is not None:
                self.folder._hold_deletes([(path, known.is_dir)])
            else:
                self.state.clear_pending(self.name, path)
            return
        if known is not None and known.is_dir != le.is_dir:
            # The other kind stood here before: remove it remotely first (like an overwrite),
            # unless (two-way) someone changed it meanwhile: the remote side keeps both.
            if self.cfg.direction == "both" and await changed_remotely(
                self.remote, self.rpath(path), known, self.entries, self.remote_root, self.rules
            ):
                why = "changed on the remote too: both are kept at the next look there"
                self.state.set_pending(self.name, Pending(path, PendingStatus.QUEUED, why))
                return
            await self.keep_versions_of(path, known.is_dir)
            await self.remote.delete(self.rpath(path))
            self.folder._forget(path, known.is_dir)
            known = None
        if le.is_dir:
            if known is None:
                await self.ensure_dir(path, le)
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
                self.name,
                Pending(path, PendingStatus.SETTLING, "waiting for the file to stop changing"),
            )
            self.folder._enqueue(job, delay=self.cfg.settle - age + 0.01)
            return
        await self._upload(job, le)

    async def ensure_dir(self, path: str, le: LocalEntry | None = None) -> None:
        """Create ``path`` and its missing ancestors remotely, once even under concurrency."""
        for d in [*reversed(list(parents(path))), path]:
            synced = self.entries.get(d)
            if synced is not None and synced.is_dir:
                continue
            if synced is not None:
                # The synced file there was not replaced (yet): on a store without folders
                # writing below it would leave a file and a folder of one name.
                raise RemoteConflict(f"{d} is still a file on the remote", path=path)
            fut = self._dir_futures.get(d)
            if fut is not None:
                await asyncio.shield(fut)
                continue
            fut = asyncio.get_running_loop().create_future()
            self._dir_futures[d] = fut
            try:
                if self.remote.capabilities.directories:
                    self.bus.publish(JobStarted(self.name, Op.MKDIR, d))
                    await self.remote.mkdir(self.rpath(d))
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
                self.folder._put_entry(Entry(d, True, 0, mtime, ino, None, time.time()))
                fut.set_result(None)
            except BaseException as e:
                fut.set_exception(e)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            finally:
                self._dir_futures.pop(d, None)

    async def _upload(self, job: Job, le: LocalEntry) -> None:
        path = job.path
        rpath = self.rpath(path)
        if "/" in path:
            await self.ensure_dir(path.rsplit("/", 1)[0])
        self.tally.started(path, le.size)
        self.bus.publish(JobStarted(self.name, Op.UPLOAD, path, le.size))
        started = time.monotonic()
        known = self.entries.get(path)
        two_way = self.cfg.direction == "both"
        prior: RemoteEntry | None = None  # the remote file this upload replaces, as seen
        if known is not None and not known.is_dir:
            prior = await self._keep_remote_edit(path, known)
            await self.versions.keep(path, by_move=False)
        elif path in self.folder._unrecorded_remote:
            # No record of it (state lost), but the listing showed a copy that differs.
            if two_way:  # both sides made it: keep the remote content beside (a union)
                prior = await self._keep_remote_edit(path, None)
            await self.versions.keep(path, by_move=False)
            self.folder._unrecorded_remote.discard(path)
        # Two-way: the ETag this upload may replace (If-Match).
        seen = prior.etag if prior is not None else None
        if not (two_way and self.remote.capabilities.conditional_put):
            seen = None
        try:
            result = await self._put_file(path, rpath, le, started, if_match=seen)
        except RemotePreconditionFailed:
            # Two-way: written on the remote since we looked; the next try keeps that copy.
            raise _Requeue from None
        except (RemoteConflict, RemoteNotFound):
            # The parent vanished remotely (someone removed it): recreate it, and everything
            # we had synced below it, then try once more.
            await self._recreate_parents(path)
            result = await self._put_file(path, rpath, le, started)
        if prior is not None:
            result = await restamp(
                prior, le.size, le.mtime_ns, result, self.remote.capabilities.server_mtime,
                lambda mtime_ns: self._put_file(path, rpath, le, started, mtime_ns=mtime_ns),
            )  # fmt: skip
        try:
            st = os.stat(os.path.join(self.root, path), follow_symlinks=self.cfg.follow_symlinks)
        except OSError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns, st.st_ino) != (le.size, le.mtime_ns, le.ino):
            # Deleted or changed while uploading: the remote now holds what we read, so record
            # that; the next look then deletes it or sends the new content.
            self.folder._put_entry(self._uploaded(path, le, result))
            raise _Requeue
        self.folder._put_entry(self._uploaded(path, le, result))
        self.state.clear_pending(self.name, path)
        self.tally.finished(path)
        self.bus.publish(
            JobFinished(self.name, Op.UPLOAD, path, le.size, time.monotonic() - started)
        )

    @staticmethod
    def _uploaded(path: str, le: LocalEntry, result: PutResult) -> Entry:
        return Entry(
            path, False, le.size, le.mtime_ns, le.ino, result.etag, time.time(), result.mtime_ns
        )

    def _begin_upload(self, rpath: str) -> str:
        upload_id = uuid.uuid4().hex[:20]
        self.uploads_in_flight[upload_id] = rpath
        return upload_id

    def _upload_failed(self, upload_id: str) -> None:
        """Keep a failed attempt's id: its staging must be removed, now or later."""
        rpath = self.uploads_in_flight.pop(upload_id, None)
        if rpath is not None:
            self.stale_uploads[upload_id] = rpath

    async def abandon(self) -> bool:
        """Leaving: uploads in flight are abandoned and their staging discarded (5 s at most);
        True when some may linger on the remote (the next start sweeps it then)."""
        self.stale_uploads.update(self.uploads_in_flight)
        self.uploads_in_flight.clear()
        if self.stale_uploads:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self.discard_stale()
        return bool(self.stale_uploads)

    async def discard_stale(self) -> None:
        for upload_id, rpath in list(self.stale_uploads.items()):
            try:
                await self.remote.discard_upload(rpath, upload_id)
            except RemoteError:
                return  # still unreachable: later, or the next start sweeps
            self.stale_uploads.pop(upload_id, None)

    async def discard_stale_once(self) -> None:
        try:
            await self.discard_stale()
        finally:
            self.discarding = False

    async def _recreate_parents(self, path: str) -> None:
        """After a 409/404 on upload: find the topmost missing ancestor remotely (the folder's
        remote_path itself included), recreate the chain, and queue everything we had synced
        below it (it went with the folder)."""
        top: str | None = None
        if self.remote_root and self.remote.capabilities.directories:
            found = await self.remote.stat(self.remote_root)
            if found is None or not found.is_dir:
                top = ""  # the whole remote_path is gone
                await self.folder._ensure_remote_root(again=True)
        if top is None:
            for d in reversed(list(parents(path))):  # top-down
                found = await self.remote.stat(self.rpath(d))
                if found is None or not found.is_dir:
                    top = d
                    break
        if top is None:
            return
        if top and self.cfg.direction == "both":
            # Two-way: what went with the folder is for the next look to judge (renamed there:
            # it comes down as a rename; deleted: to the trash). Only this file's folders again.
            for d in parents(path):
                if d == top or d.startswith(top + "/"):
                    self.entries.pop(d, None)
                    self.state.delete_entry(self.name, d)
            await self.ensure_dir(path.rsplit("/", 1)[0])
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
            await self.ensure_dir(path.rsplit("/", 1)[0])
        for k in lost:
            if k != path:
                self.folder._enqueue(Job(JobKind.SYNC, k))

    async def _put_file(
        self,
        path: str,
        rpath: str,
        le: LocalEntry,
        started: float,
        if_match: str | None = None,
        mtime_ns: int | None = None,
    ) -> PutResult:
        """One PUT of the file, tracked in ``uploads_in_flight`` while it runs."""
        body = self._read_file(path, le.size, started)
        # Two-way where a stamp cannot prove the remote holds ours: what was sent (ownwrites).
        digest = None
        if self.cfg.direction == "both" and not self.remote.capabilities.distinct_stamps:
            digest = new_digest()
            body = digesting(body, digest)
        if self.limits:
            body = limited(body, self.limits)
        mtime = le.mtime_ns if mtime_ns is None else mtime_ns
        upload_id = self._begin_upload(rpath)
        try:
            result = await self.remote.put(
                rpath, body, size=le.size, mtime_ns=mtime, upload_id=upload_id, if_match=if_match
            )
        except BaseException:
            self._upload_failed(upload_id)
            raise
        self.uploads_in_flight.pop(upload_id, None)
        if digest is not None:
            self.sent[path] = digest.digest()
        return result

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
                        self.folder._publish_counts()
        except FileNotFoundError:
            raise _Requeue from None
        except PermissionError:
            raise LocalError(path, "permission denied while reading; fix its permissions") from None
        except IsADirectoryError:
            raise _Requeue from None
        except OSError as e:
            raise LocalError(path, f"cannot read: {e.strerror or e}") from None

    async def delete(self, job: Job) -> None:
        path = job.path
        if os.path.lexists(os.path.join(self.root, path)):
            self.folder._enqueue(Job(JobKind.SYNC, path))  # it came back
            return
        self.bus.publish(JobStarted(self.name, Op.DELETE, path))
        started = time.monotonic()
        moved = await self.keep_versions_of(path, job.is_dir)
        if not moved:
            await self.remote.delete(self.rpath(path))
        self.folder._forget(path, job.is_dir)
        self.bus.publish(JobFinished(self.name, Op.DELETE, path, 0, time.monotonic() - started))

    async def _keep_remote_edit(self, path: str, known: Entry | None) -> RemoteEntry | None:
        """Never overwrite a remote edit silently.

        If the remote copy changed since our last upload (another size, or another mtime than
        we sent, or written after we synced where the server keeps no mtimes), it is first
        downloaded beside the local file as ``name.conflict-YYYYMMDD-HHMMSS.ext``; that copy
        then syncs like any new file, so both versions end up in both places. ``known`` None:
        no record, but a remote copy that differs (two-way's first run). Returns the remote
        file as seen (what the upload replaces).
        """
        remote = await self.remote.stat(self.rpath(path))
        if remote is not None and remote.is_dir and self.cfg.direction == "both":
            raise RemoteConflict(
                f"{path}: a folder is on the remote now; both are kept at the next look there",
                path=path,
            )
        if remote is None or remote.is_dir:
            return None
        caps = self.remote.capabilities
        if known is not None and not remote_changed(known, remote, server_mtime=caps.server_mtime):
            return remote
        copy = conflict_name(path, time.time(), machine_tag(self.state.path))
        mtime = remote.mtime_ns / 1e9 if remote.mtime_ns else None
        await self.versions.download(remote.path, os.path.join(self.root, copy), mtime=mtime)
        log.warning(
            "%s: %s changed remotely too; kept the remote copy as %s", self.name, path, copy
        )
        now = time.time()
        note(self.state, self.name, path, f"in conflict: the remote copy was kept as {copy}", now,
             count="conflicts", conflict=copy)  # fmt: skip
        note(self.state, self.name, copy, f"the remote copy of {path}, kept in a conflict", now)
        self.bus.publish(ConflictKept(self.name, path, copy))
        self.folder._enqueue(Job(JobKind.SYNC, copy))
        # That remote copy is now seen (a retried upload keeps no second one); the local file
        # still counts as changed (an mtime no file has).
        ino = known.ino if known is not None else 0
        seen = Entry(path, False, remote.size, -1, ino, remote.etag, now, remote.mtime_ns)
        self.folder._put_entry(seen)
        return remote

    async def keep_versions_of(self, path: str, is_dir: bool) -> bool:
        """Keep what a delete removes; True when that already took the file away (a move)."""
        if not self.versions.enabled:
            return False
        if not is_dir:
            return await self.versions.keep(path, by_move=True)
        for f in [k for k in self.entries.below(path) if not self.entries[k].is_dir]:
            await self.versions.keep(f, by_move=True)
        return False

    async def _move_by_copy(self, src: str, dst: str, is_dir: bool) -> None:
        """A rename on a store without one (S3): server-side copies, then the source goes.

        Not a delete in the guard's sense: every byte stays on the remote under the new name.
        """
        rsrc, rdst = self.rpath(src), self.rpath(dst)
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

    async def move(self, job: Job) -> None:
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
            await self.folder._resync(dst)
            if known is not None:
                self.folder._hold_deletes([(src, known.is_dir)])
            return
        assert le is not None and known is not None
        if "/" in dst and caps.directories:
            await self.ensure_dir(dst.rsplit("/", 1)[0])
        self.bus.publish(JobStarted(self.name, Op.MOVE, src, 0, dst))
        started = time.monotonic()
        try:
            if caps.server_move:
                await self.remote.move(self.rpath(src), self.rpath(dst))
            else:
                await self._move_by_copy(src, dst, known.is_dir)
        except RemoteNotFound:  # the source is gone there: upload what is here
            await self.folder._resync(dst)
            self.folder._forget(src, job.is_dir)
            return
        except (RemoteConflict, NotImplementedError):
            # The server would not (a name it mangles, a taken name): upload what is at the
            # destination, and the source goes as an ordinary delete.
            await self.folder._resync(dst)
            self.folder._hold_deletes([(src, known.is_dir)])
            return
        self.entries.move(src, dst)
        self.state.move_entries(self.name, src, dst)
        self.state.clear_pending(self.name, src)
        self.state.clear_pending(self.name, dst)
        self.bus.publish(JobFinished(self.name, Op.MOVE, src, 0, time.monotonic() - started, dst))
        # The moved file (or anything under the moved directory) may also have changed.
        if job.is_dir:
            await self.folder._resync(dst)
        elif known is None or (le.size, le.mtime_ns) != (known.size, known.mtime_ns):
            self.folder._enqueue(Job(JobKind.SYNC, dst))

class _Requeue(Exception):
    """The job's path changed under it: run it again after a short delay."""


def _read_small(path: str, size: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(size)
    if len(data) != size:
        raise _Requeue
    return data
