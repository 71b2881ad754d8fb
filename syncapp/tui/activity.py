"""The activity log (recent changes) and the full log screen (``l``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, RichLog

from syncapp.engine import (
    ConflictKept,
    Event,
    FileDownloaded,
    FileTrashed,
    FolderStateChanged,
    GuardTripped,
    JobFailed,
    JobFinished,
    Op,
    PathSkipped,
    PlanQueued,
    RemoteOffline,
    RemoteOnline,
    RenamedLocally,
    ScanFinished,
)
from syncapp.tui.footer import Footer
from syncapp.tui.format import clock_time, hide_staging, human_size, short_error
from syncapp.tui.logview import Kept, LogView, keep_form, kept_text

#: Lines the dashboard's log keeps, and lines the full log keeps.
RECENT_LINES = 200
HISTORY_LINES = 20_000


#: Tone → Rich colour; the app builds it from the theme so lines read well in light and dark.
Palette = Mapping[str, str]
#: The sign before how many times a line repeats ("skipped a/link … (times) 4").
TIMES = "\N{MULTIPLICATION SIGN}"

DARK: Palette = {"error": "#D17E92", "warning": "#FFC473", "success": "#8AD4A1", "note": "#57A5E2"}


def _line(ev: Event, body: str, tone: str, palette: Palette) -> Text:
    text = Text(f"{clock_time(ev.at)} ", style="dim")
    text.append(f"{ev.folder}: ", style="bold")
    text.append(body, style="dim" if tone == "muted" else palette.get(tone, ""))
    return text


def format_change(ev: Event, palette: Palette = DARK, *, short: bool = False) -> Text | None:
    """A line for the activity log: what changed remotely, or failed to, and why.

    ``short``: errors in the server's own few words (the dashboard); else the full text.
    """
    said = short_error if short else hide_staging
    if isinstance(ev, JobFinished):
        if ev.op is Op.UPLOAD:
            return _line(ev, f"uploaded {ev.path} ({human_size(ev.size)})", "", palette)
        if ev.op is Op.DELETE:
            return _line(ev, f"deleted {ev.path}", "", palette)
        if ev.op is Op.MOVE:
            return _line(ev, f"moved {ev.path} → {ev.dest}", "", palette)
        if ev.op is Op.MKDIR:
            return _line(ev, f"created folder {ev.path}/", "muted", palette)
        # A download's line is FileDownloaded's (or ConflictKept's, for a conflict copy).
    if isinstance(ev, JobFailed):
        tail = "; will retry" if ev.retry_at is not None else ""
        body = f"{ev.op.value} {ev.path} failed: {said(ev.error)}{tail}"
        return _line(ev, body, "error", palette)
    if isinstance(ev, GuardTripped):
        return _line(ev, f"delete guard: {ev.reason}", "error", palette)
    if isinstance(ev, ConflictKept):
        return _line(
            ev,
            f"conflict: {ev.path} changed remotely too; remote copy kept as {ev.copy}",
            "warning",
            palette,
        )
    if isinstance(ev, FileDownloaded):  # two-way
        return _line(ev, f"downloaded {ev.path} ({human_size(ev.size)})", "", palette)
    if isinstance(ev, FileTrashed):
        return _line(ev, f"deleted on the remote: {ev.path} moved to the trash", "", palette)
    if isinstance(ev, RenamedLocally):
        return _line(ev, f"renamed on the remote: {ev.path} → {ev.dest}", "", palette)
    if isinstance(ev, PathSkipped):
        return _line(ev, f"skipped {ev.path}: {ev.reason}", "warning", palette)
    if isinstance(ev, RemoteOffline):
        return _line(ev, f"remote offline: {said(ev.error)}", "warning", palette)
    if isinstance(ev, RemoteOnline):
        return _line(ev, "remote back online", "success", palette)
    return None


#: The events ``format_change`` has a line for (``shows_change``): a batch's lines are counted
#: by it, and only those that can be seen are formatted.
CHANGES = (
    JobFinished,
    JobFailed,
    GuardTripped,
    ConflictKept,
    FileDownloaded,
    FileTrashed,
    RenamedLocally,
    PathSkipped,
    RemoteOffline,
    RemoteOnline,
)


def shows_change(ev: Event) -> bool:
    """Whether ``format_change`` has a line for ``ev``, without making it."""
    if isinstance(ev, JobFinished):
        return ev.op is not Op.DOWNLOAD  # FileDownloaded (or ConflictKept) says it
    return isinstance(ev, CHANGES)


def format_event(ev: Event, palette: Palette = DARK) -> Text | None:
    """A line for the full log: changes plus states and scans."""
    line = format_change(ev, palette)
    if line is not None:
        return line
    if isinstance(ev, FolderStateChanged):
        reason = f" ({ev.reason})" if ev.reason else ""
        return _line(ev, ev.state.value + reason, "note", palette)
    if isinstance(ev, PlanQueued):
        parts = [f"{ev.uploads:,} to upload ({human_size(ev.bytes)})"] if ev.uploads else []
        if ev.deletes:
            parts.append(f"{ev.deletes:,} to delete")
        if ev.moves:
            parts.append(f"{ev.moves:,} to move")
        if ev.mkdirs:
            parts.append(f"{ev.mkdirs:,} folders to create")
        return _line(ev, "planned " + ", ".join(parts), "muted", palette)
    if isinstance(ev, ScanFinished):
        return _line(
            ev,
            f"scanned {ev.files:,} files in {ev.dirs:,} folders in {ev.seconds:.2f} s, "
            f"{ev.changes:,} to sync",
            "muted",
            palette,
        )
    return None


def _repeat_key(ev: Event) -> tuple[object, ...] | None:
    """Events that say the same thing about different paths (skipped links, one error for many
    files) share a key; they are shown as one line with a count."""
    if isinstance(ev, PathSkipped):
        return (ev.folder, "skipped", ev.reason)
    if isinstance(ev, JobFailed):
        return (ev.folder, "failed", ev.op, short_error(ev.error), ev.retry_at is not None)
    return None


#: A line of the log: one event, or a run of events that say the same thing.
Slot = Event | list[Event]


def group_slots(events: Iterable[Event]) -> list[Slot]:
    """The batch in lines: repeats (same ``_repeat_key``) become one run where the first was."""
    slots: list[Slot] = []
    groups: dict[tuple[object, ...], list[Event]] = {}
    for ev in events:
        key = _repeat_key(ev)
        if key is None:
            slots.append(ev)
        elif key in groups:
            groups[key].append(ev)
        else:
            groups[key] = [ev]
            slots.append(groups[key])
    return slots


def slot_line(slot: Slot, palette: Palette = DARK, *, short: bool = True) -> Text | None:
    if isinstance(slot, list) and len(slot) > 1:
        return _repeated_line(slot, palette, short=short)
    return format_change(slot[0] if isinstance(slot, list) else slot, palette, short=short)


def group_repeats(
    events: Iterable[Event], palette: Palette = DARK, *, short: bool = True
) -> list[Text]:
    """Activity lines for a batch; repeats in it become one line with a count where the first
    was: ``skipped a/link … (times 4): why``."""
    lines = (slot_line(slot, palette, short=short) for slot in group_slots(events))
    return [line for line in lines if line is not None]


def _repeated_line(run: list[Event], palette: Palette, *, short: bool) -> Text:
    first = run[0]  # the line stands where the first was, with its time (time order)
    count = f"{TIMES}{len(run):,}"
    if isinstance(first, PathSkipped):
        body = f"skipped {first.path} … {count}: {first.reason}"
        return _line(first, body, "warning", palette)
    assert isinstance(first, JobFailed)
    said = short_error if short else hide_staging
    tail = "; will retry" if first.retry_at is not None else ""
    body = f"{first.op.value} {first.path} … {count} failed: {said(first.error)}{tail}"
    return _line(first, body, "error", palette)


class History:
    """Everything the full log shows, kept while the dashboard runs."""

    def __init__(self, maxlen: int = HISTORY_LINES) -> None:
        self.kept: deque[Kept] = deque(maxlen=maxlen)
        #: Lines ever added; those past ``maxlen`` fell out of ``kept``.
        self.added = 0

    def __len__(self) -> int:
        return len(self.kept)

    @property
    def dropped(self) -> int:
        return self.added - len(self.kept)

    def texts(self) -> list[Text]:
        """Every line kept, as text (for tests and tools; the log view renders what it shows)."""
        return [kept_text(k) for k in self.kept]

    def _keep(self, lines: list[Text]) -> None:
        self.kept.extend(keep_form(line) for line in lines)
        self.added += len(lines)

    def add(self, events: Iterable[Event], palette: Palette = DARK) -> list[Text]:
        new = [line for ev in events if (line := format_event(ev, palette)) is not None]
        self._keep(new)
        return new

    def note(self, message: str, at: float, palette: Palette = DARK) -> Text:
        """A line from the UI itself (config saved, folder added)."""
        text = Text(f"{clock_time(at)} ", style="dim")
        text.append(message, style=palette.get("note", ""))
        self._keep([text])
        return text


class ActivityLog(RichLog):
    """Recent changes on the dashboard. Repeats are one line with a count, also across
    batches: while the last line is a run (skipped links, one error for many files), more of
    the same join it instead of adding lines."""

    #: Lines written per batch at most, unless the log is taller (the full log, l, keeps them
    #: all). A RichLog renders every line it is given: 60 a batch were a tenth of a busy UI.
    BURST = 20

    def __init__(self) -> None:
        super().__init__(id="activity", max_lines=RECENT_LINES, wrap=True, markup=False)
        self.border_title = "Activity"
        self.can_focus = True
        #: The run the last line shows (repeatable events only), and the rows it took.
        self._tail: list[Event] | None = None
        self._tail_rows = 0

    def apply(self, events: Iterable[Event], palette: Palette = DARK) -> None:
        slots = [
            slot
            for slot in group_slots(events)
            if shows_change(slot[0] if isinstance(slot, list) else slot)
        ]
        if not slots:
            return
        tail = self._tail
        if tail is not None:
            key = _repeat_key(tail[0])
            for slot in slots:
                if isinstance(slot, list) and _repeat_key(slot[0]) == key:
                    # The same again: the last line's count goes up, no new line.
                    slots.remove(slot)
                    self._rewrite_tail([*tail, *slot], palette)
                    break
        if not slots:
            return
        last, body = slots[-1], slots[:-1]
        # In a burst only the newest lines can be seen: only those are formatted.
        room = max(self.BURST, self.scrollable_content_region.height)
        skipped = max(0, len(body) + 2 - room) if len(body) + 1 > room else 0
        lines = [line for slot in body[skipped:] if (line := slot_line(slot, palette)) is not None]
        if skipped:
            lines.insert(0, Text(f"… {skipped:,} more changes (l shows them all)", style="dim"))
        run = last if isinstance(last, list) else [last]
        if _repeat_key(run[0]) is None:
            # A last line that no repeat can join goes in the same write: each write measures,
            # renders and scrolls on its own.
            line = slot_line(run, palette)
            if line is not None:
                lines.append(line)
            run = []
        if lines:
            self.write(Text("\n").join(lines))
        if run:
            self._write_tail(run, palette)
        else:
            self._tail = None
            self._tail_rows = 0

    def _write_tail(self, run: list[Event], palette: Palette) -> None:
        line = slot_line(run, palette)
        assert line is not None
        before = len(self.lines)
        self.write(line)
        known = self._size_known and len(self.lines) > before
        self._tail = run if known and _repeat_key(run[0]) is not None else None
        self._tail_rows = len(self.lines) - before if self._tail is not None else 0

    def _rewrite_tail(self, run: list[Event], palette: Palette) -> None:
        """Replace the last line (the rows it took) with the longer run's line."""
        if 0 < self._tail_rows <= len(self.lines):
            del self.lines[-self._tail_rows :]
            self._line_cache.clear()
        self._write_tail(run, palette)
        self.refresh()

    def note(self, line: Text) -> None:
        self._tail = None
        self.write(line)


