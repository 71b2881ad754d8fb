"""What the remote folder holds now: a snapshot for the two-way planner, with as few requests
as the server allows.

``RemotePoller.poll()`` returns a ``Snapshot``: ``{relative path → RemoteEntry(size, mtime,
etag)}`` of everything below the folder's ``remote_path``, gathered only through the public
``Remote.stat`` / ``Remote.list`` calls.

Two ways to look:

- **Tree ETags** (``tree_etags=True``): on servers whose collection ETag changes whenever
  anything below the collection changes (Nextcloud, ownCloud, SabreDAV), a poll is one ``stat``
  of the folder when its ETag is the one of the last poll; otherwise a depth-1 walk that reuses
  the last snapshot for every subfolder whose ETag is unchanged. ``probe_tree_etags`` finds out
  whether a server behaves so (inside a directory of the folder, with probe names it removes).
- **Full listing** otherwise: one ``list(remote_path, recursive=True)``; the backend sends
  what it needs (one ``PROPFIND Depth: infinity`` on rclone and WsgiDAV, one ``Depth: 1`` per
  folder on Apache and nginx, one ``ListObjectsV2`` per 1,000 keys on S3, one ``list_url`` GET
  on the HTTP API, a ``scandir`` per folder on ``local``). An empty answer costs one ``stat``
  more, to tell an emptied folder (deletes: the guard decides) from a missing one.

What the servers in the test suite do (measured; tests/integration/test_twoway_io.py): no
collection ETags at all on rclone serve webdav and WsgiDAV (404 for ``getetag`` on a
collection) nor on nginx (none reported); Apache ``mod_dav_fs`` reports one, but it changes
only when the collection's own entries change (a deep edit leaves its ancestors' ETags as they
were), so it cannot be used to skip a subtree; S3 has no collections; a local directory's mtime
likewise changes only for its direct entries. So ``probe_tree_etags`` says no for all of them,
and yes for tests/servers/treedav.py (WsgiDAV whose folder ETag hashes its subtree, standing in
for Nextcloud; tests/integration/test_tree_etags.py). The engine learns the answer once per
server and keeps it (``learned.learn_tree_etags``); with tree ETags a walk of everything still
happens every ``FULL_WALK_EVERY`` seconds. A no-change poll of 10,000 files in 100 folders,
through the fault proxy on loopback: rclone 1 PROPFIND (0.7 s), WsgiDAV 1 PROPFIND (1.9 s),
Apache and nginx 101 PROPFINDs (about 1 s), rclone serve s3 10 ListObjectsV2 pages (0.6 s),
local no request (0.2 s); the tree-ETag WsgiDAV 1 PROPFIND ``Depth: 0`` (0.2 s, all of it the
server hashing its tree; 1.1 s for its full ``Depth: infinity`` listing).

The snapshot a poll returns may share its dicts with the next one: treat it as read-only.

Names from the server are untrusted: a path that would leave the folder (``..``, ``.``, empty
or absolute segments, NUL), names longer than a local file system takes (255 bytes a segment,
``max_path_bytes`` in all), names that are not UTF-8, and anything below such a folder are left
out of ``entries`` and listed in ``skipped`` with the reason. syncapp's own names (the versions
area, staging names) and ignored paths are left out too; staging names are reported in
``staging`` for the sweep.

Interface for the coordinator (``remoteside``)::

    poller = RemotePoller(remote, cfg.remote_path, rules)
    poller.tree_etags = await learned.learn_tree_etags(remote, state, cfg.remote_path)
    every cfg.remote_poll seconds (and on rescan):
        snap = await poller.poll()          # RemoteError: the failure policy decides
        if not snap.root_exists: pause the folder ("the remote folder is gone"), plan nothing
        plan = plan_twoway(state.entries(name), scan.entries, snap.entries, ...)
        for rel, why in snap.skipped.items(): state.set_pending(name, Pending(rel, "skipped", why))
    after our own uploads/deletes, nothing needs telling: the next poll sees them and the
    planner matches them against the state DB (which records the ETag the server gave back).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace

from syncapp.engine.scanner import bad_name_reason
from syncapp.engine.versions import VERSIONS_DIR
from syncapp.errors import RemoteError
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import STAGING_PREFIX, Remote, RemoteEntry, join, staging_name

#: Longest name of one path segment most local file systems take (ext4, btrfs, xfs, APFS).
NAME_MAX = 255
#: Longest relative path accepted from a server (PATH_MAX 4096 less room for the folder's path).
MAX_PATH_BYTES = 3072
#: Folders listed at the same time in a depth-1 walk.
WALK_CONCURRENCY = 8
#: With tree ETags, seconds between walks of everything (between them a poll that finds the
#: folder's ETag unchanged is one request).
FULL_WALK_EVERY = 600.0


@dataclass(slots=True)
class Snapshot:
    #: Relative path → what the server reported (``RemoteEntry.path`` is the relative path).
    entries: dict[str, RemoteEntry] = field(default_factory=dict)
    #: Relative folder path (``""`` for the folder itself) → its collection ETag; only filled
    #: when polling with tree ETags.
    dir_etags: dict[str, str] = field(default_factory=dict)
    #: Names the server showed that are not synced, with the reason in words.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Full remote paths of staging names (our interrupted uploads) seen.
    staging: list[str] = field(default_factory=list)
    #: False when the folder's ``remote_path`` itself is gone.
    root_exists: bool = True
    #: ``Remote.stat``/``Remote.list`` calls this poll made (not HTTP requests: a recursive
    #: listing may be several).
    calls: int = 0
    #: Entries carried over from the last snapshot for subtrees whose ETag had not changed.
    reused: int = 0
    #: A store without folders (S3) can hold a file ``x`` and files ``x/…`` at once: the file
    #: is in ``entries``, and the files below the folder of the same name are here, by that
    #: name (the remote side moves them to a conflict name).
    clashes: dict[str, list[RemoteEntry]] = field(default_factory=dict)


def unsafe_reason(rel: str, *, max_path_bytes: int = MAX_PATH_BYTES) -> str | None:
    """Why a relative path from a server must not become a local path, or None."""
    if "\0" in rel:
        return "name contains a NUL byte"
    if rel.startswith("/"):
        return "absolute name"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "name with an empty, . or .. segment (would leave the folder)"
    for p in parts:
        why = bad_name_reason(p)
        if why:
            return why
        if len(p.encode("utf-8")) > NAME_MAX:
            return f"a name longer than {NAME_MAX} bytes (too long for a local file system)"
    if len(rel.encode("utf-8")) > max_path_bytes:
        return f"path longer than {max_path_bytes} bytes (too long for a local file system)"
    return None


class RemotePoller:
    """Polls one folder's ``remote_path``; keeps the last snapshot to skip unchanged subtrees."""

    def __init__(
        self,
        remote: Remote,
        prefix: str,
        rules: IgnoreRules | None = None,
        *,
        tree_etags: bool = False,
        max_path_bytes: int = MAX_PATH_BYTES,
        full_every: float = FULL_WALK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote = remote
        self.prefix = prefix.strip("/")
        self.rules = rules or IgnoreRules()
        self.tree_etags = tree_etags
        self.max_path_bytes = max_path_bytes
        self.full_every = full_every
        self.clock = clock
        self.last: Snapshot | None = None
        self._walked_at = 0.0

    def forget(self) -> None:
        """The next poll lists everything again (after a failure, or on the user's rescan)."""
        self.last = None

    async def poll(self) -> Snapshot:
        if not self.tree_etags:
            snap = await self._poll_full()
        else:
            now = self.clock()
            if now - self._walked_at >= self.full_every:
                # Now and then everything is walked again: a server that stopped changing its
                # folder ETags with their contents (a reconfiguration) is noticed this way.
                self.last = None
            if self.last is None:
                self._walked_at = now
            snap = await self._poll_tree()
        self.last = snap
        return snap

    # -- full listing ---------------------------------------------------------------------------

    async def _poll_full(self) -> Snapshot:
        snap = Snapshot(calls=1)
        found = [e async for e in self.remote.list(self.prefix, recursive=True)]
        self._accept(snap, found)
        # An empty answer: emptied, or gone? Only a remote with real folders can tell (on S3
        # an empty prefix is both).
        if not found and self.prefix and self.remote.capabilities.directories:
            snap.calls += 1
            root = await self.remote.stat(self.prefix)
            snap.root_exists = root is not None and root.is_dir
        return snap

    # -- tree ETags -----------------------------------------------------------------------------

    async def _poll_tree(self) -> Snapshot:
        last = self.last
        root = await self.remote.stat(self.prefix)
        if root is None or not root.is_dir:
            return Snapshot(root_exists=False, calls=1)
        if last is not None and root.etag and last.dir_etags.get("") == root.etag:
            return replace(last, calls=1, reused=len(last.entries))
        snap = Snapshot(calls=1)
        if root.etag:
            snap.dir_etags[""] = root.etag
        limit = asyncio.Semaphore(WALK_CONCURRENCY)

        async def children(rel_dir: str) -> list[RemoteEntry]:
            async with limit:
                where = join(self.prefix, rel_dir)
                return [e async for e in self.remote.list(where, recursive=False)]

        level = [""]
        while level:
            snap.calls += len(level)
            found = [e for batch in await asyncio.gather(*map(children, level)) for e in batch]
            accepted = self._accept(snap, found)
            level = []
            for e in accepted:
                if not e.is_dir:
                    continue
                if e.etag:
                    snap.dir_etags[e.path] = e.etag
                if last is not None and e.etag and last.dir_etags.get(e.path) == e.etag:
                    snap.reused += _carry_over(last, snap, e.path)
                else:
                    level.append(e.path)
        return snap

    # -- names ----------------------------------------------------------------------------------

    def _relative(self, path: str) -> str | None:
        if not self.prefix:
            return path
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1 :]
        return None

    def _accept(self, snap: Snapshot, found: Iterable[RemoteEntry]) -> list[RemoteEntry]:
        """Put the safe, synced ones of ``found`` into ``snap``; returns those (relative)."""
        kept: list[RemoteEntry] = []
        left_out: set[str] = set()
        for e in found:
            rel = self._relative(e.path)
            if rel is None:
                snap.skipped[repr(e.path)] = "listed outside the folder's remote_path"
                continue
            if not rel:
                continue  # the folder itself
            why = unsafe_reason(rel, max_path_bytes=self.max_path_bytes)
            if why:
                snap.skipped[repr(rel) if "\0" in rel else rel] = why
                left_out.add(rel)
                continue
            if rel.rsplit("/", 1)[-1].startswith(STAGING_PREFIX):
                snap.staging.append(e.path)
                left_out.add(rel)
                continue
            if rel.split("/", 1)[0] == VERSIONS_DIR or self.rules.ignored(rel, is_dir=e.is_dir):
                left_out.add(rel)
                continue
            entry = replace(e, path=rel)
            before = snap.entries.get(rel)
            if before is not None and before.is_dir != entry.is_dir:
                snap.clashes.setdefault(rel, [])
                if entry.is_dir:
                    continue  # the file keeps the name
                kept.remove(before)
            snap.entries[rel] = entry
            kept.append(entry)
        # What sits below a folder that is left out (or below a file) is left out too: a
        # full listing may show a child before, or without, its parent.
        out = []
        for e in kept:
            up = e.path
            while "/" in up:
                up = up.rsplit("/", 1)[0]
                parent = snap.entries.get(up)
                if up in left_out or (parent is not None and not parent.is_dir):
                    del snap.entries[e.path]
                    if up in snap.clashes and not e.is_dir:
                        snap.clashes[up].append(e)
                    if up in snap.skipped:
                        snap.skipped[e.path] = f"inside {up!r}, which is not synced"
                    break
            else:
                out.append(e)
        return out


