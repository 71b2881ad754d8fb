"""The main screen: folder panels, the transfers table and the activity log."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Header

from syncapp.engine import Event, FolderState
from syncapp.tui.activity import ActivityLog, Palette
from syncapp.tui.folders import FolderList
from syncapp.tui.footer import Footer
from syncapp.tui.messages import DashboardMounted
from syncapp.tui.progress import TotalProgress
from syncapp.tui.transfers import TransfersTable


class DashboardScreen(Screen[None]):
    # The actions live on the app (the palette offers the same ones); these keys are only
    # active here, so they never act on a folder from behind a form or the remotes screen.
    BINDINGS = [
        Binding("enter", "app.folder_details", "Open"),
        Binding("a", "app.add_folder", "Add"),
        Binding("e", "app.edit_folder", "Edit"),
        Binding("d", "app.remove_folder", "Remove"),
        # One key, the label of what it will do for the selected folder (check_action).
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("r", "app.rescan", "Rescan"),
        Binding("m", "app.remotes", "Remotes"),
        Binding("l", "app.log", "Log"),
    ]

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(id="dashboard")
        self._clock = clock
        self._paused_shown: bool | None = None

    def selected_paused(self) -> bool:
        """Whether the selected folder is paused (p then resumes it)."""
        name = getattr(self.app, "selected_folder", None)
        view = self.folders.views.get(name) if name is not None else None
        return view is not None and view.state is FolderState.PAUSED

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause", "resume"):
            return (action == "resume") == self.selected_paused()
        return True

    async def action_pause(self) -> None:
        await self.app.run_action("app.toggle_pause")

    async def action_resume(self) -> None:
        await self.app.run_action("app.toggle_pause")

    def update_pause_label(self) -> None:
        """Footer: Pause or Resume, as the selected folder is now (only when that changes)."""
        paused = self.selected_paused()
        if paused != self._paused_shown:
            self._paused_shown = paused
            self.refresh_bindings()

    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="main"):
            yield FolderList(self._clock)
            with Container(id="side"):
                yield TransfersTable()
                yield ActivityLog()
        yield TotalProgress()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Relative times ("12 s ago") and the sparklines move on even when nothing happens.
        self.set_interval(1.0, self.tick)
        self.post_message(DashboardMounted())

    @property
    def folders(self) -> FolderList:
        return self.query_one(FolderList)

    @property
    def transfers(self) -> TransfersTable:
        return self.query_one(TransfersTable)

    @property
    def activity(self) -> ActivityLog:
        return self.query_one(ActivityLog)

    def apply(self, events: Iterable[Event], palette: Palette) -> None:
        # Only folders in the config: a folder just removed or renamed may still say something.
        views = self.folders.views
        batch = [ev for ev in events if ev.folder in views]
        self.folders.apply(batch)
        self.transfers.apply(batch)
        self.activity.apply(batch, palette)
        self.show_total()
        self.update_pause_label()

    def show_total(self) -> None:
        views = self.folders.views.values()
        self.query_one(TotalProgress).show((v.progress for v in views), self._clock())

    def tick(self) -> None:
        self.folders.refresh_panels()
        self.show_total()
