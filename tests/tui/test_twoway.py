"""Two-way sync in the UI, with the real engine on a ``local`` remote: the form's direction
choice, a download shown in flight with the folder's down rate, a conflict in the activity log,
and the delete guard's dialog for files deleted on the remote (each choice does what it says)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from textual.widgets import Button, Input, Label, OptionList, Select

from syncapp.engine import FolderState, Op
from syncapp.engine.api import LocalEngine
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import GuardDialog
from syncapp.tui.forms import FolderForm
from tests.helpers import Setup
from tests.integration import twoway_machines
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import on_dashboard, state, up_to_date
from tests.tui.test_guard import guard_shown

#: Enough remote deletes to trip the default guard (more than half, and at least ten).
N = 12


# This test's own freedesktop trash: the two-machine harness's fixture (autouse).
own_trash = twoway_machines.own_trash


def two_way(setup: Setup, bwlimit: str = "") -> None:
    """Make the setup's folder two-way, looking at the remote twice a second."""
    text = setup.config_path.read_text()
    if bwlimit:
        text = text.replace('type = "local"\n', f'type = "local"\nbwlimit = "{bwlimit}"\n')
    setup.config_path.write_text(text + 'direction = "both"\nremote_poll = 0.5\n')


async def test_the_form_writes_the_direction_chosen_in_words(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderForm), "form")
        form = app.screen
        assert isinstance(form, FolderForm)
        direction = form.query_one("#direction", Select)
        poll = form.query_one("#remote_poll", Input)
        # Upload only: the remote's looks do not matter, so their field is greyed out.
        assert direction.value == "upload" and poll.disabled
        direction.focus()
        await pilot.press("enter")
        await pilot.pause()
        offered = direction.query_one(OptionList)  # the open list
        shown = [str(offered.get_option_at_index(i).prompt) for i in range(offered.option_count)]
        assert shown == [
            "Upload only: the remote mirrors this folder",
            "Two-way: changes on either side reach the other",
        ]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: direction.value == "both", "two-way chosen")
        assert not poll.disabled
        poll.value = "12"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "saved")
        cfg = setup.config().folders["docs"]
        assert (cfg.direction, cfg.remote_poll) == ("both", 12.0)
        assert 'direction = "both"\n' in setup.config_path.read_text()

        # Back to upload only: written, and Remote looks greyed out again.
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderForm), "form again")
        form = app.screen
        assert isinstance(form, FolderForm)
        assert not form.query_one("#remote_poll", Input).disabled
        form.query_one("#direction", Select).value = "upload"
        await pilot.pause()
        assert form.query_one("#remote_poll", Input).disabled
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "saved again")
        assert setup.config().folders["docs"].direction == "upload"


async def test_a_remote_edit_shows_a_download_and_the_down_rate(setup: Setup) -> None:
    # A bandwidth limit (it covers downloads too) keeps the download in flight for seconds.
    two_way(setup, bwlimit="256KiB/s")
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 30)) as pilot:
        await up_to_date(pilot, app)
        remote = setup.remote_dir / "docs"
        await wait_for(pilot, lambda: (remote / "sub/b.txt").exists(), "first upload")
        panel = app.dashboard.folders.panel("docs")
        assert panel is not None
        assert " ⇄ box:/docs" in str(panel.query_one(".route", Label).content)
        rate = panel.query_one(".rate", Label)
        assert re.fullmatch(r"↑ \S+ \S+ ↓ \S+ \S+", str(rate.content)), rate.content

        # (Our uploads settled: an overwrite right after one is a machine that never saw it.)
        engine = app.engine
        assert isinstance(engine, LocalEngine)
        side = engine.sync.folder("docs").remote_side
        assert side is not None
        await wait_for(pilot, lambda: not side.unconfirmed, "the uploads settled")
        data = os.urandom(1536 * 1024)
        (remote / "a.txt").write_bytes(data)  # edited on the remote (another machine, say)
        table = app.dashboard.transfers

        def downloading() -> bool:
            return any(
                t.op is Op.DOWNLOAD and t.path == "a.txt" and t.done > 0
                for t in table.transfers.values()
            )

        await wait_for(pilot, downloading, "the download in flight")
        labels = [t.label for t in table.transfers.values()]
        assert "↓ docs: a.txt" in labels
        await wait_for(
            pilot, lambda: re.search(r"↓ [1-9]", str(rate.content)), "a down rate on the panel"
        )
        await wait_for(pilot, lambda: (setup.docs / "a.txt").read_bytes() == data, "downloaded")
        await wait_for(pilot, lambda: not table.transfers, "the transfer ended")
        lines = log(app)
        assert any("docs: downloaded a.txt (1.5 MiB)" in line for line in lines), lines
        # What came down never goes up again: a.txt was uploaded once, by the first sync.
        assert sum("docs: uploaded a.txt" in line for line in lines) == 1, lines
        await pilot.press("q")


