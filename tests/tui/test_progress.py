"""Progress you can plan by: percentages, done of total, rates and an ETA, per folder, in total."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label, Static

from syncapp.config import Config, FolderConfig, LocalRemoteConfig
from syncapp.engine import (
    FolderState,
    FolderStateChanged,
    ScanFinished,
    ScanProgressed,
    ScanStarted,
    SyncProgress,
)
from syncapp.tui.app import SyncApp
from syncapp.tui.folders import FolderPanel

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def config(tmp_path: Path, *names: str) -> Config:
    import tomlkit

    return Config(
        path=tmp_path / "config.toml",
        remotes={"usb": LocalRemoteConfig(name="usb", type="local", path=str(tmp_path / "r"))},
        folders={n: FolderConfig(n, tmp_path / n, "usb", n) for n in names},
        document=tomlkit.document(),
    )


def texts(app: SyncApp, name: str) -> tuple[str, str]:
    panel = app.dashboard.folders.panel(name)
    assert isinstance(panel, FolderPanel)
    state = str(panel.query_one(".state", Label).content)
    line = panel.query_one(".progress", Label)
    return state, str(line.content) if line.display else ""


async def test_scanning_counts_files_then_syncing_shows_percent_rates_and_eta(
    tmp_path: Path,
) -> None:
    clock = Clock()
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_events(
            [
                FolderStateChanged("docs", FolderState.SCANNING, at=T0),
                ScanStarted("docs", at=T0),
                ScanProgressed("docs", 1234, 40, at=T0),
            ]
        )
        app.dashboard.folders.refresh_panels()
        await pilot.pause()
        assert texts(app, "docs") == ("scanning · 1,234 files", "")
        # 5,000 small files planned, then 100 files a second for ten seconds.
        events = [
            ScanFinished("docs", 5000, 40, 5000, 0.5, at=T0 + 1),
            FolderStateChanged("docs", FolderState.SYNCING, at=T0 + 1),
        ]
        for s in range(11):
            done = s * 100
            events.append(SyncProgress("docs", done, 5000, done * 2000, 10_000_000, at=T0 + 1 + s))
        clock.now = T0 + 11
        app.apply_events(events)
        app.dashboard.folders.refresh_panels()
        await pilot.pause()
        state, line = texts(app, "docs")
        assert state == "syncing 20%"
        assert line == "20% · 1,000/5,000 files · 1.9 MiB/9.5 MiB · 100 files/s · ETA 40 s"
        total = app.dashboard.query_one("#total-progress", Static)
        assert total.display
        assert str(total.content).startswith("Total 20% · 1,000/5,000 files")
        assert "ETA 40 s" in str(total.content)
        # Nothing more for a long while: no made-up ETA.
        clock.now = T0 + 90
        app.dashboard.tick()
        await pilot.pause()
        assert texts(app, "docs")[1].endswith("ETA …")
        # Done: the line and the total go away.
        app.apply_events(
            [
                SyncProgress("docs", 5000, 5000, 10_000_000, 10_000_000, at=T0 + 91),
                FolderStateChanged("docs", FolderState.UP_TO_DATE, at=T0 + 91),
            ]
        )
        app.dashboard.folders.refresh_panels()
        await pilot.pause()
        assert texts(app, "docs") == ("up to date", "")
        assert not total.display


async def test_total_adds_folders_up_and_waits_for_the_slowest(tmp_path: Path) -> None:
    clock = Clock()
    app = SyncApp(config(tmp_path, "a", "b"), engine=False, clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        events = [FolderStateChanged(n, FolderState.SYNCING, at=T0) for n in "ab"]
        for s in range(11):
            # a: 1 MiB files at 1 file/s, 20 left after 10 s; b: 10 small files/s, 100 left.
            events.append(SyncProgress("a", s, 30, s << 20, 30 << 20, at=T0 + s))
            events.append(SyncProgress("b", 10 * s, 200, 10 * s, 200, at=T0 + s))
        clock.now = T0 + 10
        app.apply_events(events)
        await pilot.pause()
        assert texts(app, "a")[1].endswith("1.0 MiB/s · ETA 20 s")
        assert texts(app, "b")[1].endswith("10 files/s · ETA 10 s")
        total = str(app.dashboard.query_one("#total-progress", Static).content)
        assert total.startswith("Total ")
        assert "110/230 files" in total
        assert total.endswith("ETA 20 s · 1.0 MiB/s")
