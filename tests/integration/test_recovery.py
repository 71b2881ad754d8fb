"""Issue 12's bugs, replayed against real remotes: no stuck state, every failure recovers or says
one line, and what an overwrite replaces is kept."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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
