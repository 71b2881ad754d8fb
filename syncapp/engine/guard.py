"""The delete guard: which local deletes reach the remote at once and which wait for the user.

This is the room that decides "this delete waits". Every delete a plan or a job finds is held
here first (briefly in a live run: a file saved by rename-over comes back); when the hold ends,
``DeleteGuard.settle`` looks at them again: back on disk, it is no delete; ignored now, it is
forgotten; the rest go to the queue together, unless they take away more synced files than
the folder's ``max_delete`` allows, and then they wait for the user (``Trip``). The dry run is
the same path, so it cannot disagree. Operations send the deletes that got through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from syncapp.config import parse_max_delete
from syncapp.engine.entries import EntryMap

#: Fewer deleted files than this never trip the guard, whatever ``max_delete`` says.
FLOOR = 10


def guard_tripped(max_delete: str | int, deletes: int, known: int) -> bool:
    """Whether ``deletes`` of ``known`` synced files exceed the folder's ``max_delete``
    (a count, or a share such as "50%"); never for fewer than 10 files."""
    count, share = parse_max_delete(max_delete)
    if deletes < FLOOR:
        return False
    if count is not None:
        return deletes > count
    assert share is not None
    return known > 0 and deletes > share * known


#: Where the deletes a trip holds were made: here (they would go up) or on the remote (two-way:
#: the local files would go to the trash).
HERE = "locally"
ON_REMOTE = "on the remote"


def guard_reason(deletes: int, known: int, where: str = HERE) -> str:
    return f"{deletes} of {known} files were deleted {where}"


def held_for(where: str) -> str:
    """What waits for the user, in the words the dialog's buttons use."""
    if where == ON_REMOTE:
        return "nothing is moved to the trash here until you decide"
    return "deletes are held until you confirm"


def deleted_on_remote(reason: str) -> bool:
    """Whether a guard reason (``Trip.reason``, as the state keeps it) is for deletes made on
    the remote."""
    return f"deleted {ON_REMOTE}" in reason


@dataclass(frozen=True, slots=True)
class Trip:
    """The guard stopped these deletes: ``files`` of ``known`` synced files would go."""

    files: int
    known: int
    paths: tuple[str, ...]  # sorted
    #: Where the deletes were made: ``HERE``, or ``ON_REMOTE`` (two-way).
    where: str = HERE

    @property
    def reason(self) -> str:
        return f"{guard_reason(self.files, self.known, self.where)}; {held_for(self.where)}"

    @property
    def direction(self) -> Literal["up", "down"]:
        """As ``GuardTripped.direction`` says it."""
        return "down" if self.where == ON_REMOTE else "up"


def check(
    entries: EntryMap, deletes: Iterable[tuple[str, bool]], max_delete: str | int
) -> Trip | None:
    """The trip rule: how many synced files the deletes (path, is_dir) take away, against
    ``max_delete``; a folder counts as every synced file under it, each file once."""
    deletes = list(deletes)
    files = entries.files_deleted(deletes)
    known = entries.files
    if not guard_tripped(max_delete, files, known):
        return None
    return Trip(files, known, tuple(sorted(p for p, _ in deletes)))


@dataclass(slots=True)
class Settled:
    """What became of the held deletes when the hold ended."""

    #: Back on disk: no delete, synced again.
    back: list[str] = field(default_factory=list)
    #: Ignored now: forgotten by the state, the remote copy left alone.
    ignored: list[tuple[str, bool]] = field(default_factory=list)
    #: The deletes that go now (path → is_dir); empty when the guard tripped.
    go: dict[str, bool] = field(default_factory=dict)
    #: The guard stopped them: they stay held until the user decides.
    trip: Trip | None = None


class DeleteGuard:
    """The deletes one folder holds (path → is_dir) until the guard lets them go."""

    def __init__(self, *, allow_mass_delete: bool = False) -> None:
        self.allow_mass_delete = allow_mass_delete
        #: The user confirmed the currently held deletes once (UI "Delete on remote").
        self.allow_once = False
        self.held: dict[str, bool] = {}
        #: The last trip, until the user decides (resume, release, restore).
        self.tripped: Trip | None = None

    def __len__(self) -> int:
        return len(self.held)

    def hold(self, path: str, is_dir: bool) -> None:
        self.held[path] = is_dir

    def drop(self, path: str) -> None:
        """``path`` is no longer a delete (back on disk, ignored now, restored)."""
        self.held.pop(path, None)

    def review(
        self, entries: EntryMap, deletes: dict[str, bool], max_delete: str | int
    ) -> Trip | None:
        """Whether ``deletes`` (the held ones still deletes) must wait for the user."""
        if self.allow_mass_delete or self.allow_once:
            return None
        return check(entries, deletes.items(), max_delete)

    def release(self) -> None:
        """The held deletes go: a confirmation counts for them only."""
        self.allow_once = False
        self.held.clear()
        self.tripped = None

    def settle(
        self,
        entries: EntryMap,
        max_delete: str | int,
        *,
        exists: Callable[[str], bool],
        ignored: Callable[[str, bool], bool],
    ) -> Settled:
        """The hold is over: sort the held deletes out (see the module's docstring)."""
        out = Settled()
        held = dict(self.held)
        for p, is_dir in list(held.items()):
            if ignored(p, is_dir):
                out.ignored.append((p, is_dir))
            elif exists(p):
                out.back.append(p)
            else:
                continue
            del held[p]
            self.drop(p)
        trip = self.review(entries, held, max_delete)
        if trip is not None:
            self.tripped = out.trip = trip
            return out
        self.release()
        out.go = held
        return out
