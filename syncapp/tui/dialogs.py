"""Small modal dialogs: confirm, and the delete guard's decision."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from syncapp.engine import GuardTripped


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; escape or n says no, y says yes; its keys in its own footer.

    ``default`` is the button enter presses: "cancel" for a question the app asks before
    something the user may not want (remove), "confirm" for the step the user asked for
    (restore this version).
    """

    BINDINGS = [Binding("escape,n", "answer(False)", "Cancel")]

    def __init__(
        self, title: str, message: str, confirm: str = "OK", *, default: str = "cancel"
    ) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._message = message
        self._confirm = confirm
        self.default = default
        self._bindings.bind("y", "answer(True)", confirm)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="title")
            yield Static(self._message, classes="message", markup=False)
            with Horizontal(classes="buttons"):
                if self.default == "confirm":
                    yield Button(self._confirm, id="confirm", variant="primary")
                else:
                    yield Button(self._confirm, id="confirm", variant="error")
                yield Button("Cancel", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(f"#{self.default}", Button).focus()

    @on(Button.Pressed, "#confirm")
    def _confirmed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancelled(self) -> None:
        self.dismiss(False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class GuardDialog(ModalScreen[str]):
    """A folder's delete guard tripped; the user decides what becomes of the held deletes.

    Deletes made here (``direction`` "up"): delete on the remote, restore the files locally, or
    keep the folder paused. Deletes made on the remote (two-way, "down"): move the local files
    to the trash, restore them to the remote (they upload again), or keep the folder paused.
    Answers ``"delete"``, ``"restore"`` or ``"keep"``.
    """

    BINDINGS = [Binding("escape", "keep", "Keep paused")]

    def __init__(self, event: GuardTripped, note: str = "") -> None:
        """``note`` says what becomes of deleted files on the remote (kept as versions)."""
        super().__init__(classes="dialog-screen")
        self.event = event
        self.note = note

    def compose(self) -> ComposeResult:
        ev = self.event
        # A short terminal has room for a few examples only.
        room = 8 if self.app.size.height >= 30 else 4
        sample = "\n".join(f"  {p}" for p in ev.sample[:room])
        more = ev.deletes - min(len(ev.sample), room)
        if more > 0:
            sample += f"\n  … and {more:,} more"
        note = f"\n{self.note}" if self.note else ""
        if ev.direction == "down":
            said = f"{ev.deletes:,} of {ev.known:,} files were deleted on the remote"
            title = f"Folder {ev.folder!r}: {said}"
            message = (
                f"Nothing was moved to the trash here. For example:\n{sample}\n"
                "The trash keeps what is moved there (your desktop's, or .syncapp-trash/ in the "
                "folder); restored, the files here upload to the remote again."
            )
            delete, restore = f"Move {ev.deletes:,} to the trash here", "Restore them to the remote"
        else:
            title = f"Folder {ev.folder!r}: deletes held back"
            message = f"{ev.reason}.\nNothing was deleted on the remote. For example:\n{sample}"
            delete, restore = f"Delete {ev.deletes:,} on remote", "Restore the files locally"
        with Vertical(classes="dialog guard"):
            yield Label(title, classes="title", markup=False)
            yield Static(message + note, classes="message", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(delete, id="delete", variant="error")
                yield Button(restore, id="restore", variant="success")
                yield Button("Keep paused", id="keep", variant="primary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    @on(Button.Pressed, "#delete")
    def _delete(self) -> None:
        self.dismiss("delete")

    @on(Button.Pressed, "#restore")
    def _restore(self) -> None:
        self.dismiss("restore")

    @on(Button.Pressed, "#keep")
    def action_keep(self) -> None:
        self.dismiss("keep")


class DemoDialog(ModalScreen[str]):
    """Adding a folder while the demo runs: it would go into the demo's own config and its
    throwaway server. Answers ``"real"`` (set up a real remote), ``"demo"`` or ``"cancel"``."""

    BINDINGS = [
        Binding("escape", "answer('cancel')", "Cancel"),
        Binding("r", "answer('real')", "Real remote"),
        Binding("d", "answer('demo')", "Add to the demo"),
    ]

    def __init__(self, demo_config: str, real_config: str) -> None:
        super().__init__(classes="dialog-screen")
        self.demo_config = demo_config
        self.real_config = real_config

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("This is the demo", classes="title")
            yield Static(
                "A folder added now belongs to the demo: it goes into the demo's config "
                f"({self.demo_config}) and to its built-in server, and is thrown away with "
                "the demo when you quit.\n"
                "To sync your own folder, set up a real remote: the demo stops and your "
                f"folders are saved in {self.real_config}.",
                classes="message",
                markup=False,
            )
            with Horizontal(classes="buttons"):
                yield Button("Set up a real remote  r", id="real", variant="success")
                yield Button("Add to the demo  d", id="demo")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#real", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_answer(self, choice: str) -> None:
        self.dismiss(choice)
