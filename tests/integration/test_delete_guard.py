"""The delete guard's edges, as the README states them: never for fewer than 10 files, the count
form (`max_delete = 100`), a root on another device (an unmounted disk) and a root replaced by a
file. Against the ``local`` remote (the reference backend): the guard is the engine's, not the
server's, and these runs need hundreds of files.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.engine import FolderState, SyncEngine
from tests.helpers import syncapp, tree, write_tree


def files(n: int) -> dict[str, str]:
    return {f"d{i % 5}/file {i}.txt": f"content {i}" for i in range(n)}


def write_config(tmp_path: Path, folders: dict[str, tuple[Path, str]]) -> Path:
    remote = tmp_path / "remote"
    remote.mkdir(exist_ok=True)
    text = f'[remotes.r]\ntype = "local"\npath = "{remote}"\n'
    for name, (path, extra) in folders.items():
        text += f'\n[folders.{name}]\npath = "{path}"\nremote = "r"\nremote_path = "{name}"\n'
        text += extra
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    return cfg


def remote_files(tmp_path: Path, name: str) -> set[str]:
    return {k for k, v in tree(tmp_path / "remote" / name).items() if v != "<dir>"}


def delete_first(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"d{i % 5}" / f"file {i}.txt").unlink()


def test_floor_and_count_form(tmp_path: Path) -> None:
    # floor: 9 of 12 deleted (75 %, over the default 50 %) passes, 10 of 12 trips.
    # count: max_delete = 100 holds 101 of 250 (40 %, under 50 %) and lets 99 of 150 (66 %) go.
    setup = {
        "floor9": (12, "", 9),
        "floor10": (12, "", 10),
        "count101": (250, "max_delete = 100\n", 101),
        "count99": (150, "max_delete = 100\n", 99),
    }
    folders = {}
    for name, (n, extra, _) in setup.items():
        write_tree(tmp_path / name, files(n))
        folders[name] = (tmp_path / name, extra)
    cfg = write_config(tmp_path, folders)
    first = syncapp("--config", str(cfg), "run", "--once")
    assert first.returncode == 0, first.stderr
    for name, (n, _, deletes) in setup.items():
        assert len(remote_files(tmp_path, name)) == n
        delete_first(tmp_path / name, deletes)

    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 1, res.stderr
    held = sorted(line.split()[2].rstrip(":") for line in res.stderr.splitlines())
    assert held == ["count101", "floor10"], res.stderr
    assert "10 of 12 files" in res.stderr and "101 of 250 files" in res.stderr, res.stderr
    assert len(remote_files(tmp_path, "floor9")) == 3
    assert len(remote_files(tmp_path, "floor10")) == 12
    assert len(remote_files(tmp_path, "count101")) == 250
    assert len(remote_files(tmp_path, "count99")) == 51


def test_root_on_another_device_deletes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, files(20))
    cfg = write_config(tmp_path, {"docs": (folder, "")})
    assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
    # Another disk mounted on the root, holding most of the files (5 missing: under the guard's
    # floor, so only the device check stands between them and a remote delete).
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        delete_first(folder, 5)
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "another device" in res.stderr, res.stderr
        assert len(remote_files(tmp_path, "docs")) == 20
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    # The disk is back: syncing goes on, nothing was lost.
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 0, res.stderr
    assert len(remote_files(tmp_path, "docs")) == 20


async def test_root_replaced_by_a_file_deletes_nothing_live(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, files(20))
    cfg_path = write_config(tmp_path, {"docs": (folder, "")})
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    async with SyncEngine(cfg, tmp_path / "state.db", live=True, delete_hold=0.3) as engine:
        await engine.wait_idle()
        f = engine.folder("docs")
        assert len(remote_files(tmp_path, "docs")) == 20
        shutil.rmtree(folder)
        folder.write_text("a file where the folder was")
        deadline = time.monotonic() + 30
        while f.status().state is not FolderState.ERROR:
            assert time.monotonic() < deadline, f.status()
            await asyncio.sleep(0.05)
        assert "not a folder" in f.status().reason, f.status().reason
        f.rescan()  # a rescan in this state deletes nothing either
        await asyncio.sleep(1.0)
        assert len(remote_files(tmp_path, "docs")) == 20
        assert f.status().state is FolderState.ERROR
