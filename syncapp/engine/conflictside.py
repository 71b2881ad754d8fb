"""What the remote side does when both sides changed a file: the remote content is kept
beside the local one under the conflict name (``keep_conflict``), and the case of our own
upload written over before it settled (``overwritten_upload``: ``ownwrites``)."""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from syncapp.engine.conflictname import conflict_name, machine_tag
from syncapp.engine.download import same_content as remote_same_content
from syncapp.engine.events import ConflictKept
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.remotepoll import Snapshot
from syncapp.engine.state import Entry
from syncapp.engine.twoway import Action, Op, record_entry

if TYPE_CHECKING:
    from syncapp.engine.remoteside import RemoteSide

log = logging.getLogger("syncapp.engine.remoteside")


async def overwritten_upload(side: RemoteSide, a: Action, snap: Snapshot) -> Action | None:
    """A DOWNLOAD planned for our upload of ``a.path``, overwritten before it settled: what
    to do now (None: nothing yet, the writer's copy of ours may still be on its way). The
    writer kept ours as a conflict copy (its upload saw ours): download. Else ours is kept
    as a conflict."""
    if not side.own.doubt(a.path, last=side._settle_all):
        return None
    assert a.remote is not None and a.local is not None
    if a.remote.size == a.local.size and await remote_same_content(
        side.remote, side._rpath(a.path), side._full(a.path), a.remote.etag
    ):
        # Only its stamp moved (a server may answer a PUT with another ETag than it lists
        # later): ours, as the server shows it now.
        side.folder._put_entry(record_entry(a, side.clock()))
        return None
    if side.folder.entries.get(a.path) is None or not await kept_as_conflict(side, a.path, snap):
        why = "overwritten on the remote before this machine saw its own upload there"
        return replace(a, op=Op.CONFLICT, reason=why)
    return a


async def kept_as_conflict(side: RemoteSide, path: str, snap: Snapshot) -> bool:
    """Whether the remote shows a conflict copy of ``path`` (``conflict_name``'s pattern)
    holding our local content: another machine kept it beside its own. Compared by content,
    not size: two edits of one size are common, and taking one for the other loses it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(0))
    head, _, tail = conflict_name(path, 0).partition(stamp)
    pattern = re.compile(re.escape(head) + r"\d{8}-\d{6}(-[0-9a-f]{4})?" + re.escape(tail))
    full = side._full(path)
    try:
        size = os.stat(full).st_size
    except OSError:
        return False
    for p, e in snap.entries.items():
        if e.is_dir or e.size != size or pattern.fullmatch(p) is None:
            continue
        if await remote_same_content(side.remote, side._rpath(p), full, e.etag):
            return True
    return False


async def keep_conflict(side: RemoteSide, a: Action) -> None:
    """Both sides changed: the remote content comes down beside the local file under the
    conflict name, and the local content keeps the name and goes up."""
    # Named here, with this machine's tag: another machine may keep the same conflict in
    # the same second.
    a = replace(a, dst=conflict_name(a.path, side.clock(), machine_tag(side.state.path)))
    r, lo = a.remote, a.local
    assert r is not None and a.dst is not None
    # The remote content comes down beside the local file...
    await side._download(a, dst=a.dst)
    # ...and the local content keeps the name: it overwrites the remote copy, which is
    # recorded as seen so the upload keeps no second conflict copy of it.
    # (The remote's size, ETag and mtime as last synced; a local mtime no file has, so the
    # local file counts as changed.)
    ino = lo.ino if lo is not None else 0
    side.folder._put_entry(Entry(a.path, False, r.size, -1, ino, r.etag, side.clock(), r.mtime_ns))
    side.folder._enqueue(Job(JobKind.SYNC, a.path))
    side.folder._enqueue(Job(JobKind.SYNC, a.dst))
    side._note(a.path, f"in conflict: the remote copy was kept as {a.dst}", "conflicts", a.dst)
    side._note(a.dst, f"the remote copy of {a.path}, kept in a conflict")
    log.warning("%s: %s changed on both sides; the remote copy is %s", side.name, a.path, a.dst)
    side.bus.publish(ConflictKept(side.name, a.path, a.dst))
