"""``local``: a folder on this machine — the embedded default and the reference backend for tests.

Every blocking filesystem call runs in a worker thread (``asyncio.to_thread`` or aiofiles) so the
event loop never waits on a disk. Uploads are written to a staging name in the target directory,
fsync'ed, given their mtime and then ``os.replace``'d onto the final name, so a reader never sees
partial content. ``OSError`` never leaves this module: it is mapped onto ``RemoteError`` types.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat as stat_mod
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TypeVar

import aiofiles

from syncapp.config import LocalRemoteConfig
from syncapp.errors import (
    RemoteAuthError,
    RemoteConflict,
    RemoteError,
    RemoteFull,
    RemoteNotFound,
    RemotePreconditionFailed,
    RemoteUnavailable,
)
from syncapp.remotes.base import (
    Capabilities,
    PutResult,
    Remote,
    RemoteEntry,
    clean_path,
    join,
    parent,
    staging_name,
)

CHUNK = 256 * 1024

_T = TypeVar("_T")

# errno values after which trying again later may help (a flaky network filesystem, a busy
# device); everything else is a property of the path and will fail the same way again.
_TRANSIENT = {
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
    errno.ETIMEDOUT,
    errno.ESTALE,
    errno.ENOLCK,
    errno.EMFILE,
    errno.ENFILE,
}


def _map_os_error(e: OSError, op: str, path: str) -> RemoteError:
    """One ``OSError`` as our error type; the message names the operation and remote path."""
    what = f"{op} {path or '/'}: {e.strerror or e}"
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return RemoteFull(what, path=path)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        # Retrying cannot fix a permission problem: stop the folder and show it, like a 403.
        return RemoteAuthError(what, path=path)
    if code == errno.ENOENT:
        return RemoteNotFound(what, path=path)
    if code in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR, errno.EINVAL):
        return RemoteConflict(what, path=path)
    if code in _TRANSIENT:
        return RemoteUnavailable(what, path=path)
    return RemoteError(what, path=path)


def _etag(st: os.stat_result) -> str:
    # The inode tells a replaced file from the old one even when size and mtime were kept (we set
    # the mtime ourselves): every put creates a new inode and renames it into place.
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def _entry(path: str, st: os.stat_result) -> RemoteEntry:
    is_dir = stat_mod.S_ISDIR(st.st_mode)
    return RemoteEntry(
        path=path,
        is_dir=is_dir,
        size=0 if is_dir else st.st_size,
        mtime_ns=st.st_mtime_ns,
        etag=None if is_dir else _etag(st),
    )


def _remove_quietly(p: str) -> None:
    with suppress(OSError):
        os.unlink(p)


def _rmtree_or_unlink(p: str) -> None:
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    else:
        os.unlink(p)


def _commit_staging(
    staging: str, final: str, path: str, mtime_ns: int | None, if_match: str | None
) -> PutResult:
    """Set the mtime, check the precondition, rename over the final name (blocking)."""
    if mtime_ns is not None:
        os.utime(staging, ns=(mtime_ns, mtime_ns))
    if if_match is not None:
        # Checked right before the rename; another process could still slip in between,
        # which a local folder cannot prevent without locking every writer.
        try:
            current: str | None = _etag(os.stat(final))
        except FileNotFoundError:
            current = None
        if current != if_match:
            raise RemotePreconditionFailed(
                f"put {path}: remote changed (ETag {current} is not {if_match})", path=path
            )
    os.replace(staging, final)
    return PutResult(etag=_etag(os.stat(final)))


#: Bodies up to this size are written in one thread hop.
SMALL_PUT = 1024 * 1024


class LocalRemote(Remote):
    """A directory on this machine (``cfg.path``; ``~`` expanded; created when opened)."""

    kind = "local"
    capabilities = Capabilities(
        atomic_put=True,
        server_move=True,
        server_copy=True,
        server_mtime=True,
        conditional_put=True,
        distinct_stamps=True,  # a new inode and the mtime in nanoseconds
        directories=True,
    )

    def __init__(self, cfg: LocalRemoteConfig) -> None:
        super().__init__()
        self._cfg = cfg
        self._root = os.path.abspath(os.path.expanduser(cfg.path))
        self._real_root = self._root

    @property
    def display_url(self) -> str:
        return self._root

    @property
    def root(self) -> Path:
        return Path(self._root)

    async def _open(self) -> None:
        def prepare() -> str:
            os.makedirs(self._root, exist_ok=True)
            if not os.path.isdir(self._root):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", self._root)
            return os.path.realpath(self._root)

        self._real_root = await self._run("open", "", prepare)

    # -- helpers ---------------------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        """The filesystem path of a remote path; refuses anything that could leave the root."""
        if path.startswith("/"):
            raise RemoteError(f"invalid remote path {path!r}: must be relative", path=path)
        clean = clean_path(path)  # refuses NUL and . / .. segments
        # Backslashes are ordinary name characters on POSIX; they stay inside one segment.
        return os.path.join(self._root, *clean.split("/")) if clean else self._root

    def _check_inside(self, fs_path: str, path: str) -> None:
        """Refuse to write through a symlinked directory that points out of the root."""
        real = os.path.realpath(os.path.dirname(fs_path) if fs_path != self._root else fs_path)
        if real != self._real_root and not real.startswith(self._real_root + os.sep):
            raise RemoteError(f"{path}: resolves outside the remote root", path=path)

    async def _run(self, op: str, path: str, fn: Callable[[], _T]) -> _T:
        """Run blocking filesystem work in a thread, mapping ``OSError`` onto our errors."""
        try:
            return await asyncio.to_thread(fn)
        except OSError as e:
            raise _map_os_error(e, op, path) from None

    # -- required operations -------------------------------------------------------------------

    async def _stat(self, path: str) -> RemoteEntry | None:
        p = self._abs(path)

        def do() -> RemoteEntry | None:
            try:
                st = os.stat(p)
            except (FileNotFoundError, NotADirectoryError):
                return None
            return _entry(path, st)

        return await self._run("stat", path, do)

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        pending = [(self._abs(path), path)]

        def scan(fs_dir: str, rel_dir: str) -> tuple[list[RemoteEntry], list[tuple[str, str]]]:
            entries: list[RemoteEntry] = []
            subdirs: list[tuple[str, str]] = []
            try:
                it = os.scandir(fs_dir)
            except (FileNotFoundError, NotADirectoryError):
                return entries, subdirs
            with it:
                for de in it:
                    rel = join(rel_dir, de.name)
                    try:
                        st = de.stat(follow_symlinks=True)
                    except FileNotFoundError:
                        continue  # vanished between readdir and stat
                    entry = _entry(rel, st)
                    entries.append(entry)
                    # Never recurse through a symlink: it could leave the root or loop.
                    if entry.is_dir and not de.is_symlink():
                        subdirs.append((de.path, rel))
            return entries, subdirs

        # One thread hop per directory, not per entry; results stream out as directories are read.
        while pending:
            fs_dir, rel_dir = pending.pop()
            entries, subdirs = await self._run("list", rel_dir, partial(scan, fs_dir, rel_dir))
            for entry in entries:
                yield entry
            if recursive:
                pending.extend(subdirs)

    async def _put(
        self,
        path: str,
        body: AsyncIterable[bytes],
        *,
        size: int,
        mtime_ns: int | None,
        if_match: str | None,
        upload_id: str | None,
    ) -> PutResult:
        final = self._abs(path)
        upload_id = upload_id or uuid.uuid4().hex
        staging = self._abs(staging_name(path, upload_id))
        if size <= SMALL_PUT:
            return await self._put_small(path, final, staging, body, size, mtime_ns, if_match)
        await self._run("put", path, lambda: self._check_inside(final, path))

        try:
            try:
                f = await aiofiles.open(staging, "wb")
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise RemoteConflict(
                        f"put {path}: parent directory {parent(path) or '/'} does not exist",
                        path=path,
                    ) from None
                raise _map_os_error(e, "put", path) from None
            try:
                await self._write_body(f, body, size, path)
                try:
                    await f.flush()
                    await asyncio.to_thread(os.fsync, f.fileno())
                except OSError as e:
                    raise _map_os_error(e, "put", path) from None
            finally:
                await f.close()

            def finish() -> PutResult:
                return _commit_staging(staging, final, path, mtime_ns, if_match)

            return await self._run("put", path, finish)
        except BaseException:
            # Includes cancellation: nothing half-written may stay behind. A plain unlink is
            # quick enough to do without a thread on the way out.
            _remove_quietly(staging)
            raise

    async def _put_small(
        self,
        path: str,
        final: str,
        staging: str,
        body: AsyncIterable[bytes],
        size: int,
        mtime_ns: int | None,
        if_match: str | None,
    ) -> PutResult:
        """Small files in one thread hop: open, write, fsync, utime, rename (was eight hops)."""
        data = bytearray()
        async for chunk in body:
            data += chunk
            if len(data) > size:
                raise RemoteUnavailable(
                    f"put {path}: body grew past {size} bytes while uploading", path=path
                )
        if len(data) != size:
            raise RemoteUnavailable(
                f"put {path}: body shrank to {len(data)} of {size} bytes while uploading",
                path=path,
            )

        def write() -> PutResult:
            self._check_inside(final, path)
            try:
                fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise RemoteConflict(
                        f"put {path}: parent directory {parent(path) or '/'} does not exist",
                        path=path,
                    ) from None
                raise
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                return _commit_staging(staging, final, path, mtime_ns, if_match)
            except BaseException:
                _remove_quietly(staging)
                raise

        return await self._run("put", path, write)

    async def _write_body(
        self,
        f: aiofiles.threadpool.binary.AsyncBufferedIOBase,
        body: AsyncIterable[bytes],
        size: int,
        path: str,
    ) -> None:
        # Coalesce small chunks: every aiofiles call is a thread hop.
        buf = bytearray()
        written = 0
        async for chunk in body:  # the caller's exceptions (e.g. a local read error) pass through
            written += len(chunk)
            if written > size:
                raise RemoteUnavailable(
                    f"put {path}: body grew past {size} bytes while uploading", path=path
                )
            buf += chunk
            if len(buf) >= CHUNK:
                await self._write(f, bytes(buf), path)
                buf.clear()
        if buf:
            await self._write(f, bytes(buf), path)
        if written != size:
            raise RemoteUnavailable(
                f"put {path}: body shrank to {written} of {size} bytes while uploading", path=path
            )

    @staticmethod
    async def _write(
        f: aiofiles.threadpool.binary.AsyncBufferedIOBase, data: bytes, path: str
    ) -> None:
        try:
            await f.write(data)
        except OSError as e:
            raise _map_os_error(e, "put", path) from None

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        p = self._abs(path)
        try:
            f = await aiofiles.open(p, "rb")
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise RemoteNotFound(f"get {path}: not found", path=path) from None
            raise _map_os_error(e, "get", path) from None
        try:
            yield self._chunks(f, path)
        finally:
            await f.close()

    @staticmethod
    async def _chunks(
        f: aiofiles.threadpool.binary.AsyncBufferedReader, path: str
    ) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await f.read(CHUNK)
            except OSError as e:
                raise _map_os_error(e, "get", path) from None
            if not chunk:
                return
            yield chunk

    async def _mkdir(self, path: str) -> None:
        p = self._abs(path)

        def do() -> None:
            self._check_inside(p, path)
            try:
                os.mkdir(p)
            except FileExistsError:
                if not os.path.isdir(p):
                    raise RemoteConflict(f"mkdir {path}: a file is in the way", path=path) from None
            except (FileNotFoundError, NotADirectoryError):
                raise RemoteConflict(
                    f"mkdir {path}: parent directory {parent(path) or '/'} does not exist",
                    path=path,
                ) from None

        await self._run("mkdir", path, do)

    async def _delete(self, path: str) -> None:
        p = self._abs(path)

        def do() -> None:
            self._check_inside(p, path)
            with suppress(FileNotFoundError, NotADirectoryError):  # missing already is fine
                _rmtree_or_unlink(p)

        await self._run("delete", path, do)

    # -- optional operations -------------------------------------------------------------------

    def _ready_pair(self, op: str, s: str, d: str, src: str, dst: str) -> bool:
        """Checks shared by move and copy (blocking); False when there is nothing to do."""
        self._check_inside(s, src)
        self._check_inside(d, dst)
        if not os.path.lexists(s):
            raise RemoteNotFound(f"{op} {src}: not found", path=src)
        if s == d:
            return False
        if not os.path.isdir(os.path.dirname(d)):
            raise RemoteConflict(
                f"{op} {src} -> {dst}: parent directory {parent(dst) or '/'} does not exist",
                path=dst,
            )
        return True

    async def _move(self, src: str, dst: str) -> None:
        s, d = self._abs(src), self._abs(dst)

        def do() -> None:
            if not self._ready_pair("move", s, d, src, dst):
                return
            src_is_dir = os.path.isdir(s) and not os.path.islink(s)
            dst_is_dir = os.path.isdir(d) and not os.path.islink(d)
            # os.replace swaps a file for a file atomically; a directory in the way (or a file in
            # the way of a directory) must go first, as WebDAV's MOVE with Overwrite: T does.
            if os.path.lexists(d) and (dst_is_dir or src_is_dir):
                _rmtree_or_unlink(d)
            os.replace(s, d)

        await self._run("move", src, do)

    async def _copy(self, src: str, dst: str) -> None:
        s, d = self._abs(src), self._abs(dst)

        def do() -> None:
            if not self._ready_pair("copy", s, d, src, dst):
                return
            # Copy to a staging name first so dst never holds a partial copy.
            tmp = self._abs(staging_name(dst, uuid.uuid4().hex))
            try:
                if os.path.isdir(s):
                    shutil.copytree(s, tmp, symlinks=True)
                else:
                    shutil.copy2(s, tmp)
                if os.path.lexists(d) and (os.path.isdir(d) or os.path.isdir(tmp)):
                    _rmtree_or_unlink(d)
                os.replace(tmp, d)
            except BaseException:
                with suppress(OSError):
                    _rmtree_or_unlink(tmp)
                raise

        await self._run("copy", src, do)
