"""Bring one remote file down, atomically: nothing half-written ever has the real name.

``download`` streams ``Remote.get`` into ``.syncapp-tmp-dl-<id>`` in the target's own folder
(a reserved name: the scanner and the watcher's planner ignore it, see ``syncapp.ignore``),
checks the byte count, ``fsync``s, sets the remote mtime, and renames it over the real name;
then ``fsync``s the folder so the rename survives a power cut. Any failure on the way (the
server cuts the body, the disk fills, the task is cancelled) removes the temporary file and
leaves the real name as it was. A ``kill -9`` can leave a temporary file behind:
``sweep_partial_downloads`` removes those at the next start.

Names come from the server and are untrusted: ``local_path`` refuses a path that would leave
the folder (``..``, absolute, NUL, a parent that is a symbolic link), and a name longer than
the local file system allows is refused up front with ``DownloadSkipped`` (a reason in words)
instead of failing after the transfer.

Interface for the coordinator (phase 2)::

    try:
        entry = await download(remote, join(prefix, rel), root, rel,
                               size=r.size, mtime_ns=r.mtime_ns, expect=local_entry_or_None)
    except DownloadSkipped as e:   # name too long, unsafe: record e.reason for `why`; no retry
    except LocalChanged:           # the local file changed since the plan: plan again
    except RemoteError as e:       # the pacer/failure policy decides (retry, hold, offline)
    # success: state.put_entry(Entry(rel, False, entry.size, entry.mtime_ns, entry.ino,
    #          r.etag, now, r.mtime_ns)) and remember `entry` so the watcher's echo of this
    #          rename (same size, mtime_ns, ino) is recognised as ours and never uploaded.

``same_content`` answers a planner's "needs compare" (both sides changed to the same size).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat as statmod
from collections.abc import AsyncIterator, Callable, Sequence

import aiofiles
import aiofiles.os

from syncapp.engine.ratelimit import RateLimit, limited
from syncapp.engine.scanner import LocalEntry, entry_from_stat
from syncapp.errors import RemoteError, RemoteUnavailable
from syncapp.remotes.base import STAGING_PREFIX, Remote

#: Temporary names of downloads: reserved (``.syncapp-tmp-*``), so never synced or scanned.
DOWNLOAD_PREFIX = f"{STAGING_PREFIX}dl-"
#: Disk writes are batched to at least this many bytes (aiofiles pays a thread hop per call).
WRITE_CHUNK = 256 * 1024


class UnsafePath(ValueError):
    """A path from the server that would leave the folder; never written."""


class DownloadSkipped(Exception):
    """A remote file that cannot be stored here (``reason`` says why); not retried."""

    def __init__(self, rel: str, reason: str) -> None:
        super().__init__(f"{rel}: {reason}")
        self.rel = rel
        self.reason = reason


class LocalChanged(Exception):
    """The local file is not what the plan saw: the download is not put over it."""


def local_path(root: str, rel: str) -> str:
    """``root/rel`` for a ``/``-separated relative path from a remote; ``UnsafePath`` when it
    would resolve outside ``root`` (``..``, ``.``, empty or absolute segments, NUL, ``\\``-free
    but ``/``-rooted names) or pass through a symbolic link."""
    if not rel or "\0" in rel or rel.startswith("/"):
        raise UnsafePath(f"unsafe name {rel!r} from the server")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(f"unsafe name {rel!r} from the server")
    path = os.path.join(root, *parts)
    # A parent that is a symbolic link could point anywhere: refuse rather than follow.
    walk = root
    for part in parts[:-1]:
        walk = os.path.join(walk, part)
        with contextlib.suppress(FileNotFoundError):
            if statmod.S_ISLNK(os.lstat(walk).st_mode):
                raise UnsafePath(f"{rel!r}: {walk} is a symbolic link; not written through")
    return path


def name_too_long(directory: str, name: str) -> str | None:
    """Why ``name`` cannot be stored in ``directory`` (this file system's NAME_MAX), or None."""
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    size = len(os.fsencode(name))
    if size > limit:
        return f"name is {size} bytes long; this file system allows {limit}"
    return None


def _same(a: LocalEntry, b: LocalEntry) -> bool:
    return (a.is_dir, a.size, a.mtime_ns, a.ino) == (b.is_dir, b.size, b.mtime_ns, b.ino)


def _current(path: str) -> LocalEntry | None:
    try:
        return entry_from_stat("", os.lstat(path))
    except FileNotFoundError:
        return None


async def download(
    remote: Remote,
    remote_path: str,
    root: str,
    rel: str,
    *,
    size: int | None = None,
    mtime_ns: int | None = None,
    expect: LocalEntry | None = None,
    progress: Callable[[int], None] | None = None,
    limits: Sequence[RateLimit] = (),
) -> LocalEntry:
    """Download ``remote_path`` to ``root/rel``; returns the new file's ``LocalEntry``.

    ``size``: the byte count the listing reported; a body of another length is an error
    (retryable: the file changed, or the connection was cut). ``mtime_ns``: set on the file.
    ``expect``: what the plan saw at ``rel`` (None: nothing); anything else there at the end
    raises ``LocalChanged`` and the download is dropped. ``progress``: called with the bytes
    written so far after each write (at most every ``WRITE_CHUNK`` bytes). ``limits``: the
    bandwidth limits the body passes through (the same ones uploads share).
    """
    target = local_path(root, rel)
    folder = os.path.dirname(target)
    for part in rel.split("/"):
        too_long = name_too_long(root, part)
        if too_long:
            raise DownloadSkipped(rel, too_long)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise DownloadSkipped(rel, "path too long for this file system") from None
        raise
    local_path(root, rel)  # again: a parent may have been swapped for a link meanwhile
    tmp = os.path.join(folder, f"{DOWNLOAD_PREFIX}{secrets.token_hex(6)}")
    written = 0
    try:
        async with aiofiles.open(tmp, "xb") as fh:
            async with remote.get(remote_path) as chunks:
                body = limited(chunks, limits) if limits else chunks
                async for piece in _batched(body):
                    await fh.write(piece)
                    written += len(piece)
                    if progress is not None:
                        progress(written)
            if size is not None and written != size:
                raise RemoteUnavailable(
                    f"download of {remote_path} gave {written} bytes, the listing said {size}",
                    path=remote_path,
                )
            await fh.flush()
            await aiofiles.os.wrap(os.fsync)(fh.fileno())
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        now = _current(target)
        if (now is None) != (expect is None) or (now and expect and not _same(now, expect)):
            raise LocalChanged(f"{rel} changed locally during the download")
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:
            raise DownloadSkipped(rel, "name or path too long for this file system") from None
        raise
    _fsync_dir(folder)
    return entry_from_stat(rel, os.lstat(target))


async def _batched(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for c in chunks:
        buf += c
        if len(buf) >= WRITE_CHUNK:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sweep_partial_downloads(root: str) -> list[str]:
    """Remove what interrupted downloads left (``.syncapp-tmp-dl-*``) below ``root``; returns
    the relative paths removed. Symbolic links are not followed."""
    removed: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".syncapp-trash")]
        for name in filenames:
            if name.startswith(DOWNLOAD_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
                    removed.append(os.path.relpath(os.path.join(dirpath, name), root))
    return removed


_MD5 = re.compile(r"^[0-9a-f]{32}$")


async def same_content(remote: Remote, remote_path: str, local: str, etag: str | None) -> bool:
    """Whether the local file holds what the remote has: by an MD5 ETag (S3 single-part
    uploads) when there is one, else streamed and compared chunk by chunk (any size, memory
    bounded). Any error counts as different (the caller then keeps both: a conflict copy)."""
    try:
        if etag and _MD5.match(etag):
            digest = hashlib.md5(usedforsecurity=False)
            async with aiofiles.open(local, "rb") as fh:
                while piece := await fh.read(1 << 20):
                    digest.update(piece)
            return digest.hexdigest() == etag
        async with aiofiles.open(local, "rb") as fh, remote.get(remote_path) as chunks:
            async for piece in chunks:
                if await fh.read(len(piece)) != piece:
                    return False
            return await fh.read(1) == b""
    except (RemoteError, OSError):
        return False
