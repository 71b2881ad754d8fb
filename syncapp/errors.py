"""The one exception hierarchy that crosses syncapp's module boundaries.

Nothing raised by httpx, sqlite3 or the OS leaves a backend or the engine unwrapped: callers catch
``SyncappError`` subclasses and read ``retryable`` instead of guessing from foreign types.
Messages never contain credentials (URLs are shown without userinfo).
"""

from __future__ import annotations


class SyncappError(Exception):
    """Base of every error syncapp raises on purpose."""


class ConfigError(SyncappError):
    """The config file is missing, unreadable or invalid.

    ``str()`` is one line: ``FILE: KEY: PROBLEM``.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class ConfigConflict(ConfigError):
    """A config edit that is valid in itself but conflicts with the config as it stands (a
    remote still used by a folder); the control API answers 409."""


class LocalError(SyncappError):
    """A local file or folder could not be read (permission, vanished, not a regular file)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class StateError(SyncappError):
    """The state database cannot be opened, read or written. ``str()`` is one line naming the
    file and what to do; the command line exits 2 and nothing is sent."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(problem)


class UnknownName(SyncappError):
    """A folder or remote name the running engine's config does not have."""


class EngineRunning(SyncappError):
    """Another syncapp engine holds this state directory; two would fight over every file."""

    def __init__(self, pid: int | None, lock: str) -> None:
        self.pid = pid
        self.lock = lock
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"syncapp is already running on this state ({who}; lock {lock}): "
            "`syncapp stop` stops it"
        )


class LocalWriteError(LocalError):
    """A local file could not be written (no space, read-only); nothing half-written is left."""


class RemoteError(SyncappError):
    """A remote operation failed.

    ``retryable`` says whether trying again later can help (connection errors, timeouts, 5xx,
    429, 423); ``fatal_for_folder`` says the folder must stop and show the error (401/403, 507)
    instead of retrying. ``status`` is the HTTP status when there was one; ``retry_after`` is the
    server's ``Retry-After`` in seconds when it sent one.
    """

    retryable: bool = False
    fatal_for_folder: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.path = path
        super().__init__(message)


class RemoteUnavailable(RemoteError):
    """Connection refused/reset, timeout, DNS failure, 5xx, 429: try again later."""

    retryable = True


class RemoteBusy(RemoteUnavailable):
    """429 Too Many Requests or 423 Locked: the server asks us to slow down or wait."""


class RemoteAuthError(RemoteError):
    """401/403: credentials are wrong or lack permission. Retrying would only hammer the server."""

    fatal_for_folder = True


class RemoteFull(RemoteError):
    """507 Insufficient Storage (or the backend's equivalent quota error)."""

    fatal_for_folder = True


class RemoteNotFound(RemoteError):
    """404: the path (or, for a PUT, its parent collection) does not exist."""


class RemoteConflict(RemoteError):
    """409: the parent collection is missing, or the name is taken by the other kind (file/dir)."""


class RemotePreconditionFailed(RemoteError):
    """412: an ``If-Match``/``Overwrite: F`` precondition failed (the remote changed under us)."""


class RemoteTooLarge(RemoteError):
    """413: the file is bigger than the remote accepts."""


class RemoteProtocolError(RemoteError):
    """The server answered something we cannot understand (malformed XML, unexpected status)."""


class RemoteUnsupported(RemoteError, NotImplementedError):
    """The remote cannot do this at all (its ``Capabilities`` say so): a server-side move or copy
    on a backend without one. Not retryable; the engine takes its fallback (upload, download +
    upload). Also a ``NotImplementedError``, for callers written against the older contract."""


class RemoteClosedError(SyncappError):
    """A ``Remote`` was used after ``aclose()`` or re-entered after it was closed."""


def error_for_status(
    status: int, message: str, *, retry_after: float | None = None, path: str | None = None
) -> RemoteError:
    """Map an HTTP status onto our error types; shared by every HTTP-based backend."""
    cls: type[RemoteError]
    if status in (401, 403):
        cls = RemoteAuthError
    elif status == 404:
        cls = RemoteNotFound
    elif status == 409:
        cls = RemoteConflict
    elif status == 412:
        cls = RemotePreconditionFailed
    elif status == 413:
        cls = RemoteTooLarge
    elif status in (423, 429):
        cls = RemoteBusy
    elif status == 507:
        cls = RemoteFull
    elif status >= 500 or status == 408:
        cls = RemoteUnavailable
    else:
        cls = RemoteProtocolError
    return cls(message, status=status, retry_after=retry_after, path=path)
