"""First run (or after a crash): what is already on the remote, and which of it is ours.

One listing and one adoption rule serve the engine and ``--dry-run``, so the dry run shows what
a real run would upload: files already identical remotely are recorded as synced, not sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry
from syncapp.engine.versions import VERSIONS_DIR
from syncapp.errors import RemoteError
from syncapp.remotes.base import STAGING_PREFIX, Remote, RemoteEntry, join

#: Servers round mtimes (WebDAV: whole seconds in getlastmodified).
MTIME_SLACK_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RemoteFile:
    is_dir: bool
    size: int
    mtime_ns: int | None
    etag: str | None = None


@dataclass(slots=True)
class RemoteTree:
    #: Paths relative to the folder's remote root; our versions area and staging names left out.
    entries: dict[str, RemoteFile] = field(default_factory=dict)
    #: Full remote paths of our interrupted uploads (staging names), to be removed.
    staging: list[str] = field(default_factory=list)


async def list_remote_tree(remote: Remote, prefix: str) -> RemoteTree:
    tree = RemoteTree()
    async for found in remote.list(prefix, recursive=True):
        rel = found.path[len(prefix) + 1 :] if prefix else found.path
        if not rel or rel.split("/", 1)[0] == VERSIONS_DIR:
            continue
        if rel.rsplit("/", 1)[-1].startswith(STAGING_PREFIX):
            tree.staging.append(found.path)
            continue
        tree.entries[rel] = RemoteFile(found.is_dir, found.size, found.mtime_ns, found.etag)
    return tree


def same_mtime(local_ns: int, remote_ns: int | None, *, server_mtime: bool) -> bool:
    if remote_ns is None:
        return False
    if server_mtime:
        return abs(local_ns - remote_ns) < MTIME_SLACK_NS
    # Without kept mtimes, a remote copy written after the local edit is the same file.
    return remote_ns >= local_ns - MTIME_SLACK_NS


def candidates(
    local: Mapping[str, LocalEntry],
    remote: RemoteTree,
    known: Mapping[str, Entry],
    *,
    server_mtime: bool,
    now: float,
) -> list[tuple[Entry, bool]]:
    """State records for local paths not yet known whose remote copy may be the same (folders
    by kind, files of the same size), each with whether timing alone says it is."""
    out: list[tuple[Entry, bool]] = []
    for rel, le in local.items():
        r = remote.entries.get(rel)
        if r is None or rel in known or r.is_dir != le.is_dir:
            continue
        if le.is_dir:
            out.append((Entry(rel, True, 0, le.mtime_ns, le.ino, None, now), True))
        elif r.size == le.size:
            # What the server reports now is what a later edit there is told from.
            entry = Entry(rel, False, le.size, le.mtime_ns, le.ino, r.etag, now, r.mtime_ns)
            out.append((entry, same_mtime(le.mtime_ns, r.mtime_ns, server_mtime=server_mtime)))
    return out


def adoptable(
    local: Mapping[str, LocalEntry],
    remote: RemoteTree,
    known: Mapping[str, Entry],
    *,
    server_mtime: bool,
    now: float,
) -> list[Entry]:
    """The candidates that timing alone says are the same: folders by kind, files by size
    and mtime."""
    found = candidates(local, remote, known, server_mtime=server_mtime, now=now)
    return [e for e, timed in found if timed]


#: Files up to this size whose sameness rests on timing alone are compared byte for byte.
COMPARE_MAX = 1 << 20
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


async def adopt(
    remote: Remote,
    prefix: str,
    root: str,
    local: Mapping[str, LocalEntry],
    tree: RemoteTree,
    known: Mapping[str, Entry],
    *,
    now: float,
) -> list[Entry]:
    """What a first run records as already synced, without an upload.

    Folders by kind. A file of the same size whose kept mtime is the same is adopted as it is
    (the rule rsync and rclone use). Every other file of the same size needs proof: an MD5
    ETag (S3 single-part uploads) checked against the local file, or, up to ``COMPARE_MAX``, a
    download compared byte for byte. A larger one without proof is adopted only by the timing
    rule where the server keeps no mtimes (its copy was written after the local edit). What
    differs is uploaded, and what it replaces kept as a version.
    """
    server_mtime = remote.capabilities.server_mtime
    sure: list[Entry] = []
    unproven: list[tuple[Entry, bool]] = []
    for e, timed in candidates(local, tree, known, server_mtime=server_mtime, now=now):
        if e.is_dir or (server_mtime and timed):
            sure.append(e)
        else:
            unproven.append((e, timed))
    limit = asyncio.Semaphore(8)

    async def same(e: Entry, timed: bool) -> bool:
        path = os.path.join(root, e.path)
        async with limit:
            if e.etag and _MD5_ETAG.match(e.etag):
                return await asyncio.to_thread(_md5_of, path) == e.etag
            if e.size > COMPARE_MAX:
                return timed
            try:
                async with remote.get(join(prefix, e.path)) as chunks:
                    theirs = b"".join([c async for c in chunks])
                ours = await asyncio.to_thread(_read, path, e.size + 1)
            except (RemoteError, OSError):
                return False  # unproven: uploaded (the remote copy is kept as a version)
            return theirs == ours

    verdicts = await asyncio.gather(*(same(e, timed) for e, timed in unproven))
    return sure + [e for (e, _), ok in zip(unproven, verdicts, strict=True) if ok]


def _md5_of(path: str) -> str | None:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _read(path: str, limit: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(limit)


def remote_changed(known: Entry, remote: RemoteEntry, *, server_mtime: bool) -> bool:
    """Whether the remote file is no longer what we last synced (someone else wrote it).

    Compared with what the server itself reported for our upload (or for the copy a first
    run adopted): its ETag where we have one; else its size and modification time, which is
    the mtime we sent where the server keeps it (whole seconds), or its own clock when it
    answered our upload, which no later write by anyone can precede. Records from before that
    was kept fall back to the local mtime, or our clock at the time of the sync, with slack.
    """
    if remote.size != known.size:
        return True
    if known.etag and remote.etag:
        return known.etag != remote.etag
    if remote.mtime_ns is None:
        return False
    if known.remote_mtime_ns is not None:
        if server_mtime:
            return abs(remote.mtime_ns - known.remote_mtime_ns) >= MTIME_SLACK_NS
        return remote.mtime_ns > known.remote_mtime_ns
    if server_mtime:
        return abs(remote.mtime_ns - known.mtime_ns) >= 2 * MTIME_SLACK_NS
    return remote.mtime_ns > known.synced_at * 1e9 + 2 * MTIME_SLACK_NS