async def test_a_conflict_is_said_in_the_activity_log(setup: Setup) -> None:
    two_way(setup)
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 30)) as pilot:
        await up_to_date(pilot, app)
        remote = setup.remote_dir / "docs"
        await wait_for(pilot, lambda: (remote / "a.txt").exists(), "first upload")
        await pilot.press("p")
        await wait_for(pilot, lambda: state(app, "docs") is FolderState.PAUSED, "paused")
        (setup.docs / "a.txt").write_text("edited here")
        (remote / "a.txt").write_text("edited on the remote, longer")
        await pilot.press("p")

        def copies() -> list[Path]:
            return list(setup.docs.glob("a.conflict-*.txt"))

        await wait_for(pilot, copies, "a conflict copy here")
        assert copies()[0].read_text() == "edited on the remote, longer"
        assert (setup.docs / "a.txt").read_text() == "edited here"
        copy = copies()[0].name
        said = f"docs: conflict: a.txt changed remotely too; remote copy kept as {copy}"
        await wait_for(pilot, lambda: any(said in x for x in log(app)), "the conflict, logged")
        # The dashboard's activity shows it (wrapped to its width).
        shown = " ".join(line.text.strip() for line in app.dashboard.activity.lines)
        assert f"conflict: a.txt changed remotely too; remote copy kept as {copy}" in shown
        await pilot.press("q")


def log(app: SyncApp) -> list[str]:
    """The app's log lines (the full log's: unwrapped), oldest first."""
    return [line.plain for line in app.history.texts()]


def dialog_words(app: SyncApp) -> tuple[str, list[str]]:
    screen = app.screen
    assert isinstance(screen, GuardDialog)
    title = str(screen.query_one(".title", Label).content)
    return title, [str(b.label) for b in screen.query(Button)]


async def test_a_remote_wipe_asks_in_its_own_words_and_each_choice_does_it(
    setup: Setup, own_trash: Path
) -> None:
    names = [f"f{i:02}.txt" for i in range(N)]
    for name in names:
        (setup.docs / name).write_text(name)
    two_way(setup)
    app = SyncApp(setup.config())
    remote = setup.remote_dir / "docs"

    def wipe() -> None:
        for name in names:
            (remote / name).unlink()

    def here() -> list[str]:
        return [n for n in names if (setup.docs / n).exists()]

    def there() -> list[str]:
        return [n for n in names if (remote / n).exists()]

    async with app.run_test(size=(100, 34)) as pilot:
        await up_to_date(pilot, app)
        await wait_for(pilot, lambda: there() == names, "synced")
        wipe()
        await wait_for(pilot, lambda: guard_shown(app), "guard dialog")
        dialog = app.screen
        assert isinstance(dialog, GuardDialog) and dialog.event.direction == "down"
        title, buttons = dialog_words(app)
        assert title == f"Folder 'docs': {N} of {N + 2} files were deleted on the remote"
        assert buttons == [
            f"Move {N} to the trash here",
            "Restore them to the remote",
            "Keep paused",
        ]
        assert state(app, "docs") is FolderState.PAUSED
        reason = app.dashboard.folders.views["docs"].reason
        assert reason.startswith(f"{N} of {N + 2} files were deleted on the remote")

        # Keep paused: nothing moves; p asks again.
        await pilot.click("#keep")
        await wait_for(pilot, lambda: on_dashboard(app), "dialog closed")
        await pilot.pause(1.0)  # two looks at the remote: still nothing trashed
        assert here() == names and there() == []
        assert state(app, "docs") is FolderState.PAUSED
        await pilot.press("p")
        await wait_for(pilot, lambda: guard_shown(app), "guard asked again")

        # Restore them to the remote: the files here upload again.
        await pilot.click("#restore")
        await wait_for(pilot, lambda: there() == names, "restored to the remote")
        await up_to_date(pilot, app)
        assert here() == names and (remote / "f03.txt").read_text() == "f03.txt"
        assert not (own_trash / "files").exists() or not list((own_trash / "files").iterdir())

        # Wiped again; this time the files here go to the trash.
        wipe()
        await wait_for(pilot, lambda: guard_shown(app), "guard again")
        await pilot.click("#delete")
        await wait_for(pilot, lambda: here() == [], "moved to the trash")
        trashed = sorted(p.name for p in (own_trash / "files").iterdir())
        assert trashed == names
        assert (setup.docs / "a.txt").exists() and (setup.docs / "sub/b.txt").exists()
        await up_to_date(pilot, app)
        said = "docs: deleted on the remote: f03.txt moved to the trash"
        # (Events reach the log in paced batches: wait for it, not just for the files.)
        await wait_for(pilot, lambda: any(said in x for x in log(app)), "the trash logged")
        await pilot.press("q")
