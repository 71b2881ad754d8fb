"""Messages the UI's parts send each other; past tense, as dataclasses (the engine's style)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from syncapp.engine import Event


@dataclass
class EngineEventsArrived(Message):
    """A batch of engine events, collapsed and rate-limited by ``EventRelay``."""

    events: list[Event]


@dataclass
class DashboardMounted(Message):
    """The dashboard's widgets exist: panels can be made and the engine started."""


@dataclass
class EngineStarted(Message):
    """The engine is running; folders are being opened."""


@dataclass
class EngineStopped(Message):
    """The engine has shut down (``error`` is empty after a clean stop)."""

    error: str = ""


@dataclass
class FolderSelected(Message):
    """A folder panel got focus: the folder keys (e, d, p, r) now act on it."""

    name: str
