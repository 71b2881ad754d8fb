"""Fixtures for the UI tests: isolated user dirs, a local-remote config, and a wait helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from syncapp.config import Config, load_config

#: Generous: the machine may be busy; the loops end as soon as the condition holds.
WAIT = 30.0


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does may touch the real config, state or data directories."""
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    monkeypatch.delenv("SYNCAPP_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def demo_servers_stopped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that fails before its app quits must not leave the demo's WsgiDAV serving: its
    worker threads would keep pytest from exiting after the summary."""
    from syncapp.davserver import DavServer

    started: list[DavServer] = []
    original = DavServer.start

    def start(self: DavServer) -> None:
        original(self)
        started.append(self)

    monkeypatch.setattr(DavServer, "start", start)
    yield
    for server in started:
        server.stop()


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, limit: float = WAIT
) -> None:
    """Let the app run until ``condition()`` is true (bounded; no timing is asserted)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


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


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("alpha")
    (docs / "sub" / "b.txt").write_text("beta")
    remote = tmp_path / "remote"
    remote.mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG.format(remote=remote, docs=docs))
    yield Setup(tmp_path, config_path, remote, docs)
