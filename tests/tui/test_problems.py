"""Offline and errors in a short line; the full text in the detail view; no staging names."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Label

from syncapp.engine import (
    FolderState,
    FolderStateChanged,
    JobFailed,
    Op,
    RemoteOffline,
    RemoteOnline,
    RemoteStillOffline,
)
from syncapp.engine.pathpage import PathPage, PathQuery, page_of
from syncapp.engine.state import Pending
from syncapp.tui.app import SyncApp
from syncapp.tui.detail import FolderDetailScreen, make_rows
from syncapp.tui.folders import FolderPanel
from tests.tui.conftest import wait_for
from tests.tui.test_progress import T0, Clock, config

URL = "http://127.0.0.1:8080/docs/"
REFUSED = f"PROPFIND {URL}: connection refused"


def problem(app: SyncApp, name: str = "docs") -> str:
    panel = app.dashboard.folders.panel(name)
    assert isinstance(panel, FolderPanel)
    label = panel.query_one(".problem", Label)
    return str(label.content) if label.display else ""


async def test_offline_says_when_it_retries_in_a_short_line(tmp_path: Path) -> None:
    clock = Clock()
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_events(
            [
                RemoteOffline("docs", REFUSED, T0 + 0.5, at=T0),
                FolderStateChanged(
                    "docs", FolderState.OFFLINE, f"remote unreachable: {REFUSED}", at=T0
                ),
                RemoteStillOffline("docs", REFUSED, T0 + 8, at=T0),
            ]
        )
        await pilot.pause()
        assert problem(app) == "offline — retrying in 8 s (connection refused)"
        clock.now = T0 + 9
        app.dashboard.tick()
        await pilot.pause()
        assert problem(app) == "offline — retrying now (connection refused)"
        # The activity log says it once, short.
        lines = [line.text for line in app.dashboard.activity.lines]
        assert [x for x in lines if "offline" in x] == [lines[0]] and lines[0].endswith(
            "docs: remote offline: connection refused"
        )
        # The detail view: the full text, and no "next try now" while the server is down.
        pending = [Pending("a.txt", "retrying", f"waiting to retry after: {REFUSED}", 2, T0 - 5)]

        async def load(query: PathQuery) -> PathPage:
            return page_of(pending, query)

        await app.push_screen(FolderDetailScreen("docs", load))
        await wait_for(pilot, lambda: app.screen.query_one("#paths", DataTable).row_count, "rows")
        full = str(app.screen.query_one("#detail-problem", Label).content)
        assert full == REFUSED
        table = app.screen.query_one("#paths", DataTable)
        why = str(table.get_row_at(0)[2])
        assert "now" not in why.replace("when the server answers", "")
        assert "next try" not in why
        assert "when the server answers" in why
        # Back online: the line goes.
        await pilot.press("escape")
        app.apply_events(
            [
                RemoteOnline("docs", at=T0 + 10),
                FolderStateChanged("docs", FolderState.SYNCING, at=T0 + 10),
            ]
        )
        await pilot.pause()
        assert problem(app).startswith("last error")


async def test_errors_hide_staging_names_and_a_stale_error_clears_once_in_sync(
    tmp_path: Path,
) -> None:
    clock = Clock()
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        error = f"PUT {URL}sub/.syncapp-tmp-3f2a9c01d4e5b6a7c8d9: HTTP 507 Insufficient Storage"
        app.apply_events(
            [
                FolderStateChanged("docs", FolderState.SYNCING, at=T0),
                JobFailed("docs", Op.UPLOAD, "sub/report.pdf", error, T0 + 8, at=T0),
            ]
        )
        await pilot.pause()
        assert problem(app) == (
            "last error just now: upload sub/report.pdf: HTTP 507 Insufficient Storage"
        )
        lines = [line.text for line in app.dashboard.activity.lines]
        assert all(".syncapp-tmp-" not in x for x in lines)
        assert any("upload sub/report.pdf failed: HTTP 507" in x for x in lines)
        assert all(".syncapp-tmp-" not in line.plain for line in app.history.texts())
        clock.now = T0 + 30
        app.apply_events([FolderStateChanged("docs", FolderState.UP_TO_DATE, at=T0 + 30)])
        await pilot.pause()
        assert problem(app) == ""


def test_detail_rows_say_next_try_only_while_the_server_answers() -> None:
    p = Pending("a.txt", "retrying", "waiting to retry after: HTTP 503", 1, T0 + 12)
    online = make_rows([p], T0)[0][2]
    assert online == "waiting to retry after: HTTP 503 (next try in 12 s, attempt 2)"
    down = make_rows([p], T0, offline=True, server_check=T0 + 3)[0][2]
    assert down.endswith("(when the server answers; next check in 3 s, attempt 2)")
    staged = Pending("b.txt", "failed", f"PUT {URL}.syncapp-tmp-0123abcd: HTTP 413", 1)
    assert ".syncapp-tmp-" not in make_rows([staged], T0)[0][2]


def state_word(app: SyncApp, name: str) -> str:
    panel = app.dashboard.folders.panel(name)
    assert isinstance(panel, FolderPanel)
    return str(panel.query_one(".state", Label).content)


async def test_other_folders_on_the_same_remote_show_offline_too(tmp_path: Path) -> None:
    import dataclasses

    from syncapp.config import LocalRemoteConfig

    clock = Clock()
    cfg = config(tmp_path, "docs", "photos", "music")
    other = LocalRemoteConfig(name="disk", type="local", path=str(tmp_path / "d"))
    cfg = dataclasses.replace(
        cfg,
        remotes={**cfg.remotes, "disk": other},
        folders={
            **cfg.folders,
            "music": dataclasses.replace(cfg.folders["music"], remote="disk"),
        },
    )
    app = SyncApp(cfg, engine=False, clock=clock)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        app.apply_events(
            [
                FolderStateChanged(n, FolderState.UP_TO_DATE, at=T0 - 60)
                for n in ("docs", "photos", "music")
            ]
            + [
                RemoteOffline("docs", REFUSED, T0 + 8, at=T0),
                FolderStateChanged(
                    "docs", FolderState.OFFLINE, f"remote unreachable: {REFUSED}", at=T0
                ),
            ]
        )
        await pilot.pause()
        # photos shares docs' remote (usb): offline too; music is on another remote.
        assert state_word(app, "photos") == "offline"
        assert problem(app, "photos") == (
            "offline — usb is offline, retrying in 8 s (connection refused)"
        )
        assert state_word(app, "music") == "up to date"
        assert problem(app, "music") == ""
        # Its detail view: the full finding, and its paths go when the server answers; never
        # "next try now" for a retry time that has passed while the server is down.
        others = [Pending("b.txt", "retrying", f"waiting to retry after: {REFUSED}", 1, T0 - 5)]

        async def load_others(query: PathQuery) -> PathPage:
            return page_of(others, query)

        await app.push_screen(FolderDetailScreen("photos", load_others))
        await wait_for(pilot, lambda: app.screen.query_one("#paths", DataTable).row_count, "rows")
        full = str(app.screen.query_one("#detail-problem", Label).content)
        assert full == f"usb is offline (found by folder docs): {REFUSED}"
        why = str(app.screen.query_one("#paths", DataTable).get_row_at(0)[2])
        assert "next try" not in why
        assert "when the server answers; next check in 8 s" in why
        await pilot.press("escape")
        # The server answers docs again: photos is back too.
        app.apply_events(
            [
                RemoteOnline("docs", at=T0 + 10),
                FolderStateChanged("docs", FolderState.UP_TO_DATE, at=T0 + 10),
            ]
        )
        await pilot.pause()
        assert state_word(app, "photos") == "up to date"
        assert problem(app, "photos") == ""
