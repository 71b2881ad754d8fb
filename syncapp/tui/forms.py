"""The add / edit folder form and its directory picker."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DirectoryTree, Footer, Input, Label, Select, Switch

from syncapp.config import Config, FolderConfig
from syncapp.configedit import (
    FOLDER_DEFAULTS,
    FolderDraft,
    default_remote_path,
    display_path,
    folder_problems,
    number_text,
    resolve_path,
    suggest_name,
)

#: Called with the draft and the name of the folder being edited (None when adding); answers
#: with an error in words, or None once the config is saved and the folder is syncing.
SaveFolder = Callable[[FolderDraft, str | None], Awaitable[str | None]]


#: Folder keys shown as switches and as typed values: (key, label, what it does).
SWITCHES = (
    ("mirror_deletes", "Mirror deletes", "a file deleted here is deleted remotely"),
    ("versions", "Keep versions", "of what overwrites and deletes replace"),
    ("follow_symlinks", "Follow links", "sync what symbolic links point to"),
    ("paused", "Start paused", "no syncing until resumed (p)"),
)
TEXT_SETTINGS = (
    ("max_delete", "Delete guard", "most deletes at once (a count or a share)"),
    ("keep_versions", "Versions for", "how long versions stay (90s, 12h, 30d)"),
    ("settle", "Settle", "seconds unchanged before upload"),
    ("rescan_interval", "Rescan every", "seconds; 0: never"),
    ("remote_poll", "Remote looks", "two-way only: seconds between looks at the remote"),
)
#: direction: where changes go, in words (the values are the config's).
DIRECTIONS = [
    ("Upload only: the remote mirrors this folder", "upload"),
    ("Two-way: changes on either side reach the other", "both"),
]
#: Every field that may show an error under it, in form order.
FIELDS = (
    "path",
    "name",
    "remote",
    "remote_path",
    "ignore",
    "direction",
    *(key for key, _, _ in TEXT_SETTINGS),
)


def on_off(value: object) -> str:
    return "on" if value else "off"


class DirectorySuggester(Suggester):
    """Completes the path being typed with the first matching subdirectory (→ accepts)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        parent, prefix = os.path.split(expanded)
        if not parent:
            return None
        try:
            names = sorted(
                e.name
                for e in os.scandir(parent)
                if e.is_dir() and e.name.startswith(prefix) and e.name != prefix
            )
        except OSError:
            return None
        if not prefix.startswith("."):
            names = [n for n in names if not n.startswith(".")]
        if not names:
            return None
        return value + names[0][len(prefix) :] + "/"


def show(label: Label, text: str | Text) -> None:
    """Put ``text`` in ``label`` and show it only when there is something to say."""
    label.update(text)
    label.display = bool(str(text))


def place_refusal(form: Widget, error: str, fields: dict[str, str], general: Label) -> None:
    """Show the engine's refusal ``error`` (``key: problem``) under the field it names
    (``fields``: key → widget id), focused, or in ``general`` when it names none."""
    key, _, problem = error.partition(": ")
    target = fields.get(key) if problem else None
    if target is None or not form.query(f"#{target}-error"):
        show(general, error)
        return
    show(form.query_one(f"#{target}-error", Label), problem)
    widget = form.query_one(f"#{target}")
    if widget.focusable:
        widget.focus()
    show(general, "Not saved: see the field marked above.")


def tone(widget: Widget, name: str) -> str:
    """The theme's colour for text of a tone (success, error, warning) on its background."""
    return widget.app.theme_variables.get(f"text-{name}", "")


def split_patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


