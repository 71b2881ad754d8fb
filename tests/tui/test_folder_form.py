"""The folder form has every folder key the README documents, each with its default shown."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets import Input, Label, Select, Switch

from syncapp.configedit import FOLDER_DEFAULTS
from syncapp.tui.app import SyncApp
from syncapp.tui.forms import FolderForm
from tests.helpers import Setup
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import type_text

README = Path(__file__).parents[2] / "README.md"


def readme_folder_keys() -> dict[str, str]:
    """The folder keys table of the README: key → its default as written there."""
    text = README.read_text(encoding="utf-8")
    table = text.split("### Folder keys", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, re.MULTILINE)
    return {key: default.strip().strip("`").strip('"') for key, default in rows}


def hint(form: FolderForm, key: str) -> str:
    row = form.query_one(f"#{key}").parent
    assert row is not None
    return " ".join(str(label.content) for label in row.query(".hint").results(Label))


async def test_edit_form_has_every_documented_folder_key_with_its_default(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, FolderForm)
        documented = readme_folder_keys()
        assert {"follow_symlinks", "max_delete", "versions", "keep_versions"} <= set(documented)
        for key, default in documented.items():
            if key in ("path", "remote", "remote_path", "ignore"):
                assert form.query(f"#{key}"), key  # the four every folder has
                continue
            field = form.query_one(f"#{key}")
            said = {"true": "on", "false": "off"}.get(default, default)
            assert hint(form, key).startswith(f"default {said} · "), key
            # The field holds the value (the default for this folder), never a placeholder.
            if isinstance(field, Input):
                assert field.value == said and not field.placeholder, key
            elif isinstance(field, Select):
                assert field.value == said, key
            else:
                assert isinstance(field, Switch)
                assert field.value is FOLDER_DEFAULTS[key], key
        # Bandwidth is a remote's key: the form says which limit the folder gets.
        assert "now none" in str(form.query_one("#bwlimit-note", Label).content)
        # Change a few; a wrong value is said under its field and nothing is saved.
        form.query_one("#max_delete", Input).value = ""
        form.query_one("#max_delete", Input).focus()
        await type_text(pilot, "lots")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, FolderForm)
        error = form.query_one("#max_delete-error", Label)
        assert error.display and "a count (100) or a percentage" in str(error.content)
        form.query_one("#max_delete", Input).value = "100"
        form.query_one("#keep_versions", Input).value = "12h"
        form.query_one("#rescan_interval", Input).value = "0"
        form.query_one("#follow_symlinks", Switch).value = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FolderForm), "saved")
        cfg = setup.config().folders["docs"]
        assert (cfg.max_delete, cfg.keep_versions) == ("100", "12h")
        assert (cfg.rescan_interval, cfg.follow_symlinks) == (0.0, True)
        text = setup.config_path.read_text()
        assert "max_delete = 100\n" in text and "rescan_interval = 0\n" in text
        # Defaults left alone are not written out; the user's comments stay.
        keys = {line.split(" = ")[0] for line in text.splitlines() if " = " in line}
        assert "settle" not in keys and "versions" not in keys and "paused" not in keys
        assert "# the documents" in text
        await pilot.press("q")


def looks_like_a_value(placeholder: str) -> bool:
    """A placeholder with a path, URL or name in it, not marked as an example."""
    return "e.g." not in placeholder and any(c in placeholder for c in "/.~:_{}")


async def test_placeholders_never_look_like_values(setup: Setup) -> None:
    from syncapp.config import REMOTE_TYPES
    from syncapp.tui.remotes import RemoteForm

    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        assert isinstance(app.screen, FolderForm)
        shown = {f.id: str(f.placeholder) for f in app.screen.query(Input)}
        await pilot.press("escape", "m", "a")
        assert isinstance(app.screen, RemoteForm)
        shown |= {f.id: str(f.placeholder) for f in app.screen.query(Input)}
        assert {f"{t}-" for t in REMOTE_TYPES} <= {str(i).split("-")[0] + "-" for i in shown}
        wrong = {i: p for i, p in shown.items() if looks_like_a_value(p)}
        assert wrong == {}
        await pilot.press("escape", "escape", "q")
