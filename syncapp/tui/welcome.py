"""The first-run screen: no config yet, so add a remote and a folder, or start the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, Static

from syncapp.configedit import display_path

if TYPE_CHECKING:
    from syncapp.tui.app import SyncApp

INTRO = """\
syncapp mirrors local folders to a remote — WebDAV (Nextcloud, ownCloud, rclone…), S3, \
your own HTTP API, or another disk — live, as you save.

There is no configuration yet. Step 1: add a remote (where files go), then a folder (what to \
sync); or start the demo, which syncs a sample folder to a WebDAV server built into syncapp."""

STEP_2 = """\
syncapp mirrors local folders to a remote — WebDAV (Nextcloud, ownCloud, rclone…), S3, \
your own HTTP API, or another disk — live, as you save.

Step 1 is done: {saved}. Step 2: add a folder (what to sync), and it starts syncing to \
{first} at once."""


def intro(remotes: list[str]) -> str:
    """The welcome text for where the user is: no remote yet (step 1), or a remote (step 2)."""
    if not remotes:
        return INTRO
    saved = f"remote {remotes[0]} is saved"
    if len(remotes) > 1:
        saved = f"remotes {', '.join(remotes)} are saved"
    return STEP_2.format(saved=saved, first=remotes[0])


class WelcomeScreen(Screen[None]):
    # The dashboard's keys: a adds a folder, m is for remotes; s is the demo's alone.
    BINDINGS = [
        Binding("m", "add_remote", "Add remote"),
        Binding("a", "add_folder", "Add folder"),
        Binding("s", "demo", "Start demo"),
    ]

    @property
    def sync_app(self) -> SyncApp:
        from syncapp.tui.app import SyncApp

        assert isinstance(self.app, SyncApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="welcome"):
            yield Label("Welcome to syncapp", classes="title")
            yield Static(intro(list(self.sync_app.config.remotes)), classes="intro", id="intro")
            yield Label("", classes="hint", id="config-path", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("1. Add a remote  m", id="add-remote", variant="primary")
                yield Button("2. Add a folder  a", id="add-folder")
                yield Button("Start the demo  s", id="demo", variant="success")
            yield Label("", id="welcome-status", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_steps()

    def on_screen_resume(self) -> None:
        self.refresh_steps()

    def refresh_steps(self) -> None:
        if not self.query("#add-folder"):  # resume also comes before the first compose
            return
        config = self.sync_app.config
        self.query_one("#intro", Static).update(intro(list(config.remotes)))
        where = display_path(config.path)
        self.query_one("#config-path", Label).update(
            f"The config is saved in {where}"
            if config.remotes
            else f"The config will be written to {where}"
        )
        folder = self.query_one("#add-folder", Button)
        folder.disabled = not config.remotes
        remote = self.query_one("#add-remote", Button)
        if config.remotes:
            names = ", ".join(config.remotes)
            self.query_one("#welcome-status", Label).update(f"Remote added: {names}.")
            folder.variant = "primary"
            remote.variant = "default"
            folder.focus()
        else:
            remote.focus()

    @on(Button.Pressed, "#add-remote")
    def action_add_remote(self) -> None:
        self.sync_app.open_remote_form(then=lambda _: self.refresh_steps())

    @on(Button.Pressed, "#add-folder")
    def action_add_folder(self) -> None:
        if not self.sync_app.config.remotes:
            self.notify("Add a remote first.", severity="warning")
            return

        def done(name: str | None) -> None:
            if name is not None:
                self.dismiss()

        self.sync_app.open_folder_form(then=done)

    @on(Button.Pressed, "#demo")
    def action_demo(self) -> None:
        self.query_one("#welcome-status", Label).update("Starting the demo…")
        self.sync_app.start_demo()
