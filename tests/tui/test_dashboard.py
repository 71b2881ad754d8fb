"""Pilot tests of the dashboard and its keys, with the real engine syncing to a local remote."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Input, Label

from syncapp.configedit import FolderDraft
from syncapp.engine import FolderState, SyncEngine
from syncapp.engine.api import LocalEngine
from syncapp.engine.folder import FolderSync
from syncapp.tui.activity import LogScreen
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.folders import FolderPanel
from syncapp.tui.forms import DirectoryPicker, FolderForm
from syncapp.tui.remotes import RemoteForm
from tests.helpers import Setup
from tests.tui.conftest import wait_for


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Type into the focused input: key by key when short, else all at once (a key press
    costs the pilot ~0.1 s of waiting for idle; the form reacts to both the same way)."""
    if len(text) <= 12:
        await pilot.press(*text)
        return
    await pilot.pause()  # a focus() just made takes effect on the next turn
    field = pilot.app.focused
    assert isinstance(field, Input)
    field.insert_text_at_cursor(text)
    await pilot.pause()


def on_dashboard(app: SyncApp) -> bool:
    return app.screen is app.dashboard


def local(app: SyncApp) -> SyncEngine:
    """The engine the app runs in its own process (these tests run it there)."""
    assert isinstance(app.engine, LocalEngine)
    return app.engine.sync


def state(app: SyncApp, name: str) -> FolderState:
    return app.dashboard.folders.views[name].shown_state


async def up_to_date(pilot: Pilot[None], app: SyncApp, name: str = "docs") -> None:
    def done() -> bool:
        engine = app.engine
        return (
            engine is not None
            and name in local(app).folders
            and state(app, name) is FolderState.UP_TO_DATE
        )

    await wait_for(pilot, done, f"{name} up to date")


def error_text(app: SyncApp, field: str) -> str:
    return str(app.screen.query_one(f"#{field}-error", Label).content)


async def test_folder_syncs_and_panel_reaches_up_to_date(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await wait_for(pilot, lambda: (setup.remote_dir / "docs/sub/b.txt").exists(), "upload")
        assert (setup.remote_dir / "docs/a.txt").read_text() == "alpha"
        panel = app.screen.query_one(FolderPanel)
        assert app.focused is panel
        assert str(panel.query_one(".state", Label).content) == "up to date"
        assert "docs → box:/docs" in str(panel.query_one(".route", Label).content)
        # Counts arrive rate-limited, a moment after the state word.
        counts = panel.query_one(".counts", Label)
        await wait_for(
            pilot, lambda: "2 in sync · 0 queued · 0 failed" in str(counts.content), "counts"
        )
        await wait_for(pilot, lambda: app.dashboard.activity.lines, "activity lines")
        assert any("uploaded a.txt" in line.text for line in app.dashboard.activity.lines)
        # A live change shows up too.
        (setup.docs / "live.txt").write_text("live")
        await wait_for(pilot, lambda: (setup.remote_dir / "docs/live.txt").exists(), "live file")
        await pilot.press("q")
    assert app.engine is None


async def test_quit_shuts_the_engine_down(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test() as pilot:
        await up_to_date(pilot, app)
        engine = app.engine
        assert engine is not None
        worker = app._engine_worker
        await pilot.press("q")
        await wait_for(pilot, lambda: worker is not None and worker.is_finished, "engine stop")
    assert app.engine is None
    assert isinstance(engine, LocalEngine)
    assert engine.sync.folders == {}
    assert app.return_code == 0


async def test_add_folder_with_keys(setup: Setup) -> None:
    photos = setup.folder("photos", {"cat.jpg": "meow", "2024/dog.jpg": "woof"})
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("a")
        assert isinstance(app.screen, FolderForm)
        assert app.focused is not None and app.focused.id == "path"
        await type_text(pilot, str(photos))
        form = app.screen
        # Name and remote path follow the folder's base name; the remote is the first one.
        assert form.query_one("#name", Input).value == "photos"
        assert form.query_one("#remote_path", Input).value == "photos"
        assert form.draft().remote == "box"
        await type_text(pilot, "")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "form closed")
        text = setup.config_path.read_text()
        assert "[folders.photos]" in text
        assert "# the documents" in text and "# a local folder as the remote" in text
        assert setup.config().folders["photos"].path == photos
        await wait_for(
            pilot, lambda: (setup.remote_dir / "photos/2024/dog.jpg").exists(), "photos synced"
        )
        await up_to_date(pilot, app, "photos")
        panel = app.dashboard.folders.panel("photos")
        assert panel is not None and app.focused is panel
        assert app.selected_folder == "photos"
        await pilot.press("q")


async def test_add_folder_ignore_and_mirror_switch(setup: Setup) -> None:
    music = setup.folder("music", {"song.mp3": "la", "song.tmp": "x"})
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 40)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("a")
        await type_text(pilot, str(music))
        form = app.screen
        form.query_one("#ignore", Input).focus()
        await type_text(pilot, "*.tmp, cache/")
        form.query_one("#mirror_deletes").focus()
        await pilot.press("space")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "form closed")
        cfg = setup.config().folders["music"]
        assert cfg.ignore == ("*.tmp", "cache/")
        assert cfg.mirror_deletes is False
        await up_to_date(pilot, app, "music")
        assert (setup.remote_dir / "music/song.mp3").exists()
        assert not (setup.remote_dir / "music/song.tmp").exists()
        await pilot.press("q")


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("{root}/nope", "path", "no such folder"),
        ("{root}/config.toml", "path", "not a folder"),
        ("{root}/docs/sub", "path", "is inside folder 'docs'"),
        ("{root}/docs", "path", "is folder 'docs'"),
        ("", "path", "type the folder"),
    ],
)
async def test_add_folder_invalid_path(setup: Setup, path: str, field: str, message: str) -> None:
    before = setup.config_path.read_text()
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, path.format(root=setup.root))
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, FolderForm)
        assert message in error_text(app, field)
        assert "Fix the fields" in str(app.screen.query_one("#form-error", Label).content)
        await pilot.press("escape")
        assert not isinstance(app.screen, FolderForm)
        await pilot.press("q")
    assert setup.config_path.read_text() == before


