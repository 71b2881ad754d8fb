"""End to end: the UI adds a folder and the engine syncs it to a real WebDAV server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from syncapp.config import load_config
from syncapp.engine import FolderState
from syncapp.tui.app import SyncApp
from syncapp.tui.forms import FolderForm
from tests.servers.webdav import ServerProcess, rclone_binary, rclone_webdav_server, wsgidav_server
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import type_text


def _has_rclone() -> bool:
    try:
        rclone_binary()
    except RuntimeError:
        return False
    return True


SERVERS: list[object] = [
    pytest.param(wsgidav_server, id="wsgidav"),
    pytest.param(
        rclone_webdav_server,
        id="rclone",
        marks=pytest.mark.skipif(not _has_rclone(), reason="rclone not installed"),
    ),
]


@pytest.fixture(params=SERVERS)
def dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    factory: Callable[[Path], AbstractContextManager[ServerProcess]] = request.param
    root = tmp_path / "server"
    with factory(root) as server:
        yield server, root


async def test_ui_adds_a_folder_and_it_reaches_the_webdav_server(
    dav: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, root = dav
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "e.txt").write_text("already configured")
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        "# my WebDAV server\n"
        f'[remotes.nas]\ntype = "webdav"\nurl = "{server.url}"\n\n'
        f'[folders.existing]\npath = "{existing}"\nremote = "nas"\nremote_path = "existing"\n'
    )
    reports = tmp_path / "Quarterly Reports"
    (reports / "2024").mkdir(parents=True)
    (reports / "q1.txt").write_text("q1")
    (reports / "2024" / "q2 draft.txt").write_text("q2")

    app = SyncApp(load_config(config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        views = app.dashboard.folders.views
        await wait_for(
            pilot, lambda: views["existing"].state is FolderState.UP_TO_DATE, "existing synced"
        )
        assert (root / "existing/e.txt").read_text() == "already configured"

        await pilot.press("a")
        assert isinstance(app.screen, FolderForm)
        await type_text(pilot, str(reports))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.dashboard, "form closed")

        text = config_path.read_text()
        assert "[folders.Quarterly-Reports]" in text and "# my WebDAV server" in text
        assert load_config(config_path).folders["Quarterly-Reports"].remote_path == (
            "Quarterly Reports"
        )
        target = root / "Quarterly Reports"
        await wait_for(pilot, lambda: (target / "2024/q2 draft.txt").exists(), "files on server")
        assert (target / "q1.txt").read_text() == "q1"
        view = views["Quarterly-Reports"]
        await wait_for(pilot, lambda: view.state is FolderState.UP_TO_DATE, "panel up to date")
        assert app.dashboard.folders.panel("Quarterly-Reports") is not None
        # And it stays live.
        (reports / "q3.txt").write_text("q3")
        await wait_for(pilot, lambda: (target / "q3.txt").exists(), "live change on server")
        await pilot.press("q")
    assert app.engine is None
