"""Dialogs: their own keys in their own footer, a focus you can see, the right default button,
placeholders that do not look like values, a checkbox that looks unticked when it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Footer, Input

from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.forms import FolderForm, TickBox
from syncapp.tui.remotes import RemoteForm
from tests.tui.test_progress import Clock, config


def footer_keys(app: SyncApp) -> list[str]:
    """What the screen's own footer shows."""
    app.screen.query_one(Footer)  # the dialog has one
    return [b.description for _, b, enabled, _ in app.screen.active_bindings.values() if b.show]


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_confirm_dialog_keys_default_and_visible_focus(tmp_path: Path, theme: str) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    answers: list[bool | None] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.pause()
        # A question before something the user may not want: enter is Cancel.
        await app.push_screen(ConfirmDialog("Remove folder", "Sure?", "Remove"), answers.append)
        await pilot.pause()
        keys = footer_keys(app)
        assert "Remove" in keys and "Cancel" in keys
        assert "Add" not in keys and "Pause" not in keys  # not the dashboard's keys
        cancel = app.screen.query_one("#cancel", Button)
        confirm = app.screen.query_one("#confirm", Button)
        assert app.screen.focused is cancel
        # The focused button looks different from the others: a frame and reversed text.
        assert cancel.styles.border_top != confirm.styles.border_top
        assert "reverse" in str(cancel.styles.text_style)
        await pilot.press("enter")
        await pilot.pause()
        # A step the user asked for: enter is the action.
        app.push_screen(
            ConfirmDialog("Restore", "Write it?", "Restore", default="confirm"), answers.append
        )
        await pilot.pause()
        assert app.screen.focused is app.screen.query_one("#confirm", Button)
        await pilot.press("enter")
        await pilot.pause()
    assert answers == [False, True]


async def test_forms_show_their_keys_placeholders_and_focus(tmp_path: Path) -> None:
    app = SyncApp(config(tmp_path, "docs"), engine=False, clock=Clock())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, FolderForm)
        assert {"Save", "Cancel", "Browse…"} <= set(footer_keys(app))
        ignore = app.screen.query_one("#ignore", Input)
        # An example, said as one, in italics: not a setting.
        assert ignore.value == ""
        assert ignore.placeholder.startswith("nothing ignored (e.g.")
        path = app.screen.query_one("#path", Input)
        assert app.screen.focused is path
        assert path.styles.background != ignore.styles.background
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("m", "a")
        await pilot.pause()
        assert isinstance(app.screen, RemoteForm)
        assert "Cancel" in footer_keys(app)
        box = app.screen.query_one("#store_password", TickBox)
        assert box.value is False
        assert "X" not in box._button.plain and "✓" not in box._button.plain
        box.value = True
        assert "✓" in box._button.plain