class LogScreen(Screen[None]):
    """The full log: every event line kept this session (``l``; escape goes back)."""

    BINDINGS = [
        Binding("escape,l", "app.pop_screen", "Back"),
        Binding("end", "scroll_end", "Newest", show=False),
        Binding("home", "scroll_home", "Oldest", show=False),
    ]

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history

    @property
    def view(self) -> LogView:
        return self.query_one("#full-log", LogView)

    def compose(self) -> ComposeResult:
        yield Header()
        view = LogView(self.history, id="full-log")
        view.border_title = "Full log"
        yield view
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._say_dropped()
        self.view.focus()

    def on_screen_resume(self) -> None:
        # Opened again (the app keeps this screen): what came meanwhile, newest at the bottom.
        self.view.sync()
        self._say_dropped()
        self.view.scroll_end(animate=False, immediate=True)

    def _say_dropped(self) -> None:
        dropped = self.history.dropped
        if dropped:
            self.view.border_subtitle = (
                f"{dropped:,} older lines not kept here (the background engine's engine.log, "
                "in the state dir, keeps every one)"
            )

    def add_lines(self, lines: Iterable[Text]) -> None:
        """New lines are in the History already: the view takes them from there."""
        self.view.sync()
        self._say_dropped()

    def action_scroll_end(self) -> None:
        self.view.scroll_end(animate=False)

    def action_scroll_home(self) -> None:
        self.view.scroll_home(animate=False)
