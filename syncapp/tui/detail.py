"""A folder's detail (enter on a folder panel): every path not in sync and why, filterable, with
retry for failed ones; and a file's versions on the remote, restored in place or elsewhere.

The list is what the engine records in its state database (``FolderSync.pending``, what
``syncapp why`` reads). It is read again when the folder's events say something changed, at most
twice a second, and every two seconds regardless (retry countdowns move on by themselves); a
folder so big that reading it takes long is read less often, so the UI stays responsive.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label
from textual.worker import Worker

from syncapp.configedit import display_path
from syncapp.engine import Event, FolderState, JobFinished, JobProgressed
from syncapp.engine.state import Pending
from syncapp.engine.versions import Version
from syncapp.errors import SyncappError
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.format import date_time, hide_staging, human_size, plural, route
from syncapp.tui.forms import show, tone

if TYPE_CHECKING:
    from syncapp.tui.app import SyncApp

#: Reads the folder's paths: those not in sync, or (True) every known path.
Loader = Callable[[bool], Awaitable[list[Pending]]]

#: Problems first: what needs the user, then what waits by itself.
STATUS_ORDER = {
    "failed": 0,
    "guard": 1,
    "retrying": 2,
    "skipped": 3,
    "settling": 4,
    "uploading": 5,
    "queued": 6,
    "in sync": 7,
}
STATUS_TONE = {"failed": "error", "guard": "error", "retrying": "warning", "in sync": "success"}
STATUS_WIDTH = max(len(s) for s in STATUS_ORDER)
SUMMARY_WORDS = {"guard": "held by the guard"}
#: Rows drawn at most; the filter narrows the rest down.
MAX_ROWS = 500
#: Reload at most this often while events arrive, and at least this often when none do; a
#: reload that took long (a huge folder) waits ten times as long before the next.
RELOAD_MIN = 0.5
RELOAD_MAX = 2.0
RELOAD_SHARE = 10


def _sync_app(screen: Screen[Any]) -> SyncApp:
    from syncapp.tui.app import SyncApp

    app = screen.app
    assert isinstance(app, SyncApp)
    return app


def until(then: float | None, now: float) -> str:
    if then is None:
        return ""
    delta = then - now
    if delta < 1:
        return "now"
    if delta < 60:
        return f"in {delta:.0f} s"
    return f"in {delta // 60:.0f} min"


def elide_left(path: str, width: int) -> str:
    """``…/deep/folder/name.txt``: a long path keeps its end, where the name is."""
    if cell_len(path) <= width:
        return path
    return "…" + path[-(width - 1) :] if width > 1 else "…"


#: (path, status, reason): a plain tuple, as a big folder makes 100,000 of them per reload.
Row = tuple[str, str, str]


def matches(row: Row, needle: str) -> bool:
    """``needle`` (lower case) is in the path or the reason."""
    return not needle or needle in row[0].lower() or needle in row[2].lower()


def retry_note(p: Pending, now: float, server_check: float | None) -> str:
    """When a retrying path goes next. While the server is down, that is when it answers:
    never "now" while it does not."""
    if server_check is not None:
        if server_check - now < 1:
            return "when the server answers; checking it"
        return f"when the server answers; next check {until(server_check, now)}"
    return f"next try {until(p.retry_at, now)}"


def make_rows(
    pending: Iterable[Pending],
    now: float,
    *,
    offline: bool = False,
    server_check: float | None = None,
) -> list[Row]:
    """``offline``: the folder's remote is down; ``server_check`` the time of its next check."""
    check = (server_check if server_check is not None else now) if offline else None
    rows = [
        (
            p.path,
            p.status,
            f"{hide_staging(p.reason)} ({retry_note(p, now, check)}, attempt {p.attempts + 1})"
            if p.status == "retrying" and (p.retry_at is not None or offline)
            else hide_staging(p.reason),
        )
        for p in pending
    ]
    # Two stable sorts on plain keys: by path, then problems first.
    rows.sort(key=itemgetter(0))
    rows.sort(key=lambda r: STATUS_ORDER.get(r[1], 5))
    return rows


