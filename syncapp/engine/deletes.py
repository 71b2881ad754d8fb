"""Where every delete waits for the guard: the held deletes of one folder and their timer.

A delete found by a plan or a job is held here (briefly in a live run: an editor that saves by
rename-over brings the file back within the hold). When the hold ends, the guard
(``guard.DeleteGuard.settle``) sorts them out, and this desk carries the verdict out: paths
back on disk are synced again, paths ignored now are forgotten, and the rest go to the queue
as delete jobs; or, when they would take away more than ``max_delete`` allows, they stay held,
the folder pauses with the guard's reason and a ``GuardTripped`` event asks the user. The
deletes themselves are sent by ``operations``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from syncapp.config import FolderConfig
from syncapp.engine.entries import EntryMap
from syncapp.engine.events import EventBus, GuardTripped
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.heldback import HeldBack
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.plan import ignored_path
from syncapp.engine.reasons import DELETE_HELD, Reasons
from syncapp.ignore import IgnoreRules


@dataclass(slots=True)
class Hooks:
    """What the desk asks of its folder."""

    entries: Callable[[], EntryMap]
    enqueue: Callable[[Job], None]
    forget: Callable[[str, bool], None]
    forget_ignored: Callable[[Iterable[tuple[str, bool]]], None]
    pause: Callable[[str], None]
    #: Deletes are held: the folder is not idle.
    check_idle: Callable[[], None]
    #: The folder's word, counts and idleness may have changed.
    update: Callable[[], None]


class DeleteDesk:
    def __init__(
        self,
        cfg: FolderConfig,
        guard: DeleteGuard,
        reasons: Reasons,
        bus: EventBus,
        hooks: Hooks,
        *,
        rules: IgnoreRules,
        delete_hold: float,
        held_back: HeldBack | None = None,
    ) -> None:
        self.cfg = cfg
        self.root = str(cfg.path)
        self.guard = guard
        self.reasons = reasons
        self.bus = bus
        self.hooks = hooks
        self.rules = rules
        self.delete_hold = delete_hold
        self.held_back = held_back
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, deletes: Iterable[tuple[str, bool]]) -> None:
        """Hold these deletes (path, is_dir); the hold (re)starts for all of them."""
        if not self.cfg.mirror_deletes:
            # Not mirrored: forget them so they are not "pending" forever.
            for path, is_dir in deletes:
                self.hooks.forget(path, is_dir)
            return
        deletes = list(deletes)
        if self.held_back is not None:
            self.held_back.held(deletes)
        for path, is_dir in deletes:
            self.guard.hold(path, is_dir)
        self.reasons.queued((p for p, _ in deletes), DELETE_HELD)
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.delete_hold, self.release)
        self.hooks.check_idle()

    def release(self) -> None:
        """The hold is over: the guard decides, and its verdict is carried out."""
        self._timer = None
        if not self.guard.held:
            return
        settled = self.guard.settle(
            self.hooks.entries(),
            self.cfg.max_delete,
            exists=lambda p: os.path.lexists(os.path.join(self.root, p)),
            ignored=lambda p, is_dir: ignored_path(self.rules, p, is_dir),
        )
        self.hooks.forget_ignored(settled.ignored)
        for p in settled.back:
            self.hooks.enqueue(Job(JobKind.SYNC, p))
        trip = settled.trip
        if trip is not None:
            if self.held_back is not None:
                self.held_back.trip = trip
            self.hooks.pause(trip.reason)
            self.reasons.guard(self.guard.held, trip.reason)
            self.bus.publish(
                GuardTripped(self.cfg.name, trip.reason, trip.files, trip.known, trip.paths[:10])
            )
            return
        for p, is_dir in settled.go.items():
            self.hooks.enqueue(Job(JobKind.DELETE, p, is_dir=is_dir))
        self.hooks.update()

    def confirm(self) -> None:
        """The user confirmed the held deletes ("Delete on remote"): they go, once."""
        self.guard.allow_once = True
        self.guard.tripped = None
        self.release()

    def restored(self) -> None:
        """The held deletes were downloaded back instead: nothing is held any more."""
        for path in self.guard.held:
            # No longer held; the rescan gives whatever still differs its own reason.
            self.reasons.clear(path)
        self.guard.release()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