async def test_add_folder_parent_of_existing_is_refused(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, str(setup.root))
        await pilot.press("ctrl+s")
        assert "contains folder 'docs'" in error_text(app, "path")
        await pilot.press("escape", "q")


async def test_a_refusal_by_the_engine_is_shown_at_its_field(setup: Setup) -> None:
    """The form checks against the config it opened with; a folder of the same name added
    meanwhile by another client is refused by the engine, and said under the name field."""
    photos = setup.folder("photos", {"cat.jpg": "meow"})
    other = setup.folder("elsewhere")
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("a")
        await type_text(pilot, str(photos))
        assert isinstance(app.screen, FolderForm)
        api = app.engine
        assert isinstance(api, LocalEngine)
        await api.save_folder(FolderDraft("photos", str(other), "box", "elsewhere"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "exists already" in error_text(app, "name"), "refused")
        assert isinstance(app.screen, FolderForm)
        assert app.focused is not None and app.focused.id == "name"
        general = str(app.screen.query_one("#form-error", Label).content)
        assert general == "Not saved: see the field marked above."
        await pilot.press("escape", "q")


async def test_add_folder_invalid_name_and_remote_path(setup: Setup) -> None:
    other = setup.folder("other")
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, str(other))
        form = app.screen
        name = form.query_one("#name", Input)
        name.value = ""
        name.focus()
        await type_text(pilot, "docs")
        assert "exists already" in error_text(app, "name")
        name.value = ""
        await type_text(pilot, "bad name!")
        assert "letters, digits" in error_text(app, "name")
        name.value = "other"
        rp = form.query_one("#remote_path", Input)
        rp.value = ""
        rp.focus()
        await type_text(pilot, "docs/inner")
        assert "overlaps folder 'docs'" in error_text(app, "remote_path")
        rp.value = ""
        await type_text(pilot, "../up")
        assert ". or .." in error_text(app, "remote_path")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, FolderForm)
        # Fixing it saves.
        rp.value = "other"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "form closed")
        assert "other" in setup.config().folders
        await pilot.press("q")


async def test_add_folder_escape_and_cancel_change_nothing(setup: Setup) -> None:
    before = setup.config_path.read_text()
    other = setup.folder("other")
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, str(other))
        await pilot.press("escape")
        assert not isinstance(app.screen, FolderForm)
        await pilot.press("a")
        await type_text(pilot, str(other))
        await pilot.click("#cancel")
        assert not isinstance(app.screen, FolderForm)
        await pilot.press("q")
    assert setup.config_path.read_text() == before
    assert "other" not in setup.config().folders


