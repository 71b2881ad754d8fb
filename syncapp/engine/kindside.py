"""What the remote side does when a file on one side meets a folder on the other (the plan:
``twoway``; the upload side's part: ``kinds.changed_remotely``): a REPLACE_LOCAL, a CONFLICT
of kinds, and a file and a folder of one name on a store without folders."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from syncapp.engine.conflictname import conflict_name, machine_tag
from syncapp.engine.events import ConflictKept
from syncapp.engine.remotepoll import Snapshot
from syncapp.engine.scanner import parents
from syncapp.engine.state import Entry, Pending, PendingStatus
from syncapp.engine.twoway import Action, Op
from syncapp.errors import RemoteNotFound

if TYPE_CHECKING:
    from syncapp.engine.remoteside import RemoteSide

log = logging.getLogger("syncapp.engine.remoteside")


async def replace_local(side: RemoteSide, a: Action) -> None:
    """The remote replaced a file by a folder (or back) and ours is as last synced: ours
    goes to the trash, theirs comes down."""
    lo, r = a.local, a.remote
    assert lo is not None and r is not None
    here, there = ("folder", "file") if lo.is_dir else ("file", "folder")
    if side.cfg.mirror_deletes:
        await side._trash(replace(a, is_dir=lo.is_dir), f"replaced by a {there} on the remote")
    else:
        await _move_aside(side, a, lo.is_dir, there)
    if r.is_dir:
        os.makedirs(side._full(a.path), exist_ok=True)
        side._record_dirs([*reversed(list(parents(a.path))), a.path])
    else:
        await side._download(replace(a, local=None))
    log.info("%s: the %s %s was replaced by a %s on the remote", side.name, here, a.path, there)


async def _move_aside(side: RemoteSide, a: Action, is_dir: bool, there: str) -> None:
    """``mirror_deletes = false``: nothing here is removed for a remote change, so ours moves
    aside under a conflict name (and then uploads like anything new) instead of to the trash."""
    side._still_as_seen(a, is_dir)
    full = side._full(a.path)
    dst = conflict_name(a.path, side.clock(), machine_tag(side.state.path))
    os.rename(full, side._full(dst))
    side.folder._forget(a.path, is_dir)
    why = f"replaced by a {there} on the remote; kept here as {dst} (mirror_deletes is off)"
    side._note(a.path, why, "conflicts", dst)
    side.bus.publish(ConflictKept(side.name, a.path, dst))
    await side.folder._resync(dst)


async def keep_both(side: RemoteSide, a: Action, snap: Snapshot) -> None:
    """A file here, a folder there (or the reverse), both new or changed: ours keeps the
    name, theirs is kept under a conflict name and then syncs like any new
    file or folder; the upload side puts ours in its place."""
    r, lo = a.remote, a.local
    assert r is not None and lo is not None
    # Named here, with this machine's tag (as a file conflict): two machines may keep the
    # same conflict in the same second.
    dst = conflict_name(a.path, side.clock(), machine_tag(side.state.path))
    if side.remote.capabilities.server_move:
        # One request, and every byte of theirs stays on the server under the new name;
        # the next look brings it down.
        await side.remote.move(side._rpath(a.path), side._rpath(dst))
        side.folder._forget(a.path, True)
        side.request()
    else:
        # Theirs comes down under the new name (and uploads from here); the state records
        # theirs as synced, so the upload side replaces it keeping versions, as an overwrite.
        below = [(q, e) for q, e in snap.entries.items() if q.startswith(a.path + "/")]
        theirs = [(a.path, r), *(below if r.is_dir else [])]
        for q, e in theirs:
            if not e.is_dir:
                rel = dst + q[len(a.path) :]
                await side._download(Action(Op.DOWNLOAD, q, remote=e), dst=rel)
        side.folder._forget(a.path, True)
        side.folder._forget(dst, True)  # new here: made and uploaded by the upload side
        now = side.clock()
        for q, e in theirs:
            side.folder._put_entry(Entry(q, e.is_dir, e.size, -1, 0, e.etag, now, e.mtime_ns))
        await side.folder._resync(dst)
    await side.folder._resync(a.path)
    here, there = ("folder", "file") if lo.is_dir else ("file", "folder")
    side._note(
        a.path,
        f"in conflict ({here} here, {there} on the remote): the remote {there} was kept as {dst}",
        "conflicts",
        dst,
    )
    side._note(dst, f"the remote {there} {a.path}, kept in a conflict")
    log.warning(
        "%s: %s is a %s here and a %s on the remote; the remote %s is %s",
        side.name,
        a.path,
        here,
        there,
        there,
        dst,
    )
    side.bus.publish(ConflictKept(side.name, a.path, dst))


async def resolve_clashes(side: RemoteSide, snap: Snapshot) -> None:
    """A file and a folder of one name on a store without folders (two machines made
    them at once): the file keeps the name, the folder's files move to the conflict
    name on the server (copy, then delete), and come down at the next look. Every machine
    that sees the clash picks the same name (stamped with the newest of those files, no
    machine tag): each file is moved once, wherever the move starts."""
    for name, files in snap.clashes.items():
        newest = max((e.mtime_ns or 0 for e in files), default=0)
        dst = conflict_name(name, newest / 1e9 if newest else side.clock())
        if not side.remote.capabilities.server_copy:
            why = "a file and a folder of this name on the remote; rename one there"
            side.state.set_pending(side.name, Pending(name, PendingStatus.SKIPPED, why))
            continue
        for e in files:
            rel = dst + e.path[len(name) :]
            with contextlib.suppress(RemoteNotFound):  # the other machine moved it first
                await side.remote.copy(side._rpath(e.path), side._rpath(rel))
                await side.remote.delete(side._rpath(e.path))
        side._note(
            name,
            "in conflict (a file and a folder of this name on the remote): "
            f"the folder was kept as {dst}",
            "conflicts",
            dst,
        )
        log.warning(
            "%s: %s is a file and a folder on the remote; the folder is now %s",
            side.name,
            name,
            dst,
        )
        side.bus.publish(ConflictKept(side.name, name, dst))
    side.request()
