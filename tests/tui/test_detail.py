"""The folder detail screen (enter on a folder) and a file's versions, with the real engine syncing
to a local remote: filter, retry of a failed path, versions listed and restored."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from rich.text import Text
from textual.command import CommandList
from textual.widgets import DataTable, Input, Label

from syncapp.engine import ConflictKept, FolderState, PathSkipped
from syncapp.engine.api import LocalEngine
from syncapp.errors import SyncappError
from syncapp.tui.activity import format_change
from syncapp.tui.app import SyncApp
from syncapp.tui.detail import FolderDetailScreen
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.versions import RestoreToDialog, VersionsScreen
from tests.helpers import Setup
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import on_dashboard, state, type_text, up_to_date


def cells(table: DataTable[Text], column: int = 0) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


def detail(app: SyncApp) -> FolderDetailScreen:
    screen = app.screen
    assert isinstance(screen, FolderDetailScreen)
    return screen


def summary(app: SyncApp) -> str:
    return str(app.screen.query_one("#detail-summary", Label).content)


async def test_detail_lists_filters_and_retries_failed_paths(setup: Setup) -> None:
    (setup.docs / "link").symlink_to(setup.docs / "a.txt")
    with setup.config_path.open("r+") as fh:
        text = fh.read()
        fh.seek(0)
        fh.write('bwlimit = "2MiB/s"\n' + text)
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 30)) as pilot:
        await up_to_date(pilot, app)
        panel = app.dashboard.folders.panel("docs")
        assert panel is not None
        assert str(panel.query_one(".limit", Label).content) == "limit 2.0 MiB/s"
        # A directory on the remote where a new file must go: the upload fails for good.
        (setup.remote_dir / "docs/report.txt/in the way").mkdir(parents=True)
        (setup.docs / "report.txt").write_text("quarterly")
        await wait_for(pilot, lambda: state(app, "docs") is FolderState.ERROR, "failed")

        await pilot.press("enter")
        screen = detail(app)
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 2, "two paths not in sync")
        assert cells(table) == ["report.txt", "link"]  # failures first
        assert cells(table, 1) == ["failed", "skipped"]
        assert "Is a directory" in cells(table, 2)[0]
        assert "symbolic link" in cells(table, 2)[1]
        assert "1 failed · 1 skipped" in summary(app)
        # Under the table: the highlighted path with its whole reason; up and down move.
        why = screen.query_one("#detail-why", Label)
        assert str(why.content).startswith("report.txt  failed: put docs/report.txt")
        await pilot.press("down")
        assert str(why.content).startswith("link  skipped: symbolic link")
        await pilot.press("up")
        assert screen.selected() == "report.txt"
        # Typing filters by path or by reason; the filter field has focus from the start.
        assert app.focused is screen.query_one("#filter", Input)
        await pilot.press(*"symbolic")
        assert cells(table) == ["link"]
        await pilot.press("ctrl+u")
        await pilot.press(*"rep")
        assert cells(table) == ["report.txt"]
        await pilot.press(*"zz")
        assert table.row_count == 0
        assert 'Nothing matches "repzz"' in summary(app)
        await pilot.press("ctrl+u")
        assert table.row_count == 2

        # Fix the cause, then retry: the path syncs and leaves the list.
        shutil.rmtree(setup.remote_dir / "docs/report.txt")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: cells(table) == ["link"], "retried path synced")
        assert (setup.remote_dir / "docs/report.txt").read_text() == "quarterly"
        await up_to_date(pilot, app)
        await pilot.press("escape")
        assert on_dashboard(app)
        await pilot.press("q")


async def test_versions_of_an_edited_file_and_restore(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 30)) as pilot:
        await up_to_date(pilot, app)
        remote = setup.remote_dir / "docs/a.txt"
        (setup.docs / "a.txt").write_text("a wrong edit")
        await wait_for(pilot, lambda: remote.read_text() == "a wrong edit", "edit synced")
        await up_to_date(pilot, app)

        # From the palette this time; the file is in sync, so show every file (ctrl+t).
        await pilot.press("ctrl+p")
        await type_text(pilot, "Details of docs")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count, "hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderDetailScreen), "detail")
        screen = detail(app)
        assert screen.table.row_count == 0
        assert "Everything in docs is in sync." in summary(app)
        await pilot.press("ctrl+t")
        assert cells(screen.table) == ["a.txt", "sub/b.txt"]
        assert cells(screen.table, 1) == ["in sync", "in sync"]
        assert summary(app) == "2 in sync"
        await pilot.press(*"a.txt", "enter")
        versions = app.screen
        assert isinstance(versions, VersionsScreen)
        table = versions.table
        await wait_for(pilot, lambda: table.row_count == 2, "current copy and one version")
        labels = cells(table)
        assert labels[0].startswith("current copy on the remote")
        assert labels[1].startswith("replaced ")
        assert cells(table, 1) == ["12 B", "5 B"]

        # Restore the kept version (the content before the edit) into the folder.
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ConfirmDialog)
        # The user opened the dialog to restore: enter restores (Cancel is not the default).
        assert app.screen.focused is app.screen.query_one("#confirm")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (setup.docs / "a.txt").read_text() == "alpha", "restored")
        # It then syncs like any edit, and the list shows the remote as it is now.
        await wait_for(pilot, lambda: remote.read_text() == "alpha", "restore synced")
        await wait_for(pilot, lambda: table.row_count == 3, "the list refreshed")
        assert cells(table, 1)[0] == "5 B"

        # And to a file of one's choosing.
        out = setup.root / "kept-copy.txt"
        await pilot.press("t")
        dialog = app.screen
        assert isinstance(dialog, RestoreToDialog)
        field = dialog.query_one("#dest", Input)
        # Suggested: beside the file, named after the version's time.
        assert field.value.startswith(str(setup.docs / "a.restored-"))
        assert field.value.endswith(".txt")
        field.value = str(setup.docs)
        await pilot.press("enter")
        assert isinstance(app.screen, RestoreToDialog)  # a folder is refused
        assert "is a folder" in str(dialog.query_one("#dest-error", Label).content)
        field.value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: out.exists(), "restored elsewhere")
        assert out.read_text() == "alpha"
        assert isinstance(app.screen, VersionsScreen)
        await pilot.press("escape", "escape")
        assert on_dashboard(app)
        await pilot.press("q")


async def test_a_long_engine_call_does_not_hold_up_a_listing(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 30)) as pilot:
        await up_to_date(pilot, app)
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()  # a restore of many files, say
            return "slow done"

        api = app.engine
        assert isinstance(api, LocalEngine)
        slow_call = asyncio.ensure_future(api.in_engine_task(slow, exclusive=False))
        await pilot.pause()
        versions = await asyncio.wait_for(app.list_versions("docs", "a.txt"), 10)
        assert versions and versions[0].path == "a.txt"
        assert not slow_call.done()
        release.set()
        assert await asyncio.wait_for(slow_call, 10) == "slow done"

        # One still running when the app quits is answered, not left hanging.
        stuck = asyncio.ensure_future(api.in_engine_task(slow_forever, exclusive=False))
        await pilot.pause()
        await app.stop_engine()
        with pytest.raises(SyncappError, match="engine stopped"):
            await asyncio.wait_for(stuck, 10)
        await pilot.press("q")


async def slow_forever() -> None:
    await asyncio.Event().wait()


def test_activity_lines_for_conflicts_and_skipped_paths() -> None:
    conflict = format_change(ConflictKept("docs", "a.txt", "a.conflict-20240101-120000.txt"))
    assert conflict is not None
    assert conflict.plain.endswith(
        "docs: conflict: a.txt changed remotely too; remote copy kept as "
        "a.conflict-20240101-120000.txt"
    )
    skipped = format_change(PathSkipped("docs", "link", "symbolic link (not followed)"))
    assert skipped is not None
    assert skipped.plain.endswith("docs: skipped link: symbolic link (not followed)")
