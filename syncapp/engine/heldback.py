"""What a dry run would do: the operations it held back.

The dry run is the real run with the operations held back (rclone's ``SkipDestructive``): the
same scan, reconcile, planner and delete guard decide, and the dispatcher drops the jobs
instead of running them. This is its record, made where the real run hands work on: the plan
as it goes to the queue, the deletes as they reach the guard, and the guard's verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from syncapp.engine.guard import Trip
from syncapp.engine.plan import Plan


@dataclass(slots=True)
class HeldBack:
    mkdirs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    #: (src, dst, is_dir)
    moves: list[tuple[str, str, bool]] = field(default_factory=list)
    #: (path, is_dir): deletes that reached the guard.
    deletes: list[tuple[str, bool]] = field(default_factory=list)
    #: (path, is_dir): synced paths ignored now, forgotten by the state.
    forgets: list[tuple[str, bool]] = field(default_factory=list)
    #: The guard stopped the deletes: a real run pauses the folder (exit 1 with --once).
    trip: Trip | None = None
    #: Two-way: what the remote side would do here, as (action, path, to): download,
    #: delete-local (to the trash), replace-local, rename-local, mkdir-local, conflict, compare.
    remote: list[tuple[str, str, str]] = field(default_factory=list)

    def planned(self, plan: Plan) -> None:
        self.mkdirs += plan.mkdirs
        self.uploads += plan.uploads
        self.moves += plan.moves
        self.forgets += plan.forgets

    def held(self, deletes: Iterable[tuple[str, bool]]) -> None:
        self.deletes += deletes
