"""The entry index: what was synced, by path, with a file count and a children index."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from syncapp.engine.scanner import parents
from syncapp.engine.state import Entry


class EntryMap(dict[str, Entry]):
    """What was synced, by path, with a running count of files (status is asked often) and an
    index of children, so "everything under this folder" is a walk of that folder, not a pass
    over every known path. The index links every path to its parent even when the parent
    itself is not an entry (object stores have no folders of their own)."""

    def __init__(self, items: dict[str, Entry] | None = None) -> None:
        super().__init__(items or {})
        self.files = sum(1 for e in self.values() if not e.is_dir)
        # Built on first use: a start with nothing to do never needs it.
        self._children: dict[str, set[str]] | None = None

    def __setitem__(self, key: str, value: Entry) -> None:
        old = self.get(key)
        if old is None:
            if self._children is not None:
                self._link(key)
        elif not old.is_dir:
            self.files -= 1
        if not value.is_dir:
            self.files += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if not self[key].is_dir:
            self.files -= 1
        super().__delitem__(key)
        if self._children is not None:
            self._unlink(key)

    def pop(self, key: str, default: object = None) -> Entry | None:  # type: ignore[override]
        if key in self:
            value = self[key]
            del self[key]
            return value
        return None

    def _index(self) -> dict[str, set[str]]:
        if self._children is None:
            self._children = {}
            for k in self:
                self._link(k)
        return self._children

    def _link(self, key: str) -> None:
        assert self._children is not None
        while key:
            kids = self._children.setdefault(_parent(key), set())
            if key in kids:
                return
            kids.add(key)
            key = _parent(key)

    def _unlink(self, key: str) -> None:
        # A path still leading to entries below it stays linked; an empty link left behind by
        # a parent that is not an entry goes too.
        assert self._children is not None
        while key and key not in self and not self._children.get(key):
            self._children.pop(key, None)
            parent = _parent(key)
            kids = self._children.get(parent)
            if kids is None:
                return
            kids.discard(key)
            key = parent

    def files_deleted(self, deletes: Iterable[tuple[str, bool]]) -> int:
        """How many synced files the deletes (path, is_dir) take away, each counted once."""
        deletes = list(deletes)
        dirs = {p for p, is_dir in deletes if is_dir}
        gone = {p for p, is_dir in deletes if not is_dir}
        for d in dirs:
            if not any(a in dirs for a in parents(d)):  # a folder inside another is walked once
                gone.update(k for k in self.below(d) if not self[k].is_dir)
        return len(gone)

    def below(self, path: str) -> list[str]:
        """Every known path under ``path`` (not ``path`` itself); all of them for the root."""
        children = self._index()
        out: list[str] = []
        stack = [path]
        while stack:
            for k in children.get(stack.pop(), ()):
                if k in self:
                    out.append(k)
                stack.append(k)
        return out

    def move(self, src: str, dst: str) -> None:
        """``src`` and everything under it now live at ``dst``; what was at ``dst`` is gone.

        Costs the two subtrees, not the whole map (a folder move is common, the map is large).
        """
        moving = [src] if src in self else []
        moving += self.below(src)
        taken = set(moving)
        replaced = [k for k in ([dst] if dst in self else []) + self.below(dst) if k not in taken]
        for k in replaced:
            del self[k]
        entries = [(k, self.pop(k)) for k in moving]
        for k, e in entries:
            assert e is not None
            nk = dst + k[len(src) :]
            self[nk] = dataclasses.replace(e, path=nk)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""
