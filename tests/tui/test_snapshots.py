"""Snapshots of the dashboard in each state, and of the other screens.

Deterministic: no engine runs (``engine=False``); events with fixed times are fed in by hand, the
clock is frozen, HOME and TZ are fixed and no path comes from a temporary directory.
Update with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after checking the report.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from textual.pilot import Pilot
from textual.widgets import Input

from syncapp.config import Config, FolderConfig, LocalRemoteConfig, WebDAVRemoteConfig
from syncapp.engine import (
    CountsChanged,
    Event,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    RemoteOffline,
    ScanProgressed,
    ScanStarted,
    SyncProgress,
)
from syncapp.engine.pathpage import PathPage, PathQuery, page_of
from syncapp.engine.state import Pending
from syncapp.tui.app import SyncApp
from syncapp.tui.detail import FolderDetailScreen
from syncapp.tui.folders import FolderPanel
from syncapp.tui.forms import FolderForm
from syncapp.tui.remotes import RemoteForm, RemotesScreen

NOW = 1_700_000_000.0
HOME = "/home/alice"
SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HOME", HOME)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def folder(name: str, path: str, remote: str = "nas", remote_path: str = "") -> FolderConfig:
    return FolderConfig(name, Path(HOME) / path, remote, remote_path or path)


def make_config(*folders: FolderConfig) -> Config:
    return Config(
        path=Path(HOME) / ".config/syncapp/config.toml",
        remotes={
            "nas": WebDAVRemoteConfig(
                name="nas", type="webdav", url="https://nas.example/remote.php/dav/files/alice/"
            ),
            "usb": LocalRemoteConfig(name="usb", type="local", path="/media/usb/backup"),
            "office": WebDAVRemoteConfig(
                name="office", type="webdav", url="https://office.example/dav/"
            ),
        },
        folders={f.name: f for f in folders},
        document=tomlkit.document(),
    )


def ago(seconds: float) -> float:
    return NOW - seconds


def up_to_date(name: str, files: int) -> list[Event]:
    return [
        FolderStateChanged(name, FolderState.UP_TO_DATE, at=ago(125)),
        CountsChanged(name, files, 0, 0, 0, at=ago(125)),
    ]


def syncing(name: str) -> list[Event]:
    events: list[Event] = [
        FolderStateChanged(name, FolderState.UP_TO_DATE, at=ago(900)),
        FolderStateChanged(name, FolderState.SYNCING, at=ago(40)),
    ]
    # A minute of uploads for the sparkline: a ramp, a pause, a burst.
    for s in range(58, 0, -1):
        size = 0 if 20 < s < 30 else (60 - s) * 40_000
        if size:
            events.append(
                JobFinished(name, Op.UPLOAD, f"2023/IMG_{s:04}.jpg", size, 0.2, at=ago(s))
            )
    events += [
        JobStarted(name, Op.UPLOAD, "2023/IMG_0101.jpg", 4_200_000, at=ago(2)),
        JobProgressed(name, Op.UPLOAD, "2023/IMG_0101.jpg", 3_150_000, 4_200_000, 2.1e6, at=ago(1)),
        JobStarted(name, Op.UPLOAD, "2023/IMG_0102 [raw].cr2", 25_000_000, at=ago(1)),
        JobProgressed(
            name, Op.UPLOAD, "2023/IMG_0102 [raw].cr2", 5_000_000, 25_000_000, 1.6e6, at=ago(0)
        ),
        JobStarted(name, Op.MOVE, "old name.txt", 0, "new name.txt", at=ago(0)),
        CountsChanged(name, 310, 42, 0, 3, at=ago(0)),
        # The round: 352 files, 1.2 GB planned; 60 files and 90 MB in the last 20 s.
        SyncProgress(name, 10, 352, 12_000_000, 1_200_000_000, at=ago(40)),
        SyncProgress(name, 250, 352, 300_000_000, 1_200_000_000, at=ago(20)),
        SyncProgress(name, 310, 352, 390_000_000, 1_200_000_000, at=ago(0)),
        JobFinished(name, Op.DELETE, "2022/duplicate.jpg", at=ago(3)),
        JobFinished(name, Op.MOVE, "drafts/a.txt", 0, 0.01, "final/a.txt", at=ago(2)),
    ]
    return sorted(events, key=lambda e: e.at)


OFFICE_DOWN = "PROPFIND https://office.example/dav/Projects/: connection refused"


def all_states() -> list[Event]:
    """One folder in each state, as the engine says them: in time order (the order events
    reach the UI), and nothing that contradicts the rest (the offline folder is the only one
    on its remote, so the others on theirs go on syncing)."""
    events = [
        *up_to_date("docs", 1204),
        *syncing("photos"),
        FolderStateChanged("music", FolderState.SCANNING, at=ago(3)),
        ScanStarted("music", at=ago(3)),
        ScanProgressed("music", 12_345, 678, at=ago(1)),
        *up_to_date("notes", 88),
        FolderStateChanged("notes", FolderState.PAUSED, "paused by the user", at=ago(60)),
        *up_to_date("projects", 5120),
        RemoteOffline("projects", OFFICE_DOWN, NOW + 8, at=ago(30)),
        FolderStateChanged(
            "projects", FolderState.OFFLINE, f"remote unreachable: {OFFICE_DOWN}", at=ago(30)
        ),
        CountsChanged("projects", 5120, 7, 0, 0, at=ago(30)),
        JobFailed("backup", Op.UPLOAD, "taxes.pdf", "HTTP 401 Not Authorized", None, at=ago(20)),
        FolderStateChanged("backup", FolderState.ERROR, "HTTP 401 Not Authorized", at=ago(20)),
        CountsChanged("backup", 12, 1, 0, 0, at=ago(20)),
    ]
    return sorted(events, key=lambda e: e.at)


def only(names: tuple[str, ...], events: list[Event]) -> list[Event]:
    """The events of these folders: what an engine with only them in its config says."""
    return [e for e in events if e.folder in names]


ALL_FOLDERS = (
    folder("docs", "Documents"),
    folder("photos", "Pictures", remote_path="Photos"),
    folder("music", "Music", "usb"),
    folder("notes", "Notes"),
    folder("projects", "src", "office", "Projects"),
    folder("backup", "Backup", "usb", "laptop"),
)


def make_app(config: Config, **kwargs: Any) -> SyncApp:
    return SyncApp(config, engine=False, clock=lambda: NOW, **kwargs)


def feed(events: list[Event], theme: str = "") -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, SyncApp)
        while len(app.dashboard.query(FolderPanel)) < len(app.config.folders):
            await pilot.pause()
        if theme:
            app.theme = theme
            await pilot.pause()  # the theme's variables (log colours) follow on the next turn
        app.apply_events(events)
        await pilot.pause()
        app.dashboard.folders.refresh_panels()
        await settled(pilot)

    return run_before


async def settled(pilot: Pilot[None]) -> None:
    """Let the layout and the log's scrolling finish before the picture is taken: a busy
    machine may take it between a write and the scroll to its end."""
    app = pilot.app
    assert isinstance(app, SyncApp)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    app.dashboard.activity.scroll_end(animate=False, immediate=True)
    app.dashboard.transfers.refresh()  # drawn at its final width
    await pilot.pause()


def test_dashboard_80x24(snap_compare: SnapCompare) -> None:
    config = make_config(ALL_FOLDERS[1], ALL_FOLDERS[0])
    events = [*syncing("photos"), *up_to_date("docs", 1204)]

    async def run_before(pilot: Pilot[None]) -> None:
        await feed(events)(pilot)
        app = pilot.app
        assert isinstance(app, SyncApp)
        app.dashboard.folders.views["photos"].bwlimit = 2 * 1024 * 1024  # shown in its panel
        app.dashboard.folders.refresh_panels()

    assert snap_compare(make_app(config), terminal_size=(80, 24), run_before=run_before)


def test_dashboard_80x24_light(snap_compare: SnapCompare) -> None:
    config = make_config(ALL_FOLDERS[1], ALL_FOLDERS[0])
    events = [*syncing("photos"), *up_to_date("docs", 1204)]
    app = make_app(config)
    run_before = feed(events, theme="textual-light")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_dashboard_every_state_200x60(snap_compare: SnapCompare) -> None:
    app = make_app(make_config(*ALL_FOLDERS))
    assert snap_compare(app, terminal_size=(200, 60), run_before=feed(all_states()))


def test_dashboard_every_state_200x60_light(snap_compare: SnapCompare) -> None:
    app = make_app(make_config(*ALL_FOLDERS))
    run_before = feed(all_states(), theme="textual-light")
    assert snap_compare(app, terminal_size=(200, 60), run_before=run_before)


@pytest.mark.parametrize("theme", ["", "textual-light"], ids=["dark", "light"])
def test_dashboard_error_and_offline_80x24(snap_compare: SnapCompare, theme: str) -> None:
    config = make_config(ALL_FOLDERS[5], ALL_FOLDERS[4])
    events = only(("backup", "projects"), all_states())
    run_before = feed(events, theme=theme)
    assert snap_compare(make_app(config), terminal_size=(80, 24), run_before=run_before)


def test_activity_in_the_snapshots_is_in_time_order() -> None:
    times = [e.at for e in all_states()]
    assert times == sorted(times)


def test_dashboard_without_folders(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(make_config()), terminal_size=(80, 24))


def test_guard_dialog(snap_compare: SnapCompare) -> None:
    config = make_config(ALL_FOLDERS[0])
    sample = tuple(f"reports/2023/report-{i:02}.pdf" for i in range(10))
    reason = "300 of 307 files were deleted locally; deletes are held until you confirm"
    events = [
        *up_to_date("docs", 307),
        FolderStateChanged("docs", FolderState.PAUSED, reason, at=ago(1)),
        GuardTripped("docs", reason, 300, 307, sample, at=ago(1)),
    ]
    assert snap_compare(make_app(config), terminal_size=(80, 24), run_before=feed(events))


PENDING = [
    Pending("drafts/budget.ods", "queued", "queued for upload"),
    Pending("drafts/letter.odt", "settling", "waiting for the file to stop changing"),
    Pending(
        "notes/todo.txt",
        "retrying",
        "waiting to retry after: HTTP 503 Service Unavailable",
        attempts=2,
        retry_at=NOW + 12,
    ),
    Pending("photos/nas", "skipped", "symbolic link (not followed; set follow_symlinks = true)"),
    Pending("reports/2023/q4 [final].pdf", "failed", "HTTP 413: bigger than the server accepts"),
    Pending("archive/2019.zip", "queued", "queued for upload"),
]


def test_folder_detail(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        events = [
            *up_to_date("docs", 1204),
            FolderStateChanged("docs", FolderState.ERROR, "1 path(s) failed to sync", at=ago(5)),
        ]
        await feed(events)(pilot)

        async def load(query: PathQuery) -> PathPage:
            return page_of(PENDING, query)

        await pilot.app.push_screen(FolderDetailScreen("docs", load))
        await pilot.pause()
        no_blink(pilot)

    app = make_app(make_config(ALL_FOLDERS[0]))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def showing(pilot: Pilot[None], screen: type) -> None:
    """Wait until ``screen`` is on top and laid out (a busy machine is slower than a key)."""
    while not isinstance(pilot.app.screen, screen):
        await pilot.pause()
    await pilot.pause()
    await pilot.pause()


def no_blink(pilot: Pilot[None]) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


def test_add_folder_form_with_an_error(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await feed(up_to_date("docs", 10))(pilot)
        await pilot.press("a")
        await showing(pilot, FolderForm)
        no_blink(pilot)
        await pilot.press(*"/nonexistent/pics")
        await pilot.press("ctrl+s")

    app = make_app(make_config(ALL_FOLDERS[0]))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_remote_form_200x60(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await feed([])(pilot)
        await pilot.press("m", "a")
        await showing(pilot, RemoteForm)
        no_blink(pilot)
        await pilot.press(*"nas2")

    app = make_app(make_config(ALL_FOLDERS[0]))
    assert snap_compare(app, terminal_size=(200, 60), run_before=run_before)


@pytest.mark.parametrize(
    ("size", "theme"),
    [((80, 24), ""), ((200, 60), "textual-light")],
    ids=["80x24", "200x60-light"],
)
def test_remotes_screen(snap_compare: SnapCompare, size: tuple[int, int], theme: str) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await feed([], theme=theme)(pilot)
        await pilot.press("m")
        await showing(pilot, RemotesScreen)

    app = make_app(make_config(*ALL_FOLDERS))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize(
    ("size", "theme"),
    [((80, 24), ""), ((200, 60), "textual-light")],
    ids=["80x24", "200x60-light"],
)
def test_edit_folder_form(snap_compare: SnapCompare, size: tuple[int, int], theme: str) -> None:
    """Every folder key with its default beside it."""

    async def run_before(pilot: Pilot[None]) -> None:
        await feed(up_to_date("docs", 10), theme=theme)(pilot)
        await pilot.press("e")
        await showing(pilot, FolderForm)
        no_blink(pilot)

    app = make_app(make_config(ALL_FOLDERS[0]))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_remote_form_s3_keys(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        from textual.widgets import Select

        await feed([])(pilot)
        await pilot.press("m", "a")
        await showing(pilot, RemoteForm)
        no_blink(pilot)
        await pilot.press(*"minio")
        pilot.app.screen.query_one("#type", Select).value = "s3"
        await pilot.pause()

    app = make_app(make_config(ALL_FOLDERS[0]))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_welcome(snap_compare: SnapCompare) -> None:
    app = SyncApp(
        None,
        config_path=Path(HOME) / ".config/syncapp/config.toml",
        engine=False,
        clock=lambda: NOW,
    )
    assert snap_compare(app, terminal_size=(80, 24))


def test_welcome_step_2(snap_compare: SnapCompare) -> None:
    """A remote was saved: the text moves on to the folder."""

    async def run_before(pilot: Pilot[None]) -> None:
        from syncapp.tui.welcome import WelcomeScreen

        app = pilot.app
        assert isinstance(app, SyncApp)
        while not isinstance(app.screen, WelcomeScreen):
            await pilot.pause()
        config = make_config()
        app.config = dataclasses.replace(config, remotes={"nas": config.remotes["nas"]})
        app.screen.refresh_steps()
        await pilot.pause()

    app = SyncApp(
        None,
        config_path=Path(HOME) / ".config/syncapp/config.toml",
        engine=False,
        clock=lambda: NOW,
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
