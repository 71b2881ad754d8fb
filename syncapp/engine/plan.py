"""Compare what is on disk with what the state database says was synced, and plan the difference.

One function serves the start-up scan, every rescan, the watcher's batches (over a subset of
paths) and ``--dry-run``. Renames are found by inode: a path that vanished and a path that
appeared with the same inode (and, for files, the same size and mtime) is one move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# The guard's rule lives in guard.py; these stay importable from here.
from syncapp.engine.guard import guard_reason as guard_reason
from syncapp.engine.guard import guard_tripped as guard_tripped
from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry
from syncapp.ignore import IgnoreRules


@dataclass(slots=True)
class Plan:
    mkdirs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    #: (path, is_dir)
    deletes: list[tuple[str, bool]] = field(default_factory=list)
    #: (src, dst, is_dir)
    moves: list[tuple[str, str, bool]] = field(default_factory=list)
    #: (path, is_dir): synced paths that are ignored now. Forgotten by the state, their remote
    #: copies left alone (as Syncthing does); not work to sync, so not counted in ``len``.
    forgets: list[tuple[str, bool]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.mkdirs) + len(self.uploads) + len(self.deletes) + len(self.moves)


def changed(local: LocalEntry, known: Entry | None) -> bool:
    if known is None or known.is_dir != local.is_dir:
        return True
    if local.is_dir:
        return False
    return known.size != local.size or known.mtime_ns != local.mtime_ns


def under(path: str, ancestor: str) -> bool:
    return not ancestor or path.startswith(ancestor + "/")


def ignored_path(rules: IgnoreRules, path: str, is_dir: bool) -> bool:
    """Whether ``path`` or one of its folders is ignored (the scanner never enters those)."""
    if rules.ignored(path, is_dir=is_dir):
        return True
    parts = path.split("/")
    return any(rules.ignored("/".join(parts[:i]), is_dir=True) for i in range(1, len(parts)))


def diff(
    local: Mapping[str, LocalEntry],
    known: Mapping[str, Entry],
    scope: Iterable[str] | None = None,
    *,
    protected: Iterable[str] = (),
    rules: IgnoreRules | None = None,
    renames: bool = True,
) -> Plan:
    """Plan for the paths in ``scope`` (default: everything in ``local`` or ``known``).

    ``protected`` are directories that could not be read: nothing known below them is deleted.
    With ``rules``, a known path missing from ``local`` because it is ignored now is forgotten,
    not deleted: the scan leaves it out, but it is still on disk. Without ``renames`` (a
    remote that can neither rename nor copy) nothing is paired as a move.
    """
    paths = set(scope) if scope is not None else set(local) | set(known)
    guard = tuple(protected)
    plan = Plan()
    appeared: list[LocalEntry] = []
    gone: list[Entry] = []
    for p in paths:
        le = local.get(p)
        ke = known.get(p)
        if le is not None:
            if changed(le, ke):
                # A file replaced by a directory (or back) is one job: the upload or mkdir
                # removes the old kind first, like an overwrite.
                appeared.append(le)
        elif ke is not None and not any(p == g or under(p, g) for g in guard):
            if rules is not None and ignored_path(rules, p, ke.is_dir):
                plan.forgets.append((p, ke.is_dir))
            else:
                gone.append(ke)

    # Renames: match by inode among what vanished.
    by_ino: dict[int, Entry] = {}
    for ke in gone if renames else ():
        if ke.ino:
            by_ino.setdefault(ke.ino, ke)
    moved_src: set[str] = set()
    moved_dirs: list[tuple[str, str]] = []
    appeared.sort(key=lambda e: (e.path.count("/"), e.path))
    for le in appeared:
        carried = next(
            (
                (s, d)
                for s, d in moved_dirs
                if under(le.path, d) and (src := known.get(s + le.path[len(d) :])) is not None
            ),
            None,
        )
        if carried is not None:
            # Inside a moved directory, at the matching place: it moves with the directory;
            # the re-scan after the move uploads it if it also changed.
            moved_src.add(carried[0] + le.path[len(carried[1]) :])
            continue
        src = by_ino.get(le.ino)
        if (
            src is not None
            and src.path not in moved_src
            and src.is_dir == le.is_dir
            and (le.is_dir or (src.size == le.size and src.mtime_ns == le.mtime_ns))
            and not under(le.path, src.path)
        ):
            plan.moves.append((src.path, le.path, le.is_dir))
            moved_src.add(src.path)
            if le.is_dir:
                moved_dirs.append((src.path, le.path))
        elif le.is_dir:
            plan.mkdirs.append(le.path)
        else:
            plan.uploads.append(le.path)

    # A moved directory carries its known contents along: they are not deleted separately.
    for ke in gone:
        if ke.path in moved_src or any(under(ke.path, s) for s, _ in moved_dirs):
            continue
        plan.deletes.append((ke.path, ke.is_dir))
    # Parents before children; deletes collapse under a deleted directory.
    plan.mkdirs.sort(key=lambda p: (p.count("/"), p))
    plan.uploads.sort(key=lambda p: (p.count("/"), p))
    plan.moves.sort(key=lambda m: (m[1].count("/"), m[1]))
    plan.deletes = collapse_deletes(plan.deletes)
    plan.forgets = collapse_deletes(plan.forgets)
    return plan


def collapse_deletes(deletes: Iterable[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Drop deletes below a deleted directory (deleting the directory removes them)."""
    out: list[tuple[str, bool]] = []
    dirs: set[str] = set()
    for path, is_dir in sorted(set(deletes), key=lambda d: (d[0].count("/"), d[0])):
        if any(a in dirs for a in _ancestors(path)):
            continue
        out.append((path, is_dir))
        if is_dir:
            dirs.add(path)
    return out


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
