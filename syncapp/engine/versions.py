"""Remote versions: what an overwrite or a delete replaces is kept on the same remote.

Layout, inside the folder's ``remote_path``::

    .syncapp-versions/<relative path of the file>/<UTC time it was replaced>

e.g. ``.syncapp-versions/notes/todo.txt/20261126T175500.123456Z``. One directory per file makes
listing a file's versions one non-recursive listing; the time is in the name, so pruning never
depends on what mtime a server reports. Kept by server-side COPY (overwrite) or MOVE (delete)
where the backend has it; a backend without either keeps nothing (its capabilities say so).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiofiles

if TYPE_CHECKING:
    from syncapp.engine.state import StateDB

from syncapp.errors import LocalWriteError, RemoteError, RemoteNotFound
from syncapp.remotes.base import Remote, join

log = logging.getLogger(__name__)

VERSIONS_DIR = ".syncapp-versions"
#: Old versions are pruned at most this often (seconds; remembered across runs).
PRUNE_EVERY = 3600.0
_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True, slots=True)
class Version:
    path: str  # the file's path relative to the folder
    remote_path: str  # where the version is stored on the remote
    at: float  # when it was replaced (epoch seconds); for the current copy, its mtime
    size: int
    current: bool = False  # the live remote copy, not a kept version


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(_STAMP)


def parse_stamp(name: str) -> float | None:
    try:
        return datetime.strptime(name, _STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Versions:
    """Keeps, lists, prunes and restores versions for one folder on one remote."""

    def __init__(
        self,
        remote: Remote,
        remote_root: str,
        *,
        enabled: bool = True,
        keep_seconds: float = 30 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.remote = remote
        self.remote_root = remote_root
        caps = remote.capabilities
        self.enabled = enabled and (caps.server_copy or caps.server_move)
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._dirs_made: set[str] = set()

    def _dir(self, rel: str) -> str:
        return join(self.remote_root, VERSIONS_DIR, rel)

    async def _ensure_dir(self, rel: str) -> None:
        if not self.remote.capabilities.directories:
            return
        parts = [VERSIONS_DIR, *rel.split("/")]
        for i in range(1, len(parts) + 1):
            d = join(self.remote_root, *parts[:i])
            if d in self._dirs_made:
                continue
            await self.remote.mkdir(d)
            self._dirs_made.add(d)

    async def keep(self, rel: str, *, by_move: bool) -> bool:
        """Keep the remote copy of ``rel`` before it is replaced (copy) or deleted (move).

        Returns True only when the original is gone (it was moved into the versions area), so
        the caller's delete has nothing left to do. Backends without server-side move copy.
        """
        if not self.enabled:
            return False
        src = join(self.remote_root, rel)
        dst = join(self._dir(rel), stamp(self.clock()))
        move = by_move and self.remote.capabilities.server_move

        async def once() -> None:
            await self._ensure_dir(rel)
            if move:
                await self.remote.move(src, dst)
            else:
                await self.remote.copy(src, dst)

        try:
            try:
                await once()
            except RemoteError as e:
                if isinstance(e, RemoteNotFound) or e.status not in (404, 409):
                    raise
                # The version area was removed behind our back: make it again once.
                self._dirs_made.clear()
                await once()
        except RemoteNotFound:
            return False  # nothing there to keep
        return move

    async def list(self, rel: str, *, include_current: bool = True) -> list[Version]:
        """Kept versions of ``rel``, newest first (the live copy first when asked)."""
        out: list[Version] = []
        async for e in self.remote.list(self._dir(rel), recursive=False):
            if e.is_dir:
                continue
            at = parse_stamp(e.path.rsplit("/", 1)[-1])
            if at is not None:
                out.append(Version(rel, e.path, at, e.size))
        out.sort(key=lambda v: v.at, reverse=True)
        if include_current:
            cur = await self.remote.stat(join(self.remote_root, rel))
            if cur is not None and not cur.is_dir:
                at = cur.mtime_ns / 1e9 if cur.mtime_ns else self.clock()
                out.insert(0, Version(rel, cur.path, at, cur.size, current=True))
        return out

    async def prune(self) -> int:
        """Delete versions older than ``keep_seconds``; returns how many went."""
        cutoff = self.clock() - self.keep_seconds
        old: list[str] = []
        async for e in self.remote.list(join(self.remote_root, VERSIONS_DIR), recursive=True):
            if e.is_dir:
                continue
            at = parse_stamp(e.path.rsplit("/", 1)[-1])
            if at is not None and at < cutoff:
                old.append(e.path)
        for p in old:
            with contextlib.suppress(RemoteNotFound):
                await self.remote.delete(p)
        return len(old)

    async def download(
        self,
        remote_path: str,
        dest: str,
        *,
        mtime: float | None = None,
        mtime_ns: int | None = None,
    ) -> int:
        """Stream ``remote_path`` into ``dest`` atomically (temp file + rename); returns bytes."""
        folder = os.path.dirname(dest) or "."
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".syncapp-restore-", dir=folder)
            os.close(fd)
        except OSError as e:
            raise _write_error(dest, e) from None
        done = 0
        try:
            async with aiofiles.open(tmp, "wb") as fh, self.remote.get(remote_path) as chunks:
                async for chunk in chunks:
                    await fh.write(chunk)
                    done += len(chunk)
            if mtime_ns is not None:
                # Exact nanoseconds: the restored file then matches the state and is not re-sent.
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            elif mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, dest)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise _write_error(dest, e) from None
            raise
        return done


async def restore(
    versions: Versions, rel: str, root: str, *, at: float | None = None, dest: str | None = None
) -> Version:
    """Write the newest version of ``rel`` (or the newest at/before ``at``) back into the
    folder at ``root``, or to ``dest``."""
    found = pick(await versions.list(rel), at)
    if found is None:
        raise RemoteNotFound(f"no version of {rel} kept{' at or before that time' if at else ''}")
    return await restore_version(versions, found, root, dest=dest)


async def restore_version(
    versions: Versions, version: Version, root: str, *, dest: str | None = None
) -> Version:
    """Write exactly ``version`` back into the folder at ``root``, or to ``dest``.

    ``restore(rel, at=version.at)`` would not do: a kept version's ``at`` is when it was
    replaced, so the content current at that moment is its successor.
    """
    target = dest or os.path.join(root, version.path)
    await versions.download(version.remote_path, target, mtime=version.at)
    return version


def _write_error(dest: str, e: OSError) -> LocalWriteError:
    if e.errno == errno.ENOSPC:
        problem = "no space left on the local disk; free some space and restore again"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        problem = f"cannot write there ({e.strerror}); restore with --to to another place"
    else:
        problem = f"cannot write: {e.strerror or e}"
    return LocalWriteError(dest, f"{problem} (nothing was written)")


async def prune_if_due(versions: Versions, state: StateDB, folder: str) -> int:
    """Prune ``folder``'s old versions at most once an hour (remembered across runs: it lists
    the whole area); how many went."""
    if not versions.enabled:
        return 0
    key = f"pruned:{folder}"
    now = versions.clock()
    last = float(state.get_meta(key) or 0)
    if now - last < PRUNE_EVERY:
        return 0
    state.set_meta(key, str(now))
    try:
        n = await versions.prune()
    except RemoteError as e:
        log.warning("pruning versions of %s failed: %s", folder, e)
        return 0
    if n:
        log.info("pruned %d old versions of %s", n, folder)
    return n


def pick(versions: list[Version], at: float | None) -> Version | None:
    """The content that was current at time ``at`` (default: now).

    A kept version stood until ``v.at`` (when it was replaced), so the content at ``at`` is the
    kept version replaced soonest after ``at``, or the live copy when none was replaced since.
    Without ``at``: the live copy, else the most recently replaced version.
    """
    current = next((v for v in versions if v.current), None)
    kept = sorted((v for v in versions if not v.current), key=lambda v: v.at)
    if at is None:
        return current or (kept[-1] if kept else None)
    later = [v for v in kept if v.at > at]
    if later:
        return later[0]
    return current or (kept[-1] if kept else None)
