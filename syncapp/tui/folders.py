"""The dashboard's folder panels: one per folder, fed by engine events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Sparkline, Static

from syncapp.config import FolderConfig
from syncapp.engine import (
    CountsChanged,
    Event,
    FolderState,
    FolderStateChanged,
    FolderStatus,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    Op,
    RemoteOffline,
    RemoteOnline,
    RemoteStillOffline,
    ScanFinished,
    ScanProgressed,
    ScanStarted,
    SyncProgress,
)
from syncapp.engine.progress import Totals
from syncapp.tui.format import (
    ago,
    hide_staging,
    human_rate,
    route,
    seconds_until,
    short_error,
)
from syncapp.tui.messages import FolderSelected
from syncapp.tui.progress import FolderProgress, percent, progress_line

STATE_CLASSES = {s: "-" + s.value.replace(" ", "-") for s in FolderState}
#: Events of one folder that say something about its remote, so about its other folders too.
SIBLING_EVENTS = (RemoteOffline, RemoteStillOffline, RemoteOnline, FolderStateChanged)


class Throughput:
    """Bytes transferred per second over the last minute."""

    WINDOW = 60

    def __init__(self) -> None:
        self._buckets: dict[int, float] = {}

    def add(self, at: float, n: float) -> None:
        if n <= 0:
            return
        second = int(at)
        self._buckets[second] = self._buckets.get(second, 0.0) + n
        if len(self._buckets) > 2 * self.WINDOW:
            oldest = second - self.WINDOW
            for s in [s for s in self._buckets if s < oldest]:
                del self._buckets[s]

    def series(self, now: float) -> list[float]:
        end = int(now)
        return [self._buckets.get(s, 0.0) for s in range(end - self.WINDOW + 1, end + 1)]

    def rate(self, now: float) -> float:
        """The current rate: the last three seconds, this one included, averaged."""
        end = int(now)
        return sum(self._buckets.get(s, 0.0) for s in range(end - 2, end + 1)) / 3


@dataclass(frozen=True)
class RemoteDown:
    """Another folder on the same remote found it offline (the engine says so per folder)."""

    folder: str
    error: str
    retry_at: float | None


#: States in which a folder on a remote that is down shows ``offline`` too: a paused folder or
#: one in error says so instead.
BORROWS_OFFLINE = (FolderState.SCANNING, FolderState.SYNCING, FolderState.UP_TO_DATE)


@dataclass
class FolderView:
    """What a panel shows about one folder, updated from events."""

    cfg: FolderConfig
    state: FolderState = FolderState.SCANNING
    reason: str = ""
    in_sync: int = 0
    queued: int = 0
    failed: int = 0
    in_flight: int = 0
    last_sync: float | None = None
    last_error: str = ""
    last_error_full: str = ""
    last_error_at: float | None = None
    #: While the remote is offline: its last answer (or silence) and the next check.
    offline_error: str = ""
    offline_retry_at: float | None = None
    #: The engine could not open the folder at all (its panel says why; r tries again).
    open_error: str = ""
    #: Set while another folder on the same remote finds it offline.
    remote_down: RemoteDown | None = None
    guard: GuardTripped | None = None
    #: The tightest bandwidth limit on its transfers in bytes/s (0: none), from the engine.
    bwlimit: int = 0
    #: Bytes sent up, and (two-way) brought down.
    throughput: Throughput = field(default_factory=Throughput)
    throughput_down: Throughput = field(default_factory=Throughput)
    progress: FolderProgress = field(default_factory=FolderProgress)
    _progress: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cfg.name

    def seed(self, status: FolderStatus) -> None:
        self.state, self.reason = status.state, status.reason
        self.in_sync, self.queued = status.in_sync, status.queued
        self.failed, self.in_flight = status.failed, status.in_flight
        self.last_sync = status.last_sync
        self.open_error = ""

    def apply(self, ev: Event) -> None:
        if isinstance(ev, FolderStateChanged):
            self.state, self.reason = ev.state, ev.reason
            if ev.state is FolderState.UP_TO_DATE:
                self.last_sync = ev.at
                # Back in sync: an old error is history (the full log keeps it).
                self.last_error, self.last_error_full, self.last_error_at = "", "", None
            if ev.state is not FolderState.OFFLINE:
                self.offline_error, self.offline_retry_at = "", None
            if ev.state is not FolderState.PAUSED:
                self.guard = None
        elif isinstance(ev, SyncProgress):
            totals = Totals(ev.files_done, ev.files_total, ev.bytes_done, ev.bytes_total)
            self.progress.update(ev.at, totals)
        elif isinstance(ev, ScanStarted):
            self.progress.scan_files = 0
        elif isinstance(ev, ScanProgressed):
            self.progress.scan_files = ev.files
        elif isinstance(ev, ScanFinished):
            self.progress.scan_files = None
        elif isinstance(ev, CountsChanged):
            self.in_sync, self.queued = ev.in_sync, ev.queued
            self.failed, self.in_flight = ev.failed, ev.in_flight
        elif isinstance(ev, JobProgressed):
            self._meter(ev.op).add(ev.at, ev.done - self._progress.get(ev.path, 0))
            self._progress[ev.path] = ev.done
        elif isinstance(ev, JobFinished):
            if ev.op in (Op.UPLOAD, Op.DOWNLOAD):
                self._meter(ev.op).add(ev.at, ev.size - self._progress.pop(ev.path, 0))
        elif isinstance(ev, JobFailed):
            self._progress.pop(ev.path, None)
            self.last_error = f"{ev.op.value} {ev.path}: {short_error(ev.error)}"
            self.last_error_full = f"{ev.op.value} {ev.path}: {hide_staging(ev.error)}"
            self.last_error_at = ev.at
        elif isinstance(ev, RemoteOffline | RemoteStillOffline):
            self.offline_error, self.offline_retry_at = ev.error, ev.retry_at
            self.remote_down = None  # its own finding says more
            self.last_error = f"remote offline: {short_error(ev.error)}"
            self.last_error_full = f"remote offline: {hide_staging(ev.error)}"
            self.last_error_at = ev.at
        elif isinstance(ev, RemoteOnline):
            self.offline_error, self.offline_retry_at = "", None
        elif isinstance(ev, GuardTripped):
            self.guard = ev
            self.reason = ev.reason
        if isinstance(ev, JobFinished):
            self.remote_down = None  # the server answered this folder

    def _meter(self, op: Op) -> Throughput:
        return self.throughput_down if op is Op.DOWNLOAD else self.throughput

    @property
    def two_way(self) -> bool:
        return self.cfg.direction == "both"

    def rate_text(self, now: float) -> str:
        """``1.2 MiB/s`` up; a two-way folder's both ways: ``↑ 1.2 MiB/s ↓ 300.0 KiB/s``."""
        up = human_rate(self.throughput.rate(now))
        if not self.two_way:
            return up  # one way only: an arrow and a "↓ 0 B/s" would say nothing
        return f"↑ {up} ↓ {human_rate(self.throughput_down.rate(now))}"

    def series(self, now: float) -> list[float]:
        """Bytes per second over the last minute, both ways together."""
        up = self.throughput.series(now)
        if not self.two_way:
            return up
        return [u + d for u, d in zip(up, self.throughput_down.series(now), strict=True)]

    def sibling_event(self, ev: Event) -> None:
        """An event of another folder on the same remote: its finding that the remote is
        offline (or back) holds for this folder too."""
        if isinstance(ev, RemoteOffline | RemoteStillOffline):
            self.remote_down = RemoteDown(ev.folder, ev.error, ev.retry_at)
            return
        if self.remote_down is None or self.remote_down.folder != ev.folder:
            return
        if isinstance(ev, RemoteOnline) or (
            isinstance(ev, FolderStateChanged)
            and ev.state not in (FolderState.OFFLINE, FolderState.PAUSED)
        ):
            self.remote_down = None

    @property
    def offline(self) -> bool:
        """Offline by its own finding, or by another folder's on the same remote."""
        if self.state is FolderState.OFFLINE:
            return True
        return self.remote_down is not None and self.state in BORROWS_OFFLINE

    @property
    def next_check(self) -> float | None:
        """While offline: when the engine checks the server next."""
        if self.state is FolderState.OFFLINE:
            return self.offline_retry_at
        return self.remote_down.retry_at if self.remote_down is not None else None

    def _offline_error(self) -> str:
        if self.state is FolderState.OFFLINE:
            return self.offline_error or self.reason
        return self.remote_down.error if self.remote_down is not None else ""

    @property
    def shown_state(self) -> FolderState:
        if self.open_error:
            return FolderState.ERROR
        return FolderState.OFFLINE if self.offline else self.state

    def state_text(self) -> str:
        """``syncing 43%``, ``scanning 1,234 files``, or the state word."""
        state = self.shown_state
        if state is FolderState.SYNCING and self.progress.active():
            return f"syncing {percent(self.progress.totals)}"
        if state is FolderState.SCANNING and self.progress.scan_files:
            return f"scanning · {self.progress.scan_files:,} files"
        return state.value

    def progress_text(self, now: float) -> str:
        """The progress line while a round is under way (syncing, offline or paused in it)."""
        if self.open_error or not self.progress.active():
            return ""
        if self.shown_state is FolderState.UP_TO_DATE:
            return ""
        p = self.progress
        return progress_line(p.totals, p.rates(now), p.eta(now))

    def problem(self, now: float) -> tuple[str, bool]:
        """The line under the stats, and whether it is current (else an old error, muted)."""
        if self.open_error:
            return f"cannot open: {short_error(self.open_error)} (r tries again)", True
        if self.offline:
            why = short_error(self._offline_error())
            retry = "retrying"
            if self.next_check is not None:
                retry += " " + seconds_until(self.next_check, now)
            if self.state is not FolderState.OFFLINE:
                retry = f"{self.cfg.remote} is offline, {retry}"
            return f"offline — {retry} ({why})" if why else f"offline — {retry}", True
        if self.reason:  # an error or pause, or a watcher problem while up to date
            return short_error(self.reason), True
        if self.last_error:
            return f"last error {ago(self.last_error_at, now)}: {self.last_error}", False
        return "", False

    def full_problem(self) -> str:
        """The whole text behind the short line (the detail view shows it)."""
        if self.open_error:
            return hide_staging(f"cannot open: {self.open_error}")
        if self.offline and self.state is not FolderState.OFFLINE:
            assert self.remote_down is not None
            seen = f"{self.cfg.remote} is offline (found by folder {self.remote_down.folder})"
            return hide_staging(f"{seen}: {self.remote_down.error}")
        text = self.offline_error if self.state is FolderState.OFFLINE else ""
        return hide_staging(text or self.reason) or self.last_error_full


