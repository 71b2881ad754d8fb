"""Helpers shared by the tests: trees on disk, configs, comparing a local folder with a remote."""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from syncapp.config import Config, load_config

STAGING = ".syncapp-tmp-"
VERSIONS = ".syncapp-versions"


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        p.write_bytes(data)


def tree(root: Path, *, skip_reserved: bool = True, synced_only: bool = False) -> dict[str, str]:
    """``{relative path: sha256 or "<dir>"}`` for everything below ``root``.

    ``synced_only`` leaves out what syncapp's default ignore rules skip (a local folder's view).
    """
    from syncapp.ignore import IgnoreRules

    rules = IgnoreRules() if synced_only else None
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if skip_reserved:
            dirnames[:] = [d for d in dirnames if d != VERSIONS]
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel_dir, d))] = "<dir>"
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if rules is not None and rules.ignored(rel):
                continue
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
            except FileNotFoundError:
                continue  # a temporary upload renamed or removed while we walked
    return out


def staging_leftovers(root: Path) -> list[str]:
    return [k for k in tree(root, skip_reserved=False) if os.path.basename(k).startswith(STAGING)]


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``cond`` until true; the generous timeout only bounds a hung test, never asserts
    speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def config_text(
    remote: str,
    folders: Mapping[str, Path],
    *,
    remote_path: str = "",
    extra_folder: str = "",
) -> str:
    parts = [remote.strip() + "\n"]
    for name, path in folders.items():
        rp = remote_path or name
        parts.append(
            f'\n[folders.{name}]\npath = "{path}"\nremote = "r"\nremote_path = "{rp}"\n'
            + extra_folder
        )
    return "".join(parts)


def syncapp(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process (forked from a process that has imported
    syncapp already: see tests/forkserver.py)."""
    from tests.forkserver import FORK_SERVER

    full_env = {**os.environ, **(env or {})}
    if FORK_SERVER.usable_for(full_env):
        return FORK_SERVER.run(list(args), full_env, timeout, cwd)
    return subprocess.run(
        [sys.executable, "-m", "syncapp.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


# -- permission denied, also as root --------------------------------------------------------


def drop_dac_capabilities() -> None:
    """preexec_fn: drop CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2) from the bounding set,
    so that after exec even uid 0 obeys file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP failed")


def syncapp_without_dac(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncapp.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=drop_dac_capabilities if os.geteuid() == 0 else None,
    )


def can_drop_dac() -> bool:
    """Whether a child of ours can be kept from reading a ``chmod 0`` file of its own."""
    if os.geteuid() != 0:
        return True
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        probe = Path(d) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            res = subprocess.run(
                [sys.executable, "-c", f"open({str(probe)!r}).read()"],
                capture_output=True,
                preexec_fn=drop_dac_capabilities,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return res.returncode != 0 and b"PermissionError" in res.stderr


class TornWatch(threading.Thread):
    """Reads remote files (on the server's disk) under their real names while a sync runs and
    records every one whose content is not the expected whole (a torn file).

    ``expected`` maps a remote-relative path to the sha256 of its full content.
    """

    def __init__(self, remote: Path, expected: Mapping[str, str]) -> None:
        super().__init__(daemon=True)
        self.remote = remote
        self.expected = expected  # by reference: a test may drop paths it deletes meanwhile
        self.torn: list[str] = []
        self.checked: set[tuple[str, int]] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for rel, digest in list(self.expected.items()):
                p = self.remote / rel
                try:
                    st = p.stat()
                    key = (rel, st.st_mtime_ns)
                    if key in self.checked:
                        continue
                    data = p.read_bytes()
                except OSError:
                    continue
                if hashlib.sha256(data).hexdigest() != digest:
                    self.torn.append(f"{rel}: {len(data)} bytes")
                self.checked.add(key)
            time.sleep(0.01)


@dataclass
class Setup:
    root: Path
    config_path: Path
    remote_dir: Path
    docs: Path

    def config(self) -> Config:
        return load_config(self.config_path)

    def folder(self, name: str, files: dict[str, str] | None = None) -> Path:
        """A local folder with some files, not in the config."""
        path = self.root / name
        for rel, text in (files or {"a.txt": "a"}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        path.mkdir(exist_ok=True)
        return path


CONFIG = """\
# syncapp test config: comments must survive edits from the UI
[remotes.box]  # a local folder as the remote
type = "local"
path = "{remote}"

# the documents
[folders.docs]
path = "{docs}"
remote = "box"
remote_path = "docs"
"""


def make_setup(tmp_path: Path) -> Setup:
    """A config with one local remote and one folder of two files, for the config editors."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("alpha")
    (docs / "sub" / "b.txt").write_text("beta")
    remote = tmp_path / "remote"
    remote.mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG.format(remote=remote, docs=docs))
    return Setup(tmp_path, config_path, remote, docs)
