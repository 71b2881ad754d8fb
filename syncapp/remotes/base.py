"""The ``Remote`` contract every backend implements.

Modelled on httpx's ``AsyncBaseTransport``: a backend is an async context manager that owns its
connections, ``aclose()`` releases them, and a closed remote refuses to be used or reopened.

Paths are ``/``-separated strings relative to the remote's root, without a leading slash; ``""``
is the root itself. Backends percent-encode or otherwise escape them as their protocol needs; the
engine never builds URLs. Errors leave a backend only as ``syncapp.errors.RemoteError``
subclasses.

The public operations (``stat``, ``list``, ``put``, ``get``, ``mkdir``, ``delete``, ``move``,
``copy``, ``cleanup_stale_uploads``, ``discard_upload``) live here, on the base class: they check
that the remote is open, clean the path, refuse the root where it makes no sense, and then call
the backend's protected method of the same name (``_stat``, ``_put``, ...), which sees only
clean, checked paths. Optional operations are declared in ``Capabilities``, and the flag is the
one source of truth: ``move``/``copy`` raise ``RemoteUnsupported`` (also a
``NotImplementedError``) when it is False, and a backend overrides ``_move``/``_copy`` exactly
when it declares them (the conformance suite checks both ways). The engine falls back (delete +
upload, download + upload).
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import posixpath
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from syncapp.errors import (
    RemoteClosedError,
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemoteUnsupported,
)

__all__ = [
    "STAGING_PREFIX",
    "Capabilities",
    "PutResult",
    "Remote",
    "RemoteEntry",
    "join",
    "parent",
    "staging_name",
]


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """What a remote knows about one path."""

    path: str
    is_dir: bool
    size: int = 0
    mtime_ns: int | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    """What the server reported for the file a ``put`` wrote, for telling later whether someone
    else changed it: its ETag (None when the server gave none we can trust), and its
    modification time on the server's own clock (None when unknown)."""

    etag: str | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Optional features of a backend (rclone-style declared features)."""

    #: ``put`` never exposes partial content under the final name (temp name + rename, or the
    #: server stages uploads itself).
    atomic_put: bool = False
    #: ``move`` is a server-side rename.
    server_move: bool = False
    #: ``copy`` is a server-side copy.
    server_copy: bool = False
    #: ``put`` keeps the mtime we send, and ``stat``/``list`` report it.
    server_mtime: bool = False
    #: ``put`` honours ``if_match`` (412 when the remote's ETag differs).
    conditional_put: bool = False
    #: Two writes of different content get different stamps (ETag, or size and mtime) even
    #: within one second: a content hash, an inode or a fine clock in the ETag. Where not,
    #: two-way sync checks the content of its own uploads (``engine/ownwrites``).
    distinct_stamps: bool = False
    #: The remote has real directories (``mkdir`` is needed before putting files into them).
    directories: bool = True


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Remote(ABC):
    """One open endpoint. Use as ``async with backend as remote:``."""

    #: The backend's type name in the config (``local``, ``webdav``, ``s3``, ``http``).
    kind: str = ""
    capabilities: Capabilities = Capabilities()

    def __init__(self) -> None:
        self._state = _State.UNOPENED

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is _State.CLOSED:
            raise RemoteClosedError(f"{self.kind} remote was closed; open a new one")
        if self._state is _State.OPEN:
            raise RemoteClosedError(f"{self.kind} remote is already open")
        await self._open()
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        await self._close()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise RemoteClosedError(f"{self.kind} remote is {self._state.value}")

    async def _open(self) -> None:
        """Acquire connections. Called once by ``__aenter__``."""

    async def _close(self) -> None:
        """Release connections. Called once by ``aclose``."""

    @property
    @abstractmethod
    def display_url(self) -> str:
        """Where this remote points, for humans: never contains credentials."""

    # -- the contract ---------------------------------------------------------------------------
    #
    # The public operations check once, here, what every backend needs checked: the remote is
    # open, the path is clean (``clean_path``), the root is not written, deleted, moved or
    # downloaded, an optional operation is declared in ``capabilities``. Then they call the
    # backend's own protected method (``_stat``, ``_put``, ...) with the cleaned path.

    def _checked(self, path: str) -> str:
        self._check_open()
        return clean_path(path)

    def _checked_pair(self, op: str, src: str, dst: str) -> tuple[str, str]:
        s, d = self._checked(src), self._checked(dst)
        if not s or not d:
            raise RemoteConflict(f"cannot {op} the remote root", path=s or d)
        if d.startswith(s + "/") or s.startswith(d + "/"):
            # Replacing an ancestor would delete the source; moving into itself is impossible.
            raise RemoteConflict(f"{op} {s} -> {d}: one contains the other", path=s)
        return s, d

    async def stat(self, path: str) -> RemoteEntry | None:
        """The entry at ``path``, or None when nothing is there."""
        return await self._stat(self._checked(path))

    async def list(self, path: str = "", *, recursive: bool = True) -> AsyncIterator[RemoteEntry]:
        """Entries below ``path`` (not ``path`` itself); empty when ``path`` does not exist."""
        clean = self._checked(path)
        # aclosing: leaving this listing early closes the backend's too (its requests end now,
        # not when the garbage collector finds it).
        async with contextlib.aclosing(self._list(clean, recursive=recursive)) as entries:
            async for entry in entries:
                yield entry

    async def put(
        self,
        path: str,
        body: AsyncIterable[bytes],
        *,
        size: int,
        mtime_ns: int | None = None,
        if_match: str | None = None,
        upload_id: str | None = None,
    ) -> PutResult:
        """Store exactly ``size`` bytes from ``body`` at ``path``, replacing what was there.

        The parent directory must exist (``RemoteConflict`` or ``RemoteNotFound`` otherwise).
        With ``capabilities.atomic_put`` the final name never holds partial content. With
        ``if_match`` and ``capabilities.conditional_put``, ``RemotePreconditionFailed`` when the
        remote's current ETag differs.

        ``upload_id`` names this attempt's staging (temporary name, multipart upload). The engine
        journals it before calling, so after a crash ``discard_upload(path, upload_id)`` can
        remove what the attempt left behind. Backends derive staging names from it with
        ``staging_name``.
        """
        clean = self._checked(path)
        if not clean:
            raise RemoteConflict("cannot put onto the remote root", path=clean)
        return await self._put(
            clean, body, size=size, mtime_ns=mtime_ns, if_match=if_match, upload_id=upload_id
        )

    def get(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """A streamed download: ``async with remote.get(p) as chunks: async for c in chunks``.

        ``RemoteNotFound`` when nothing is there.
        """
        clean = self._checked(path)
        if not clean:
            raise RemoteConflict("cannot get the remote root: it is a directory", path=clean)
        return self._get(clean)

    async def mkdir(self, path: str) -> None:
        """Create one directory; its parent must exist. Existing already is not an error."""
        clean = self._checked(path)
        if clean:  # the root exists by definition of the remote
            await self._mkdir(clean)

    async def delete(self, path: str) -> None:
        """Delete a file, or a directory with everything in it. Missing already is not an error."""
        clean = self._checked(path)
        if not clean:
            # Never the whole remote: no sync decision should ever mean that.
            raise RemoteError("refusing to delete the remote root", path=clean)
        await self._delete(clean)

    async def move(self, src: str, dst: str) -> None:
        """Server-side rename of a file or directory onto ``dst`` (whose parent must exist).

        ``RemoteUnsupported`` when ``capabilities.server_move`` is False.
        """
        self._check_open()
        if not self.capabilities.server_move:
            raise RemoteUnsupported(f"{self.kind} remote has no server-side move", path=src)
        await self._move(*self._checked_pair("move", src, dst))

    async def copy(self, src: str, dst: str) -> None:
        """Server-side copy of a file, replacing ``dst``; parent of dst must exist.

        ``RemoteUnsupported`` when ``capabilities.server_copy`` is False.
        """
        self._check_open()
        if not self.capabilities.server_copy:
            raise RemoteUnsupported(f"{self.kind} remote has no server-side copy", path=src)
        await self._copy(*self._checked_pair("copy", src, dst))

    async def cleanup_stale_uploads(self, prefix: str = "") -> int:
        """Remove what interrupted uploads below ``prefix`` left where a listing cannot see it
        (S3's multipart uploads); how many were removed. Staging names that a listing shows
        are the engine's to delete. Called at start after a crash."""
        return await self._cleanup_stale_uploads(self._checked(prefix))

    async def discard_upload(self, path: str, upload_id: str) -> None:
        """Remove what an interrupted ``put(path, upload_id=...)`` left behind; idempotent.

        Nothing left is success. Raises ``RemoteError`` when the cleanup itself failed (server
        down): the engine then keeps the id and tries again later, or sweeps at the next start.
        """
        clean = self._checked(path)
        if not clean or not upload_id or "/" in upload_id:
            raise RemoteError(f"no upload {upload_id!r} of {clean!r} to discard", path=clean)
        await self._discard_upload(clean, upload_id)

    # -- what a backend implements (paths already cleaned and checked) ------------------------

    @abstractmethod
    async def _stat(self, path: str) -> RemoteEntry | None: ...

    @abstractmethod
    def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]: ...

    @abstractmethod
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
        """``path`` is never the root."""

    @abstractmethod
    def _get(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """``path`` is never the root."""

    @abstractmethod
    async def _mkdir(self, path: str) -> None:
        """``path`` is never the root."""

    @abstractmethod
    async def _delete(self, path: str) -> None:
        """``path`` is never the root."""

    async def _move(self, src: str, dst: str) -> None:
        """Backends that declare ``server_move`` override this (and only those: the
        conformance suite checks). Neither path is the root, neither contains the other."""
        raise RemoteUnsupported(f"{self.kind} remote has no server-side move", path=src)

    async def _copy(self, src: str, dst: str) -> None:
        """Backends that declare ``server_copy`` override this (and only those)."""
        raise RemoteUnsupported(f"{self.kind} remote has no server-side copy", path=src)

    async def _cleanup_stale_uploads(self, prefix: str) -> int:
        """The default has nothing a listing cannot see."""
        return 0

    async def _discard_upload(self, path: str, upload_id: str) -> None:
        """The default deletes the staging name; backends with other staging (multipart
        uploads) override it."""
        with contextlib.suppress(RemoteNotFound):
            await self._delete(staging_name(path, upload_id))

    # -- what the server does ----------------------------------------------------------------

    async def learn(
        self, where: str, *, kept: Mapping[str, object] | None = None, probe: bool = True
    ) -> Mapping[str, object]:
        """Find out what this server really does, and adjust ``capabilities`` to it.

        ``kept`` is what an earlier call returned (the engine keeps it in the state database):
        when it is still valid it is applied without a request. Otherwise, with ``probe``, the
        server is tried inside ``where`` (a directory that exists and that this remote may
        write to) and the temporary names used are removed again. Returns the facts to keep;
        empty when there is nothing to learn or nothing could be learned yet. Backends whose
        behaviour is fixed learn nothing.
        """
        return {}

    def describe(self) -> builtins.list[str]:
        """What this remote does, in words, one fact a line (for `syncapp remotes` and the UI)."""
        caps = self.capabilities
        yes_no = {True: "yes", False: "no"}
        return [
            f"uploads are atomic: {yes_no[caps.atomic_put]}",
            f"keeps the modification time sent: {yes_no[caps.server_mtime]}",
            f"server-side rename: {yes_no[caps.server_move]}",
            f"server-side copy: {yes_no[caps.server_copy]}",
        ]


#: Prefix of every temporary name syncapp creates on a remote; the engine never syncs such names.
STAGING_PREFIX = ".syncapp-tmp-"


def staging_name(path: str, upload_id: str) -> str:
    """The temporary name an upload of ``path`` uses, in the same directory (a cheap rename)."""
    return join(parent(path), f"{STAGING_PREFIX}{upload_id}")


def clean_path(path: str) -> str:
    """``path`` without leading, trailing or doubled slashes; ``RemoteError`` for NUL bytes and
    ``.``/``..`` segments, which a server (or a filesystem behind it) would resolve."""
    if "\0" in path:
        raise RemoteError(f"invalid remote path {path!r}: NUL byte", path=path)
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise RemoteError(f"invalid remote path {path!r}: . or .. segment", path=path)
    return "/".join(segments)


def join(*parts: str) -> str:
    """Join remote path parts, dropping empty ones: ``join("", "a", "b/c") == "a/b/c"``."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def parent(path: str) -> str:
    """The parent of a remote path; ``""`` for top-level names."""
    return posixpath.dirname(path)
