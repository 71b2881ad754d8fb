"""Issue 12, bug 5: folders added while the demo runs must not vanish into the demo's config and
its throwaway server. The demo is marked in the header; adding a folder there says so and offers
to set up a real remote instead."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from syncapp.config import load_config, parse_config
from syncapp.engine import FolderState
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import DemoDialog
from syncapp.tui.forms import FolderForm
from syncapp.tui.remotes import RemoteForm
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import type_text
from tests.tui.test_remotes import choose_type, fill


async def test_adding_a_folder_in_the_demo_offers_a_real_remote(tmp_path: Path) -> None:
    from syncapp.demo import demo_dirs

    config_path = tmp_path / "conf" / "config.toml"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "n.txt").write_text("note")
    target = tmp_path / "target"
    app = SyncApp(None, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")  # the welcome screen starts the demo
        await wait_for(pilot, lambda: app.screen is app.dashboard, "dashboard")
        assert "demo" in app.sub_title
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, DemoDialog), "the demo's warning")
        said = str(app.screen.query_one(".message", Static).render())
        assert "demo" in said and "thrown away" in said, said
        await pilot.press("r")  # set up a real remote instead
        await wait_for(pilot, lambda: isinstance(app.screen, RemoteForm), "remote form")
        assert app._demo_server is None and app.demo_folder is None
        assert "demo" not in app.sub_title
        await type_text(pilot, "disk")
        await choose_type(pilot, "local")
        await fill(pilot, "local-path", str(target))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderForm), "folder form next")
        await type_text(pilot, str(folder))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.dashboard, "dashboard")
        await wait_for(pilot, lambda: (target / "notes/n.txt").exists(), "synced")
        view = app.dashboard.folders.views["notes"]
        await wait_for(pilot, lambda: view.state is FolderState.UP_TO_DATE, "up to date")
        assert "demo" not in app.dashboard.folders.views
        await pilot.press("q")
    # The folder is in the user's own config, not the demo's.
    config = load_config(config_path)
    assert list(config.remotes) == ["disk"] and list(config.folders) == ["notes"]
    _, _, demo_config = demo_dirs()
    assert "notes" not in load_config(demo_config).folders


async def test_demo_command_is_marked_and_adding_there_is_plain(tmp_path: Path) -> None:
    from syncapp.davserver import DavServer
    from syncapp.demo import demo_dirs, prepare, write_demo_config

    folder, server_root, demo_config = demo_dirs()
    prepare(folder, server_root)
    with DavServer(server_root) as server:
        write_demo_config(folder, server.url, demo_config)
        config = parse_config(demo_config.read_text(encoding="utf-8"), demo_config)
        app = SyncApp(config, demo_folder=folder)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert "demo" in app.sub_title
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, DemoDialog), "the warning")
            await pilot.press("d")  # add to the demo anyway: the form, still the demo
            await wait_for(pilot, lambda: isinstance(app.screen, FolderForm), "folder form")
            assert app.demo_folder is not None
            await pilot.press("escape")
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, DemoDialog), "the warning")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.dashboard, "dashboard")
            await pilot.press("q")
