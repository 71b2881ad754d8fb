"""Fixtures for tests against real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.backends import BACKENDS, Backend, BackendContext
from tests.servers.webdav import ServerProcess, rclone_webdav_process, wsgidav_process


@pytest.fixture(scope="session")
def backend_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendContext]:
    """Shared servers for the session (started on first use) and fresh roots for each test."""
    ctx = BackendContext(tmp_path_factory.mktemp("backends"))
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(params=list(BACKENDS))
def remote_backend(request: pytest.FixtureRequest, backend_context: BackendContext) -> Backend:
    """One backend from ``BACKENDS`` with a fresh, empty root for this test."""
    return BACKENDS[request.param](backend_context)


@pytest.fixture
def wsgidav(tmp_path: Path) -> Iterator[ServerProcess]:
    """A WsgiDAV process of this test's own (stop/start it at will), serving ``tmp_path/dav``."""
    with wsgidav_process(tmp_path / "dav") as server:
        yield server


@pytest.fixture
def rclone_webdav(tmp_path: Path) -> Iterator[ServerProcess]:
    """An ``rclone serve webdav`` process of this test's own, serving ``tmp_path/rclone``."""
    with rclone_webdav_process(tmp_path / "rclone") as server:
        yield server
