"""Remotes: the list screen (``m``) and the add / edit form with Test connection."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Header, Input, Label, Select

from syncapp.config import (
    REMOTE_TYPES,
    Config,
    HTTPRemoteConfig,
    RemoteConfig,
    S3RemoteConfig,
    WebDAVRemoteConfig,
)
from syncapp.configedit import (
    REMOTE_FIELDS,
    SECRET_KEYS,
    RemoteDraft,
    describe_remote,
    remote_config,
    remote_defaults,
    remote_problems,
)
from syncapp.errors import ConfigError, RemoteError
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.forms import TickBox, field_row, place_refusal, show, tone

if TYPE_CHECKING:
    from syncapp.tui.app import SyncApp

#: Called with the draft and the name being edited (None when adding); answers with an error in
#: words, or None once saved.
SaveRemote = Callable[[RemoteDraft, str | None], Awaitable[str | None]]

LABELS = {
    "path": "Folder",
    "url": "URL",
    "username": "User",
    "password_env": "Password env",
    "password": "Password",
    "endpoint": "Endpoint",
    "bucket": "Bucket",
    "prefix": "Key prefix",
    "region": "Region",
    "access_key_id_env": "Key id env",
    "secret_access_key_env": "Secret env",
    "access_key_id": "Access key id",
    "secret_access_key": "Secret key",
    "method": "Method",
    "token_env": "Token env",
    "list_url": "List URL",
}

PLACEHOLDERS = {
    "local/path": "e.g. ~/Backups (created if missing)",
    "webdav/url": "e.g. https://nas.example/remote.php/dav/files/alice/",
    "webdav/password_env": "name of an environment variable, e.g. NAS_PASSWORD",
    "webdav/password": "only kept when “store password in config” is ticked",
    "s3/endpoint": "e.g. https://s3.example.com (empty for AWS)",
    "s3/access_key_id": "only kept when “store keys in config” is ticked",
    "s3/secret_access_key": "only kept when “store keys in config” is ticked",
    "http/url": "e.g. https://api.example/upload/{path}",
    "http/method": "PUT or POST",
    "http/token_env": "environment variable holding a bearer token",
    "http/list_url": "optional, e.g. https://api.example/list/{path}",
}

#: The tick that keeps a type's typed secrets in the config file (0600), and its id.
STORE_LABELS = {
    "webdav": "store password in config (else set the env variable)",
    "s3": "store keys in config (else set the env variables)",
}
STORE_IDS = {"webdav": "store_password", "s3": "store_keys"}

TYPE_HINTS = {
    "local": "a folder on this machine (another disk, a mounted share)",
    "webdav": "Nextcloud, ownCloud, Apache, nginx, rclone serve webdav, WsgiDAV",
    "s3": "AWS S3, MinIO, Ceph, SeaweedFS; keys from environment variables, or typed here",
    "http": "your own upload API: a URL template with {path}",
}


#: Called about once a second while a test waits for the server, with the seconds left.
Waiting = Callable[[float], None]


async def test_remote(cfg: RemoteConfig, waiting: Waiting | None = None) -> tuple[bool, str]:
    """Open the remote and stat its root: (ok, what happened in words).

    Gives up after the remote's ``timeout``; ``waiting`` hears the seconds left meanwhile, so
    a silent server shows a countdown rather than a frozen "Testing…"."""
    limit = max(1.0, cfg.timeout)
    attempt = asyncio.ensure_future(_attempt(cfg))
    started = time.monotonic()
    try:
        while True:
            done, _ = await asyncio.wait({attempt}, timeout=min(1.0, limit))
            if done:
                return attempt.result()
            left = limit - (time.monotonic() - started)
            if left <= 0:
                return False, f"no answer within {limit:.0f} s (the remote's timeout)"
            if waiting is not None:
                waiting(left)
    finally:
        if not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)


async def _attempt(cfg: RemoteConfig) -> tuple[bool, str]:
    from syncapp.remotes import open_remote

    try:
        async with open_remote(cfg, env=secrets_env(cfg)) as remote:
            entry = await remote.stat("")
    except RemoteError as e:
        return False, failure_words(cfg, e)
    except (ConfigError, OSError, ValueError, ImportError, NotImplementedError) as e:
        return False, str(e) or type(e).__name__
    if entry is None:
        return True, "connected, but the remote root does not exist yet (it is created on sync)"
    return True, f"connected to {remote.display_url}"


def secrets_env(cfg: RemoteConfig) -> dict[str, str]:
    """The environment a test opens the remote with: typed S3 keys stand in for unset
    variables (the variables win when set, as for a WebDAV password)."""
    env = dict(os.environ)
    if isinstance(cfg, S3RemoteConfig):
        for var, value in (
            (cfg.access_key_id_env, cfg.access_key_id),
            (cfg.secret_access_key_env, cfg.secret_access_key),
        ):
            if var and value and not env.get(var):
                env[var] = value
    return env


def failure_words(cfg: RemoteConfig, e: RemoteError) -> str:
    """What a failed test means for the user: a 401 is the credentials, said so first."""
    if e.status == 401:
        if isinstance(cfg, HTTPRemoteConfig):
            return f"the server refused the token (HTTP 401; check {cfg.token_env or 'token_env'})"
        if isinstance(cfg, WebDAVRemoteConfig) and not cfg.username:
            return "the server wants a user name and password (HTTP 401)"
        return "wrong user name or password (HTTP 401)"
    status = f"HTTP {e.status}: " if e.status and str(e.status) not in str(e) else ""
    return f"{status}{e}"


def waiting_text(left: float) -> Text:
    return Text(f"Testing… no answer yet; giving up in {left:.0f} s", style="italic")


class RemoteForm(ModalScreen[str | None]):
    """Add or edit a remote; dismisses with its name once saved."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+t", "test", "Test connection", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, config: Config, save: SaveRemote, editing: RemoteConfig | None = None):
        super().__init__(classes="dialog-screen")
        self.config = config
        self._save = save
        self.editing = editing
        self._touched: set[str] = set()

    def compose(self) -> ComposeResult:
        e = self.editing
        draft = RemoteDraft.from_config(e) if e else None
        rtype = e.type if e else "webdav"
        with Vertical(classes="dialog form", id="remote-form"):
            yield Label(f"Edit remote {e.name}" if e else "Add a remote", classes="title")
            with VerticalScroll(classes="fields"):
                yield from field_row(
                    "Name",
                    Input(e.name if e else "", placeholder="e.g. nas", id="name", compact=True),
                    field="name",
                )
                types: Select[str] = Select(
                    [(t, t) for t in REMOTE_TYPES],
                    allow_blank=False,
                    value=rtype,
                    id="type",
                    compact=True,
                )
                yield from field_row("Type", types, field="type")
                yield Label(TYPE_HINTS[rtype], id="type-hint", classes="hint indent")
                for t, keys in REMOTE_FIELDS.items():
                    defaults = remote_defaults(t)
                    with Vertical(id=f"fields-{t}", classes="type-fields"):
                        for key in keys:
                            value = (
                                draft.values.get(key, "")
                                if draft is not None and draft.type == t
                                else defaults.get(key, "")
                            )
                            yield from field_row(
                                LABELS[key],
                                Input(
                                    value,
                                    placeholder=PLACEHOLDERS.get(f"{t}/{key}", ""),
                                    id=f"{t}-{key}",
                                    password=key in ("password", "secret_access_key"),
                                    compact=True,
                                ),
                                field=f"{t}-{key}",
                            )
                        if t in STORE_LABELS:
                            yield TickBox(
                                STORE_LABELS[t],
                                draft.store_password if draft and draft.type == t else False,
                                id=STORE_IDS[t],
                                classes="indent",
                            )
            yield Label("", id="test-result", classes="test-result")
            yield Label("", id="form-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save  ctrl+s", id="save", variant="primary")
                yield Button("Test connection  ctrl+t", id="test")
                yield Button("Cancel  esc", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show_type(self.rtype)
        self.query_one("#name", Input).focus()

    @property
    def rtype(self) -> str:
        value = self.query_one("#type", Select).value
        return value if isinstance(value, str) else "webdav"

    def _show_type(self, rtype: str) -> None:
        for t in REMOTE_FIELDS:
            self.query_one(f"#fields-{t}").display = t == rtype
        self.query_one("#type-hint", Label).update(TYPE_HINTS.get(rtype, ""))

    def draft(self) -> RemoteDraft:
        t = self.rtype
        values = {k: self.query_one(f"#{t}-{k}", Input).value for k in REMOTE_FIELDS[t]}
        store = t in STORE_IDS and self.query_one(f"#{STORE_IDS[t]}", Checkbox).value
        return RemoteDraft(self.query_one("#name", Input).value.strip(), t, values, store)

    def _show_problems(self) -> dict[str, str]:
        draft = self.draft()
        problems = remote_problems(self.config, draft, self.editing.name if self.editing else None)
        for label in self.query(".field-error").results(Label):
            field = (label.id or "").removesuffix("-error")
            key = field.split("-", 1)[1] if field.startswith(f"{draft.type}-") else field
            text = problems.get(key, "") if field in self._touched else ""
            label.update(text)
            label.display = bool(text)
        return problems

    def _forget_results(self) -> None:
        """The last test and save messages were about other values: clear them."""
        show(self.query_one("#test-result", Label), "")
        show(self.query_one("#form-error", Label), "")

    @on(Select.Changed, "#type")
    def _type_changed(self) -> None:
        self._show_type(self.rtype)
        self._forget_results()
        self._show_problems()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id:
            self._touched.add(event.input.id)
        self._forget_results()
        self._show_problems()

    @on(Checkbox.Changed)
    def _checked(self) -> None:
        t = self.rtype
        self._touched.update(f"{t}-{key}" for key in SECRET_KEYS.get(t, ()))
        self._show_problems()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#save")
    async def _save_pressed(self) -> None:
        await self.action_save()

    @on(Button.Pressed, "#test")
    def _test_pressed(self) -> None:
        self.action_test()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    async def action_save(self) -> None:
        t = self.rtype
        self._touched.update(["name", *(f"{t}-{k}" for k in REMOTE_FIELDS[t])])
        problems = self._show_problems()
        general = self.query_one("#form-error", Label)
        if problems:
            first = next(iter(problems))
            target = "#name" if first == "name" else f"#{t}-{first}"
            if self.query(target):
                self.query_one(target).focus()
            show(general, "Fix the fields marked above.")
            return
        draft = self.draft()
        error = await self._save(draft, self.editing.name if self.editing else None)
        if error:
            fields = {"name": "name", **{k: f"{t}-{k}" for k in REMOTE_FIELDS[t]}}
            place_refusal(self, error, fields, general)
            return
        self.dismiss(draft.name)

    def action_test(self) -> None:
        result = self.query_one("#test-result", Label)
        try:
            cfg = remote_config(self.draft(), self.config.path)
        except ConfigError as e:
            problem = f"✗ {e.key.split('.')[-1]}: {e.problem}"
            show(result, Text(problem, style=tone(self, "error")))
            return
        show(result, Text("Testing…", style="italic"))
        self._run_test(cfg)

    @work(exclusive=True, group="remote-test", exit_on_error=False)
    async def _run_test(self, cfg: RemoteConfig) -> None:
        label = self.query_one("#test-result", Label)
        ok, message = await test_remote(cfg, lambda left: show(label, waiting_text(left)))
        mark = "✓ " if ok else "✗ "
        show(label, Text(mark + message, style=tone(self, "success" if ok else "error")))
        label.set_class(ok, "-ok")
        label.set_class(not ok, "-failed")


def fit_names(names: list[str], width: int) -> str:
    """``docs, photos, +3 more`` in ``width`` cells: as many names as fit, then a count."""
    text = ", ".join(names)
    if cell_len(text) <= width:
        return text
    for n in range(len(names) - 1, 0, -1):
        text = f"{', '.join(names[:n])}, +{len(names) - n} more"
        if cell_len(text) <= width:
            return text
    return f"{len(names)} folders"


class RemotesScreen(Screen[None]):
    """Every configured remote, with the folders that use it."""

    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e,enter", "edit", "Edit"),
        Binding("d,delete", "remove", "Remove"),
        Binding("t", "test", "Test"),
        Binding("escape,m", "app.pop_screen", "Back"),
    ]

    @property
    def sync_app(self) -> SyncApp:
        from syncapp.tui.app import SyncApp

        assert isinstance(self.app, SyncApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable[str | Text] = DataTable(id="remotes-table", cursor_type="row")
        table.border_title = "Remotes"
        yield table
        facts = Label("", id="remote-facts", markup=False)
        facts.border_title = "What the server does"
        facts.display = False
        yield facts
        yield Label("", id="remotes-status", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#remotes-table", DataTable).focus()

    def on_resize(self) -> None:
        self.reload()  # the columns are sized to the screen

    def reload(self) -> None:
        """The table, sized so every column fits: "Where" gives way first (its end is cut),
        then "Used by" (a count of the folders it cannot name)."""
        config = self.sync_app.config
        table = self.query_one("#remotes-table", DataTable)
        selected = table.cursor_row
        rows = [
            (
                name,
                r.type,
                describe_remote(r),
                [f.name for f in config.folders.values() if f.remote == name],
            )
            for name, r in config.remotes.items()
        ]
        room = table.scrollable_content_region.width - 1 - 4 * 2 * table.cell_padding
        name_w = max([4, *(cell_len(r[0]) for r in rows)])
        type_w = max([4, *(len(r[1]) for r in rows)])
        used_w = max([7, *(cell_len(", ".join(r[3]) or "—") for r in rows)])
        where_w = max([5, *(cell_len(r[2]) for r in rows)])
        spare = room - name_w - type_w
        if where_w + used_w > spare:
            used_w = max(7, min(used_w, spare - min(where_w, 24)))
            where_w = max(5, spare - used_w)
        table.clear(columns=True)
        table.add_column("Name", key="name", width=name_w)
        table.add_column("Type", key="type", width=type_w)
        table.add_column("Where", key="where", width=where_w)
        table.add_column("Used by", key="used", width=used_w)
        for name, rtype, where, users in rows:
            table.add_row(
                Text(name),
                rtype,
                Text(where, no_wrap=True, overflow="ellipsis"),
                Text(fit_names(users, used_w) or "—", no_wrap=True, overflow="ellipsis"),
                key=name,
            )
        if rows:
            table.move_cursor(row=min(max(0, selected), len(rows) - 1), animate=False)
        status = self.query_one("#remotes-status", Label)
        status.update("" if config.remotes else "No remotes yet: press a to add one.")

    @on(DataTable.RowHighlighted, "#remotes-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_facts(event.row_key.value or "")

    @work(exclusive=True, group="remote-facts", exit_on_error=False)
    async def _show_facts(self, name: str) -> None:
        engine = self.sync_app.engine
        label = self.query_one("#remote-facts", Label)
        facts: list[str] = []
        if engine is not None and name in self.sync_app.config.remotes:
            facts = await engine.describe_remote(name)
        label.update("\n".join(facts))
        label.display = bool(facts)

    def selected(self) -> RemoteConfig | None:
        table = self.query_one("#remotes-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.sync_app.config.remotes.get(key or "")

    def _after_form(self, name: str | None) -> None:
        self.reload()
        if name is not None:
            table = self.query_one("#remotes-table", DataTable)
            if name in table.rows:
                table.move_cursor(row=table.get_row_index(name))

    def action_add(self) -> None:
        app = self.sync_app
        self.app.push_screen(RemoteForm(app.config, app.save_remote), self._after_form)

    def action_edit(self) -> None:
        remote = self.selected()
        if remote is None:
            self.notify("No remote selected.", severity="warning")
            return
        app = self.sync_app
        self.app.push_screen(RemoteForm(app.config, app.save_remote, remote), self._after_form)

    def action_remove(self) -> None:
        remote = self.selected()
        if remote is None:
            self.notify("No remote selected.", severity="warning")
            return
        name = remote.name
        users = [f.name for f in self.sync_app.config.folders.values() if f.remote == name]
        if users:
            self.notify(
                f"Remote {name!r} is used by {', '.join(users)}; remove or edit those folders "
                "first.",
                severity="warning",
            )
            return

        async def answered(yes: bool | None) -> None:
            if not yes:
                return
            error = await self.sync_app.remove_remote(name)
            if error:
                self.notify(error, severity="error")
            self.reload()

        self.app.push_screen(
            ConfirmDialog(
                "Remove remote",
                f"Remove remote {name!r} from the config? Nothing is deleted on it.",
                "Remove",
            ),
            answered,
        )

    def action_test(self) -> None:
        remote = self.selected()
        if remote is None:
            self.notify("No remote selected.", severity="warning")
            return
        self.query_one("#remotes-status", Label).update(f"Testing {remote.name}…")
        self._run_test(remote)

    @work(exclusive=True, group="remote-test", exit_on_error=False)
    async def _run_test(self, cfg: RemoteConfig) -> None:
        status = self.query_one("#remotes-status", Label)

        def waiting(left: float) -> None:
            status.update(Text(f"{cfg.name}: ").append_text(waiting_text(left)))

        ok, message = await test_remote(cfg, waiting)
        status.update(
            Text(
                f"{cfg.name}: " + ("✓ " if ok else "✗ ") + message,
                style=tone(self, "success" if ok else "error"),
            )
        )