class FolderPanel(Vertical, can_focus=True):
    """One folder: name and state, route, counts with throughput, last sync, problem."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous folder", show=False),
        Binding("down,j", "move(1)", "Next folder", show=False),
    ]

    def __init__(self, view: FolderView, clock: Callable[[], float]) -> None:
        super().__init__(id=panel_id(view.name), classes="folder-panel")
        self.view = view
        self._clock = clock
        self._rendered: tuple[object, ...] = ()
        #: Its labels exist (a busy machine may tick or deliver events before they do).
        self._composed = False

    @property
    def folder_name(self) -> str:
        return self.view.name

    def compose(self) -> ComposeResult:
        with Horizontal(classes="head"):
            yield Label(self.view.name, classes="name", markup=False)
            yield Label("", classes="state")
        with Horizontal(classes="where"):
            yield Label("", classes="route", markup=False)
            yield Label("", classes="limit")
            yield Label("", classes="last")
        with Horizontal(classes="stats"):
            yield Label("", classes="counts")
            yield Label("", classes="rate")
            yield Sparkline([0.0], classes="spark")
        yield Label("", classes="progress", markup=False)
        yield Label("", classes="problem", markup=False)

    def on_mount(self) -> None:
        self._composed = True
        self.refresh_view()

    def on_focus(self, event: events.Focus) -> None:
        self.post_message(FolderSelected(self.view.name))

    def action_move(self, delta: int) -> None:
        panels = list(self.screen.query(FolderPanel))
        index = panels.index(self) + delta
        if 0 <= index < len(panels):
            panels[index].focus()
            panels[index].scroll_visible()

    def refresh_view(self) -> None:
        """Update the labels (cheap when nothing changed; called at most ~10 times a second)."""
        if not self._composed:
            return  # on_mount shows the view once the labels are there
        v = self.view
        now = self._clock()
        state = v.shown_state
        problem, current = v.problem(now)
        series = v.series(now)
        rate = v.rate_text(now)
        state_text = v.state_text()
        progress = v.progress_text(now)
        rendered = (
            state,
            state_text,
            progress,
            route(v.cfg),
            v.in_sync,
            v.queued,
            v.failed,
            v.in_flight,
            problem,
            current,
            ago(v.last_sync, now),
            tuple(series),
            rate,
            v.bwlimit,
        )
        if rendered == self._rendered:
            return
        self._rendered = rendered
        for s, cls in STATE_CLASSES.items():
            self.set_class(s is state, cls)
        set_text(self.query_one(".state", Label), state_text)
        progress_label = self.query_one(".progress", Label)
        set_text(progress_label, progress)
        if progress_label.display != bool(progress):
            progress_label.display = bool(progress)
        set_text(self.query_one(".route", Label), route(v.cfg))
        counts = f"{v.in_sync:,} in sync · {v.queued:,} queued · {v.failed:,} failed"
        if v.in_flight:
            counts += f" · {v.in_flight} in flight"
        set_text(self.query_one(".counts", Label), counts)
        set_text(self.query_one(".rate", Label), rate)
        spark = self.query_one(".spark", Sparkline)
        if list(spark.data or ()) != series:
            spark.data = series
        limit = self.query_one(".limit", Label)
        set_text(limit, f"limit {human_rate(v.bwlimit)}" if v.bwlimit else "")
        limit.display = bool(v.bwlimit)
        set_text(self.query_one(".last", Label), f"last sync {ago(v.last_sync, now)}")
        label = self.query_one(".problem", Label)
        # The problem line wraps, so a new text may need another height: a full layout.
        set_text(label, problem, layout=True)
        label.set_class(not current, "-old")
        label.display = bool(problem)


def set_text(label: Label, text: str, *, layout: bool = False) -> bool:
    """Update a one-line label; lay the screen out again only when its width may change.

    A layout of the whole screen per update is what makes a busy dashboard slow.
    """
    old = str(label.content)
    if old == text:
        return False
    label.update(text, layout=layout or cell_len(old) != cell_len(text))
    return True


def panel_id(name: str) -> str:
    # Folder names may contain "." which CSS ids do not allow.
    return "folder-" + "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}_" for c in name)


class FolderList(VerticalScroll):
    """The folder panels; keeps one per configured folder, in config order."""

    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(id="folders", **kwargs)  # type: ignore[arg-type]
        self._clock = clock
        self.views: dict[str, FolderView] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            "No folders yet. Press [b]a[/b] to add one ([b]m[/b] manages remotes).",
            id="no-folders",
        )

    def panel(self, name: str) -> FolderPanel | None:
        for p in self.query(FolderPanel):
            if p.folder_name == name:
                return p
        return None

    async def sync_folders(self, folders: Iterable[FolderConfig]) -> None:
        """Add, update and remove panels so they match ``folders``."""
        wanted = {f.name: f for f in folders}
        for name in list(self.views):
            if name not in wanted:
                del self.views[name]
                panel = self.panel(name)
                if panel is not None:
                    await panel.remove()
        new: list[FolderPanel] = []
        for name, cfg in wanted.items():
            view = self.views.get(name)
            if view is None:
                view = self.views[name] = FolderView(cfg)
                new.append(FolderPanel(view, self._clock))
            elif view.cfg != cfg:
                view.cfg = cfg
        if new:
            await self.mount_all(new)
        self.query_one("#no-folders").display = not self.views
        self.refresh_panels()

    def apply(self, events: Iterable[Event]) -> None:
        touched: set[str] = set()
        for ev in events:
            view = self.views.get(ev.folder)
            if view is not None:
                view.apply(ev)
                touched.add(ev.folder)
                if isinstance(ev, SIBLING_EVENTS):
                    touched.update(self._tell_siblings(view, ev))
        for name in touched:
            panel = self.panel(name)
            if panel is not None:
                panel.refresh_view()

    def _tell_siblings(self, source: FolderView, ev: Event) -> list[str]:
        """Hand an offline or online finding on to the other folders of the same remote."""
        told = []
        for name, view in self.views.items():
            if view is not source and view.cfg.remote == source.cfg.remote:
                view.sibling_event(ev)
                told.append(name)
        return told

    def refresh_panels(self) -> None:
        for p in self.query(FolderPanel):
            # A panel being removed (its folder left the config) may have lost its children.
            if self.views.get(p.view.name) is p.view:
                p.refresh_view()
