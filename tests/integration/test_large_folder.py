"""A large folder in the default suite: 20,000 files in 200 folders, first sync, a no-change
run, then a few edits, deletes and additions among them. Against the ``local`` remote (the
reference backend), so the time is the engine's, not a server's."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import staging_leftovers, syncapp, tree

FILES = 20_000


def test_folder_of_20000_files(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    for d in range(200):
        sub = folder / f"dir {d:03}"
        sub.mkdir(parents=True)
        for i in range(FILES // 200):
            (sub / f"f{i:03}.txt").write_bytes(b"%d/%d" % (d, i))
    storage = tmp_path / "remote"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "local"\npath = "{storage}"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
    )
    remote = storage / "Docs"
    started = time.monotonic()
    first = syncapp("--config", str(cfg), "run", "--once", timeout=300)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stderr[-2000:]
    assert sum(1 for _ in remote.rglob("*.txt")) == FILES
    assert tree(remote) == tree(folder)

    started = time.monotonic()
    again = syncapp("--config", str(cfg), "run", "--once", "--json", timeout=300)
    second = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert '"JobFinished"' not in again.stdout  # nothing to do: no request, no upload

    # A few changes scattered among the 20,000: exactly those are sent.
    for d in range(0, 200, 20):
        (folder / f"dir {d:03}" / "f000.txt").write_text("edited")
        (folder / f"dir {d:03}" / "f001.txt").unlink()
        (folder / f"dir {d:03}" / "new.txt").write_text("new")
    third = syncapp("--config", str(cfg), "run", "--once", "--json", timeout=300)
    assert third.returncode == 0, third.stderr
    done = [json.loads(line) for line in third.stdout.splitlines()]
    ops = sorted((e["op"], e["path"].split("/")[1]) for e in done if e["event"] == "JobFinished")
    assert ops == sorted(
        [("delete", "f001.txt")] * 10 + [("upload", "f000.txt")] * 10 + [("upload", "new.txt")] * 10
    ), ops
    assert tree(remote) == tree(folder)
    assert staging_leftovers(storage) == []
    print(f"\n{FILES:,} files: first sync {took:.1f} s, no-change run {second:.1f} s")
