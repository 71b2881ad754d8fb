"""Two-way sync end to end: two engines ("machines", each with its own state database) sync one
local folder each into the same remote path, on real servers.

Every wait is on a condition (with a generous bound for a hung test), never sleep-and-assert.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from syncapp.engine import (
    ConflictKept,
    FileDownloaded,
    FileTrashed,
    FolderState,
    GuardTripped,
    RenamedLocally,
    SyncEngine,
)
from syncapp.remotes import open_remote
from syncapp.remotes.base import join
from tests.helpers import syncapp, tree, wait_for, write_tree
from tests.integration import twoway_machines
from tests.integration.twoway_machines import Machine, Shared, config, machines, text, until
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import rclone_webdav_server

# The fixtures (pytest finds them as this module's names).
own_trash = twoway_machines.own_trash
shared = twoway_machines.shared


async def test_two_machines_converge(tmp_path: Path, shared: Shared, own_trash: Path) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        write_tree(
            a.folder, {f"d{i}/f{j}.txt": f"a {i}/{j}\n" for i in range(10) for j in range(20)}
        )
        await until(lambda: b.files() == a.files() and len(b.files()) == 200)
        # What B downloaded was never uploaded again (the watcher's echo is nothing to do).
        await until(lambda: b.count(FileDownloaded) == 200)
        assert b.uploads() == 0

        # An edit on B arrives on A (once A has seen its own uploads on the remote: an upload
        # overwritten before its machine ever saw it is kept as a conflict instead).
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: not side.unconfirmed)
        (b.folder / "d1" / "f1.txt").write_text("edited on b, longer\n")
        await until(lambda: text(a.folder / "d1" / "f1.txt") == "edited on b, longer\n")
        assert a.files() == b.files()
        assert b.uploads() == 1

        # A delete on A goes to B's trash, never unlinked.
        (a.folder / "d0" / "f0.txt").unlink()
        await until(lambda: b.count(FileTrashed) == 1)
        assert not (b.folder / "d0" / "f0.txt").exists()
        trashed = [e for e in b.events if isinstance(e, FileTrashed)]
        assert [e.path for e in trashed] == ["d0/f0.txt"]
        assert Path(trashed[0].where).read_text() == "a 0/0\n"
        assert Path(trashed[0].where).parent == own_trash / "files"
        assert a.files() == b.files()
        assert b.uploads() == 1 and a.uploads() == 200


async def test_a_remote_rename_of_a_folder_is_one_local_rename(
    tmp_path: Path, shared: Shared
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        write_tree(a.folder, {f"big/f{j:02}.txt": f"file {j}\n" for j in range(50)})
        await until(lambda: len(b.files()) == 50)
        inodes = {p.name: p.stat().st_ino for p in (b.folder / "big").iterdir()}
        downloads = b.count(FileDownloaded)

        (a.folder / "big").rename(a.folder / "moved")
        await until(lambda: (b.folder / "moved").is_dir() and not (b.folder / "big").exists())
        assert b.count(RenamedLocally) == 1
        assert b.count(FileDownloaded) == downloads and b.count(FileTrashed) == 0
        assert {p.name: p.stat().st_ino for p in (b.folder / "moved").iterdir()} == inodes
        await until(lambda: a.files() == b.files())
        assert b.uploads() == 0


async def test_an_edit_inside_a_folder_renamed_elsewhere_meanwhile_is_kept_alone(
    tmp_path: Path, shared: Shared
) -> None:
    """B edits a file of a folder that A renames before B could see it: B's upload finds the
    folder gone and makes it again for that file only; the rest arrives as A's rename (never a
    second copy of the whole folder)."""
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        write_tree(a.folder, {f"docs/d{j}.txt": f"doc {j}\n" for j in range(8)})
        await until(lambda: len(b.files()) == 8)
        b.engine.pause("docs")
        (b.folder / "docs" / "d3.txt").write_text("edited on b, longer\n")
        (a.folder / "docs").rename(a.folder / "papers")
        remote = a.engine.folder("docs").remote
        await until(lambda: a.engine.status()["docs"].state is FolderState.UP_TO_DATE)

        async def moved() -> bool:
            return await remote.stat("Docs/papers/d7.txt") is not None

        for _ in range(200):
            if await moved() and await remote.stat("Docs/docs/d7.txt") is None:
                break
            await asyncio.sleep(0.05)
        b.engine.resume("docs")

        def settled(m: Machine) -> bool:
            names = set(m.files())
            return names == {"docs/d3.txt", *(f"papers/d{j}.txt" for j in range(8))}

        try:
            await until(lambda: settled(a) and settled(b) and a.files() == b.files())
        except TimeoutError:
            raise AssertionError(f"a: {sorted(a.files())}\nb: {sorted(b.files())}") from None
        assert text(a.folder / "docs" / "d3.txt") == "edited on b, longer\n"
        assert text(b.folder / "papers" / "d0.txt") == "doc 0\n"


async def test_both_edit_one_file_keeps_both_contents_on_both_machines(
    tmp_path: Path, shared: Shared
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        write_tree(a.folder, {"notes.txt": "first\n", "other.txt": "other\n"})
        await until(lambda: b.files() == a.files() and len(b.files()) == 2)
        # (A has seen its uploads listed: rclone's PUT answers without an ETag, and an edit
        # made before that is compared with the PUT's Date: a needless extra conflict copy.)
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: not side.unconfirmed)
        (a.folder / "notes.txt").write_text("edited on a\n")
        (b.folder / "notes.txt").write_text("edited on b, not the same\n")

        def both_kept(m: Machine) -> bool:
            contents = {text(m.folder / p) for p in m.files() if p.startswith("notes")}
            return contents == {"edited on a\n", "edited on b, not the same\n"}

        try:
            await until(lambda: both_kept(a) and both_kept(b) and a.files() == b.files())
        except TimeoutError:
            seen = {n: {p: text(m.folder / p) for p in m.files()} for n, m in (("a", a), ("b", b))}
            remote = a.engine.folder("docs").remote
            if not remote.capabilities.conditional_put and await _kept_as_version(a, seen):
                # README, Known limits: without a conditional PUT the check and the overwrite
                # are two requests; an edit landing between them is kept as a remote version.
                pytest.xfail(f"the edit landed between check and overwrite: {seen}")
            raise AssertionError(f"not both kept on both machines: {seen}") from None
        names = sorted(a.files())
        assert len(names) == 3 and names[0].startswith("notes.conflict-") and "other.txt" in names
        assert a.count(ConflictKept) + b.count(ConflictKept) >= 1
        assert text(a.folder / "other.txt") == text(b.folder / "other.txt") == "other\n"


async def _kept_as_version(m: Machine, seen: dict[str, dict[str, str | None]]) -> bool:
    """Whether the edit missing from both folders is under the remote's ``.syncapp-versions/``."""
    edits = {"edited on a\n", "edited on b, not the same\n"}
    missing = edits - {c for files in seen.values() for c in files.values()}
    remote = m.engine.folder("docs").remote
    kept: set[str] = set()
    async for e in remote.list(join("Docs", ".syncapp-versions")):
        if not e.is_dir:
            async with remote.get(e.path) as chunks:
                kept.add(b"".join([c async for c in chunks]).decode(errors="replace"))
    return bool(missing) and missing <= kept


