"""The transfers table: what is in flight right now (file, size, progress, speed).

Drawn as one widget with a fixed size rather than a DataTable: a sync of many small files starts
and ends several transfers per batch, and DataTable lays the whole screen out again on every
removed row. Here an update only repaints this widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from syncapp.engine import Event, JobFailed, JobFinished, JobProgressed, JobStarted, Op
from syncapp.tui.format import human_rate, human_size

BAR_WIDTH = 12
#: The widest a size ("1023.9 MiB") and a rate ("1023.9 KiB/s") can be.
SIZE_WIDTH = 10
SPEED_WIDTH = 12

OP_MARK = {
    Op.UPLOAD: "↑",
    Op.DOWNLOAD: "↓",
    Op.MKDIR: "+",
    Op.DELETE: "✕",
    Op.MOVE: "→",
}


@dataclass
class Transfer:
    folder: str
    op: Op
    path: str
    dest: str
    size: int
    done: int = 0
    rate: float = 0.0

    @property
    def label(self) -> str:
        name = f"{self.path} → {self.dest}" if self.dest else self.path
        return f"{OP_MARK.get(self.op, '·')} {self.folder}: {name}"


def progress_bar(
    done: int, size: int, color: str, width: int = BAR_WIDTH, text_color: str = ""
) -> Text:
    if size <= 0:
        return Text("─" * width, style="dim")
    share = min(1.0, max(0.0, done / size))
    if width <= 0:
        return Text(f"{share * 100:3.0f}%", style=f"bold {text_color or color}")
    filled = int(share * width)
    bar = Text("━" * filled, style=f"bold {color}")
    bar.append("━" * (width - filled), style="dim")
    # The percentage in the theme's text variant of the colour: readable on light themes too.
    bar.append(f" {share * 100:3.0f}%", style=f"bold {text_color or color}")
    return bar


class TransfersTable(Widget):
    """Transfers keyed by folder and path, updated from a batch of events in one pass."""

    def __init__(self) -> None:
        super().__init__(id="transfers")
        self.transfers: dict[str, Transfer] = {}
        self.border_title = "Transfers"
        self.border_subtitle = "nothing in flight"

    def apply(self, events: Iterable[Event]) -> None:
        changed = False
        for ev in events:
            key = f"{ev.folder}\0{getattr(ev, 'path', '')}"
            if isinstance(ev, JobStarted):
                self.transfers[key] = Transfer(ev.folder, ev.op, ev.path, ev.dest, ev.size)
                changed = True
            elif isinstance(ev, JobProgressed):
                t = self.transfers.get(key)
                if t is not None:
                    t.done, t.size, t.rate = ev.done, ev.size, ev.rate
                    changed = True
            elif isinstance(ev, JobFinished | JobFailed) and key in self.transfers:
                del self.transfers[key]
                changed = True
        if changed:
            self._changed()

    def forget_folder(self, folder: str) -> None:
        for key in [k for k, t in self.transfers.items() if t.folder == folder]:
            del self.transfers[key]
        self._changed()

    def _changed(self) -> None:
        n = len(self.transfers)
        # Border titles are drawn by the parent's compositor: set them only when they change.
        title = f"Transfers ({n})" if n else "Transfers"
        if self.border_title != title:
            self.border_title = title
            self.border_subtitle = "" if n else "nothing in flight"
        self.refresh()

    def render(self) -> RenderableType:
        color = self.app.theme_variables.get("accent", "blue")
        text_color = self.app.theme_variables.get("text-accent", color)
        table = Table(
            box=None,
            expand=True,
            padding=(0, 1, 0, 0),
            header_style="bold",
            show_edge=False,
        )
        # Narrow: a shorter bar leaves the file name room to be read. The numbers keep their
        # full width ("1023.9 MiB", "1023.9 KiB/s"): only the file name gives way.
        # Very narrow (under 60 columns): the percentage alone.
        width = self.content_size.width
        bar_width = BAR_WIDTH if width >= 70 else 5 if width >= 60 else 0
        table.add_column("File", ratio=1, no_wrap=True, overflow="ellipsis", min_width=8)
        table.add_column("Size", width=SIZE_WIDTH, no_wrap=True, justify="right")
        table.add_column("Progress" if bar_width else "Done", width=bar_width + 5, no_wrap=True)
        table.add_column("Speed", width=SPEED_WIDTH, no_wrap=True, justify="right")
        rows = max(0, self.content_size.height - 1)
        shown = list(self.transfers.values())
        more = len(shown) - rows
        if more > 0:
            shown = shown[: max(0, rows - 1)]
        for t in shown:
            table.add_row(
                # Text, not str: file names may hold "[" which markup would eat.
                Text(t.label),
                human_size(t.size) if t.size else "",
                # Small files go in one piece: no progress to show.
                progress_bar(t.done, t.size, color, bar_width, text_color) if t.done else "",
                human_rate(t.rate) if t.rate else "",
            )
        if more > 0:
            table.add_row(Text(f"… and {more + 1} more", style="dim"), "", "", "")
        return table
