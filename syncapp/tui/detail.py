"""A folder's detail (enter on a folder panel): every path not in sync and why, filterable, with
retry for failed ones; enter opens a file's versions (``syncapp.tui.versions``).

The list is what the engine records in its state database (``FolderSync.pending``, what
``syncapp why`` reads). The screen asks the engine for a page (``EngineAPI.path_page``): the
rows it shows (``PAGE_ROWS``, a page more as the cursor nears the end) and the counts of every
status, so a folder with 20,000 paths waiting costs what one with 50 does, over the control
socket too. The screen is drawn first; its list fills in when the answer comes. While the whole
list fits in a page, the filter works on the rows at hand as one types; past that, the engine
filters. The list is read again when the folder's events say something changed, at most twice
a second, and every two seconds regardless (retry countdowns move on by themselves); a read
that takes long is made less often.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label
from textual.worker import Worker

from syncapp.engine import Event, FolderState, JobProgressed
from syncapp.engine.pathpage import IN_SYNC, PathPage, PathQuery, page_of
from syncapp.engine.state import PENDING_ORDER, Pending, pending_rank
from syncapp.tui.footer import Footer
from syncapp.tui.format import date_time, hide_staging, human_size, plural, route
from syncapp.tui.forms import show, tone
from syncapp.tui.versions import VersionsScreen

if TYPE_CHECKING:
    from syncapp.tui.app import SyncApp

#: Reads a page of the folder's paths (``EngineAPI.path_page``, through the app).
Loader = Callable[[PathQuery], Awaitable[PathPage]]

STATUS_TONE = {"failed": "error", "guard": "error", "retrying": "warning", "in sync": "success"}
STATUS_WIDTH = max(len(s) for s in PENDING_ORDER)
SUMMARY_WORDS = {"guard": "held by the guard"}
#: Rows asked of the engine at first, and added each time the cursor comes within
#: ``PAGE_AHEAD`` rows of the end: a table of a few hundred rows takes tens of ms to build.
PAGE_ROWS = 100
PAGE_AHEAD = 10
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


#: (path, status, reason): a plain tuple.
Row = tuple[str, str, str]


def retry_note(p: Pending, now: float, server_check: float | None) -> str:
    """When a retrying path goes next. While the server is down, that is when it answers:
    never "now" while it does not."""
    if server_check is not None:
        if server_check - now < 1:
            return "when the server answers; checking it"
        return f"when the server answers; next check {until(server_check, now)}"
    return f"next try {until(p.retry_at, now)}"


def _reason(p: Pending, now: float, check: float | None, offline: bool) -> str:
    if p.status == "retrying" and (p.retry_at is not None or offline):
        return f"{hide_staging(p.reason)} ({retry_note(p, now, check)}, attempt {p.attempts + 1})"
    if p.status == IN_SYNC and not p.reason:
        return f"{human_size(p.size)}, synced {date_time(p.updated)}"
    return hide_staging(p.reason)


def make_rows(
    pending: Iterable[Pending],
    now: float,
    *,
    offline: bool = False,
    server_check: float | None = None,
) -> list[Row]:
    """``offline``: the folder's remote is down; ``server_check`` the time of its next check.
    Problems first, then by path (the engine's order, kept for rows from elsewhere)."""
    check = (server_check if server_check is not None else now) if offline else None
    rows = [(p.path, p.status, _reason(p, now, check, offline)) for p in pending]
    rows.sort(key=lambda r: (pending_rank(r[1]), r[0]))
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
        #: The rows shown (at most ``_limit``), and the engine's last answer (None: none yet).
        self._limit = PAGE_ROWS
        self.rows: list[Row] = []
        self.page: PathPage | None = None
        #: Every row of the folder, when the last unfiltered answer held them all: the filter
        #: then works here as one types.
        self._whole: list[Pending] | None = None
        #: Rows the shown filter matches in all, and the filter the engine's answer is for.
        self._matching = 0
        self._asked_needle = ""
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
            yield Label(f"Reading the paths of {self.folder}…", id="detail-summary", markup=False)
        yield Footer(compact=True)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#paths", DataTable)

    @property
    def needle(self) -> str:
        return self.query_one("#filter", Input).value.strip()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()
        self.set_interval(RELOAD_MIN, self._tick)

    def on_screen_resume(self) -> None:
        # Opened, or back on top of the versions screen: the screen is drawn before the list is
        # asked for (and built: tens of ms).
        self._show_head()
        self.call_after_refresh(self.reload)

    def start_afresh(self) -> None:
        """Opened again (the app keeps this screen): no filter, the paths not in sync, and
        nothing shown until the engine answers."""
        self.show_all = False
        self._limit = PAGE_ROWS
        self._whole = None
        self.page = None
        self.rows = []
        self._matching = 0
        self._dirty = False
        with self.prevent(Input.Changed):
            self.query_one("#filter", Input).value = ""
        self._show_rows()
        self.query_one("#filter", Input).focus()

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

    def _query(self) -> PathQuery:
        # With every row at hand the filter works here: ask for them all, unfiltered.
        needle = "" if self._whole is not None else self.needle.lower()
        return PathQuery(self.show_all, needle, 0, self._limit)

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
        while True:
            query = self._query()
            page = await self._load(query)
            if not query.needle:
                self._whole = page.rows if page.matching == len(page.rows) else None
            # Typed on, toggled, or the list outgrew a page meanwhile: ask for that instead.
            if query == self._query():
                break
        self.page = page
        self._asked_needle = query.needle
        self._show_head()
        self._fill()
        self._loaded_at = time.monotonic()
        self._load_cost = self._loaded_at - started

    def _fill(self) -> None:
        """The rows to show, from the engine's answer or (every row at hand) filtered here."""
        if self.page is None:
            return
        page = self.page
        if self._whole is not None:
            page = page_of(self._whole, PathQuery(self.show_all, self.needle, 0, self._limit))
        view = _sync_app(self).dashboard.folders.views.get(self.folder)
        # Offline by its own finding or another folder's on the same remote: its paths go
        # when the server answers, whatever their own retry time says.
        offline = view is not None and view.shown_state is FolderState.OFFLINE
        self.rows = make_rows(
            page.rows,
            _sync_app(self).clock(),
            offline=offline,
            server_check=view.next_check if view is not None else None,
        )
        self._matching = page.matching
        self._show_rows()

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
        shown = tuple(self.rows)
        self._show_summary()
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
        if row >= len(self._shown) - PAGE_AHEAD and self._matching > len(self._shown):
            self._limit = len(self._shown) + PAGE_ROWS  # near the end: the next page
            self.reload()
        path, status, reason = self._shown[row]
        text = Text(path, style="bold")
        text.append(f"  {status}", style=self._status_style(status))
        text.append(f": {reason}")
        show(label, text)

    def _show_summary(self) -> None:
        needle = self.needle
        matching = self._matching
        page = self.page
        if page is None:
            text = f"Reading the paths of {self.folder}…"
        elif not sum(page.counts.values()):
            if _sync_app(self).folder_running(self.folder):
                text = f"Everything in {self.folder} is in sync."
            else:
                text = f"{self.folder} is not running: nothing is known about its paths."
            if needle:
                text += f' Enter shows the versions of "{needle}".'
        elif self._whole is None and self._asked_needle != needle.lower():
            text = f'Looking for "{needle}" among {plural(sum(page.counts.values()), "path")}…'
        elif needle and not matching:
            text = f'Nothing matches "{needle}"; enter shows the versions of "{needle}".'
        else:
            counts = page.counts
            statuses = sorted((s for s in counts if counts[s]), key=pending_rank)
            text = " · ".join(f"{counts[s]:,} {SUMMARY_WORDS.get(s, s)}" for s in statuses)
            if needle:
                text += f" — {matching:,} match{'' if matching == 1 else 'es'}"
            if matching > len(self.rows):
                text += f", the first {len(self.rows):,} shown (type to narrow, or go down)"
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
        self._limit = PAGE_ROWS
        if self._whole is not None:
            self._fill()  # every row at hand: filtered here, at once
        else:
            self.reload()  # the engine filters; a read under way asks again when it ends
            self._show_summary()
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
        self._whole = None  # the rows at hand were of the other list
        self._limit = PAGE_ROWS
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
