"""The planner: a full scan, a watcher batch or one subtree, against the entry index → a plan.

It reads the disk it is pointed at (lstat, subtree scans) and the entries it is handed, and
sends nothing: the plan goes to the guard and the queue. Of the remote it asks one thing,
whether it can rename (or copy) on the server; where it cannot, a rename is planned as what
it will cost, an upload of the new name and a delete of the old, so the guard counts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from syncapp.engine.entries import EntryMap
from syncapp.engine.plan import Plan, diff
from syncapp.engine.scanner import (
    LocalEntry,
    ScanResult,
    lstat_entry,
    parents,
    printable,
    scan_tree,
)
from syncapp.ignore import IgnoreRules


@dataclass(slots=True)
class Planned:
    plan: Plan
    #: What the plan was made from: the local entries looked at.
    local: dict[str, LocalEntry]
    #: Paths that cannot be synced, with the reason (shown, not planned).
    skipped: dict[str, str] = field(default_factory=dict)


class Planner:
    def __init__(
        self,
        root: str,
        rules: IgnoreRules,
        *,
        follow_symlinks: bool,
        renames: Callable[[], bool] = lambda: True,
    ) -> None:
        self.root = root
        self.rules = rules
        self.follow_symlinks = follow_symlinks
        #: Whether the remote can rename or copy on the server (asked at each plan: a
        #: server's learned ways may change it after start).
        self.renames = renames

    def full(self, result: ScanResult, entries: EntryMap) -> Planned:
        """The whole folder: everything known and not seen is a delete (but under a folder that
        could not be read: that one protects what is under it)."""
        plan = diff(
            result.entries,
            entries,
            protected=result.unreadable_dirs,
            rules=self.rules,
            renames=self.renames(),
        )
        return Planned(plan, result.entries, result.skipped)

    async def batch(self, paths: Iterable[str], entries: EntryMap) -> Planned:
        """Paths the watcher saw change: each is looked at; a folder new here is scanned, and a
        folder gone takes what was synced under it."""
        local: dict[str, LocalEntry] = {}
        scope: set[str] = set()
        skipped: dict[str, str] = {}
        subtree_roots: list[str] = []
        for p in paths:
            if self.rules.ignored(p) or any(self.rules.ignored(a, is_dir=True) for a in parents(p)):
                continue
            scope.add(p)
            le, why = lstat_entry(self.root, p, self.rules, self.follow_symlinks)
            if why:
                skipped[printable(p)] = why
                continue
            if le is None:
                known = entries.get(p)
                if known is not None and known.is_dir:
                    scope.update(entries.below(p))
                continue
            local[p] = le
            if le.is_dir:
                known = entries.get(p)
                if known is None or not known.is_dir:
                    subtree_roots.append(p)
        for d in subtree_roots:
            sub = await asyncio.to_thread(
                scan_tree, self.root, self.rules, start=d, follow_symlinks=self.follow_symlinks
            )
            local.update(sub.entries)
            skipped.update(sub.skipped)
            scope.update(sub.entries)
            scope.update(entries.below(d))
        plan = diff(local, entries, scope, rules=self.rules, renames=self.renames())
        return Planned(plan, local, skipped)

    async def subtree(self, path: str, entries: EntryMap) -> Planned | None:
        """``path`` afresh, and everything under it; None when it is no folder (then its own
        job decides)."""
        le, _ = lstat_entry(self.root, path, self.rules, self.follow_symlinks)
        if le is None or not le.is_dir:
            return None
        sub = await asyncio.to_thread(
            scan_tree, self.root, self.rules, start=path, follow_symlinks=self.follow_symlinks
        )
        local = {path: le, **sub.entries}
        scope = {*local, *entries.below(path)}
        plan = diff(
            local,
            entries,
            scope,
            protected=sub.unreadable_dirs,
            rules=self.rules,
            renames=self.renames(),
        )
        return Planned(plan, local, sub.skipped)