def _carry_over(last: Snapshot, snap: Snapshot, rel_dir: str) -> int:
    """Copy ``rel_dir``'s subtree (entries and folder ETags) from the last snapshot."""
    lo = rel_dir + "/"
    n = 0
    for rel, e in last.entries.items():
        if rel.startswith(lo):
            snap.entries[rel] = e
            n += 1
    for rel, etag in last.dir_etags.items():
        if rel.startswith(lo):
            snap.dir_etags[rel] = etag
    return n


async def probe_tree_etags(remote: Remote, where: str) -> bool | None:
    """Whether ``where``'s collection ETag changes when a file two levels below it changes
    (Nextcloud's behaviour), tried with a probe folder inside ``where`` that is removed again.
    False when the server shows no collection ETags; None when it refuses the probe (no write
    access there, a conflict with another writer); a server that is down raises, like any
    request (nothing is learned then)."""
    probe = staging_name(join(where, "x"), f"probe-tree-{secrets.token_hex(4)}")
    inner = join(probe, "a")
    try:
        await remote.mkdir(probe)
        await remote.mkdir(inner)
        before = await remote.stat(probe)
        await remote.put(join(inner, "f"), _body(b"1"), size=1)
        after_add = await remote.stat(probe)
        # Another size: a server stamping by whole-second mtime and size sees the edit too.
        await remote.put(join(inner, "f"), _body(b"22"), size=2)
        after_edit = await remote.stat(probe)
    except RemoteError as e:
        if e.retryable:
            raise
        return None  # refused (a busy folder, no write access): asked again later
    finally:
        # Best effort: a staging name left behind is swept at the next start.
        with contextlib.suppress(Exception):
            await remote.delete(probe)
    tags = [e.etag if e is not None else None for e in (before, after_add, after_edit)]
    return all(tags) and len(set(tags)) == 3


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data
