"""Issue 12's bugs, replayed against real remotes: no stuck state, every failure recovers or says
one line, and what an overwrite replaces is kept."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.engine import FolderState, SyncEngine
from tests.helpers import syncapp, tree, write_tree


def _local_config(tmp_path: Path, folder: Path, storage: Path, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "local"\npath = "{storage}"\n'
        f'\n[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n{extra}',
        encoding="utf-8",
    )
    return cfg


# -- bug 1: a path that becomes ignored is forgotten, never held ----------------------------------


def test_newly_ignored_path_is_forgotten_not_held(tmp_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "remote"
    storage.mkdir()
    write_tree(folder, {"a.txt": "a", "x.tmp": "tmp", "cache/c.bin": "c", "keep/k.txt": "k"})
    cfg = _local_config(tmp_path, folder, storage)
    first = syncapp("--config", str(cfg), "run", "--once")
    assert first.returncode == 0, first.stderr + first.stdout
    assert (storage / "Docs" / "x.tmp").exists()

    _local_config(tmp_path, folder, storage, 'ignore = ["*.tmp", "cache/"]\n')
    second = syncapp("--config", str(cfg), "run", "--once", timeout=30)
    assert second.returncode == 0, second.stderr + second.stdout
    # Said once, in the log; the remote copies are left alone.
    assert second.stdout.count("x.tmp") == 1, second.stdout
    assert "ignored" in second.stdout and "cache" in second.stdout, second.stdout
    assert (storage / "Docs" / "x.tmp").read_text() == "tmp"
    assert (storage / "Docs" / "cache" / "c.bin").read_text() == "c"

    status = syncapp("--config", str(cfg), "status", "--pending", "--json")
    info = json.loads(status.stdout)["docs"]
    assert info["paths"] == [], info
    assert info["files_in_sync"] == 2

    # Forgotten for good: the next run (a restart) has nothing to say about it.
    third = syncapp("--config", str(cfg), "run", "--once", timeout=60)
    assert third.returncode == 0, third.stderr + third.stdout
    assert "x.tmp" not in third.stdout


async def test_newly_ignored_path_never_holds_a_live_folder(tmp_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "remote"
    storage.mkdir()
    write_tree(folder, {"a.txt": "a", "x.tmp": "tmp"})
    cfg_path = _local_config(tmp_path, folder, storage)
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    async with SyncEngine(cfg, tmp_path / "state.db", live=True) as engine:
        await asyncio.wait_for(engine.wait_idle(), 30)
    _local_config(tmp_path, folder, storage, 'ignore = ["*.tmp"]\n')
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    async with SyncEngine(cfg, tmp_path / "state.db", live=True, delete_hold=0.1) as engine:
        await asyncio.wait_for(engine.wait_idle(), 30)
        st = engine.status()["docs"]
        assert st.state is FolderState.UP_TO_DATE and st.queued == 0, st
        engine.rescan("docs")
        await asyncio.sleep(0.5)
        await asyncio.wait_for(engine.wait_idle(), 30)
        st = engine.status()["docs"]
        assert st.state is FolderState.UP_TO_DATE and st.queued == 0, st
        assert engine.folder("docs").pending() == []
    assert "x.tmp" in tree(storage / "Docs")


# -- bug 3: state-database trouble and a full disk are one line, exit 2, nothing sent ------------


def _state_path() -> Path:
    from syncapp.engine import default_state_path

    return default_state_path()


def _one_line_error(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 2, res.stderr + res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]


@contextlib.contextmanager
def _small_tmpfs(where: Path, size: str, *, readonly: bool = False) -> Iterator[Path]:
    """A real filesystem of ``size`` at ``where`` (root only; skipped where mounting is not
    permitted, e.g. an unprivileged container)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _remount_readonly(where: Path) -> None:
    res = subprocess.run(
        ["mount", "-o", "remount,ro", str(where)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only: {res.stderr.strip()}")


def test_damaged_state_database_is_one_line_then_reset_adopts(tmp_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "remote"
    storage.mkdir()
    write_tree(folder, {"a.txt": "a", "sub/b.txt": "b"})
    cfg = _local_config(tmp_path, folder, storage)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    db = _state_path()
    with open(db, "r+b") as fh:
        fh.write(b"\xde\xad junk " * 10)  # the first 100 bytes: the header is gone
    write_tree(folder, {"new.txt": "new"})

    for args in (("run", "--once"), ("status",), ("why", "docs", "a.txt"), ("state",)):
        res = syncapp("--config", str(cfg), *args)
        _one_line_error(res, str(db), "state --reset")
    assert not (storage / "Docs" / "new.txt").exists()  # nothing sent

    reset = syncapp("--config", str(cfg), "state", "--reset")
    assert reset.returncode == 0, reset.stderr
    aside = list(db.parent.glob("state.db.broken-*"))
    assert [p.name for p in aside if not p.name.endswith(("-wal", "-shm"))], aside
    assert str(aside[0].parent) in reset.stdout and "broken-" in reset.stdout, reset.stdout
    assert not db.exists()

    again = syncapp("--config", str(cfg), "run", "--once", "--json")
    assert again.returncode == 0, again.stderr
    uploads = [
        json.loads(line)["path"]
        for line in again.stdout.splitlines()
        if '"JobFinished"' in line and '"upload"' in line
    ]
    assert uploads == ["new.txt"], uploads  # the rest was adopted, not sent again


def test_read_only_state_folder_is_one_line(tmp_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "remote"
    storage.mkdir()
    write_tree(folder, {"a.txt": "a"})
    cfg = _local_config(tmp_path, folder, storage)
    db = _state_path()
    if os.geteuid() != 0:
        # Permissions bind everyone but root: a read-only folder and file are enough here.
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        write_tree(folder, {"new.txt": "new"})
        db.chmod(0o444)
        db.parent.chmod(0o555)
        try:
            res = syncapp("--config", str(cfg), "run", "--once")
        finally:
            db.parent.chmod(0o755)
            db.chmod(0o644)
        _one_line_error(res, str(db), "read-only")
        assert not (storage / "Docs" / "new.txt").exists()
        return
    # Root writes through permissions: a read-only filesystem says no to root too.
    with _small_tmpfs(db.parent, "4m"):
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        write_tree(folder, {"new.txt": "new"})
        _remount_readonly(db.parent)
        res = syncapp("--config", str(cfg), "run", "--once")
        _one_line_error(res, str(db), "read-only")
        assert not (storage / "Docs" / "new.txt").exists()


def test_restore_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "remote"
    storage.mkdir()
    write_tree(folder, {"big.bin": os.urandom(3 * 1024 * 1024)})
    cfg = _local_config(tmp_path, folder, storage)
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    with _small_tmpfs(tmp_path / "small", "1m") as small:
        dest = small / "big.bin"
        res = syncapp("--config", str(cfg), "restore", "docs", "big.bin", "--to", str(dest))
        _one_line_error(res, str(dest), "no space left")
        assert list(small.iterdir()) == []  # no temp file, no half-written file


# -- bug 4: after the state is lost, an overwrite still keeps what it replaces ------------------


def test_overwrite_after_state_loss_keeps_a_version(tmp_path: Path) -> None:
    from tests.servers.faultproxy import FaultProxy
    from tests.servers.webdav import wsgidav_process

    folder = tmp_path / "docs"
    same = {f"same/{i}.txt": f"same {i}" for i in range(20)}
    write_tree(folder, {"a.txt": "first", **same})
    with wsgidav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}"\n'
            f'\n[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n',
            encoding="utf-8",
        )
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        db = _state_path()
        for p in db.parent.glob("state.db*"):
            p.unlink()  # the state is lost
        (srv.root / "Docs" / "a.txt").write_text("edited remotely, never synced here")
        (folder / "a.txt").write_text("edited locally")
        proxy.reset_records()
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr + res.stdout
        counts = proxy.counts()
        assert (srv.root / "Docs" / "a.txt").read_text() == "edited locally"

        listed = syncapp("--config", str(cfg), "versions", "docs", "a.txt", "--json")
        kept = [v for v in json.loads(listed.stdout) if not v["current"]]
        assert len(kept) == 1, listed.stdout
        out = tmp_path / "kept.txt"
        back = syncapp(
            "--config", str(cfg), "restore", "docs", "a.txt", "--at", "2000-01-01", "--to", str(out)
        )
        assert back.returncode == 0, back.stderr
        assert out.read_text() == "edited remotely, never synced here"
    # One version kept, for the one file that differed; the listing told us the rest (no
    # request per file).
    assert counts["COPY"] == 1, counts
    assert counts["PROPFIND"] < 10, counts