async def test_a_remote_wipe_pauses_both_machines_and_deletes_nothing(
    tmp_path: Path, shared: Shared, own_trash: Path
) -> None:
    cfg = config(tmp_path, shared, "wiper")
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        write_tree(a.folder, {f"f{j:02}.txt": f"file {j}\n" for j in range(30)})
        await until(lambda: b.files() == a.files() and len(b.files()) == 30)
        before_a, before_b = a.files(), b.files()
        async with open_remote(cfg.remotes["r"], env=dict(os.environ)) as remote:
            for j in range(30):
                await remote.delete(join("Docs", f"f{j:02}.txt"))
        await until(lambda: a.state() is FolderState.PAUSED and b.state() is FolderState.PAUSED)
        for m, before in ((a, before_a), (b, before_b)):
            trip = [e for e in m.events if isinstance(e, GuardTripped)]
            # (A wipe may be seen half-done: the guard trips as soon as it is past max_delete.)
            assert trip and re.match(r"\d+ of 30 files were deleted on the remote", trip[-1].reason)
            assert m.files() == before
            assert m.count(FileTrashed) == 0
        # The user decides per machine: A lets the deletes through (to its trash), B keeps its
        # files (they upload again), and then A gets them back from the remote.
        a.engine.folder("docs").release_guard()
        await until(lambda: a.count(FileTrashed) == 30)
        assert a.files() == {} and len(list((own_trash / "files").iterdir())) == 30
        await b.engine.folder("docs").restore_held()
        await until(lambda: a.files() == before_a and b.files() == before_b)
        assert b.count(FileTrashed) == 0 and b.uploads() == 30


