"""The planner: one diff of disk against state serves scans, watcher batches and dry runs."""

from __future__ import annotations

from syncapp.engine.adopt import RemoteFile, RemoteTree, adoptable, same_mtime
from syncapp.engine.folder import EntryMap
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


def test_adoption_rule_shared_by_engine_and_dry_run() -> None:
    s = 1_000_000_000
    local = {
        p.path: p
        for p in [
            le("dir", d=True),
            le("same.txt", size=4, mtime=100 * s),
            le("bigger.txt", size=4, mtime=100 * s),
            le("older.txt", size=4, mtime=100 * s),
            le("kind.txt", size=4, mtime=100 * s),
            le("known.txt", size=4, mtime=100 * s),
            le("local-only.txt"),
        ]
    }
    remote = RemoteTree(
        {
            "dir": RemoteFile(True, 0, None),
            "same.txt": RemoteFile(False, 4, 100 * s + s // 2),  # rounded by the server
            "bigger.txt": RemoteFile(False, 5, 100 * s),
            "older.txt": RemoteFile(False, 4, 50 * s),
            "kind.txt": RemoteFile(True, 0, 100 * s),
            "known.txt": RemoteFile(False, 4, 100 * s),
            "remote-only.txt": RemoteFile(False, 4, 100 * s),
        }
    )
    known = {"known.txt": ke("known.txt", size=4, mtime=100 * s)}
    kept = adoptable(local, remote, known, server_mtime=True, now=1.0)
    assert sorted(e.path for e in kept) == ["dir", "same.txt"]
    assert all(e.synced_at == 1.0 for e in kept)
    # A server that stamps its own mtimes: a remote copy written after the local edit counts.
    remote.entries["later.txt"] = RemoteFile(False, 4, 200 * s)
    local["later.txt"] = le("later.txt", size=4, mtime=100 * s)
    kept = adoptable(local, remote, known, server_mtime=False, now=1.0)
    assert sorted(e.path for e in kept) == ["dir", "later.txt", "same.txt"]
    assert not same_mtime(100 * s, None, server_mtime=True)


def test_entry_map_finds_everything_below_a_folder() -> None:
    m = EntryMap({p: ke(p, d="." not in p) for p in ["a", "a/b", "a/b/c.txt", "a/d.txt", "ab.txt"]})
    assert sorted(m.below("a")) == ["a/b", "a/b/c.txt", "a/d.txt"]
    assert sorted(m.below("")) == sorted(m)
    m["a/b/e.txt"] = ke("a/b/e.txt")
    del m["a/d.txt"]
    assert sorted(m.below("a")) == ["a/b", "a/b/c.txt", "a/b/e.txt"]
    assert m.pop("a/b/c.txt") is not None
    assert sorted(m.below("a/b")) == ["a/b/e.txt"]
    assert m.files == 2
    assert m.below("ab.txt") == []
    fresh = EntryMap({"x": ke("x", d=True)})
    fresh["x/y.txt"] = ke("x/y.txt")  # changed before the index is first built
    assert fresh.below("x") == ["x/y.txt"]


def test_entry_map_below_reaches_paths_whose_folders_are_not_entries() -> None:
    # Object stores have no folders: "a/b" may never be an entry while "a/b/c.txt" is.
    m = EntryMap({"a/b/c.txt": ke("a/b/c.txt"), "a/d.txt": ke("a/d.txt")})
    assert sorted(m.below("a")) == ["a/b/c.txt", "a/d.txt"]
    assert m.below("a/b") == ["a/b/c.txt"]
    m["x/y/z.txt"] = ke("x/y/z.txt")
    assert m.below("x") == ["x/y/z.txt"]
    del m["x/y/z.txt"]
    assert m.below("x") == []
    assert m._children is not None and "x" not in m._children and "x/y" not in m._children
    del m["a/b/c.txt"]
    assert m.below("a") == ["a/d.txt"]


def test_files_deleted_counts_each_synced_file_once() -> None:
    m = EntryMap(
        {p: ke(p, d="." not in p) for p in ["a", "a/b", "a/b/c.txt", "a/d.txt", "e.txt", "f"]}
    )
    # A folder, a folder inside it, a file inside both, a file elsewhere, an empty folder.
    deletes = [("a", True), ("a/b", True), ("a/b/c.txt", False), ("e.txt", False), ("f", True)]
    assert m.files_deleted(deletes) == 3
    assert m.files_deleted([]) == 0


def test_known_paths_ignored_now_are_forgotten_not_deleted() -> None:
    from syncapp.engine.plan import diff as plan_diff
    from syncapp.engine.state import Entry as StateEntry
    from syncapp.ignore import IgnoreRules

    known = {
        p: StateEntry(p, d, 0 if d else 1, 1, i + 1)
        for i, (p, d) in enumerate(
            [("x.tmp", False), ("cache", True), ("cache/c", False), ("gone.txt", False)]
        )
    }
    plan = plan_diff({}, known, rules=IgnoreRules(["*.tmp", "cache/"]))
    assert plan.deletes == [("gone.txt", False)]
    assert sorted(plan.forgets) == [("cache", True), ("x.tmp", False)]
    assert len(plan) == 1
