"""``run --once`` on a two-way folder applies what a live engine applies, remote deletes included
(they need two looks that agree: a one-shot run takes the second look itself)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import syncapp, write_tree
from tests.integration.twoway_machines import Shared, config


def test_run_once_moves_a_remote_delete_to_the_trash(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shared = Shared("local", f'[remotes.r]\ntype = "local"\npath = "{store}"\n')
    cfg = config(tmp_path, shared, "a")
    folder = cfg.folders["docs"].path
    write_tree(folder, {f"f{i}.txt": f"file {i}\n" for i in range(12)})
    conf = str(cfg.path)
    first = syncapp("--config", conf, "run", "--once")
    assert first.returncode == 0, first.stderr + first.stdout
    assert (store / "Docs" / "f3.txt").exists()

    (store / "Docs" / "f3.txt").unlink()  # deleted on the remote (another machine)
    run = syncapp("--config", conf, "run", "--once", "--json")
    assert run.returncode == 0, run.stderr + run.stdout
    trashed = [e for e in map(json.loads, run.stdout.splitlines()) if e["event"] == "FileTrashed"]
    assert [e["path"] for e in trashed] == ["f3.txt"]
    assert not (folder / "f3.txt").exists()
    assert Path(trashed[0]["where"]).read_text() == "file 3\n"
    why = syncapp("--config", conf, "why", "docs", "f3.txt")
    assert "trash" in why.stdout, why.stdout
