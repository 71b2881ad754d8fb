"""Snapshots of what two-way sync shows: the folder form's direction choice, a two-way folder
downloading, and the delete guard's dialog for deletes made on the remote.

Deterministic like ``test_snapshots``: no engine, events with fixed times, a frozen clock.
"""

from __future__ import annotations

import dataclasses

from textual.pilot import Pilot
from textual.widgets import Select

from syncapp.engine import (
    CountsChanged,
    Event,
    FileDownloaded,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
)
from syncapp.tui.forms import FolderForm
from tests.tui.test_snapshots import (
    ALL_FOLDERS,
    SnapCompare,
    ago,
    feed,
    fixed_world,
    make_app,
    make_config,
    no_blink,
    showing,
    up_to_date,
)

__all__ = ["fixed_world"]  # the autouse fixture: HOME and TZ fixed for these snapshots too

DOCS = ALL_FOLDERS[0]
TWO_WAY = dataclasses.replace(DOCS, direction="both", remote_poll=10.0)


def test_folder_form_direction_choice(snap_compare: SnapCompare) -> None:
    """Editing an upload-only folder: the direction list open on "Two-way", and Remote looks
    greyed out (it only matters for two-way)."""

    async def run_before(pilot: Pilot[None]) -> None:
        await feed(up_to_date("docs", 10))(pilot)
        await pilot.press("e")
        await showing(pilot, FolderForm)
        no_blink(pilot)
        direction = pilot.app.screen.query_one("#direction", Select)
        direction.focus()
        direction.scroll_visible(animate=False, top=True, immediate=True)
        await pilot.pause()
        await pilot.press("enter", "down")
        await pilot.pause()

    app = make_app(make_config(DOCS))
    assert snap_compare(app, terminal_size=(100, 44), run_before=run_before)


def downloading(name: str) -> list[Event]:
    """A two-way folder bringing files down while one goes up."""
    events: list[Event] = [
        FolderStateChanged(name, FolderState.UP_TO_DATE, at=ago(600)),
        FolderStateChanged(name, FolderState.SYNCING, at=ago(3)),
        CountsChanged(name, 1204, 0, 0, 1, at=ago(3)),
        JobStarted(name, Op.DOWNLOAD, "scans/contract.pdf", 2_400_000, at=ago(3)),
        JobFinished(name, Op.DOWNLOAD, "scans/contract.pdf", 2_400_000, 2.0, at=ago(1)),
        FileDownloaded(name, "scans/contract.pdf", 2_400_000, 2.0, at=ago(1)),
        JobStarted(name, Op.DOWNLOAD, "video/talk.mp4", 80_000_000, at=ago(2)),
        JobProgressed(name, Op.DOWNLOAD, "video/talk.mp4", 900_000, 80_000_000, 450e3, at=ago(1)),
        JobStarted(name, Op.UPLOAD, "notes.txt", 4_000, at=ago(0)),
        JobFinished(name, Op.UPLOAD, "notes.txt", 4_000, 0.1, at=ago(0)),
    ]
    return events


def test_two_way_folder_downloading(snap_compare: SnapCompare) -> None:
    """A two-way folder's panel: ⇄ in its route, up and down rates; a download in flight (↓)."""
    config = make_config(TWO_WAY, ALL_FOLDERS[1])
    events = [*up_to_date("photos", 310), *downloading("docs")]
    events.sort(key=lambda e: e.at)
    assert snap_compare(make_app(config), terminal_size=(100, 24), run_before=feed(events))


def test_guard_dialog_for_deletes_on_the_remote(snap_compare: SnapCompare) -> None:
    sample = tuple(f"reports/2023/report-{i:02}.pdf" for i in range(10))
    reason = (
        "300 of 307 files were deleted on the remote; "
        "nothing is moved to the trash here until you decide"
    )
    events = [
        *up_to_date("docs", 307),
        FolderStateChanged("docs", FolderState.PAUSED, reason, at=ago(1)),
        GuardTripped("docs", reason, 300, 307, sample, "down", at=ago(1)),
    ]
    app = make_app(make_config(TWO_WAY))
    assert snap_compare(app, terminal_size=(80, 24), run_before=feed(events))
