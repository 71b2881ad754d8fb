"""Fixtures for the UI tests: isolated user dirs, a local-remote config, and a wait helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.helpers import Setup, make_setup

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


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)
