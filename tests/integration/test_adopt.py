"""A first run against a filled remote on a server that keeps no mtimes: identical files are
adopted without an upload, a same-size file that differs is never taken for identical."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.helpers import config_text, syncapp, write_tree
from tests.servers.webdav import ServerProcess


def test_first_run_proves_sameness_by_content(tmp_path: Path, wsgidav: ServerProcess) -> None:
    folder = tmp_path / "docs"
    files = {f"f{i}.txt": f"same content {i}" for i in range(20)}
    write_tree(folder, {**files, "differs.txt": "local words"})
    # The remote was filled after the local edits (as another machine's upload would be):
    # by timing alone every file would pass for identical.
    old = time.time() - 3600
    for p in folder.iterdir():
        os.utime(p, (old, old))
    write_tree(wsgidav.root / "docs", {**files, "differs.txt": "other words"})
    cfg = tmp_path / "config.toml"
    # send_mtime = false: the server is taken to keep no mtimes, as nginx and Apache.
    cfg.write_text(
        config_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{wsgidav.url}"\nsend_mtime = false\n',
            {"docs": folder},
        )
    )
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 0, res.stderr
    uploaded = [line for line in res.stdout.splitlines() if ": uploaded " in line]
    assert len(uploaded) == 1 and "differs.txt" in uploaded[0], res.stdout
    assert (wsgidav.root / "docs" / "differs.txt").read_text() == "local words"
    kept = list((wsgidav.root / "docs" / ".syncapp-versions" / "differs.txt").iterdir())
    assert [p.read_text() for p in kept] == ["other words"]
