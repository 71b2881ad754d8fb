"""First run: the welcome screen, the `syncapp` command without a config, and the demo."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.command import CommandList
from textual.widgets import Button, Input, Static

from syncapp import cli
from syncapp.config import load_config
from syncapp.engine import FolderState
from syncapp.tui.app import SyncApp
from syncapp.tui.forms import FolderForm
from syncapp.tui.remotes import RemoteForm
from syncapp.tui.welcome import WelcomeScreen
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import type_text
from tests.tui.test_remotes import choose_type, fill


async def test_first_run_adds_a_remote_then_a_folder(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "config.toml"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "n.txt").write_text("note")
    target = tmp_path / "target"
    app = SyncApp(None, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        assert app.engine is None
        assert app.screen.query_one("#add-folder", Button).disabled
        assert "Step 1" in intro_text(app) and "Step 2" not in intro_text(app)
        # The folder step needs a remote first.
        await pilot.press("a")
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.press("m")
        assert isinstance(app.screen, RemoteForm)
        await type_text(pilot, "disk")
        await choose_type(pilot, "local")
        await fill(pilot, "local-path", str(target))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "back to welcome")
        assert config_path.exists()
        assert not app.screen.query_one("#add-folder", Button).disabled
        # The text moves on to step 2.
        assert "Step 2: add a folder" in intro_text(app) and "no configuration" not in (
            intro_text(app)
        )
        assert "remote disk is saved" in intro_text(app)
        saved_in = str(app.screen.query_one("#config-path").render())
        assert saved_in.startswith("The config is saved in"), saved_in
        await pilot.press("a")
        assert isinstance(app.screen, FolderForm)
        await type_text(pilot, str(folder))
        assert app.screen.query_one("#remote_path", Input).value == "notes"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.dashboard, "dashboard")
        await wait_for(pilot, lambda: (target / "notes/n.txt").exists(), "synced")
        view = app.dashboard.folders.views["notes"]
        await wait_for(pilot, lambda: view.state is FolderState.UP_TO_DATE, "up to date")
        await pilot.press("q")
    config = load_config(config_path)
    assert list(config.remotes) == ["disk"] and list(config.folders) == ["notes"]


def intro_text(app: SyncApp) -> str:
    return str(app.screen.query_one("#intro", Static).content)


def test_welcome_keys_agree_with_the_dashboards() -> None:
    from syncapp.tui.dashboard import DashboardScreen

    def keys(screen: type) -> dict[str, str]:
        out = {}
        for b in screen.BINDINGS:
            assert isinstance(b, Binding)
            for key in b.key.split(","):
                out[key] = b.action.removeprefix("app.")
        return out

    welcome, dashboard = keys(WelcomeScreen), keys(DashboardScreen)
    # A key both screens have does the same kind of thing (m: remotes, a: add a folder).
    same = {"add_remote": "remotes", "add_folder": "add_folder"}
    for key, action in welcome.items():
        if key in dashboard:
            assert same.get(action) == dashboard[key], (key, action, dashboard[key])
    assert welcome["m"] == "add_remote" and welcome["a"] == "add_folder"


async def test_palette_on_the_welcome_screen_offers_its_steps(tmp_path: Path) -> None:
    from syncapp.tui.commands import SyncCommands

    app = SyncApp(None, config_path=tmp_path / "config.toml", engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        titles = [t for t, _, _ in SyncCommands(app.screen)._commands()]
        assert titles == ["Add a remote", "Start the demo", "Toggle light/dark theme"]
        await pilot.press("ctrl+p")
        await type_text(pilot, "remote")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count, "hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RemoteForm), "form from palette")
        await pilot.press("escape", "q")


async def test_demo_from_the_welcome_screen(tmp_path: Path) -> None:
    from syncapp.demo import LIVE_SAMPLES, demo_dirs

    app = SyncApp(None, config_path=tmp_path / "config.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.screen is app.dashboard, "dashboard")
        assert app._demo_server is not None
        _, server_root, _ = demo_dirs()
        last = server_root / "demo" / LIVE_SAMPLES[-1][0]
        await wait_for(pilot, last.exists, "live samples on the server")
        assert (server_root / "demo/README.txt").exists()
        view = app.dashboard.folders.views["demo"]
        await wait_for(pilot, lambda: view.state is FolderState.UP_TO_DATE, "up to date")
        await pilot.press("q")
    assert app._demo_server is None
    # The user's config was not written by the demo.
    assert not (tmp_path / "config.toml").exists()


def test_cmd_ui_without_config_opens_the_welcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[SyncApp] = []
    monkeypatch.setattr(SyncApp, "run", lambda self: made.append(self))
    path = tmp_path / "none.toml"
    assert cli.main(["--config", str(path)]) == 0
    assert made and made[0].first_run and made[0].config.path == path


def test_cmd_ui_with_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[SyncApp] = []
    monkeypatch.setattr(SyncApp, "run", lambda self: made.append(self))
    path = tmp_path / "c.toml"
    path.write_text(f'[remotes.r]\ntype = "local"\npath = "{tmp_path}/r"\n')
    assert cli.main(["--config", str(path)]) == 0
    assert not made[0].first_run and "r" in made[0].config.remotes


def test_cmd_ui_with_a_broken_config_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[remotes.r]\ntype = 'nope'\n")
    assert cli.main(["--config", str(path)]) == cli.EXIT_USAGE
    assert "remotes.r.type" in capsys.readouterr().err
    assert path.read_text() == "[remotes.r]\ntype = 'nope'\n"


def test_demo_command_opens_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[SyncApp] = []
    monkeypatch.setattr(SyncApp, "run", lambda self: made.append(self))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    # The demo command lives in the command line (syncapp.demo prepares, imports no UI).
    assert cli.run_demo(argparse.Namespace(headless=False, port=0)) == 0
    app = made[0]
    assert app.demo_folder is not None and "demo" in app.config.folders