async def test_add_folder_save_button(setup: Setup) -> None:
    other = setup.folder("other")
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("a")
        await type_text(pilot, str(other))
        await pilot.click("#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "form closed")
        assert "other" in setup.config().folders
        await pilot.press("q")


async def test_path_completion(setup: Setup) -> None:
    setup.folder("pictures-2024")
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, f"{setup.root}/pic")
        field = app.screen.query_one("#path", Input)
        await wait_for(pilot, lambda: field._suggestion, "a suggestion")
        await pilot.press("right")
        assert field.value == f"{setup.root}/pictures-2024/"
        assert field.value.endswith("/")
        await pilot.press("escape", "q")


async def test_directory_picker(setup: Setup) -> None:
    setup.folder("picked")
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await type_text(pilot, f"{setup.root}/picked")
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, DirectoryPicker)
        picker = app.screen
        assert picker.root == setup.root / "picked"
        await pilot.press("backspace")  # up to the parent
        assert picker.current == setup.root
        await pilot.press("escape")
        assert isinstance(app.screen, FolderForm)
        await pilot.press("ctrl+o")
        await pilot.press("ctrl+s")  # choose the highlighted folder (the root: picked/)
        assert isinstance(app.screen, FolderForm)
        assert app.screen.query_one("#path", Input).value == str(setup.root / "picked")
        await pilot.press("escape", "q")


