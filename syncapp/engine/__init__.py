"""The sync engine: headless, never imports the UI."""

from syncapp.engine.core import SyncEngine, default_state_path
from syncapp.engine.events import (
    ConflictKept,
    CountsChanged,
    Event,
    EventBus,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    PathSkipped,
    RemoteOffline,
    RemoteOnline,
    ScanFinished,
    ScanStarted,
)
from syncapp.engine.folder import FolderStatus, FolderSync

__all__ = [
    "ConflictKept",
    "CountsChanged",
    "Event",
    "EventBus",
    "FolderState",
    "FolderStateChanged",
    "FolderStatus",
    "FolderSync",
    "GuardTripped",
    "JobFailed",
    "JobFinished",
    "JobProgressed",
    "JobStarted",
    "Op",
    "PathSkipped",
    "RemoteOffline",
    "RemoteOnline",
    "ScanFinished",
    "ScanStarted",
    "SyncEngine",
    "default_state_path",
]
