"""The full log's view: every line the History keeps, rendered only where it is on screen.

A ``RichLog`` renders (and wraps) every line it is given up front: 5,000 lines held the UI for
seconds. Here each line is folded at the view's width by arithmetic on its cell length (exact:
ASCII lines by division, others character by character), so opening costs an index of row
counts, a few milliseconds for 20,000 lines; only the rows on screen are turned into strips.
Rows after a line's first start under its text, past the time, so a long error reads as one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate, islice
from typing import TYPE_CHECKING

from rich.cells import get_character_cell_size
from rich.segment import Segment
from rich.text import Span, Text
from textual.cache import FIFOCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    from syncapp.tui.activity import History

#: A line of the full log as kept: its text, width in cells, base style and spans (start, end,
#: style). Plain tuples of strings and ints, which the garbage collector stops tracking: 20,000
#: ``Text`` objects were 80,000 more objects for every full collection to walk.
Kept = tuple[str, int, str, tuple[tuple[int, int, str], ...]]


def keep_form(text: Text) -> Kept:
    if "\n" in text.plain:  # one line, one row index entry: an error may hold newlines
        text = Text(" ").join(text.split("\n", allow_blank=True))
    spans = tuple((s.start, s.end, str(s.style)) for s in text.spans)
    return (text.plain, text.cell_len, str(text.style), spans)


def kept_text(kept: Kept) -> Text:
    plain, _cells, style, spans = kept
    return Text(plain, style=style, spans=[Span(*span) for span in spans])


#: Rendered rows kept (a few screenfuls).
STRIPS_KEPT = 256
#: Continuation rows start this far in: under the text, past the time ("12:03:04 ").
INDENT = 9


def indent_for(width: int) -> int:
    return INDENT if width > 3 * INDENT else 0


def breaks(plain: str, cells: int, width: int) -> Sequence[int]:
    """Where the rows after the first begin (character offsets) when ``plain``, ``cells``
    cells wide, is folded at ``width``; continuation rows are ``indent_for(width)`` narrower."""
    if cells <= width or width < 1:
        return ()
    step = width - indent_for(width)
    if cells == len(plain) and plain.isascii():
        return range(width, len(plain), step)
    out: list[int] = []
    room, used = width, 0
    for i, ch in enumerate(plain):
        size = get_character_cell_size(ch)
        if used + size > room and used:
            out.append(i)
            room, used = step, 0
        used += size
    return out


def row_count(plain: str, cells: int, width: int) -> int:
    if cells <= width:
        return 1
    if cells == len(plain) and plain.isascii():
        step = width - indent_for(width)
        return 1 + -(-(cells - width) // step)
    return 1 + len(breaks(plain, cells, width))


class LogView(ScrollView, can_focus=True):
    """The History's lines, newest at the bottom. While scrolled to the end it follows new
    lines; scrolled up, it stays on what it shows (also when the oldest lines fall out)."""

    DEFAULT_CSS = """
    LogView {
        overflow-y: scroll;
        overflow-x: hidden;
    }
    """

    def __init__(self, history: History, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self._width = 0
        #: Per line in the History: the row just past it. Lines falling out of the History
        #: leave the others' numbers alone: ``_base`` is where the oldest line kept begins.
        self._ends: list[int] = []
        self._base = 0
        #: ``History.added`` when the index was last brought up to date.
        self._added = 0
        # A dict underneath, not LRUCache's ring of links: a ring cleared is cyclic garbage
        # (with every strip in it) that only a full collection frees.
        self._strips: FIFOCache[tuple[int, int, int], Strip] = FIFOCache(STRIPS_KEPT)

    @property
    def line_count(self) -> int:
        """Lines the view can show (every line the History keeps, once it has a width)."""
        return len(self._ends)

    @property
    def row_total(self) -> int:
        return self._ends[-1] - self._base if self._ends else 0

    def on_mount(self) -> None:
        # The width the layout will give, from the app's: the first frame then shows the lines
        # at once, not a blank view waiting for a Resize (a wrong guess is redone on resize).
        gutter = self.styles.gutter.width + self.styles.scrollbar_size_vertical
        self._reindex(self.app.size.width - gutter)
        # No scrollbar is shown before the first layout: force it (the layout then clamps).
        self.scroll_to(y=self.row_total, animate=False, force=True)

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._width:
            # Keep the line at the top of the view there, or the end when following.
            following = self.is_vertical_scroll_end
            top = self._line_at(round(self.scroll_y))
            self._reindex(width)
            if following or top is None:
                self.scroll_to(y=self.max_scroll_y, animate=False)
            else:
                self.scroll_to(y=self._row_of(top), animate=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    # -- the index of rows ------------------------------------------------------------------------

    def _reindex(self, width: int) -> None:
        self._width = max(1, width)
        self._strips.clear()
        history = self.history
        self._added = history.added
        self._base = 0
        self._ends = list(accumulate(self._rows(history.kept)))
        self._set_size()

    def _rows(self, kept: Iterable[Kept]) -> list[int]:
        width = self._width
        return [1 if k[1] <= width else row_count(k[0], k[1], width) for k in kept]

    def _set_size(self) -> None:
        self.virtual_size = Size(self._width, self.row_total)

    def sync(self) -> None:
        """Take the lines added to the History since last time (and drop those it let go)."""
        history = self.history
        new = history.added - self._added
        if new <= 0 or not self._width:
            return
        following = self.is_vertical_scroll_end
        gone = len(self._ends) + new - len(history)
        if gone >= len(self._ends):
            self._reindex(self._width)  # everything shown has fallen out: start afresh
            self.scroll_to(y=self.max_scroll_y if following else 0, animate=False)
            self.refresh()
            return
        if gone > 0:
            dropped = self._ends[gone - 1] - self._base
            self._base = self._ends[gone - 1]
            del self._ends[:gone]
            if not following:
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False)
        # The new lines are at the right end of the deque: read them from there.
        rows = self._rows(list(islice(reversed(history.kept), new))[::-1])
        last = self._ends[-1] if self._ends else self._base
        self._ends.extend(last + r for r in accumulate(rows))
        self._added = history.added
        self._set_size()
        if following:
            self.scroll_to(y=self.max_scroll_y, animate=False)
        self.refresh()

    def _line_at(self, row: int) -> int | None:
        """The index (in the History) of the line shown at view row ``row``."""
        if not self._ends:
            return None
        k = bisect_right(self._ends, row + self._base)
        return k if k < len(self._ends) else None

    def _row_of(self, line: int) -> int:
        return (self._ends[line - 1] if line else self._base) - self._base

    # -- drawing ----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        k = self._line_at(row)
        if k is None:
            return Strip.blank(width, self.rich_style)
        sub = row - self._row_of(k)
        key = (self.history.dropped + k, sub, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(k, sub, width)
            self._strips[key] = strip
        return strip

    def _render_row(self, k: int, sub: int, width: int) -> Strip:
        kept = self.history.kept[k]
        line = kept_text(kept)
        cuts = list(breaks(kept[0], kept[1], self._width))
        part = line.divide(cuts)[sub] if cuts else line
        segments = list(part.render(self.app.console))
        if sub:
            segments.insert(0, Segment(" " * indent_for(self._width)))
        strip = Strip(segments).crop_extend(0, width, self.rich_style)
        return strip.apply_style(self.rich_style)
