"""A file on one machine, a folder on the other: nothing is lost and both machines converge.

Two engines sync into one remote path (see twoway_machines) on the local backend, nginx (whose
collections need their trailing slash) and SeaweedFS (S3: no folders, no server-side move, so
the remote one is downloaded under the conflict name instead of moved there).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from syncapp.engine import ConflictKept, FileTrashed, SyncEngine
from syncapp.remotes import open_remote
from syncapp.remotes.base import join
from tests.helpers import write_tree
from tests.integration import twoway_machines
from tests.integration.twoway_machines import Machine, Shared, config, machines, text, until

own_trash = twoway_machines.own_trash
shared = twoway_machines.shared

pytestmark = pytest.mark.parametrize("shared", ["local", "nginx", "seaweedfs"], indirect=True)

FOLDER = {"x/one.txt": "one\n", "x/sub/two.txt": "two, deeper\n", "x/three.txt": "three\n"}


def contents(m: Machine) -> dict[str, str | None]:
    return {p: text(m.folder / p) for p in m.files()}


def kept_both(m: Machine, file_text: str) -> bool:
    """``x`` and one ``x.conflict-…``: one is the file with ``file_text``, the other the folder."""
    names = {p.split("/", 1)[0] for p in m.files()} - {"keep.txt"}
    if len(names) != 2 or "x" not in names:
        return False
    other = next(n for n in names if n != "x")
    if not other.startswith("x.conflict-"):
        return False
    found = contents(m)
    as_folder = {f"{n}/{p[2:]}": t for p, t in FOLDER.items() for n in (other, "x")}
    folder_here = "x" if (m.folder / "x").is_dir() else other
    file_here = other if folder_here == "x" else "x"
    want = {p: t for p, t in as_folder.items() if p.startswith(folder_here + "/")}
    want |= {file_here: file_text, "keep.txt": "keep\n"}
    return found == want


def failed(m: Machine) -> list[str]:
    return [p.path for p in m.engine.folder("docs").pending() if p.status == "failed"]


async def synced(tmp_path: Path, a: Machine, b: Machine, files: dict[str, str]) -> None:
    write_tree(a.folder, files)
    await until(lambda: b.files() == a.files() and len(b.files()) == len(files))
    for m in (a, b):  # each has seen its uploads listed
        side = m.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda side=side: not side.unconfirmed)  # type: ignore[misc]


async def test_a_file_here_and_a_folder_there_made_at_once_keep_both(
    tmp_path: Path, shared: Shared
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        await synced(tmp_path, a, b, {"keep.txt": "keep\n"})
        write_tree(b.folder, FOLDER)
        (a.folder / "x").write_text("a's file\n")
        try:
            await until(lambda: kept_both(a, "a's file\n") and kept_both(b, "a's file\n"))
        except TimeoutError:
            raise AssertionError(f"a: {contents(a)}\nb: {contents(b)}") from None
        await until(lambda: a.files() == b.files())
        assert a.count(ConflictKept) + b.count(ConflictKept) >= 1
        assert failed(a) == failed(b) == []


async def test_a_file_made_a_folder_on_a_and_edited_on_b_keeps_both(
    tmp_path: Path, shared: Shared
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        await synced(tmp_path, a, b, {"keep.txt": "keep\n", "x": "first\n"})
        (a.folder / "x").unlink()
        write_tree(a.folder, FOLDER)
        (b.folder / "x").write_text("edited on b, longer\n")
        try:
            await until(
                lambda: (
                    kept_both(a, "edited on b, longer\n") and kept_both(b, "edited on b, longer\n")
                )
            )
        except TimeoutError:
            raise AssertionError(f"a: {contents(a)}\nb: {contents(b)}") from None
        await until(lambda: a.files() == b.files())
        assert failed(a) == failed(b) == []


async def test_a_file_replaced_by_a_folder_and_back_arrives_and_the_old_goes_to_the_trash(
    tmp_path: Path, shared: Shared, own_trash: Path
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        await synced(tmp_path, a, b, {"keep.txt": "keep\n", "x": "first\n"})
        (a.folder / "x").unlink()
        write_tree(a.folder, FOLDER)
        await until(lambda: contents(b) == {"keep.txt": "keep\n", **FOLDER})
        trashed = [e for e in b.events if isinstance(e, FileTrashed)]
        assert [e.path for e in trashed] == ["x"]
        assert Path(trashed[0].where).read_text() == "first\n"
        await until(lambda: a.files() == b.files())

        # And back: the folder (as last synced on b) goes to b's trash as a whole.
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: not side.unconfirmed)
        shutil.rmtree(a.folder / "x")
        (a.folder / "x").write_text("a file again\n")
        await until(lambda: contents(b) == {"keep.txt": "keep\n", "x": "a file again\n"})
        trashed = [e for e in b.events if isinstance(e, FileTrashed)]
        assert [e.path for e in trashed] == ["x", "x"]
        assert sorted(p.name for p in Path(trashed[1].where).rglob("*.txt")) == [
            "one.txt",
            "three.txt",
            "two.txt",
        ]
        assert a.count(ConflictKept) == b.count(ConflictKept) == 0
        assert a.files() == b.files()


async def test_without_mirror_deletes_a_file_replaced_remotely_is_moved_aside_not_trashed(
    tmp_path: Path, shared: Shared, own_trash: Path
) -> None:
    """B keeps what the remote removes (``mirror_deletes = false``): its file that A made a
    folder stays, under a conflict name, and reaches A too; nothing goes to B's trash."""
    async with AsyncExitStack() as stack:
        a, b = [
            Machine(
                await stack.enter_async_context(
                    SyncEngine(cfg, tmp_path / name / "state" / "state.db", live=True)
                ),
                cfg.folders["docs"].path,
            )
            for name, cfg in (
                ("a", config(tmp_path, shared, "a")),
                ("b", config(tmp_path, shared, "b", "mirror_deletes = false")),
            )
        ]
        await synced(tmp_path, a, b, {"keep.txt": "keep\n", "x": "first\n"})
        (a.folder / "x").unlink()
        write_tree(a.folder, FOLDER)

        def moved_aside(m: Machine) -> bool:
            found = contents(m)
            aside = [p for p in found if p.startswith("x.conflict-")]
            return len(aside) == 1 and found == {
                "keep.txt": "keep\n", **FOLDER, aside[0]: "first\n"
            }

        await until(lambda: moved_aside(b) and moved_aside(a) and a.files() == b.files())
        assert b.count(FileTrashed) == 0 and not own_trash.exists()
        assert b.count(ConflictKept) == 1


