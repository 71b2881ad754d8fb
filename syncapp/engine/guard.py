"""The delete guard: which local deletes reach the remote at once and which wait for the user.

Pure policy over the deletes a plan holds and the synced entries: the real run and the dry
run ask the same question here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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


def guard_reason(deletes: int, known: int) -> str:
    return f"{deletes} of {known} files were deleted locally"


@dataclass(frozen=True, slots=True)
class Trip:
    """The guard stopped these deletes: ``files`` of ``known`` synced files would go."""

    files: int
    known: int
    paths: tuple[str, ...]  # sorted

    @property
    def reason(self) -> str:
        return f"{guard_reason(self.files, self.known)}; deletes are held until you confirm"


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


class DeleteGuard:
    """The deletes one folder holds (path → is_dir) until the guard lets them go."""

    def __init__(self, *, allow_mass_delete: bool = False) -> None:
        self.allow_mass_delete = allow_mass_delete
        #: The user confirmed the currently held deletes once (UI "Delete on remote").
        self.allow_once = False
        self.held: dict[str, bool] = {}

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
