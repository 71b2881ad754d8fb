"""The engine end to end, through the real command line and in-process, against real servers.

Each target is a real remote whose storage is a directory we can read directly: the ``local``
backend, WsgiDAV, ``rclone serve webdav``, Apache httpd (mod_dav_fs) and nginx (dav + dav-ext).
"Exact" means the remote directory holds the same paths with the same bytes as the local folder,
and no temporary upload names.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.engine import FolderState, SyncEngine
from tests.helpers import (
    can_drop_dac,
    staging_leftovers,
    syncapp,
    syncapp_without_dac,
    tree,
    wait_for,
    write_tree,
)
from tests.servers.dav_httpd import WEBDAV_PROCESSES
from tests.servers.webdav import ServerProcess, rclone_webdav_process, wsgidav_process

ODD_NAMES: dict[str, bytes | str] = {
    "plain.txt": "plain",
    "with space.txt": "space",
    "hash#tag.txt": "hash",
    "100%.txt": "percent",
    "what?.txt": "question",
    "a&b+c.txt": "amp plus",
    "café/naïve résumé.md": "unicode",
    "日本語/ファイル.txt": "cjk",
    "empty.txt": b"",
    "deep/er/and/deeper/file.bin": os.urandom(3000),
    "a%2Fb.txt": "encoded slash stays a name",
    "back\\slash.txt": "backslash is a name on POSIX",
}


@dataclass
class Target:
    name: str
    remote_toml: str
    storage: Path
    server: ServerProcess | None = None

    def remote_dir(self, remote_path: str) -> Path:
        return self.storage / remote_path if remote_path else self.storage


@pytest.fixture(params=["local", "wsgidav", "rclone", "apache", "nginx"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    kind = request.param
    storage = tmp_path / f"remote-{kind}"
    storage.mkdir()
    if kind == "local":
        yield Target(kind, f'[remotes.r]\ntype = "local"\npath = "{storage}"\n', storage)
        return
    with WEBDAV_PROCESSES[kind](storage) as server:
        toml = f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n'
        yield Target(kind, toml, storage, server)


def write_config(tmp_path: Path, target: Target, folder: Path, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        target.remote_toml
        + f'\n[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n{extra}',
        encoding="utf-8",
    )
    return cfg


def assert_exact(local: Path, remote: Path) -> None:
    assert tree(remote) == tree(local, synced_only=True)
    assert staging_leftovers(remote) == []


def test_once_mirrors_odd_names_and_is_idempotent(tmp_path: Path, target: Target) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, ODD_NAMES)
    (folder / "empty dir").mkdir()
    cfg = write_config(tmp_path, target, folder)

    first = syncapp("--config", str(cfg), "run", "--once")
    assert first.returncode == 0, first.stderr + first.stdout
    assert_exact(folder, target.remote_dir("Docs"))

    again = syncapp("--config", str(cfg), "run", "--once", "--json")
    assert again.returncode == 0, again.stderr
    assert '"JobFinished"' not in again.stdout  # nothing to do the second time

    # Edits, deletes, a rename and a file replaced by a folder, all while not running.
    (folder / "plain.txt").write_text("edited")
    (folder / "hash#tag.txt").unlink()
    shutil.rmtree(folder / "日本語")
    (folder / "café").rename(folder / "cafe renamed")
    (folder / "what?.txt").unlink()
    (folder / "what?.txt").mkdir()
    (folder / "what?.txt" / "inside.txt").write_text("now a folder")
    third = syncapp("--config", str(cfg), "run", "--once")
    assert third.returncode == 0, third.stderr + third.stdout
    assert_exact(folder, target.remote_dir("Docs"))

    status = syncapp("--config", str(cfg), "status", "--json")
    assert status.returncode == 0
    assert '"files_in_sync": ' in status.stdout


def test_first_run_adopts_identical_remote_files(tmp_path: Path, target: Target) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"same.txt": "same", "differs.txt": "local version", "new.txt": "new"})
    remote = target.remote_dir("Docs")
    write_tree(remote, {"same.txt": "same", "differs.txt": "remote version!!", "extra.txt": "x"})
    if target.server is not None:
        target.server.hand_over()  # as if the server's user had written them
    # Remote copies written after the local ones (servers that ignore X-OC-Mtime compare so).
    cfg = write_config(tmp_path, target, folder)
    res = syncapp("--config", str(cfg), "run", "--once", "--json")
    assert res.returncode == 0, res.stderr
    uploaded = {
        line for line in res.stdout.splitlines() if '"op": "upload"' in line and "Finished" in line
    }
    assert not any('"same.txt"' in line for line in uploaded)
    assert (remote / "differs.txt").read_text() == "local version"
    # A first run never deletes what was already on the remote.
    assert (remote / "extra.txt").exists()


async def _wait_state(engine: SyncEngine, state: FolderState, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while engine.status()["docs"].state is not state:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def _wait_exact(local: Path, remote: Path, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while tree(remote) != tree(local, synced_only=True) or staging_leftovers(remote):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        assert_exact(local, remote)  # shows the difference


async def test_live_mode_mirrors_changes(tmp_path: Path, target: Target) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"start.txt": "start"})
    cfg = parse_config(write_config(tmp_path, target, folder).read_text(), tmp_path / "c.toml")
    remote = target.remote_dir("Docs")
    async with SyncEngine(cfg, tmp_path / "state.db", live=True) as engine:
        await engine.wait_idle()
        await _wait_exact(folder, remote)

        write_tree(folder, {"new/nested/deep.txt": "deep", "top.txt": "top", "odd #%?.txt": "odd"})
        await _wait_exact(folder, remote)

        (folder / "top.txt").write_text("top, edited")
        (folder / "start.txt").unlink()
        await _wait_exact(folder, remote)

        (folder / "new").rename(folder / "renamed")
        await _wait_exact(folder, remote)
        (folder / "renamed" / "nested" / "deep.txt").rename(folder / "moved-up.txt")
        await _wait_exact(folder, remote)

        # Editor temp files never reach the remote.
        (folder / ".report.txt.swp").write_text("swap")
        (folder / "report.txt").write_text("saved")
        await _wait_exact(folder, remote)
        await _wait_state(engine, FolderState.UP_TO_DATE)


async def test_live_mode_survives_server_restart(tmp_path: Path) -> None:
    storage = tmp_path / "dav"
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    with rclone_webdav_process(storage) as server:
        toml = f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n'
        target = Target("rclone", toml, storage, server)
        cfg = parse_config(write_config(tmp_path, target, folder).read_text(), tmp_path / "c.toml")
        remote = target.remote_dir("Docs")
        async with SyncEngine(cfg, tmp_path / "state.db", live=True) as engine:
            await engine.wait_idle()
            await _wait_exact(folder, remote)
            server.stop()
            write_tree(folder, {"while-down.txt": "written while the server was down"})
            await _wait_state(engine, FolderState.OFFLINE)
            server.start()
            await _wait_exact(folder, remote, timeout=60)
            await _wait_state(engine, FolderState.UP_TO_DATE)


def test_large_file_streams_with_flat_memory(tmp_path: Path) -> None:
    storage = tmp_path / "dav"
    folder = tmp_path / "docs"
    folder.mkdir()
    big = folder / "big.bin"
    block = os.urandom(1024 * 1024)
    with big.open("wb") as fh:
        for _ in range(50):
            fh.write(block)
    with rclone_webdav_process(storage) as server:
        target = Target("rclone", f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n', storage)
        cfg = write_config(tmp_path, target, folder)
        # VmHWM, not ru_maxrss: the latter survives exec and would count pytest's own memory.
        probe = (
            "import sys, runpy; sys.argv = ['syncapp', '--config', sys.argv[1], 'run',"
            " '--once']\ntry:\n    runpy.run_module('syncapp.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    code = e.code\n"
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print('MAXRSS', hwm, code)"
        )
        res = subprocess.run(
            [sys.executable, "-c", probe, str(cfg)], capture_output=True, text=True, timeout=120
        )
        assert "MAXRSS" in res.stdout, res.stderr
        rss_kib, code = res.stdout.split("MAXRSS")[1].split()
        assert code == "0", res.stdout + res.stderr
        assert_exact(folder, storage / "Docs")
        # The whole process, interpreter and libraries included, stays far below the file size
        # plus overhead: the file is streamed, never loaded.
        assert int(rss_kib) < 120 * 1024, f"peak RSS {int(rss_kib) // 1024} MiB"


def test_wrong_password_is_one_clear_error(tmp_path: Path) -> None:
    storage = tmp_path / "dav"
    folder = tmp_path / "docs"
    write_tree(folder, {f"f{i}.txt": str(i) for i in range(20)})
    with wsgidav_process(storage, auth=("alice", "right-password")) as server:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\nusername = "alice"\n'
            f'password_env = "DAV_PW"\n\n[folders.docs]\npath = "{folder}"\nremote = "r"\n'
        )
        res = syncapp("--config", str(cfg), "run", "--once", env={"DAV_PW": "wrong-secret"})
    assert res.returncode == 1
    assert "wrong-secret" not in res.stdout + res.stderr
    assert "401" in res.stderr
    assert "folder docs" in res.stderr
    # One failed request stops the folder: no retry storm of 20 uploads.
    assert res.stdout.count("failed") <= 3


def test_unreachable_server_fails_once_run_clearly(tmp_path: Path) -> None:
    from tests.servers import free_port

    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "webdav"\nurl = "http://127.0.0.1:{free_port()}/"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\n'
    )
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 1
    assert "folder docs" in res.stderr and "refused" in res.stderr


def test_symlinks_and_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    storage = tmp_path / "store"
    folder = tmp_path / "docs"
    write_tree(folder, {"ok.txt": "ok", "secret.txt": "secret"})
    (folder / "link").symlink_to(folder / "ok.txt")
    (folder / "broken").symlink_to(folder / "missing")
    os.mkfifo(folder / "pipe")
    bad = os.fsencode(str(folder)) + b"/bad-\xff-name.txt"
    with open(bad, "wb") as fh:
        fh.write(b"latin-1 name")
    os.chmod(folder / "secret.txt", 0)
    target = Target("local", f'[remotes.r]\ntype = "local"\npath = "{storage}"\n', storage)
    cfg = write_config(tmp_path, target, folder)
    # Root reads anything: as root the run goes without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
    # (dropped from the child's bounding set), so the chmod 0 file is unreadable to it too.
    if not can_drop_dac():
        pytest.skip("root without CAP_SETPCAP: cannot make a file unreadable to syncapp")
    try:
        res = syncapp_without_dac("--config", str(cfg), "run", "--once")
        out = res.stdout + res.stderr
        assert (storage / "Docs" / "ok.txt").read_text() == "ok"
        assert "symbolic link" in out and "not valid UTF-8" in out
        assert res.returncode == 1 and "permission denied" in out
        assert not (storage / "Docs" / "secret.txt").exists()
        why = syncapp("--config", str(cfg), "why", "docs", "link")
        assert "symbolic link" in why.stdout
    finally:
        os.chmod(folder / "secret.txt", 0o644)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_live_run_mirrors_then_stops_cleanly_on_signal(tmp_path: Path, sig: int) -> None:
    storage = tmp_path / "store"
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    target = Target("local", f'[remotes.r]\ntype = "local"\npath = "{storage}"\n', storage)
    cfg = write_config(tmp_path, target, folder)
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        remote = storage / "Docs"
        assert wait_for(lambda: (remote / "a.txt").exists())
        write_tree(folder, {"later/b.txt": "b"})
        assert wait_for(lambda: (remote / "later" / "b.txt").exists())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["event"] == "JobFinished" and e["path"] == "later/b.txt" for e in events)
    assert_exact(folder, storage / "Docs")


def test_demo_headless_syncs_its_samples_live(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncapp.cli", "demo", "--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        data = Path(os.environ["XDG_DATA_HOME"]) / "syncapp" / "demo"
        server = data / "server" / "demo"
        assert wait_for(lambda: (server / "live" / "deeper" / "nested.txt").exists(), 60)
        assert (server / "README.txt").exists()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "WebDAV server http://127.0.0.1:" in out
    assert tree(server) == tree(data / "folder", synced_only=True)