async def test_add_folder_without_remotes_asks_for_a_remote_first(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text("# empty\n")
    from syncapp.config import load_config

    app = SyncApp(load_config(config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, RemoteForm)
        await pilot.press("escape")
        await pilot.press("q")


async def test_edit_folder(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, FolderForm)
        assert form.query_one("#path", Input).value.endswith("docs")
        assert form.query_one("#name", Input).disabled
        rp = form.query_one("#remote_path", Input)
        assert rp.value == "docs"
        rp.value = "documents"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "form closed")
        text = setup.config_path.read_text()
        assert 'remote_path = "documents"' in text and "# the documents" in text
        await wait_for(
            pilot, lambda: (setup.remote_dir / "documents/sub/b.txt").exists(), "re-synced"
        )
        await up_to_date(pilot, app)
        assert app.dashboard.folders.views["docs"].cfg.remote_path == "documents"
        await pilot.press("q")


async def test_remove_folder_asks_and_deletes_no_file(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert "docs" in setup.config().folders
        await pilot.press("d")
        await pilot.press("escape")
        assert "docs" in setup.config().folders
        await pilot.press("d")
        await pilot.press("y")
        await wait_for(pilot, lambda: "docs" not in setup.config().folders, "removed")
        await wait_for(pilot, lambda: app.engine is not None and not local(app).folders, "closed")
        await wait_for(pilot, lambda: app.dashboard.folders.panel("docs") is None, "panel gone")
        assert "# a local folder as the remote" in setup.config_path.read_text()
        assert (setup.docs / "a.txt").exists()
        assert (setup.remote_dir / "docs/a.txt").exists()
        # With no folder left, folder keys only say so.
        for key in "edpr":
            await pilot.press(key)
        assert on_dashboard(app)
        await pilot.press("q")


async def test_panels_follow_a_config_change_made_past_the_ui(setup: Setup) -> None:
    """The engine in this process is changed by another caller of its facade (not the UI's
    forms): the panels follow its ``ConfigChanged``."""
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        api = app.engine
        assert api is not None
        pics = setup.folder("pics", {"p.png": "png"})
        await api.save_folder(FolderDraft("pics", str(pics), "box", "pics"))
        await wait_for(pilot, lambda: app.dashboard.folders.panel("pics") is not None, "added")
        await up_to_date(pilot, app, "pics")
        await api.remove_folder("docs")
        await wait_for(pilot, lambda: app.dashboard.folders.panel("docs") is None, "removed")
        assert list(app.config.folders) == ["pics"] and app.selected_folder == "pics"
        assert (setup.remote_dir / "pics/p.png").exists()
        await pilot.press("q")


def footer_labels(app: SyncApp) -> list[str]:
    return [b.description for _, b, enabled, _ in app.screen.active_bindings.values() if enabled]


async def test_pause_and_resume(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        assert "Pause" in footer_labels(app) and "Resume" not in footer_labels(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: state(app, "docs") is FolderState.PAUSED, "paused")
        # p now says what it will do for the selected folder.
        await wait_for(pilot, lambda: "Resume" in footer_labels(app), "Resume label")
        assert "Pause" not in footer_labels(app)
        panel = app.dashboard.folders.panel("docs")
        assert panel is not None
        assert "paused by the user" in str(panel.query_one(".problem", Label).content)
        (setup.docs / "while-paused.txt").write_text("later")
        await pilot.press("p")
        await wait_for(
            pilot, lambda: (setup.remote_dir / "docs/while-paused.txt").exists(), "resumed"
        )
        await up_to_date(pilot, app)
        await pilot.press("q")


async def test_rescan(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # A blind watcher (as when the kernel drops events): only a scan can find a new file.
    monkeypatch.setattr(FolderSync, "_on_watch", lambda self, paths: None)
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        (setup.docs / "unseen.txt").write_text("only a rescan finds me")
        await pilot.pause(0.5)
        assert not (setup.remote_dir / "docs/unseen.txt").exists()  # the watcher is blind
        await pilot.press("r")  # the file arriving is the rescan's doing: nothing else looks
        await wait_for(
            pilot, lambda: (setup.remote_dir / "docs/unseen.txt").exists(), "the rescan's upload"
        )
        await up_to_date(pilot, app)
        await pilot.press("q")


async def test_folder_that_cannot_open_shows_why_and_r_retries(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SyncEngine.add_folder
    failures = [RuntimeError("disk on fire")]

    async def flaky(self: SyncEngine, cfg, remote_cfg=None):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await original(self, cfg, remote_cfg)

    monkeypatch.setattr(SyncEngine, "add_folder", flaky)
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.folders.views["docs"].open_error, "error")
        assert state(app, "docs") is FolderState.ERROR
        panel = app.dashboard.folders.panel("docs")
        assert panel is not None
        assert "disk on fire" in str(panel.query_one(".problem", Label).content)
        await pilot.press("r")
        await up_to_date(pilot, app)
        assert (setup.remote_dir / "docs/a.txt").exists()
        await pilot.press("q")


async def test_log_screen(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        view = app.screen.view
        await wait_for(pilot, lambda: view.line_count, "log lines")
        text = "\n".join(view.render_line(y).text for y in range(view.size.height))
        assert "docs: up to date" in text and "uploaded a.txt" in text
        # Folder keys do nothing here; escape goes back.
        await pilot.press("a")
        assert isinstance(app.screen, LogScreen)
        await pilot.press("escape")
        assert on_dashboard(app)
        await pilot.press("q")


async def test_up_down_move_between_panels(setup: Setup) -> None:
    other = setup.folder("other")
    with setup.config_path.open("a") as fh:
        fh.write(f'\n[folders.other]\npath = "{other}"\nremote = "box"\nremote_path = "o"\n')
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        assert app.selected_folder == "docs"
        await pilot.press("down")
        assert app.selected_folder == "other"
        await pilot.press("up")
        assert app.selected_folder == "docs"
        await pilot.press("q")


async def test_command_palette_offers_the_actions(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(FolderSync, "rescan", lambda self: calls.append(self.name))
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await pilot.press("ctrl+p")
        await type_text(pilot, "Rescan docs")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count, "hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: calls == ["docs"], "rescan from the palette")
        await pilot.press("ctrl+p")
        await type_text(pilot, "Add folder")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count, "hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderForm), "form from palette")
        # On a form, the palette offers only what works there: no folder actions behind it.
        await pilot.press("ctrl+p")
        await type_text(pilot, "docs")
        await pilot.pause(0.3)
        assert app.screen.query_one(CommandList).option_count == 0
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape", "q")


async def test_palette_pause_entry_names_what_it_does(setup: Setup) -> None:
    from syncapp.tui.commands import SyncCommands

    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        provider = SyncCommands(app.dashboard)
        titles = [t for t, _, _ in provider._commands()]
        assert "Pause docs" in titles and "Resume docs" not in titles
        await pilot.press("p")
        await wait_for(pilot, lambda: state(app, "docs") is FolderState.PAUSED, "paused")
        titles = [t for t, _, _ in SyncCommands(app.dashboard)._commands()]
        assert "Resume docs" in titles
        await pilot.press("q")


async def test_theme_toggle(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test() as pilot:
        dark = app.current_theme.dark
        app.action_toggle_theme()
        await pilot.pause()
        assert app.current_theme.dark is not dark
        await pilot.press("q")
