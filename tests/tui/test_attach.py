"""The UI as a view of a background engine (issue 14): it starts one when none runs and attaches,
shows its folders live, `q` leaves it syncing, "Quit and stop syncing" ends it, and a second
view sees the same events without a second engine (no conflict copies)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.widgets import Input, Label

from syncapp import daemon
from syncapp.config import load_config
from syncapp.configedit import FolderDraft
from syncapp.engine import FolderState, JobFinished
from syncapp.engine.client import EngineClient, running_engine
from syncapp.engine.lock import running_pid
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.forms import FolderForm
from tests.helpers import config_text, syncapp, wait_for, write_tree
from tests.tui.conftest import wait_for as ui_wait
from tests.tui.test_dashboard import type_text


def _state() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"


@pytest.fixture
def engine_setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder, remote = tmp_path / "docs", tmp_path / "remote"
    write_tree(folder, {"a.txt": "first"})
    remote.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(f'[remotes.r]\ntype = "local"\npath = "{remote}"\n', {"docs": folder})
    )
    yield folder, remote / "docs", cfg
    syncapp("--config", str(cfg), "stop", timeout=90)


def _starter(cfg: Path) -> EngineClient:
    def start() -> str | None:
        out = io.StringIO()
        return None if daemon.start(cfg, _state(), out) == 0 else out.getvalue()

    return EngineClient(_state(), start)


async def test_ui_starts_the_engine_attaches_and_q_leaves_it_syncing(
    engine_setup: tuple[Path, Path, Path],
) -> None:
    folder, remote, cfg = engine_setup
    assert running_pid(_state()) is None
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.dashboard.folders.views["docs"]
        await ui_wait(pilot, lambda: app.attached, "attached")
        pid = running_pid(_state())
        assert pid is not None and pid != os.getpid() and app.engine is not None
        assert app.engine.pid == pid
        await ui_wait(pilot, lambda: view.shown_state is FolderState.UP_TO_DATE, "up to date")
        assert (remote / "a.txt").read_text() == "first"
        # Live: the engine's events reach the attached view.
        (folder / "live.txt").write_text("live")
        await ui_wait(
            pilot,
            lambda: any("uploaded live.txt" in line.text for line in app.dashboard.activity.lines),
            "the upload shown",
        )
        # Pause and resume go to the engine in the other process.
        await pilot.press("p")
        await ui_wait(pilot, lambda: view.state is FolderState.PAUSED, "paused")
        (folder / "while-paused.txt").write_text("held")
        await pilot.pause(0.5)
        assert not (remote / "while-paused.txt").exists()
        await pilot.press("p")
        await ui_wait(pilot, lambda: (remote / "while-paused.txt").exists(), "resumed")
        # A folder added in the UI goes into the config file, and the engine takes it from there.
        photos = folder.parent / "photos"
        write_tree(photos, {"cat.jpg": "meow"})
        error = await app.save_folder(FolderDraft("photos", str(photos), "r", "photos"), None)
        assert error is None
        photos_view = app.dashboard.folders.views["photos"]
        await ui_wait(pilot, lambda: (remote.parent / "photos/cat.jpg").exists(), "photos synced")
        await ui_wait(
            pilot, lambda: photos_view.shown_state is FolderState.UP_TO_DATE, "photos shown"
        )
        # The footer says what q does here.
        assert app.check_action("leave", ()) and not app.check_action("quit", ())
        await pilot.press("q")
    assert app.return_code == 0
    assert running_pid(_state()) == pid  # the engine goes on
    (folder / "after.txt").write_text("after the UI quit")
    assert wait_for(lambda: (remote / "after.txt").exists())
    status = syncapp("--config", str(cfg), "status")
    assert "now: up to date" in status.stdout or "now: syncing" in status.stdout, status.stdout


async def test_quit_and_stop_ends_the_engine(engine_setup: tuple[Path, Path, Path]) -> None:
    _folder, remote, cfg = engine_setup
    res = syncapp("--config", str(cfg), "start")
    assert res.returncode == 0, res.stdout + res.stderr
    assert wait_for(lambda: (remote / "a.txt").exists())
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with app.run_test() as pilot:
        await ui_wait(pilot, lambda: app.attached, "attached")
        # The palette offers it by name; the Q key does it.
        await pilot.press("ctrl+p")
        await type_text(pilot, "Quit and stop")
        await ui_wait(pilot, lambda: app.screen.query_one(CommandList).option_count, "hits")
        assert "Quit and stop syncing" in str(
            app.screen.query_one(CommandList).get_option_at_index(0).prompt
        )
        await pilot.press("escape")
        await pilot.press("Q")
    assert wait_for(lambda: running_pid(_state()) is None, 60)


async def test_two_views_see_one_engine_and_make_no_conflict_copies(
    engine_setup: tuple[Path, Path, Path],
) -> None:
    folder, remote, cfg = engine_setup
    res = syncapp("--config", str(cfg), "start")
    assert res.returncode == 0, res.stdout + res.stderr
    names = [f"f{i}.txt" for i in range(20)]
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with app.run_test() as pilot:
        await ui_wait(pilot, lambda: app.attached, "attached")
        # A second view of the same engine: the CLI's client, reading the same event stream.
        other = running_engine(_state())
        assert other is not None
        seen: list[str] = []
        async with other:
            other.subscribe(
                lambda ev: seen.append(ev.path) if isinstance(ev, JobFinished) else None
            )
            serving = pilot.app.run_worker(other.serve(), exit_on_error=False)
            for round_ in range(5):
                for n in names:
                    (folder / n).write_text(f"round {round_} of {n}")
                await ui_wait(
                    pilot,
                    lambda r=round_: all(
                        (remote / n).exists() and (remote / n).read_text() == f"round {r} of {n}"
                        for n in names
                    ),
                    f"round {round_} uploaded",
                )
            await ui_wait(pilot, lambda: set(names) <= set(seen), "the second view saw them")
            other.close()
            await serving.wait()
        shown = " ".join(line.text for line in app.dashboard.activity.lines)
        assert "uploaded f19.txt" in shown
        await pilot.press("q")
    assert not [p for p in remote.iterdir() if ".conflict-" in p.name]
    assert not [p for p in folder.iterdir() if ".conflict-" in p.name]
    assert running_pid(_state()) is not None


async def test_engine_that_dies_is_said_and_started_again(
    engine_setup: tuple[Path, Path, Path],
) -> None:
    folder, remote, cfg = engine_setup
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with app.run_test(size=(100, 30)) as pilot:
        await ui_wait(pilot, lambda: app.attached, "attached")
        first = running_pid(_state())
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await ui_wait(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the UI says so")
        assert "stopped" in str(app.screen.query_one(".title", Label).content).lower()
        await pilot.press("enter")  # "Start" is the default: the step the user wants
        await ui_wait(pilot, lambda: app.attached, "attached again")
        second = running_pid(_state())
        assert second is not None and second != first
        (folder / "after-restart.txt").write_text("synced by the new engine")
        await ui_wait(pilot, lambda: (remote / "after-restart.txt").exists(), "synced")
        await pilot.press("q")


async def test_folder_form_saves_through_the_engine(engine_setup: tuple[Path, Path, Path]) -> None:
    folder, remote, cfg = engine_setup
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with app.run_test(size=(100, 50)) as pilot:
        await ui_wait(pilot, lambda: app.attached, "attached")
        # Added by hand behind everyone's back: neither the UI nor the engine has read it.
        notes, photos = folder.parent / "notes", folder.parent / "photos"
        write_tree(notes, {"n.txt": "note"})
        write_tree(photos, {"cat.jpg": "meow"})
        by_hand = f'\n[folders.notes]\npath = "{notes}"\nremote = "r"\nremote_path = "notes"\n'
        cfg.write_text(cfg.read_text() + by_hand)
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, FolderForm)
        form.query_one("#path", Input).value = str(photos)
        await pilot.pause()
        form.query_one("#remote_path", Input).value = "pics"
        # A name only the engine knows is taken: its refusal is shown under the name field.
        form.query_one("#name", Input).value = "notes"
        await pilot.pause()
        await pilot.press("ctrl+s")
        said = form.query_one("#name-error", Label)
        await ui_wait(pilot, lambda: "exists already" in str(said.content), "the refusal")
        assert str(said.content) == "a folder named 'notes' exists already"
        general = str(form.query_one("#form-error", Label).content)
        assert general == "Not saved: see the field marked above."
        assert "[folders.photos]" not in cfg.read_text()
        form.query_one("#name", Input).value = "photos"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await ui_wait(pilot, lambda: not isinstance(app.screen, FolderForm), "saved")
        # The engine wrote the file it read again (the hand edit kept), and the UI took its
        # answer: it shows the hand-added folder too, which the engine opened with the new one.
        text = cfg.read_text()
        assert "[folders.notes]" in text and "[folders.photos]" in text
        assert list(app.config.folders) == ["docs", "notes", "photos"]
        assert set(app.dashboard.folders.views) == {"docs", "notes", "photos"}
        await ui_wait(pilot, lambda: (remote.parent / "pics/cat.jpg").exists(), "photos synced")
        await ui_wait(pilot, lambda: (remote.parent / "notes/n.txt").exists(), "notes synced")
        await pilot.press("q")


async def test_a_view_follows_config_changes_made_by_another(
    engine_setup: tuple[Path, Path, Path],
) -> None:
    """Two views of one engine: a folder added by the CLI, changed by another client and
    removed in the first view all show in the second, without a key pressed there."""
    folder, remote, cfg = engine_setup
    res = syncapp("--config", str(cfg), "start")
    assert res.returncode == 0, res.stdout + res.stderr
    photos = folder.parent / "photos"
    write_tree(photos, {"cat.jpg": "meow"})
    first = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    second = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: _starter(cfg))
    async with first.run_test(size=(100, 30)) as one:
        await ui_wait(one, lambda: first.attached, "the first view attached")
        async with second.run_test(size=(100, 30)) as two:
            await ui_wait(two, lambda: second.attached, "the second view attached")
            panels = second.dashboard.folders

            # Added by `syncapp folder add`: a panel appears in both views, and syncs.
            res = await asyncio.to_thread(
                syncapp, "--config", str(cfg), "folder", "add", "photos", str(photos),
                "--remote", "r",
            )  # fmt: skip
            assert res.returncode == 0, res.stdout + res.stderr
            await ui_wait(two, lambda: panels.panel("photos") is not None, "photos shown")
            await ui_wait(
                one, lambda: first.dashboard.folders.panel("photos") is not None, "in view 1 too"
            )
            assert list(second.config.folders) == ["docs", "photos"]
            await ui_wait(
                two,
                lambda: panels.views["photos"].shown_state is FolderState.UP_TO_DATE,
                "photos up to date",
            )

            # Changed by another client: the panel shows the new route.
            async with EngineClient(_state()) as other:
                await other.save_folder(FolderDraft("photos", str(photos), "r", "pics"), "photos")
            def route() -> str:
                panel = panels.panel("photos")
                return str(panel.query_one(".route", Label).content) if panel else ""

            await ui_wait(two, lambda: route().endswith("r:/pics"), "the new route")
            assert panels.views["photos"].cfg.remote_path == "pics"
            await ui_wait(two, lambda: (remote.parent / "pics/cat.jpg").exists(), "re-synced")

            # Removed in the first view with its keys: gone from the second. (Inside the
            # second's run_test, Textual's active app is the second: make it the first here.)
            with first._context():
                await one.press("d")
                await ui_wait(one, lambda: isinstance(first.screen, ConfirmDialog), "asked")
                await one.press("y")
            await ui_wait(two, lambda: panels.panel("docs") is None, "docs gone from view 2")
            assert set(panels.views) == {"photos"} and list(second.config.folders) == ["photos"]
            assert second.selected_folder == "photos"
            notes = [str(t) for t in second.history.texts()]
            assert any("changed elsewhere: folder photos added" in n for n in notes), notes
            assert any("changed elsewhere: folder photos changed" in n for n in notes), notes
            assert any("changed elsewhere: folder docs removed" in n for n in notes), notes
            # The first view's own removal is its own, not news from elsewhere.
            mine = [str(t) for t in first.history.texts()]
            assert any("folder docs removed from the config" in n for n in mine), mine
            assert not any("elsewhere: folder docs removed" in n for n in mine), mine
            await two.press("q")
        with first._context():
            assert set(first.dashboard.folders.views) == {"photos"}
            await one.press("q")
    assert running_pid(_state()) is not None  # both views left it syncing
    assert (folder / "a.txt").exists()  # nothing deleted by removing the folder