async def test_first_two_way_run_is_a_union(tmp_path: Path, shared: Shared) -> None:
    cfg = config(tmp_path, shared, "a")
    async with open_remote(cfg.remotes["r"], env=dict(os.environ)) as remote:

        async def put(rel: str, data: bytes) -> None:
            async def body() -> AsyncIterator[bytes]:
                yield data

            await remote.put(join("Docs", rel), body(), size=len(data))

        if remote.capabilities.directories:
            await remote.mkdir("Docs")
        await put("only-remote.txt", b"remote\n")
        await put("both.txt", b"remote side of both\n")
    write_tree(cfg.folders["docs"].path, {"only-local.txt": "local\n", "both.txt": "local both\n"})
    async with machines(tmp_path, shared, "a", "b") as (a, b):

        def done(m: Machine) -> bool:
            names = m.files()
            return len(names) == 4 and {"only-local.txt", "only-remote.txt", "both.txt"} <= set(
                names
            )

        await until(lambda: done(a) and done(b) and a.files() == b.files())
        assert text(a.folder / "both.txt") == "local both\n"
        copy = next(p for p in a.files() if p.startswith("both.conflict-"))
        assert text(a.folder / copy) == "remote side of both\n"
        assert a.count(FileTrashed) == b.count(FileTrashed) == 0


async def test_a_download_leaves_no_partial_file(tmp_path: Path, shared: Shared) -> None:
    """A big download seen mid-way: only the hidden temporary name grows, never the real one."""
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        data = os.urandom(8 << 20)
        (a.folder / "big.bin").write_bytes(data)
        target = b.folder / "big.bin"
        sizes: set[int] = set()

        def seen() -> bool:
            if target.exists():
                sizes.add(target.stat().st_size)
            return target.exists() and target.stat().st_size == len(data)

        await until(seen)
        assert sizes == {len(data)}
        assert [p for p in os.listdir(b.folder) if p.startswith(".syncapp-tmp")] == []
        assert b.uploads() == 0


