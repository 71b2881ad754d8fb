"""Why each path of a folder is not in sync, kept in the state database.

``why``, ``status --pending`` and the UI read these; the rooms that decide write them here in
one vocabulary (``PendingStatus``): queued, settling, retrying, failed, skipped, guard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from syncapp.engine.events import EventBus, PathSkipped
from syncapp.engine.scanner import printable
from syncapp.engine.state import Pending, PendingStatus, StateDB
from syncapp.ignore import IgnoreRules

log = logging.getLogger(__name__)

QUEUED = "queued for upload"
DELETE_HELD = "deleted locally; delete held briefly"


class Reasons:
    def __init__(self, name: str, state: StateDB, bus: EventBus) -> None:
        self.name = name
        self.state = state
        self.bus = bus

    def queued(self, paths: Iterable[str], reason: str = QUEUED) -> None:
        paths = list(paths)
        if paths:
            self.state.set_pending_many(
                self.name, (Pending(p, PendingStatus.QUEUED, reason) for p in paths)
            )

    def skipped(self, skipped: Mapping[str, str]) -> None:
        """Paths that cannot be synced (said once each, as events too)."""
        for p, reason in skipped.items():
            self.bus.publish(PathSkipped(self.name, p, reason))
        if skipped:
            self.state.set_pending_many(
                self.name, (Pending(p, PendingStatus.SKIPPED, r) for p, r in skipped.items())
            )

    def forgotten(self, path: str, is_dir: bool, rules: IgnoreRules) -> None:
        """A synced path ignored now was forgotten: said once (no later scan sees it again)."""
        m = rules.match(path, is_dir=is_dir)
        why = m.describe() if m is not None else "inside an ignored folder"
        reason = f"{why}; no longer synced, the remote copy is left alone"
        log.info("%s: %s: %s", self.name, path, reason)
        self.bus.publish(PathSkipped(self.name, printable(path), reason))

    def guard(self, paths: Iterable[str], reason: str) -> None:
        self.state.set_pending_many(
            self.name, (Pending(p, PendingStatus.GUARD, reason) for p in paths)
        )

    def clear(self, path: str) -> None:
        self.state.clear_pending(self.name, path)

    def all(self) -> list[Pending]:
        """Every path not in sync, with its reason (what `why` reads)."""
        self.state.flush()
        return self.state.pending(self.name)
