"""kill -9 at random moments of a large sync, then one ``run --once``: the remote is exact.

While the first sync runs, a watcher thread (``TornWatch``, in tests.helpers) reads every file
that appears remotely under its real name: each must already hold the whole local content (never a
torn file). On rclone serve webdav (three seeds), Apache httpd and nginx (one each).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TornWatch, staging_leftovers, syncapp, tree
from tests.servers.dav_httpd import WEBDAV_PROCESSES


def _make_tree(folder: Path, rnd: random.Random) -> dict[str, str]:
    digests: dict[str, str] = {}
    for i in range(300):
        rel = f"d{i % 7}/sub {i % 3}/file #{i}.txt"
        data = rnd.randbytes(rnd.randint(0, 20_000))
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        digests[rel] = hashlib.sha256(data).hexdigest()
    for i in range(2):
        rel = f"big/large {i}.bin"
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with p.open("wb") as fh:
            for _ in range(24):
                block = rnd.randbytes(1024 * 1024)
                h.update(block)
                fh.write(block)
        digests[rel] = h.hexdigest()
    return digests


@pytest.mark.parametrize(
    ("kind", "seed"), [("rclone", 1), ("rclone", 2), ("rclone", 3), ("apache", 4), ("nginx", 5)]
)
def test_kill_9_mid_sync_then_once_is_exact(tmp_path: Path, kind: str, seed: int) -> None:
    rnd = random.Random(seed)
    folder = tmp_path / "docs"
    expected = _make_tree(folder, rnd)
    storage = tmp_path / "dav"
    with WEBDAV_PROCESSES[kind](storage) as server:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n\n'
            f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
        )
        remote = storage / "Docs"
        watch = TornWatch(remote, expected)
        watch.start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run", "--once"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rnd.uniform(0.4, 1.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Local changes while syncapp is down, after the crash.
        (folder / "d0" / "sub 0" / "file #0.txt").unlink()
        (folder / "d1" / "added after crash.txt").write_text("new")
        expected.pop("d0/sub 0/file #0.txt")
        res = syncapp("--config", str(cfg), "run", "--once", timeout=90)
        watch.stop.set()
        watch.join()
        assert res.returncode == 0, res.stderr + res.stdout
        assert watch.torn == []
        assert tree(remote) == tree(folder)
        assert staging_leftovers(storage) == []
        # And the state is honest: a further run has nothing to do.
        again = syncapp("--config", str(cfg), "run", "--once", "--json")
        assert again.returncode == 0
        assert '"JobFinished"' not in again.stdout, again.stdout[-2000:]
        assert os.path.exists(remote / "d1" / "added after crash.txt")