class TickBox(Checkbox):
    """A checkbox whose box is empty when unticked (Textual's shows a dim X either way, which
    reads as ticked) and holds a tick when ticked."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        button: Content = Checkbox._button.fget(self)  # type: ignore[attr-defined]
        return button


def field_row(label: str, *widgets: Widget, field: str) -> ComposeResult:
    """A label, its field(s), and the inline error line under them."""
    with Horizontal(classes="row"):
        yield Label(label, classes="field-label")
        yield from widgets
    yield Label("", id=f"{field}-error", classes="field-error")


class FolderForm(ModalScreen[str | None]):
    """Add a folder (``editing`` None) or edit one; dismisses with the saved folder's name."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "browse", "Browse…"),
    ]

    def __init__(
        self, config: Config, save: SaveFolder, editing: FolderConfig | None = None
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.config = config
        self._save = save
        self.editing = editing
        self._auto_name = ""
        self._auto_remote_path = ""
        self._touched: set[str] = set()

    def compose(self) -> ComposeResult:
        e = self.editing
        remotes = [(f"{name} ({r.type})", name) for name, r in self.config.remotes.items()]
        first = e.remote if e else (next(iter(self.config.remotes), None))
        with Vertical(classes="dialog form", id="folder-form"):
            yield Label(f"Edit folder {e.name}" if e else "Add a folder", classes="title")
            with VerticalScroll(classes="fields"):
                yield from field_row(
                    "Folder",
                    Input(
                        display_path(e.path) if e else "",
                        placeholder="e.g. ~/Documents  (→ completes, ctrl+o browses)",
                        suggester=DirectorySuggester(),
                        id="path",
                        compact=True,
                    ),
                    Button("Browse…", id="browse", compact=True),
                    field="path",
                )
                yield from field_row(
                    "Name",
                    Input(e.name if e else "", id="name", compact=True, disabled=e is not None),
                    field="name",
                )
                select: Select[str] = Select(
                    remotes,
                    allow_blank=not remotes,
                    value=first if first is not None else Select.NULL,
                    id="remote",
                    compact=True,
                    prompt="no remote yet: add one with m",
                )
                yield from field_row("Remote", select, field="remote")
                yield from field_row(
                    "Remote path",
                    Input(e.remote_path if e else "", id="remote_path", compact=True),
                    field="remote_path",
                )
                yield from field_row(
                    "Ignore",
                    Input(
                        ", ".join(e.ignore) if e else "",
                        placeholder="nothing ignored (e.g. *.tmp, .cache/)",
                        id="ignore",
                        compact=True,
                    ),
                    field="ignore",
                )
                yield from self._setting_rows(FolderDraft.from_config(e) if e else None)
            yield Label("", id="form-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save  ctrl+s", id="save", variant="primary")
                yield Button("Cancel  esc", id="cancel")
        yield Footer(compact=True)

    def _setting_rows(self, draft: FolderDraft | None) -> ComposeResult:
        """Every other folder key, each with its value and its default beside it (first, so a
        narrow screen cuts what it does rather than the default)."""
        d = draft or FolderDraft("", "", "", "")
        for key, label, hint in SWITCHES:
            yield from field_row(
                label,
                Switch(bool(getattr(d, key)), id=key),
                Label(f"default {on_off(FOLDER_DEFAULTS[key])} · {hint}", classes="hint"),
                field=key,
            )
        direction: Select[str] = Select(
            DIRECTIONS, allow_blank=False, value=d.direction, id="direction", compact=True
        )
        # The choices are sentences: the hint goes under them, not beside.
        said = Label(
            f"default {FOLDER_DEFAULTS['direction']} · which way changes go", classes="hint"
        )
        yield from field_row(
            "Direction", Vertical(direction, said, classes="choice"), field="direction"
        )
        for key, label, hint in TEXT_SETTINGS:
            default = FOLDER_DEFAULTS[key]
            shown = number_text(default) if isinstance(default, float) else str(default)
            yield from field_row(
                label,
                Input(str(getattr(d, key)), id=key, compact=True, classes="setting"),
                Label(f"default {shown} · {hint}", classes="hint"),
                field=key,
            )
        yield from field_row(
            "Bandwidth", Label("", classes="hint", id="bwlimit-note"), field="bwlimit"
        )

    def _show_bwlimit(self) -> None:
        """bwlimit is a remote's key (and the file's): say which limit this folder gets."""
        remote = self.query_one("#remote", Select).value
        cfg = self.config.remotes.get(remote) if isinstance(remote, str) else None
        limits = [f"{cfg.name}'s {cfg.bwlimit}" if cfg is not None and cfg.bwlimit else ""]
        limits.append(f"{self.config.bwlimit} for all" if self.config.bwlimit else "")
        said = ", ".join(x for x in limits if x) or "none"
        self.query_one("#bwlimit-note", Label).update(
            f"default none · now {said} (bwlimit: set on the remote, or atop the file)"
        )

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()
        self._show_bwlimit()
        self._show_direction()
        if self.editing is not None:
            self._touched.update(("path", "name", "remote_path"))
        self._show_problems()

    # -- reading the form -------------------------------------------------------------------------

    def draft(self) -> FolderDraft:
        remote = self.query_one("#remote", Select).value
        return FolderDraft(
            name=self.query_one("#name", Input).value.strip(),
            path=self.query_one("#path", Input).value.strip(),
            remote=remote if isinstance(remote, str) else "",
            remote_path=self.query_one("#remote_path", Input).value.strip().strip("/"),
            ignore=split_patterns(self.query_one("#ignore", Input).value),
            mirror_deletes=self.query_one("#mirror_deletes", Switch).value,
            versions=self.query_one("#versions", Switch).value,
            follow_symlinks=self.query_one("#follow_symlinks", Switch).value,
            paused=self.query_one("#paused", Switch).value,
            direction=str(self.query_one("#direction", Select).value),
            **{key: self.query_one(f"#{key}", Input).value.strip() for key, _, _ in TEXT_SETTINGS},
        )

    def problems(self) -> dict[str, str]:
        return folder_problems(
            self.config, self.draft(), self.editing.name if self.editing else None
        )

    def _show_problems(self, fields: Iterable[str] | None = None) -> dict[str, str]:
        problems = self.problems()
        shown = set(fields) if fields is not None else self._touched
        for name in FIELDS:
            label = self.query_one(f"#{name}-error", Label)
            text = problems.get(name, "") if name in shown else ""
            label.update(text)
            label.display = bool(text)
        return problems

    # -- reacting -------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _any_change(self) -> None:
        # "Fix the fields…" or a save error was about the values before this change.
        show(self.query_one("#form-error", Label), "")

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        self._touched.add("path")
        if self.editing is None:
            # Name and remote path follow the folder until the user types their own.
            name_input = self.query_one("#name", Input)
            if name_input.value in ("", self._auto_name):
                others = {n: None for n in self.config.folders}
                self._auto_name = suggest_name(event.value, others) if event.value else ""
                name_input.value = self._auto_name
            rp_input = self.query_one("#remote_path", Input)
            if rp_input.value in ("", self._auto_remote_path):
                self._auto_remote_path = default_remote_path(event.value)
                rp_input.value = self._auto_remote_path
        self._show_problems()

    @on(Input.Changed, "#name, #remote_path, #ignore, .setting")
    def _field_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.value not in (self._auto_name, self._auto_remote_path):
            self._touched.add(event.input.id)
        self._show_problems()

    @on(Select.Changed)
    @on(Switch.Changed)
    def _other_changed(self) -> None:
        self._touched.add("remote")
        self._show_bwlimit()
        self._show_problems()

    @on(Select.Changed, "#direction")
    def _show_direction(self) -> None:
        """Remote looks only matter for two-way: greyed out, and skipped by tab, for upload
        only (unless its value is wrong: it stays open to be fixed)."""
        poll = self.query_one("#remote_poll", Input)
        upload = self.query_one("#direction", Select).value == "upload"
        poll.disabled = upload and "remote_poll" not in self.problems()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#save")
    async def _save_pressed(self) -> None:
        await self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#browse")
    def _browse_pressed(self) -> None:
        self.action_browse()

    # -- actions --------------------------------------------------------------------------------

    async def action_save(self) -> None:
        self._touched.update(FIELDS)
        problems = self._show_problems()
        general = self.query_one("#form-error", Label)
        if problems:
            first = next(iter(problems))
            widget = self.query_one(f"#{first}")
            if widget.focusable:
                widget.focus()
            show(general, "Fix the fields marked above.")
            return
        show(general, "Saving…")
        draft = self.draft()
        error = await self._save(draft, self.editing.name if self.editing else None)
        if error:
            place_refusal(self, error, {f: f for f in FIELDS}, general)
            return
        self.dismiss(draft.name)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_browse(self) -> None:
        current = self.query_one("#path", Input).value

        def chosen(path: Path | None) -> None:
            if path is not None:
                field = self.query_one("#path", Input)
                field.value = display_path(path)
                field.focus()

        self.app.push_screen(DirectoryPicker(current), chosen)


class DirectoriesOnly(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class DirectoryPicker(ModalScreen[Path | None]):
    """Browse for a directory: enter opens, ctrl+s (or Choose) takes the highlighted one."""

    BINDINGS = [
        Binding("ctrl+s", "choose", "Choose", priority=True),
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "up", "Parent folder"),
    ]

    def __init__(self, start: str = "") -> None:
        super().__init__(classes="dialog-screen")
        p = resolve_path(start) if start.strip() else Path.home()
        while not p.is_dir() and p != p.parent:
            p = p.parent
        self.root = p
        self.current = p

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("Choose a folder", classes="title")
            yield Label(display_path(self.current), id="current", markup=False)
            yield DirectoriesOnly(self.root, id="tree")
            with Horizontal(classes="buttons"):
                yield Button("Choose  ctrl+s", id="choose", variant="primary")
                yield Button("Parent  ⌫", id="up")
                yield Button("Cancel  esc", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#tree", DirectoryTree).focus()

    @on(DirectoryTree.NodeHighlighted)
    def _highlighted(self, event: DirectoryTree.NodeHighlighted[object]) -> None:
        data = event.node.data
        path = getattr(data, "path", None)
        if isinstance(path, Path):
            self.current = path
            self.query_one("#current", Label).update(display_path(path))

    @on(Button.Pressed, "#choose")
    def action_choose(self) -> None:
        self.dismiss(self.current)

    @on(Button.Pressed, "#up")
    def action_up(self) -> None:
        tree = self.query_one("#tree", DirectoryTree)
        parent = Path(tree.path).parent
        tree.path = parent
        self.current = parent
        self.query_one("#current", Label).update(display_path(parent))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
