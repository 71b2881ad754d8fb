"""The delete guard's dialog with a real engine: keep paused, restore the files locally, delete on
the remote — against a local remote and against a real WebDAV server (WsgiDAV)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncapp.config import load_config
from syncapp.engine import FolderState
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import GuardDialog
from tests.helpers import Setup
from tests.servers.webdav import wsgidav_server
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import on_dashboard, state, up_to_date

#: Enough deletes to trip the default guard (more than half, and at least ten).
N = 12


def guard_shown(app: SyncApp) -> bool:
    """The dialog is up and laid out (a click finds its buttons)."""
    screen = app.screen
    return isinstance(screen, GuardDialog) and all(
        b.region.area for b in screen.query("Button")
    ) and len(screen.query("Button")) == 3


@pytest.fixture(params=["local", "wsgidav"])
def remote_root(request: pytest.FixtureRequest, setup: Setup) -> Iterator[Path]:
    """Where the folder's files land on the remote; the config points at a local folder or at
    WsgiDAV serving one."""
    if request.param == "local":
        yield setup.remote_dir / "docs"
        return
    with wsgidav_server(setup.root / "dav") as server:
        text = setup.config_path.read_text()
        local = f'type = "local"\npath = "{setup.remote_dir}"'
        assert local in text
        setup.config_path.write_text(text.replace(local, f'type = "webdav"\nurl = "{server.url}"'))
        yield server.root / "docs"


async def test_guard_dialog_keep_restore_and_delete(setup: Setup, remote_root: Path) -> None:
    names = [f"f{i}.txt" for i in range(N)]
    for name in names:
        (setup.docs / name).write_text(name)
    app = SyncApp(load_config(setup.config_path))
    async with app.run_test(size=(100, 34)) as pilot:
        await up_to_date(pilot, app)
        await wait_for(pilot, lambda: (remote_root / names[-1]).exists(), "synced")
        # A live change that arrives proves the watcher is up before the wipe.
        (setup.docs / "probe.txt").write_text("probe")
        await wait_for(pilot, lambda: (remote_root / "probe.txt").exists(), "watcher live")

        def wipe() -> None:
            for name in names:
                (setup.docs / name).unlink()

        wipe()
        await wait_for(pilot, lambda: guard_shown(app), "guard dialog")
        dialog = app.screen
        assert isinstance(dialog, GuardDialog)
        assert dialog.event.deletes == N
        assert state(app, "docs") is FolderState.PAUSED
        # Keep paused: nothing happens, nothing is deleted; p asks again.
        await pilot.click("#keep")
        await wait_for(pilot, lambda: on_dashboard(app), "dialog closed")
        assert all((remote_root / name).exists() for name in names)
        await pilot.press("p")
        await wait_for(pilot, lambda: guard_shown(app), "guard asked again")
        await pilot.press("escape")  # also keeps it paused
        assert on_dashboard(app)
        assert state(app, "docs") is FolderState.PAUSED

        # Restore the files locally: they come back from the remote; nothing is deleted there.
        await pilot.press("p")
        await wait_for(pilot, lambda: guard_shown(app), "guard asked again")
        await pilot.click("#restore")
        await wait_for(
            pilot, lambda: all((setup.docs / n).exists() for n in names), "files restored"
        )
        await up_to_date(pilot, app)
        assert (setup.docs / "f3.txt").read_text() == "f3.txt"
        assert all((remote_root / name).exists() for name in names)
        engine = app.engine
        assert engine is not None
        assert not [p for p in await engine.paths("docs") if p.status == "guard"]

        # Wiped again; this time delete on the remote.
        wipe()
        await wait_for(pilot, lambda: guard_shown(app), "guard again")
        await pilot.click("#delete")
        await wait_for(
            pilot,
            lambda: not any((remote_root / n).exists() for n in names),
            "deletes released",
        )
        await up_to_date(pilot, app)
        assert (remote_root / "a.txt").exists()
        assert (remote_root / "sub/b.txt").exists()
        await pilot.press("q")
