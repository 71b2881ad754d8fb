"""The full log (``l``): every line the History keeps, folded at the view's width and drawn only
where it is on screen; newest at the bottom, follows new lines while at the end."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len

from syncapp.engine import JobFailed, Op
from syncapp.tui.activity import History, LogScreen
from syncapp.tui.app import SyncApp
from syncapp.tui.logview import INDENT, breaks, row_count
from tests.tui.test_progress import T0, Clock, config


def log_screen(app: SyncApp) -> LogScreen:
    screen = app.screen
    assert isinstance(screen, LogScreen)
    return screen


def shown(app: SyncApp) -> list[str]:
    """The rows the view draws, as text."""
    view = log_screen(app).view
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


async def test_full_log_shows_every_line_scrolls_and_follows_new_ones(tmp_path: Path) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(100, 30)) as pilot:
        for i in range(19_999):
            app.history.note(f"line {i}", T0 + i)
        await pilot.press("l")
        await pilot.pause()
        view = log_screen(app).view
        assert view.line_count == 19_999
        rows = shown(app)
        assert rows[-1].endswith(" line 19998") and rows[0].endswith(f" line {19_999 - len(rows)}")
        assert app.focused is view

        # New lines while at the end: the view follows.
        app.note("saved the config")
        await pilot.pause()
        assert shown(app)[-1].endswith("saved the config")

        # Home shows the oldest; new lines then leave the view where it is (also when the
        # oldest line falls out: the History keeps 20,000).
        await pilot.press("home")
        await pilot.pause()
        assert shown(app)[0].endswith(" line 0")
        await pilot.press("pagedown")
        await pilot.pause()
        top = shown(app)[0]
        assert top.endswith(f" line {view.scrollable_content_region.height}")
        app.note("another line")
        await pilot.pause()
        assert shown(app)[0] == top
        await pilot.press("end")
        await pilot.pause()
        assert shown(app)[-1].endswith("another line")
        await pilot.press("home", "escape")
        assert not isinstance(app.screen, LogScreen)

        # Opened again (the same screen, kept): what came meanwhile is there, at the bottom.
        app.note("while the log was closed")
        await pilot.press("l")
        await pilot.pause()
        assert log_screen(app).view is view
        assert shown(app)[-1].endswith("while the log was closed")
        await pilot.press("escape")


async def test_long_lines_fold_under_their_text_and_dropped_lines_are_said(
    tmp_path: Path,
) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    app.history = History(maxlen=40)
    async with app.run_test(size=(60, 20)) as pilot:
        for i in range(50):
            app.history.note(f"line {i}", T0 + i)
        error = "HTTP 507 Insufficient Storage: " + "the quota of this account is used up " * 3
        app.apply_events([JobFailed("docs", Op.UPLOAD, "big/report.pdf", error, None, at=T0)])
        await pilot.press("l")
        await pilot.pause()
        view = log_screen(app).view
        assert "11 older lines" in str(view.border_subtitle)
        rows = shown(app)
        # The failure is the last line, folded: its rows after the first start under the text.
        first = next(i for i, r in enumerate(rows) if "upload big/report.pdf failed" in r)
        assert first < len(rows) - 1
        rest = rows[first + 1 :]
        assert all(r.startswith(" " * INDENT) and r[INDENT] != " " for r in rest if r)
        joined = rows[first] + "".join(r[INDENT:] for r in rest)
        assert "".join(joined.split()).endswith("".join(error.split()))  # rows lose end spaces

        # Scrolled to the top while the oldest lines fall out: the same lines stay in view.
        await pilot.press("home")
        await pilot.pause()
        assert shown(app)[0].endswith(" line 11")
        for i in range(50, 53):
            app.note(f"line {i}")
        await pilot.pause()
        assert shown(app)[0].endswith(" line 14")  # 11 to 13 fell out; the view stays put
        assert "14 older lines" in str(view.border_subtitle)
        await pilot.press("escape")


def test_folding_is_exact_for_wide_characters() -> None:
    width = 30
    for plain in ("x" * 95, "日本語のファイル名" * 6 + "a", "Überweisung " * 9, "short"):
        cells = cell_len(plain)
        cuts = list(breaks(plain, cells, width))
        assert row_count(plain, cells, width) == len(cuts) + 1
        parts = [plain[a:b] for a, b in zip([0, *cuts], [*cuts, len(plain)], strict=True)]
        assert "".join(parts) == plain
        assert cell_len(parts[0]) <= width
        assert all(0 < cell_len(p) <= width - INDENT for p in parts[1:])
        # Every row but the last is full (a wide character may leave one cell).
        assert all(cell_len(p) >= width - INDENT - 1 for p in parts[1:-1])


def test_the_activity_logs_change_events_are_those_with_a_line() -> None:
    """The dashboard's log counts a batch's lines by ``shows_change`` and formats only those it
    shows: every event kind has a line exactly when it is one of them."""
    import dataclasses
    import enum
    import typing

    from syncapp.engine import events as engine_events
    from syncapp.tui.activity import format_change, shows_change

    def value(hint: object) -> object:
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return next(iter(hint))
        if typing.get_origin(hint) is tuple:
            return ()
        if hint is int or hint is float:
            return 1
        if hint is str:
            return "x"
        return None  # optional fields

    kinds = [
        cls
        for cls in vars(engine_events).values()
        if isinstance(cls, type)
        and issubclass(cls, engine_events.Event)
        and cls is not engine_events.Event
    ]
    assert len(kinds) > 15
    for cls in kinds:
        hints = typing.get_type_hints(cls)
        fields = {f.name: value(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
        fields.pop("at", None)
        ops = list(engine_events.Op) if "op" in fields else [None]
        for op in ops:
            if op is not None:
                fields["op"] = op
            ev = cls(**fields)
            assert (format_change(ev) is not None) == shows_change(ev), ev