def test_run_once_why_and_status_say_what_came_down(tmp_path: Path) -> None:
    """``run --once --json`` brings remote files down (a first run: a union with a conflict
    pair), and ``why`` and ``status`` say so afterwards, from the state database."""
    store = tmp_path / "store"
    write_tree(store / "Docs", {"only-remote.txt": "remote\n", "both.txt": "remote side\n"})
    shared = Shared("local", f'[remotes.r]\ntype = "local"\npath = "{store}"\n')
    cfg = config(tmp_path, shared, "a")
    write_tree(cfg.folders["docs"].path, {"both.txt": "local side, longer\n"})
    conf = str(cfg.path)

    run = syncapp("--config", conf, "run", "--once", "--json")
    assert run.returncode == 0, run.stderr + run.stdout
    events = [json.loads(line) for line in run.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("FileDownloaded") == 1 and kinds.count("ConflictKept") == 1
    copy = next(e["copy"] for e in events if e["event"] == "ConflictKept")
    folder = cfg.folders["docs"].path
    assert text(folder / "only-remote.txt") == "remote\n"
    assert text(folder / "both.txt") == "local side, longer\n"
    assert text(folder / copy) == "remote side\n"
    assert tree(store / "Docs") == tree(folder, synced_only=True)

    why = syncapp("--config", conf, "why", "docs", "only-remote.txt", "--json")
    assert json.loads(why.stdout)["twoway"]["what"] == "downloaded from the remote", why.stdout
    why = syncapp("--config", conf, "why", "docs", "both.txt")
    assert f"in conflict: the remote copy was kept as {copy}" in why.stdout, why.stdout

    status = syncapp("--config", conf, "status", "--json")
    tally = json.loads(status.stdout)["docs"]["two_way"]
    assert tally["downloaded"] == 1 and tally["conflicts"] == 1
    assert tally["recent_conflicts"][0][:2] == ["both.txt", copy]
    human = syncapp("--config", conf, "status").stdout
    assert (
        "two-way: 1 downloaded" in human
        and f"conflict: both.txt (the remote copy is {copy})" in human
    )

    again = syncapp("--config", conf, "run", "--once", "--json")
    assert again.returncode == 0, again.stderr
    assert "FileDownloaded" not in again.stdout and '"op": "upload"' not in again.stdout


# -- request counts and a kill -9, through the fault proxy on rclone serve webdav -------------


def via(url: str, proxy: FaultProxy) -> str:
    return proxy.url.rstrip("/") + "/" + url.split("/", 3)[3]


async def test_what_was_downloaded_is_never_put_back(tmp_path: Path) -> None:
    """Machine B talks through a proxy that counts its requests: 30 files come down (30 GETs),
    and after several more polls B has sent no PUT at all."""
    with rclone_webdav_server(tmp_path / "rclone") as server, FaultProxy(server.port) as proxy:
        direct = Shared("rclone", f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n')
        proxied = Shared(
            "rclone", f'[remotes.r]\ntype = "webdav"\nurl = "{via(server.url, proxy)}"\n'
        )
        async with AsyncExitStack() as stack:
            cfg_a, cfg_b = config(tmp_path, direct, "a"), config(tmp_path, proxied, "b")
            a = Machine(
                await stack.enter_async_context(SyncEngine(cfg_a, tmp_path / "a" / "s.db")),
                cfg_a.folders["docs"].path,
            )
            b = Machine(
                await stack.enter_async_context(SyncEngine(cfg_b, tmp_path / "b" / "s.db")),
                cfg_b.folders["docs"].path,
            )
            write_tree(
                a.folder, {f"d{i}/f{j}.txt": f"{i} {j}\n" for i in range(3) for j in range(10)}
            )
            await until(lambda: b.count(FileDownloaded) == 30 and b.files() == a.files())
            side = b.engine.folder("docs").remote_side
            assert side is not None
            looks = side.looks
            await until(lambda: side.looks >= looks + 3)  # three more polls, echoes long planned
            assert proxy.counts()["PUT"] == 0 and b.uploads() == 0
            assert proxy.counts()["GET"] == 30


def test_a_download_killed_mid_way_leaves_no_partial_file_and_finishes_next_run(
    tmp_path: Path,
) -> None:
    data = os.urandom(3 << 20)
    with rclone_webdav_server(tmp_path / "rclone") as server, FaultProxy(server.port) as proxy:
        direct = Shared("rclone", f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n')
        proxied = Shared(
            "rclone", f'[remotes.r]\ntype = "webdav"\nurl = "{via(server.url, proxy)}"\n'
        )
        cfg_a, cfg_b = config(tmp_path, direct, "a"), config(tmp_path, proxied, "b")
        (cfg_a.folders["docs"].path / "big.bin").write_bytes(data)
        env_a = {"XDG_STATE_HOME": str(tmp_path / "a" / "state")}
        first = syncapp("--config", str(cfg_a.path), "run", "--once", env=env_a)
        assert first.returncode == 0, first.stderr
        folder = cfg_b.folders["docs"].path
        env = {"XDG_STATE_HOME": str(tmp_path / "b" / "state")}
        proxy.stall(60.0, methods=["GET"])  # the download starts, then hangs: kill it there
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncapp.cli", "--config", str(cfg_b.path), "run"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_for(
                lambda: any(p.startswith(".syncapp-tmp-dl-") for p in os.listdir(folder))
            )
        finally:
            proc.kill()
            proc.wait()
        assert not (folder / "big.bin").exists()
        proxy.clear()
        run = syncapp("--config", str(cfg_b.path), "run", "--once", env=env)
        assert run.returncode == 0, run.stderr + run.stdout
        assert (folder / "big.bin").read_bytes() == data
        assert [p for p in os.listdir(folder) if p.startswith(".syncapp-tmp")] == []


def test_dry_run_says_what_would_come_down_and_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_tree(store / "Docs", {"only-remote.txt": "remote\n", "sub/deep.txt": "deep\n"})
    shared = Shared("local", f'[remotes.r]\ntype = "local"\npath = "{store}"\n')
    cfg = config(tmp_path, shared, "a")
    folder = cfg.folders["docs"].path
    write_tree(folder, {"only-local.txt": "local\n"})
    before_local, before_remote = tree(folder), tree(store)

    run = syncapp("--config", str(cfg.path), "run", "--once", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr + run.stdout
    said = {(a["action"], a["path"]) for a in map(json.loads, run.stdout.splitlines())}
    assert {("download", "only-remote.txt"), ("download", "sub/deep.txt")} <= said
    assert ("upload", "only-local.txt") in said
    assert tree(folder) == before_local and tree(store) == before_remote
