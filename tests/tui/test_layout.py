"""The Activity log groups repeats; narrow terminals keep the Speed column whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from syncapp.engine import JobFailed, JobFinished, JobProgressed, JobStarted, Op, PathSkipped
from syncapp.tui.activity import TIMES, group_repeats
from syncapp.tui.app import SyncApp
from tests.tui.test_progress import T0, Clock, config

LINK = "symbolic link (not followed; set follow_symlinks = true to follow links)"


def test_repeats_in_a_batch_become_one_line_with_a_count() -> None:
    events = [
        PathSkipped("docs", "a/link1", LINK, at=T0),
        JobFinished("docs", Op.UPLOAD, "x.txt", 10, at=T0),
        PathSkipped("docs", "a/link2", LINK, at=T0),
        PathSkipped("docs", "fifo", "not a regular file (device, socket or pipe)", at=T0),
        PathSkipped("docs", "a/link3", LINK, at=T0),
        PathSkipped("docs", "b/link4", LINK, at=T0),
        JobFailed("docs", Op.UPLOAD, "p1", "PUT http://h/.syncapp-tmp-1: HTTP 507", None, at=T0),
        JobFailed("docs", Op.UPLOAD, "p2", "PUT http://h/.syncapp-tmp-2: HTTP 507", None, at=T0),
    ]
    lines = [line.plain.split(" ", 1)[1] for line in group_repeats(events)]
    assert lines == [
        f"docs: skipped a/link1 … {TIMES}4: {LINK}",
        "docs: uploaded x.txt (10 B)",
        "docs: skipped fifo: not a regular file (device, socket or pipe)",
        f"docs: upload p1 … {TIMES}2 failed: HTTP 507",
    ]


async def test_activity_log_shows_the_grouped_line(tmp_path: Path) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_events([PathSkipped("docs", f"l{i}", LINK, at=T0) for i in range(4)])
        await pilot.pause()
        text = " ".join(line.text for line in app.dashboard.activity.lines)  # wrapped
        assert text.count("skipped") == 1 and f"skipped l0 … {TIMES}4" in text
        # The full log keeps every line.
        assert sum("skipped l" in line.plain for line in app.history.texts()) == 4


async def test_repeats_across_batches_join_the_last_line(tmp_path: Path) -> None:
    """The engine's events reach the UI in batches of a tenth of a second: a scan that skips
    links one by one spreads them over many batches."""
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    reason = "symbolic link"  # one row per line
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        log = app.dashboard.activity

        def texts() -> list[str]:
            return [line.text.rstrip() for line in log.lines]

        for i in range(4):
            app.apply_events([PathSkipped("docs", f"a/link{i}", reason, at=T0 + i)])
            await pilot.pause()
        assert [x.split(" ", 1)[1] for x in texts()] == [
            f"docs: skipped a/link0 … {TIMES}4: {reason}"
        ]
        # Something else ends the run; the next repeat starts a new line.
        app.apply_events([JobFinished("docs", Op.UPLOAD, "x.txt", 10, at=T0 + 5)])
        app.apply_events(
            [
                JobFailed("docs", Op.UPLOAD, "p1", "HTTP 507", None, at=T0 + 6),
                JobFailed("docs", Op.UPLOAD, "p2", "HTTP 507", None, at=T0 + 7),
            ]
        )
        await pilot.pause()
        app.apply_events([JobFailed("docs", Op.UPLOAD, "p3", "HTTP 507", None, at=T0 + 8)])
        app.apply_events([PathSkipped("docs", "a/link9", reason, at=T0 + 9)])
        await pilot.pause()
        assert [x.split(" ", 1)[1] for x in texts()] == [
            f"docs: skipped a/link0 … {TIMES}4: {reason}",
            "docs: uploaded x.txt (10 B)",
            f"docs: upload p1 … {TIMES}3 failed: HTTP 507",
            f"docs: skipped a/link9: {reason}",
        ]
        # Each line carries the time of its first event: the log reads in time order.
        times = [x.split(" ", 1)[0] for x in texts()]
        assert times == sorted(times)
        # The full log keeps every line.
        assert sum("skipped a/link" in line.plain for line in app.history.texts()) == 5


@pytest.mark.parametrize("columns", [80, 50])
async def test_narrow_terminal_keeps_the_speed_column_whole(tmp_path: Path, columns: int) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(columns, 24)) as pilot:
        await pilot.pause()
        events = []
        for i in range(3):
            path = f"a/very/long/path/that/goes/on/and/on/file-{i}.bin"
            size = 1_073_000_000
            events += [
                JobStarted("docs", Op.UPLOAD, path, size, at=T0),
                JobProgressed("docs", Op.UPLOAD, path, size // 2, size, 1_048_000.0, at=T0),
            ]
        app.apply_events(events)
        await pilot.pause()
        table = app.dashboard.transfers
        width = table.content_size.width
        assert width < columns
        console = Console(width=width, record=True, color_system=None)
        console.print(table.render())
        rows = console.export_text().splitlines()
        assert rows[0].rstrip().endswith("Speed")
        for row in rows[1:4]:
            assert row.rstrip().endswith("1023.4 KiB/s"), row
            assert "1023.3 MiB" in row
            # The file name keeps room to be read (the bar gives way first).
            assert "docs: a/very/l" in row, row


async def test_events_of_a_folder_not_in_the_config_show_nowhere(tmp_path: Path) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_events(
            [
                JobStarted("gone", Op.UPLOAD, "big.iso", 10_000_000, at=T0),
                JobFinished("gone", Op.UPLOAD, "small.txt", 10, at=T0),
                JobStarted("docs", Op.UPLOAD, "mine.txt", 10_000_000, at=T0),
            ]
        )
        await pilot.pause()
        assert [t.folder for t in app.dashboard.transfers.transfers.values()] == ["docs"]
        assert not any("gone" in line.text for line in app.dashboard.activity.lines)


async def test_a_panel_not_composed_yet_is_left_alone(tmp_path: Path) -> None:
    """The dashboard's tick or an event may reach a panel mounted but not yet composed (a busy
    machine): nothing to update then, and no crash."""
    from syncapp.tui.folders import FolderPanel

    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.dashboard.folders.views["docs"]
        early = FolderPanel(view, Clock())
        early.refresh_view()  # before compose: no labels to update
        assert not early.query(".state")
