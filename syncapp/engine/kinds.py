"""Two-way: before the upload side puts a file where a folder was (or a folder where a file
was), whether the remote one is still what was last synced. If someone changed it meanwhile,
replacing it would keep their work only as a version; the remote side's next look keeps both
instead (``kindside``)."""

from __future__ import annotations

from collections.abc import Mapping

from syncapp.engine.adopt import remote_changed
from syncapp.engine.state import Entry
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import STAGING_PREFIX, Remote


async def changed_remotely(
    remote: Remote,
    rpath: str,
    known: Entry,
    entries: Mapping[str, Entry],
    rel_of: str,
    rules: IgnoreRules,
) -> bool:
    """Whether the remote ``rpath`` (synced as ``known``) is another kind now, another file,
    or a folder with a file in it that is new or changed since the last sync. ``rel_of``: the
    remote prefix of the folder (remote path = ``rel_of/relative``). Gone is no change."""
    server_mtime = remote.capabilities.server_mtime
    found = await remote.stat(rpath)
    if found is None:
        return False
    if found.is_dir != known.is_dir:
        return True
    if not found.is_dir:
        return remote_changed(known, found, server_mtime=server_mtime)
    cut = len(rel_of) + 1 if rel_of else 0
    async for e in remote.list(rpath, recursive=True):
        rel = e.path[cut:]
        if e.is_dir or rel.rsplit("/", 1)[-1].startswith(STAGING_PREFIX) or rules.ignored(rel):
            continue
        k = entries.get(rel)
        if k is None or k.is_dir or remote_changed(k, e, server_mtime=server_mtime):
            return True
    return False
