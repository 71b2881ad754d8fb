"""Two-way: what a look only applies when the next look agrees.

A remote delete (the local copy goes to the trash), a remote rename (a delete too) and new
remote files that copy files still there (an object store's move by copy-then-delete, seen
half done) wait for a second look: a wipe seen half-done is then judged whole by the guard,
and a folder moved by copy is one rename once its sources are gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from syncapp.engine.state import Entry
from syncapp.engine.twoway import Op, TwoWayPlan, copies_of_present
from syncapp.remotes.base import RemoteEntry


@dataclass(slots=True)
class SecondLook:
    deleted: set[str] = field(default_factory=set)
    copies: set[str] = field(default_factory=set)
    #: ``src\0dst`` of each rename the last look found.
    renamed: set[str] = field(default_factory=set)

    @property
    def waiting(self) -> bool:
        return bool(self.deleted or self.copies or self.renamed)

    def clear(self) -> None:
        self.deleted.clear()
        self.copies.clear()
        self.renamed.clear()

    def agreed(
        self,
        plan: TwoWayPlan,
        known: Mapping[str, Entry],
        remote: Mapping[str, RemoteEntry],
        *,
        confirmed: bool,
    ) -> tuple[TwoWayPlan, list[str]]:
        """The part of ``plan`` that may be applied now, and the deletes that wait (sorted).
        ``confirmed``: the user let the deletes through (they need no second look)."""
        deletes = {a.path for a in plan.of(Op.DELETE_LOCAL)}
        renames = {f"{a.path}\0{a.dst}" for a in plan.of(Op.RENAME_LOCAL)}
        copies = copies_of_present(plan, known, remote)
        wait = copies - self.copies
        later = set() if confirmed else deletes - self.deleted
        wait |= later
        kept = [
            a
            for a in plan.actions
            if a.path not in wait
            and (a.op is not Op.RENAME_LOCAL or f"{a.path}\0{a.dst}" in self.renamed)
        ]
        self.deleted, self.copies, self.renamed = deletes, copies, renames
        return TwoWayPlan(kept), sorted(later)
