"""A file's versions on the remote (enter on a path in a folder's detail): the current copy and
the kept versions, restored in place or to a file of one's choosing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Header, Input, Label

from syncapp.configedit import display_path
from syncapp.engine import Event, JobFinished
from syncapp.engine.versions import Version
from syncapp.errors import SyncappError
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.footer import Footer
from syncapp.tui.format import date_time, human_size, plural
from syncapp.tui.forms import show, tone

if TYPE_CHECKING:
    from syncapp.tui.app import SyncApp


def _sync_app(screen: Screen[Any]) -> SyncApp:
    from syncapp.tui.app import SyncApp

    app = screen.app
    assert isinstance(app, SyncApp)
    return app


class VersionsScreen(Screen[None]):
    """A file's copies on the remote: the current one and the kept versions, newest first."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter,r", "restore", "Restore"),
        Binding("t", "restore_to", "Restore to…"),
    ]

    def __init__(self, folder: str, path: str) -> None:
        super().__init__(classes="versions-screen")
        self.folder = folder
        self.path = path
        self.versions: list[Version] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="versions"):
            yield Label(
                f"Versions of {self.path} in {self.folder}", id="versions-title", markup=False
            )
            table: DataTable[Text] = DataTable(id="versions-table", cursor_type="row")
            table.add_column("Version", key="version")
            table.add_column("Size", key="size")
            yield table
            yield Label("", id="versions-status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.table.focus()
        self.load()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#versions-table", DataTable)

    def _status(self, text: str, tone_name: str = "") -> None:
        style = tone(self, tone_name) if tone_name else ""
        show(self.query_one("#versions-status", Label), Text(text, style=style))

    @work(exclusive=True, group="versions", exit_on_error=False)
    async def load(self) -> None:
        self._status(f"Asking the remote for the versions of {self.path}…")
        try:
            versions = await _sync_app(self).list_versions(self.folder, self.path)
        except (SyncappError, OSError) as e:
            self._status(f"Cannot list the versions: {e}", "error")
            return
        self.versions = versions
        table = self.table
        table.clear()
        for v in versions:
            label = (
                f"current copy on the remote (modified {date_time(v.at)})"
                if v.current
                else f"replaced {date_time(v.at)}"
            )
            table.add_row(Text(label), Text(human_size(v.size)))
        kept = sum(1 for v in versions if not v.current)
        if not versions:
            self._status(f"No copy of {self.path} is on the remote, and no version is kept.")
        else:
            self._status(
                f"{plural(kept, 'version')} kept. enter restores the selected one into the "
                "folder, t writes it elsewhere."
            )

    def events_arrived(self, batch: Iterable[Event]) -> None:
        """The file was uploaded again (a restore syncs like any edit): list afresh, as what
        the remote held is a version now."""
        if any(
            isinstance(ev, JobFinished) and ev.folder == self.folder and ev.path == self.path
            for ev in batch
        ):
            self.load()

    def selected(self) -> Version | None:
        table = self.table
        if not table.row_count or not 0 <= table.cursor_row < len(self.versions):
            return None
        return self.versions[table.cursor_row]

    def _describe(self, v: Version) -> str:
        what = "the current remote copy" if v.current else f"the version replaced {date_time(v.at)}"
        return f"{what} ({human_size(v.size)})"

    @on(DataTable.RowSelected, "#versions-table")
    def _row_chosen(self) -> None:
        self.action_restore()

    def action_restore(self) -> None:
        v = self.selected()
        if v is None:
            self.notify("No version selected.", severity="warning")
            return
        app = _sync_app(self)
        cfg = app.config.folders.get(self.folder)
        if cfg is None:
            return
        local = cfg.path / v.path
        verb = "over" if local.exists() else "to"

        def answered(yes: bool | None) -> None:
            if yes:
                self._restore(v, None)

        app.push_screen(
            ConfirmDialog(
                f"Restore {v.path}",
                f"Write {self._describe(v)} {verb} {display_path(local)}?\n"
                "It then syncs like any edit; what the remote holds now is kept as a version.",
                "Restore",
                default="confirm",  # the user chose this version to restore it
            ),
            answered,
        )

    def action_restore_to(self) -> None:
        v = self.selected()
        if v is None:
            self.notify("No version selected.", severity="warning")
            return
        cfg = _sync_app(self).config.folders.get(self.folder)
        if cfg is None:
            return

        def chosen(dest: str | None) -> None:
            if dest:
                self._restore(v, dest)

        self.app.push_screen(RestoreToDialog(str(cfg.path), v, self._describe(v)), chosen)

    @work(group="restore", exit_on_error=False)
    async def _restore(self, v: Version, dest: str | None) -> None:
        app = _sync_app(self)
        self._status(f"Restoring {self._describe(v)}…")
        try:
            target = await app.restore_version(self.folder, v, dest)
        except (SyncappError, OSError) as e:
            self._status(f"Restore failed: {e}", "error")
            return
        message = f"Restored {self._describe(v)} to {display_path(target)}"
        self.notify(message, title=self.folder)
        # The remote now keeps what it held as a version: show the list as it is now.
        await self.load().wait()
        self._status(message, "success")


class RestoreToDialog(ModalScreen[str | None]):
    """Where to write a version instead of over the file: a path, checked as it is typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: str, version: Version, what: str) -> None:
        super().__init__(classes="dialog-screen")
        self.root = root
        self.version = version
        self.what = what

    def suggestion(self) -> str:
        stem, dot, ext = self.version.path.rpartition(".")
        if not dot or "/" in ext:
            stem, dot, ext = self.version.path, "", ""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.version.at))
        return display_path(os.path.join(self.root, f"{stem}.restored-{stamp}{dot}{ext}"))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="restore-to"):
            yield Label(f"Restore {self.version.path} to…", classes="title", markup=False)
            yield Label(f"Write {self.what} to this file:", classes="message", markup=False)
            yield Input(self.suggestion(), id="dest", compact=True)
            yield Label("", id="dest-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Restore  enter", id="restore", variant="primary")
                yield Button("Cancel  esc", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#dest", Input).focus()

    def target(self) -> str:
        text = os.path.expanduser(self.query_one("#dest", Input).value.strip())
        return os.path.normpath(os.path.join(self.root, text)) if text else ""

    def problem(self) -> str:
        target = self.target()
        if not target:
            return "type where to write it"
        if os.path.isdir(target):
            return "is a folder; type a file name"
        if os.path.lexists(target):
            return "exists already; choose another name (nothing is overwritten here)"
        if not os.path.isdir(os.path.dirname(target)):
            return f"no such folder: {display_path(os.path.dirname(target))}"
        return ""

    @on(Input.Changed, "#dest")
    def _changed(self) -> None:
        error = self.query_one("#dest-error", Label)
        show(error, self.problem())

    @on(Input.Submitted, "#dest")
    @on(Button.Pressed, "#restore")
    def _chosen(self) -> None:
        problem = self.problem()
        if problem:
            show(self.query_one("#dest-error", Label), problem)
            return
        self.dismiss(self.target())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
