"""The ``Remote`` contract every backend implements.

Modelled on httpx's ``AsyncBaseTransport``: a backend is an async context manager that owns its
connections, ``aclose()`` releases them, and a closed remote refuses to be used or reopened.

Paths are ``/``-separated strings relative to the remote's root, without a leading slash; ``""``
is the root itself. Backends percent-encode or otherwise escape them as their protocol needs; the
engine never builds URLs. Errors leave a backend only as ``syncapp.errors.RemoteError``
subclasses.

Required operations: ``stat``, ``list``, ``put``, ``get``, ``mkdir``, ``delete``. Optional ones
are declared in ``Capabilities``; ``move`` and ``copy`` raise ``NotImplementedError`` when the
matching flag is False, and the engine falls back (delete + upload, download + upload).
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import posixpath
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from syncapp.errors import RemoteClosedError, RemoteError, RemoteNotFound

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

    # -- required operations -----------------------------------------------------------------

    @abstractmethod
    async def stat(self, path: str) -> RemoteEntry | None:
        """The entry at ``path``, or None when nothing is there."""

    @abstractmethod
    def list(self, path: str = "", *, recursive: bool = True) -> AsyncIterator[RemoteEntry]:
        """Entries below ``path`` (not ``path`` itself); empty when ``path`` does not exist."""

    @abstractmethod
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

    @abstractmethod
    def get(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """A streamed download: ``async with remote.get(p) as chunks: async for c in chunks``.

        ``RemoteNotFound`` when nothing is there.
        """

    @abstractmethod
    async def mkdir(self, path: str) -> None:
        """Create one directory; its parent must exist. Existing already is not an error."""

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Delete a file, or a directory with everything in it. Missing already is not an error."""

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

    # -- optional operations --------------------------------------------------------------------

    async def move(self, src: str, dst: str) -> None:
        """Server-side rename of a file or directory onto ``dst`` (whose parent must exist)."""
        raise NotImplementedError(f"{self.kind} remote has no server-side move")

    async def copy(self, src: str, dst: str) -> None:
        """Server-side copy of a file, replacing ``dst``; parent of dst must exist."""
        raise NotImplementedError(f"{self.kind} remote has no server-side copy")

    async def cleanup_stale_uploads(self, prefix: str = "") -> int:
        """Remove what interrupted uploads below ``prefix`` left where a listing cannot see it
        (S3's multipart uploads); how many were removed. Staging names that a listing shows
        are the engine's to delete. Called at start after a crash; the default has none."""
        return 0

    async def discard_upload(self, path: str, upload_id: str) -> None:
        """Remove what an interrupted ``put(path, upload_id=...)`` left behind; idempotent.

        Nothing left is success. Raises ``RemoteError`` when the cleanup itself failed (server
        down): the engine then keeps the id and tries again later, or sweeps at the next start.
        The default deletes the staging name; backends with other staging (multipart uploads)
        override it.
        """
        with contextlib.suppress(RemoteNotFound):
            await self.delete(staging_name(path, upload_id))


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
