"""The planner: one diff of disk against state serves scans, watcher batches and dry runs."""

from __future__ import annotations

from syncapp.engine.plan import collapse_deletes, diff
from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry


def le(path: str, *, d: bool = False, size: int = 1, mtime: int = 10, ino: int = 0) -> LocalEntry:
    return LocalEntry(path, d, 0 if d else size, mtime, ino or hash(path) & 0xFFFF)


def ke(path: str, *, d: bool = False, size: int = 1, mtime: int = 10, ino: int = 0) -> Entry:
    return Entry(path, d, 0 if d else size, mtime, ino or hash(path) & 0xFFFF)


def test_new_changed_unchanged_deleted() -> None:
    local = {
        p.path: p
        for p in [le("a", d=True), le("a/new.txt"), le("same.txt"), le("edit.txt", size=5)]
    }
    known = {
        e.path: e for e in [ke("a", d=True), ke("same.txt"), ke("edit.txt", size=4), ke("gone.txt")]
    }
    plan = diff(local, known)
    assert plan.uploads == ["edit.txt", "a/new.txt"]
    assert plan.mkdirs == []
    assert plan.deletes == [("gone.txt", False)]


def test_parents_before_children() -> None:
    local = {p.path: p for p in [le("x/y/z", d=True), le("x", d=True), le("x/y", d=True)]}
    assert diff(local, {}).mkdirs == ["x", "x/y", "x/y/z"]


def test_rename_by_inode_is_a_move() -> None:
    local = {"new name.txt": le("new name.txt", ino=42)}
    known = {"old.txt": ke("old.txt", ino=42)}
    plan = diff(local, known)
    assert plan.moves == [("old.txt", "new name.txt", False)]
    assert plan.uploads == [] and plan.deletes == []


def test_same_inode_but_edited_is_upload_and_delete() -> None:
    plan = diff({"b": le("b", ino=7, size=9)}, {"a": ke("a", ino=7, size=1)})
    assert plan.moves == [] and plan.uploads == ["b"] and plan.deletes == [("a", False)]


def test_directory_move_carries_contents() -> None:
    local = {p.path: p for p in [le("new", d=True, ino=5), le("new/f", ino=6)]}
    known = {e.path: e for e in [ke("old", d=True, ino=5), ke("old/f", ino=6)]}
    plan = diff(local, known)
    assert plan.moves == [("old", "new", True)]
    assert plan.deletes == []


def test_deletes_collapse_under_deleted_dir() -> None:
    assert collapse_deletes([("d/x", False), ("d", True), ("d/e", True), ("f", False)]) == [
        ("d", True),
        ("f", False),
    ]


def test_unreadable_dir_protects_known_contents() -> None:
    known = {e.path: e for e in [ke("locked", d=True), ke("locked/a"), ke("other")]}
    plan = diff({"locked": le("locked", d=True)}, known, protected=["locked"])
    assert plan.deletes == [("other", False)]


def test_scope_limits_the_plan() -> None:
    plan = diff({"a": le("a")}, {"b": ke("b")}, scope=["a"])
    assert plan.uploads == ["a"] and plan.deletes == []
