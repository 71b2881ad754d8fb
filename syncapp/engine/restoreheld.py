"""The guard's "Restore them": what a held delete would have removed from the remote comes
back from it into the folder (the remote still has it: the delete never went out), so the
local files match the state again and nothing is sent."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from syncapp.engine.adopt import same_mtime

if TYPE_CHECKING:
    from syncapp.engine.operations import Operations


def rel_of(ops: Operations, remote_path: str) -> str:
    """The folder-relative path of a remote path below the folder's ``remote_path``."""
    return remote_path[len(ops.remote_root) + 1 :] if ops.remote_root else remote_path


async def restore_held(ops: Operations, held: Mapping[str, bool]) -> int:
    """Download held deletes (path → is_dir) back into the folder; how many files came."""
    wanted: list[tuple[str, int, int | None]] = []  # (remote path, size, mtime_ns)
    for path, is_dir in held.items():
        if is_dir:
            os.makedirs(os.path.join(ops.root, path), exist_ok=True)
            # Collect first: a listing must not hold a connection while files download.
            listing = [e async for e in ops.remote.list(ops.rpath(path), recursive=True)]
            listed: set[str] = set()
            for e in listing:
                listed.add(rel_of(ops, e.path))
                if e.is_dir:
                    os.makedirs(os.path.join(ops.root, rel_of(ops, e.path)), exist_ok=True)
                elif not ops.rules.ignored(rel_of(ops, e.path)):
                    wanted.append((e.path, e.size, e.mtime_ns))
            # What we synced there but the listing left out (nginx's dav-ext hides names
            # starting with a dot) is asked for by name: a restore must bring back all.
            for rel in ops.entries.below(path):
                if rel not in listed and not ops.entries[rel].is_dir:
                    found = await ops.remote.stat(ops.rpath(rel))
                    if found is not None and not found.is_dir:
                        wanted.append((found.path, found.size, found.mtime_ns))
        else:
            found = await ops.remote.stat(ops.rpath(path))
            if found is not None and not found.is_dir:
                wanted.append((found.path, found.size, found.mtime_ns))
    for rpath, size, mtime_ns in wanted:
        rel = rel_of(ops, rpath)
        known = ops.entries.get(rel)
        if (
            known is not None
            and not known.is_dir
            and known.size == size
            and same_mtime(
                known.mtime_ns, mtime_ns, server_mtime=ops.remote.capabilities.server_mtime
            )
        ):
            # The copy we synced: its exact local mtime comes back (servers keep whole
            # seconds at best), so the restored file matches the state and is not re-sent.
            mtime_ns = known.mtime_ns
        await ops.versions.download(rpath, os.path.join(ops.root, rel), mtime_ns=mtime_ns)
    return len(wanted)
