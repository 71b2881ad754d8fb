"""The planner on a real folder on disk, no server: renames, file ↔ folder, ignore changes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from syncapp.engine.entries import EntryMap
from syncapp.engine.planner import Planner
from syncapp.engine.scanner import scan_tree
from syncapp.engine.state import Entry
from syncapp.ignore import IgnoreRules


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder of its own: tmp_path holds the test's XDG folders too."""
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def synced(root: Path, *paths: str) -> EntryMap:
    """The entries a sync of ``paths`` (as they are on disk now) would have recorded."""
    m = EntryMap()
    for p in paths:
        st = os.lstat(root / p)
        is_dir = (root / p).is_dir()
        m[p] = Entry(p, is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns, st.st_ino)
    return m


def planner(root: Path, *ignore: str) -> Planner:
    return Planner(str(root), IgnoreRules(list(ignore)), follow_symlinks=False)


def test_a_rename_is_a_move(root: Path) -> None:
    (root / "old.txt").write_text("x")
    entries = synced(root, "old.txt")
    (root / "old.txt").rename(root / "new.txt")
    got = asyncio.run(planner(root).batch({"old.txt", "new.txt"}, entries))
    assert got.plan.moves == [("old.txt", "new.txt", False)]
    assert got.plan.uploads == [] and got.plan.deletes == []


def test_a_renamed_folder_is_one_move(root: Path) -> None:
    (root / "a").mkdir()
    (root / "a" / "f").write_text("x")
    entries = synced(root, "a", "a/f")
    (root / "a").rename(root / "b")
    got = asyncio.run(planner(root).batch({"a", "b"}, entries))
    assert got.plan.moves == [("a", "b", True)]
    assert got.plan.deletes == [] and got.plan.uploads == []


def test_a_file_replaced_by_a_folder(root: Path) -> None:
    (root / "x").write_text("a file")
    entries = synced(root, "x")
    (root / "x").unlink()
    (root / "x").mkdir()
    (root / "x" / "inside.txt").write_text("y")
    got = asyncio.run(planner(root).batch({"x"}, entries))
    assert got.plan.mkdirs == ["x"]  # the folder's own job removes the file first
    assert got.plan.uploads == ["x/inside.txt"]


def test_a_folder_replaced_by_a_file(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "1").write_text("1")
    entries = synced(root, "d", "d/1")
    (root / "d" / "1").unlink()
    (root / "d").rmdir()
    (root / "d").write_text("now a file")
    got = asyncio.run(planner(root).batch({"d", "d/1"}, entries))
    assert got.plan.uploads == ["d"]
    assert ("d/1", False) in got.plan.deletes


def test_a_deleted_folder_takes_what_was_synced_under_it(root: Path) -> None:
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("f")
    (root / "keep").write_text("k")
    entries = synced(root, "d", "d/e", "d/e/f", "keep")
    for p in ["d/e/f"]:
        (root / p).unlink()
    (root / "d" / "e").rmdir()
    (root / "d").rmdir()
    got = asyncio.run(planner(root).batch({"d"}, entries))
    assert got.plan.deletes == [("d", True)]  # one delete for the whole folder


def test_a_newly_ignored_path_is_forgotten_not_deleted(root: Path) -> None:
    (root / "cache").mkdir()
    (root / "cache" / "big.bin").write_text("b")
    (root / "notes.txt").write_text("n")
    entries = synced(root, "cache", "cache/big.bin", "notes.txt")
    p = planner(root, "cache/")
    got = p.full(scan_tree(str(root), p.rules), entries)
    assert got.plan.deletes == []
    assert ("cache", True) in got.plan.forgets
    assert len(got.plan) == 0


def test_ignored_paths_in_a_batch_are_not_looked_at(root: Path) -> None:
    (root / "a.tmp").write_text("t")
    got = asyncio.run(planner(root, "*.tmp").batch({"a.tmp"}, EntryMap()))
    assert len(got.plan) == 0 and got.local == {}


def test_a_new_folder_in_a_batch_is_scanned(root: Path) -> None:
    (root / "new" / "sub").mkdir(parents=True)
    (root / "new" / "sub" / "f").write_text("f")
    got = asyncio.run(planner(root).batch({"new"}, EntryMap()))
    assert got.plan.mkdirs == ["new", "new/sub"]
    assert got.plan.uploads == ["new/sub/f"]


def test_subtree(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "f").write_text("f")
    (root / "file").write_text("x")
    p = planner(root)
    assert asyncio.run(p.subtree("file", EntryMap())) is None  # no folder: its own job
    got = asyncio.run(p.subtree("d", synced(root, "d")))
    assert got is not None and got.plan.uploads == ["d/f"] and got.plan.mkdirs == []


def test_without_server_renames_a_rename_is_an_upload_and_a_delete(root: Path) -> None:
    """A remote that can neither rename nor copy: the rename is planned as what it costs, so
    the delete of the old name reaches the guard with every other delete."""
    (root / "a").mkdir()
    (root / "a" / "f").write_text("x")
    (root / "g.txt").write_text("y")
    entries = synced(root, "a", "a/f", "g.txt")
    (root / "a").rename(root / "b")
    (root / "g.txt").rename(root / "h.txt")
    p = Planner(str(root), IgnoreRules([]), follow_symlinks=False, renames=lambda: False)
    got = asyncio.run(p.batch({"a", "b", "g.txt", "h.txt"}, entries))
    assert got.plan.moves == []
    assert got.plan.mkdirs == ["b"] and got.plan.uploads == ["h.txt", "b/f"]
    assert sorted(got.plan.deletes) == [("a", True), ("g.txt", False)]
    full = p.full(scan_tree(str(root), IgnoreRules([])), entries).plan
    assert full.moves == [] and sorted(full.deletes) == [("a", True), ("g.txt", False)]