async def test_a_folder_here_never_replaces_a_file_edited_on_the_remote_meanwhile(
    tmp_path: Path, shared: Shared
) -> None:
    """The upload side sees the file became a folder here, but the remote file changed since
    the last sync: it leaves it, and the remote side's next look keeps both."""
    writer = config(tmp_path, shared, "w").remotes["r"]
    async with (
        machines(tmp_path, shared, "a", poll=3600) as (a,),
        open_remote(writer, env=dict(os.environ)) as r,
    ):
        folder = a.engine.folder("docs")
        side = folder.remote_side
        assert side is not None
        await until(lambda: side.looks >= 1)  # the next look only when asked
        write_tree(a.folder, {"keep.txt": "keep\n", "x": "first\n"})
        await until(lambda: "x" in folder.entries and "keep.txt" in folder.entries)

        async def body() -> AsyncIterator[bytes]:
            yield b"edited on the remote\n"

        await r.put(join("Docs", "x"), body(), size=21)
        (a.folder / "x").unlink()
        write_tree(a.folder, FOLDER)
        await until(
            lambda: any(p.path == "x" and "both are kept" in p.reason for p in folder.pending())
        )
        async with r.get(join("Docs", "x")) as chunks:
            assert b"".join([c async for c in chunks]) == b"edited on the remote\n"

        folder.rescan()  # the remote side looks now
        await until(lambda: kept_both(a, "edited on the remote\n"))
        assert a.count(ConflictKept) == 1

        async def remote_kept_both() -> bool:
            files = {e.path: e.size async for e in r.list("Docs") if not e.is_dir}
            copies = [p for p in files if p.startswith("Docs/x.conflict-")]
            return "Docs/x/sub/two.txt" in files and [files[p] for p in copies] == [21]

        for _ in range(200):
            if await remote_kept_both():
                break
            await asyncio.sleep(0.05)
        assert await remote_kept_both()