class FolderDetailScreen(Screen[None]):
    """One folder's paths that are not in sync, with their reasons (escape goes back)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        # Priority: the filter field has focus and would take enter for itself.
        Binding("enter", "versions", "Versions", priority=True),
        Binding("ctrl+r", "retry", "Retry failed", priority=True),
        Binding("ctrl+t", "toggle_all", "All files", priority=True),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
    ]

    def __init__(self, name: str, load: Loader) -> None:
        super().__init__(classes="folder-detail")
        self.folder = name
        self._load = load
        self.show_all = False
        self.rows: list[Row] = []
        self._counts: Counter[str] = Counter()
        self._shown: tuple[Row, ...] | None = None
        self._dirty = False
        self._loaded_at = -RELOAD_MAX
        self._load_cost = 0.0
        self._loading: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="detail"):
            with Horizontal(id="detail-head"):
                yield Label(self.folder, id="detail-name", markup=False)
                yield Label("", id="detail-route", markup=False)
                yield Label("", id="detail-state")
            yield Label("", id="detail-problem", markup=False)
            yield Input(placeholder="type to filter by path or reason", id="filter", compact=True)
            yield DataTable(id="paths", cursor_type="row")
            yield Label("", id="detail-why", markup=False)
            yield Label("", id="detail-summary", markup=False)
        yield Footer(compact=True)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#paths", DataTable)

    @property
    def needle(self) -> str:
        return self.query_one("#filter", Input).value.strip()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()
        self.reload()
        self.set_interval(RELOAD_MIN, self._tick)

    # -- reading --------------------------------------------------------------------------------

    def events_arrived(self, batch: Iterable[Event]) -> None:
        """The app hands every event batch on; ours mark the list stale (reloaded soon)."""
        if any(ev.folder == self.folder and not isinstance(ev, JobProgressed) for ev in batch):
            self._dirty = True
            self._show_head()

    def _tick(self) -> None:
        if self.app.screen is not self:
            return  # covered by the versions screen: read again once it is back on top
        age = time.monotonic() - self._loaded_at
        spent = RELOAD_SHARE * self._load_cost
        if (self._dirty and age >= max(RELOAD_MIN, spent)) or age >= max(RELOAD_MAX, 2 * spent):
            self.reload()

    def reload(self) -> None:
        """Read the list again (in a worker: the engine may be in another process). A read
        under way is let finish: restarting it on every tick would never show a slow list."""
        if self._loading is not None and not self._loading.is_finished:
            self._dirty = True
            return
        self._dirty = False
        self._loading = self._reload()

    @work(group="detail-load", exit_on_error=False)
    async def _reload(self) -> None:
        started = time.monotonic()
        pending = await self._load(self.show_all)
        view = _sync_app(self).dashboard.folders.views.get(self.folder)
        # Offline by its own finding or another folder's on the same remote: its paths go
        # when the server answers, whatever their own retry time says.
        offline = view is not None and view.shown_state is FolderState.OFFLINE
        self.rows = make_rows(
            pending,
            _sync_app(self).clock(),
            offline=offline,
            server_check=view.next_check if view is not None else None,
        )
        self._counts = Counter(r[1] for r in self.rows)
        self._show_head()
        self._show_rows()
        self._loaded_at = time.monotonic()
        self._load_cost = self._loaded_at - started

    def _show_head(self) -> None:
        view = _sync_app(self).dashboard.folders.views.get(self.folder)
        if view is None:
            return
        self.query_one("#detail-route", Label).update(route(view.cfg))
        state = self.query_one("#detail-state", Label)
        state.update(view.shown_state.value)
        problem = self.query_one("#detail-problem", Label)
        full = view.full_problem()
        if str(problem.content) != full:
            problem.update(full)
        problem.display = bool(full)
        for s in ("error", "paused", "offline", "up-to-date"):
            state.set_class(view.shown_state.value.replace(" ", "-") == s, f"-{s}")

    def on_resize(self) -> None:
        self._shown = None  # the columns are sized to the screen: lay them out again
        self._show_rows()

    def _widths(self, shown: Iterable[Row]) -> tuple[int, int]:
        """Path and reason column widths: the whole table fits, so nothing scrolls sideways."""
        table = self.table
        room = table.scrollable_content_region.width - 1  # a vertical scrollbar may come
        room -= 3 * 2 * table.cell_padding + STATUS_WIDTH
        longest = max((cell_len(r[0]) for r in shown), default=4)
        path = max(4, min(longest, max(16, room // 2)))
        return path, max(8, room - path)

    def _show_rows(self) -> None:
        needle = self.needle.lower()
        matching = [r for r in self.rows if matches(r, needle)] if needle else self.rows
        shown = tuple(matching[:MAX_ROWS])
        self._show_summary(len(matching))
        if shown == self._shown:
            return
        self._shown = shown
        table = self.table
        selected = self.selected()
        path_width, why_width = self._widths(shown)
        table.clear(columns=True)
        table.add_column("Path", key="path", width=path_width)
        table.add_column("Status", key="status", width=STATUS_WIDTH)
        table.add_column("Why", key="why", width=why_width)
        table.add_rows(
            (
                Text(elide_left(path, path_width)),
                Text(status, style=self._status_style(status)),
                Text(reason, no_wrap=True, overflow="ellipsis"),
            )
            for path, status, reason in shown
        )
        paths = [r[0] for r in shown]
        if selected in paths:
            table.move_cursor(row=paths.index(selected), animate=False)
        self._show_why()

    def _status_style(self, status: str) -> str:
        if status in STATUS_TONE:
            return tone(self, STATUS_TONE[status])
        return "dim" if status == "skipped" else ""

    @on(DataTable.RowHighlighted, "#paths")
    def _show_why(self) -> None:
        """The highlighted path and its whole reason (the table may cut both short)."""
        label = self.query_one("#detail-why", Label)
        row = self.table.cursor_row
        if self._shown is None or not 0 <= row < len(self._shown):
            show(label, "")
            return
        path, status, reason = self._shown[row]
        text = Text(path, style="bold")
        text.append(f"  {status}", style=self._status_style(status))
        text.append(f": {reason}")
        show(label, text)

    def _show_summary(self, matching: int) -> None:
        counts = self._counts
        needle = self.needle
        if not self.rows:
            if _sync_app(self).folder_running(self.folder):
                text = f"Everything in {self.folder} is in sync."
            else:
                text = f"{self.folder} is not running: nothing is known about its paths."
            if needle:
                text += f' Enter shows the versions of "{needle}".'
        elif needle and not matching:
            text = f'Nothing matches "{needle}"; enter shows the versions of "{needle}".'
        else:
            statuses = sorted(counts, key=lambda s: STATUS_ORDER.get(s, 5))
            text = " · ".join(f"{counts[s]:,} {SUMMARY_WORDS.get(s, s)}" for s in statuses)
            if needle:
                text += f" — {plural(matching, 'match')}"
            if matching > MAX_ROWS:
                text += f", the first {MAX_ROWS:,} shown (type to narrow)"
        self.query_one("#detail-summary", Label).update(text)

    def selected(self) -> str | None:
        table = self.table
        if not table.row_count or self._shown is None:
            return None
        row = table.cursor_row
        return self._shown[row][0] if 0 <= row < len(self._shown) else None

    # -- keys -----------------------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._show_rows()
        if self.table.row_count:
            self.table.move_cursor(row=0, animate=False)

    def on_key(self, event: events.Key) -> None:
        # Typing anywhere on this screen filters (the table does not take letters).
        field = self.query_one("#filter", Input)
        if event.is_printable and event.character and self.focused is not field:
            field.focus()
            field.insert_text_at_cursor(event.character)
            event.stop()

    def action_move(self, delta: int) -> None:
        table = self.table
        if table.row_count:
            row = min(max(0, table.cursor_row + delta), table.row_count - 1)
            table.move_cursor(row=row, animate=False)

    def action_retry(self) -> None:
        _sync_app(self).retry_failed(self.folder)
        self.reload()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.reload()
        self.notify(
            f"Showing every file of {self.folder}"
            if self.show_all
            else f"Showing the paths of {self.folder} not in sync"
        )

    def action_versions(self) -> None:
        path = self.selected() or self.needle.strip("/")
        if not path:
            self.notify("Select a file (or type its path) to see its versions.")
            return
        self.app.push_screen(VersionsScreen(self.folder, path))


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
