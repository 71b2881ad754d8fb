"""Typed, immutable events out of the engine, and the bus that carries them.

Events are past-tense dataclasses. Subscribers are plain callables called synchronously in the
engine's loop; they must be quick (the UI posts a message, the headless log prints a line).
High-rate events (progress, counts) define ``can_replace`` so a slow consumer can collapse a
flood into the latest one.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


class FolderState(enum.StrEnum):
    SCANNING = "scanning"
    SYNCING = "syncing"
    UP_TO_DATE = "up to date"
    PAUSED = "paused"
    OFFLINE = "offline"
    ERROR = "error"


class Op(enum.StrEnum):
    UPLOAD = "upload"
    MKDIR = "mkdir"
    DELETE = "delete"
    MOVE = "move"
    DOWNLOAD = "download"


@dataclass(frozen=True, slots=True)
class Event:
    folder: str
    at: float = field(default_factory=time.time, kw_only=True)

    def can_replace(self, other: Event) -> bool:
        """True when this event makes ``other`` (an older one) redundant."""
        return False

    def to_dict(self) -> dict[str, Any]:
        d = {"event": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.value if isinstance(v, enum.Enum) else v
        return d


@dataclass(frozen=True, slots=True)
class FolderStateChanged(Event):
    state: FolderState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScanStarted(Event):
    full: bool = True


@dataclass(frozen=True, slots=True)
class ScanFinished(Event):
    files: int
    dirs: int
    changes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ScanProgressed(Event):
    """A scan is under way: entries seen so far (at most a few a second)."""

    files: int
    dirs: int

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, ScanProgressed) and other.folder == self.folder


@dataclass(frozen=True, slots=True)
class PlanQueued(Event):
    """A scan or a watcher batch found work: what was added to the queue."""

    uploads: int
    bytes: int
    deletes: int = 0
    moves: int = 0
    mkdirs: int = 0


@dataclass(frozen=True, slots=True)
class SyncProgress(Event):
    """Done of total for the current round of work (from busy until up to date again).

    ``bytes_done`` counts finished files and what in-flight uploads have sent. A new round
    starts at zero once the folder was up to date.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, SyncProgress) and other.folder == self.folder


@dataclass(frozen=True, slots=True)
class CountsChanged(Event):
    in_sync: int
    queued: int
    failed: int
    in_flight: int

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, CountsChanged) and other.folder == self.folder


@dataclass(frozen=True, slots=True)
class JobStarted(Event):
    op: Op
    path: str
    size: int = 0
    dest: str = ""


@dataclass(frozen=True, slots=True)
class JobProgressed(Event):
    op: Op
    path: str
    done: int
    size: int
    #: Bytes per second over the transfer so far.
    rate: float

    def can_replace(self, other: Event) -> bool:
        return (
            isinstance(other, JobProgressed)
            and other.folder == self.folder
            and other.path == self.path
        )


@dataclass(frozen=True, slots=True)
class JobFinished(Event):
    op: Op
    path: str
    size: int = 0
    seconds: float = 0.0
    dest: str = ""


@dataclass(frozen=True, slots=True)
class JobFailed(Event):
    op: Op
    path: str
    error: str
    #: Wall-clock time of the next attempt; None when it will not be retried by itself.
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class PathSkipped(Event):
    """A local path that is not synced, and why (symlink, unreadable, bad name)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConflictKept(Event):
    """The remote copy had changed since our last upload: it was saved locally as ``copy``."""

    path: str
    copy: str


@dataclass(frozen=True, slots=True)
class FileDownloaded(Event):
    """Two-way: a file changed or made on the remote was brought down (atomically)."""

    path: str
    size: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class FileTrashed(Event):
    """Two-way: deleted on the remote, so the local copy went to the trash (``where``)."""

    path: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class RenamedLocally(Event):
    """Two-way: renamed on the remote, so the local file or folder was renamed too."""

    path: str
    dest: str


@dataclass(frozen=True, slots=True)
class RemoteOffline(Event):
    error: str
    #: Wall-clock time of the next check of the server.
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class RemoteStillOffline(Event):
    """A check of an offline server failed again; the next is at ``retry_at``."""

    error: str
    retry_at: float

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, RemoteStillOffline) and other.folder == self.folder


@dataclass(frozen=True, slots=True)
class RemoteOnline(Event):
    pass


@dataclass(frozen=True, slots=True)
class GuardTripped(Event):
    """Deletes were held back: the folder is paused until the user decides."""

    reason: str
    deletes: int
    known: int
    sample: tuple[str, ...] = ()
    #: "up": deleted here, the remote copies would go; "down" (two-way): deleted on the
    #: remote, the local files would go to the trash.
    direction: Literal["up", "down"] = "up"


@dataclass(frozen=True, slots=True)
class ConfigChanged(Event):
    """The engine runs on a changed config: a view or the CLI added, changed or removed a
    folder or a remote, or the file was read again (``syncapp reload``). It is about the whole
    engine, so ``folder`` is "". ``folders`` and ``remotes`` are every name now, in the
    config's order; ``added``, ``removed`` and ``changed`` name folders (changed: its settings
    or its remote's, so it was reopened; a rename is one removed and one added). ``file`` is
    the config file: views show what the engine runs by reading it again."""

    folders: tuple[str, ...] = ()
    remotes: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    file: str = ""

    def summary(self) -> str:
        """``added folder photos; removed folders a, b`` (or the remotes, when only they
        changed): the log line's and the UI's words."""
        parts = [
            f"{verb} folder{'s' if len(names) > 1 else ''} {', '.join(names)}"
            for verb, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        ]
        return "; ".join(parts) or f"remotes now {', '.join(self.remotes) or 'none'}"


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of engine events to subscribers; a failing subscriber never breaks the engine."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for cb in tuple(self._subscribers):
            try:
                cb(event)
            except Exception:  # a subscriber's bug must not stop syncing
                import logging

                logging.getLogger(__name__).exception("event subscriber failed")
