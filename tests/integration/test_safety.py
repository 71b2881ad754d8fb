"""Trust: the delete guard, remote versions and restore, `why`, dry runs, bandwidth limits.

Against real WebDAV servers (rclone serve webdav, WsgiDAV; Apache httpd and nginx for versions,
restore and conflicts) whose storage we read directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncapp.config import Config, parse_config
from syncapp.engine import FolderState, SyncEngine
from syncapp.engine.state import StateDB
from syncapp.engine.versions import VERSIONS_DIR, Versions
from tests.helpers import syncapp, tree, write_tree
from tests.servers.dav_httpd import WEBDAV_PROCESSES
from tests.servers.webdav import ServerProcess


@pytest.fixture(params=["rclone", "wsgidav"])
def dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with WEBDAV_PROCESSES[request.param](tmp_path / "dav") as server:
        yield server


#: The scenarios whose outcome depends on the server (versions, restore, conflicts) also run on
#: Apache httpd and nginx; the rest (guard, why, dry run, bandwidth) are the engine's own.
every_server = pytest.mark.parametrize("dav", list(WEBDAV_PROCESSES), indirect=True)


def make_config(tmp_path: Path, server: ServerProcess, folder: Path, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n{extra}'
    )
    return cfg


def load(cfg: Path) -> Config:
    return parse_config(cfg.read_text(), cfg)


def files(n: int) -> dict[str, str]:
    return {f"d{i % 5}/file {i}.txt": f"content {i}" for i in range(n)}


async def wait_until(cond: object, timeout: float = 30.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


def remote_files(server: ServerProcess) -> dict[str, str]:
    return {k: v for k, v in tree(server.root / "Docs").items() if v != "<dir>"}


# -- the delete guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["wipe contents", "rename root away", "replace root by empty dir"])
async def test_guard_holds_deletes_live_then_releases(
    tmp_path: Path, dav: ServerProcess, how: str
) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, files(40))
    cfg = load(make_config(tmp_path, dav, folder))
    async with SyncEngine(cfg, tmp_path / "state.db", live=True, delete_hold=1.0) as engine:
        await engine.wait_idle()
        before = remote_files(dav)
        assert len(before) == 40
        f = engine.folder("docs")
        if how == "wipe contents":
            for p in list(folder.iterdir()):
                shutil.rmtree(p)
        elif how == "rename root away":
            folder.rename(tmp_path / "elsewhere")
        else:
            shutil.rmtree(folder)
            folder.mkdir()
        await wait_until(lambda: f.status().state in (FolderState.PAUSED, FolderState.ERROR))
        await asyncio.sleep(1.5)  # deletes are not propagated later either
        assert remote_files(dav) == before
        st = f.status()
        assert "40" in st.reason or "missing" in st.reason, st.reason
        if how == "rename root away":
            assert st.state is FolderState.ERROR and "missing" in st.reason
            (tmp_path / "elsewhere").rename(folder)  # the disk comes back
            await wait_until(lambda: f.status().state is FolderState.UP_TO_DATE)
            assert remote_files(dav) == before
            return
        assert st.state is FolderState.PAUSED and "deleted locally" in st.reason
        # What another process (`status`, `why`) reads: every held path, with the guard's reason.
        reader = StateDB(tmp_path / "state.db", readonly=True)
        try:
            held = reader.pending("docs")
        finally:
            reader.close()
        assert held and {p.status for p in held} == {"guard"}
        if how == "wipe contents":
            # Release by restoring the files locally from the remote.
            inodes = {p: p.stat().st_ino for p in (dav.root / "Docs").rglob("*")}
            restored = await f.restore_held()
            assert restored == 40
            await wait_until(lambda: f.status().state is FolderState.UP_TO_DATE)
            assert tree(folder) == tree(dav.root / "Docs")
            # Restored with the mtimes that were synced: nothing is sent back up again.
            await asyncio.sleep(0.5)
            await engine.wait_idle()
            assert {p: p.stat().st_ino for p in (dav.root / "Docs").rglob("*")} == inodes
        else:
            f.release_guard()  # "Delete on remote"
            await wait_until(lambda: f.status().state is FolderState.UP_TO_DATE)
            assert remote_files(dav) == {}


def test_guard_small_deletes_pass_and_cli_flag_releases(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, files(307))
    cfg = make_config(tmp_path, dav, folder)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    for i in range(3):
        (folder / f"d{i % 5}" / f"file {i}.txt").unlink()
    small = syncapp("--config", str(cfg), "run", "--once")
    assert small.returncode == 0, small.stderr
    assert len(remote_files(dav)) == 304
    for p in folder.rglob("*.txt"):
        if int(p.stem.split()[-1]) < 300:
            p.unlink()
    held = syncapp("--config", str(cfg), "run", "--once")
    assert held.returncode == 1
    assert held.stderr.count("\n") == 1
    assert "folder docs" in held.stderr and "297 of 304 files" in held.stderr
    assert len(remote_files(dav)) == 304
    why = syncapp("--config", str(cfg), "why", "docs", "d0/file 5.txt")
    assert "guard" in why.stdout
    status = syncapp("--config", str(cfg), "status", "docs")
    assert "paused by the delete guard" in status.stdout, status.stdout
    dry = syncapp("--config", str(cfg), "run", "--once", "--dry-run")
    assert "delete guard" in dry.stdout and "297 of 304" in dry.stdout, dry.stdout
    ok = syncapp("--config", str(cfg), "run", "--once", "--allow-mass-delete")
    assert ok.returncode == 0, ok.stderr
    assert len(remote_files(dav)) == 7


# -- versions and restore -----------------------------------------------------------------------


@every_server
def test_edit_and_delete_keep_versions_and_restore(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"notes/todo.txt": "version one", "gone.txt": "deleted later"})
    cfg = make_config(tmp_path, dav, folder)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    (folder / "notes/todo.txt").write_text("version two")
    (folder / "gone.txt").unlink()
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    assert not (dav.root / "Docs/gone.txt").exists()
    kept = tree(dav.root / "Docs" / VERSIONS_DIR, skip_reserved=False)
    assert hashlib.sha256(b"version one").hexdigest() in kept.values()

    listing = syncapp("--config", str(cfg), "versions", "docs", "notes/todo.txt")
    assert "kept version" in listing.stdout and "current remote copy" in listing.stdout

    res = syncapp("--config", str(cfg), "restore", "docs", "gone.txt")
    assert res.returncode == 0, res.stderr
    assert (folder / "gone.txt").read_text() == "deleted later"
    # An old version to another place; the live file is untouched.
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    res = syncapp(
        "--config",
        str(cfg),
        "restore",
        "docs",
        "notes/todo.txt",
        "--at",
        t,
        "--to",
        str(tmp_path / "old.txt"),
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "old.txt").read_text() == "version one"
    assert (folder / "notes/todo.txt").read_text() == "version two"
    # The restored file syncs like any edit; the versions area is never synced back or counted.
    again = syncapp("--config", str(cfg), "run", "--once")
    assert again.returncode == 0
    assert (dav.root / "Docs/gone.txt").read_text() == "deleted later"
    assert not (folder / VERSIONS_DIR).exists()
    status = syncapp("--config", str(cfg), "status", "--json")
    assert '"files_in_sync": 2' in status.stdout


@every_server
async def test_versions_pruned_by_age_with_a_fake_clock(tmp_path: Path, dav: ServerProcess) -> None:
    from syncapp.remotes import open_remote

    cfg = load(make_config(tmp_path, dav, tmp_path))
    now = [1_800_000_000.0]
    async with open_remote(cfg.remotes["r"]) as remote:
        await remote.mkdir("Docs")
        v = Versions(remote, "Docs", keep_seconds=30 * 86400, clock=lambda: now[0])

        async def body() -> object:
            yield b"x"

        for age_days in (40, 31, 29, 1):
            now[0] = 1_800_000_000.0 - age_days * 86400
            await remote.put("Docs/f.txt", body(), size=1)  # type: ignore[arg-type]
            await v.keep("f.txt", by_move=False)  # a copy: the original stays
        now[0] = 1_800_000_000.0
        assert await v.prune() == 2
        left = await v.list("f.txt", include_current=False)
        assert len(left) == 2


# -- why, dry run, bandwidth -------------------------------------------------------------------


def test_why_explains_each_reason(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"ok.txt": "ok", "build/out.o": "obj", "a.tmp": "tmp", "draft.txt.swp": "s"})
    cfg = make_config(tmp_path, dav, folder, 'ignore = ["*.tmp", "build/"]\n')
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0

    def why(path: str) -> str:
        res = syncapp("--config", str(cfg), "why", "docs", path)
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert "in sync since" in why("ok.txt")
    assert "in sync since" in why(str(folder / "ok.txt"))  # absolute paths work too
    ignored = why("a.tmp")  # one child process, not one per assertion
    assert "'*.tmp'" in ignored and "folder's ignore setting" in ignored
    assert "'build/'" in why("build/out.o")
    assert "default ignore list" in why("draft.txt.swp")
    assert "not known" in why("nothing-here.txt")
    # A name that is not UTF-8, given as the shell passes it (raw bytes) and as shown (escaped).
    bad = os.fsdecode(b"bad\xff name.txt")
    (folder / bad).write_text("bad")
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    assert "not valid UTF-8" in why(bad)
    assert "not valid UTF-8" in why("bad\\xff name.txt")
    (folder / bad).unlink()
    (folder / "new.txt").write_text("new")
    assert "not synced yet" in why("new.txt")
    (folder / "ok.txt").write_text("changed")
    assert "changed locally" in why("ok.txt")

    # A server that is down: the file waits to retry, and `why` says after which error.
    dav.stop()
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 1
    answer = why("new.txt")
    assert "refused" in answer or "unreachable" in answer, answer


def test_dry_run_changes_nothing(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, files(12))
    cfg = make_config(tmp_path, dav, folder)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    (folder / "d0" / "file 0.txt").write_text("edited")
    (folder / "d1" / "file 1.txt").unlink()
    (folder / "d2" / "file 2.txt").rename(folder / "d2" / "renamed.txt")
    (folder / "brand new").mkdir()
    (folder / "brand new" / "x.txt").write_text("x")

    state = Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"
    server_before = tree(dav.root, skip_reserved=False)
    state_before = hashlib.sha256(state.read_bytes()).hexdigest()
    res = syncapp("--config", str(cfg), "run", "--once", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "would upload 2, create 1 folders, move 1, delete 1" in res.stdout
    assert "d1/file 1.txt" in res.stdout and "d2/renamed.txt" in res.stdout
    js = syncapp("--config", str(cfg), "run", "--once", "--dry-run", "--json")
    assert js.stdout.count('"action"') == 5
    assert tree(dav.root, skip_reserved=False) == server_before
    assert hashlib.sha256(state.read_bytes()).hexdigest() == state_before


def test_bandwidth_limit_is_a_lower_bound_on_duration(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "two-mib.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    cfg = make_config(tmp_path, dav, folder)
    started = time.monotonic()
    res = syncapp("--config", str(cfg), "run", "--once", "--json", "--bwlimit", "1MiB/s")
    took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    # 2 MiB at 1 MiB/s with a one-second burst allowance: at least about one second.
    assert took >= 0.9, took
    # The limiter's own rate, from the engine's timing of the upload itself (not process
    # start-up, which alone can take a second on a loaded machine): the first MiB may go as a
    # burst, the second at 1 MiB/s. Unlimited, this upload takes a few ms on loopback.
    done = [
        e
        for e in map(json.loads, res.stdout.splitlines())
        if e["event"] == "JobFinished" and e["op"] == "upload"
    ]
    assert [e["path"] for e in done] == ["two-mib.bin"], res.stdout
    seconds = done[0]["seconds"]
    assert 0.9 <= seconds < 5.0, seconds


# -- conflicts ------------------------------------------------------------------------------------


@every_server
def test_remote_edit_is_never_overwritten_silently(tmp_path: Path, dav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"report.txt": "ours v1", "untouched.txt": "same"})
    cfg = make_config(tmp_path, dav, folder)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    # Someone edits the remote copy; we edit ours too.
    (dav.root / "Docs" / "report.txt").write_text("theirs, edited on the server")
    time.sleep(0.2)  # past rclone's directory cache
    (folder / "report.txt").write_text("ours v2")
    (folder / "untouched.txt").write_text("plain edit, no conflict")
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 0, res.stderr
    assert "conflict: report.txt changed remotely too" in res.stdout
    copies = list(folder.glob("report.conflict-*.txt"))
    assert len(copies) == 1 and copies[0].read_text() == "theirs, edited on the server"
    remote = dav.root / "Docs"
    assert (remote / "report.txt").read_text() == "ours v2"
    assert (remote / copies[0].name).read_text() == "theirs, edited on the server"
    assert (remote / "untouched.txt").read_text() == "plain edit, no conflict"
    assert not list(folder.glob("untouched.conflict-*"))
