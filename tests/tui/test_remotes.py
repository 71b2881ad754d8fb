"""Pilot tests of the remotes screen and form: add / edit / remove, every type, Test connection."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, Label, Select

from syncapp.config import REMOTE_TYPES, HTTPRemoteConfig, S3RemoteConfig
from syncapp.davserver import DavServer
from syncapp.tui.app import SyncApp
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.remotes import RemoteForm, RemotesScreen
from tests.helpers import Setup
from tests.tui.conftest import wait_for
from tests.tui.test_dashboard import on_dashboard, type_text, up_to_date


async def choose_type(pilot: Pilot[None], rtype: str) -> None:
    """Pick a remote type with the keyboard: open the select, move, enter."""
    select = pilot.app.screen.query_one("#type", Select)
    current = REMOTE_TYPES.index(str(select.value))
    select.focus()
    await pilot.press("enter")
    delta = REMOTE_TYPES.index(rtype) - current
    await pilot.press(*(["down"] * delta if delta > 0 else ["up"] * -delta))
    await pilot.press("enter")
    assert select.value == rtype


async def fill(pilot: Pilot[None], field_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{field_id}", Input)
    field.value = ""
    field.focus()
    await type_text(pilot, text)


def error_of(app: SyncApp, field: str) -> str:
    return str(app.screen.query_one(f"#{field}-error", Label).content)


def result_text(app: SyncApp) -> str:
    return str(app.screen.query_one("#test-result", Label).content)


async def open_remotes(pilot: Pilot[None], app: SyncApp) -> RemotesScreen:
    await pilot.press("m")
    assert isinstance(app.screen, RemotesScreen)
    return app.screen


async def test_remotes_screen_lists_and_goes_back(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_remotes(pilot, app)
        table = screen.query_one("#remotes-table", DataTable)
        assert table.row_count == 1
        assert [str(c) for c in table.get_row("box")][:2] == ["box", "local"]
        assert str(table.get_row("box")[3]) == "docs"
        # Dashboard keys do not reach folders from here.
        await pilot.press("p")
        assert isinstance(app.screen, RemotesScreen)
        await pilot.press("escape")
        assert on_dashboard(app)
        await pilot.press("m", "m")
        assert on_dashboard(app)
        await pilot.press("q")


async def test_add_local_remote_with_keys(setup: Setup) -> None:
    target = setup.root / "backup"
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        assert isinstance(app.screen, RemoteForm)
        assert app.focused is not None and app.focused.id == "name"
        await type_text(pilot, "backup")
        await choose_type(pilot, "local")
        await fill(pilot, "local-path", str(target))
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "✓" in result_text(app), "test result")
        assert "connected" in result_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "form closed")
        table = app.screen.query_one("#remotes-table", DataTable)
        assert "backup" in table.rows
        cfg = setup.config().remotes["backup"]
        assert cfg.type == "local" and getattr(cfg, "path", "") == str(target)
        assert "# a local folder as the remote" in setup.config_path.read_text()
        await pilot.press("escape", "q")


async def test_add_webdav_remote_password_rules(setup: Setup) -> None:
    app = SyncApp(setup.config())
    async with app.run_test(size=(100, 40)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await type_text(pilot, "nas")
        assert str(app.screen.query_one("#type", Select).value) == "webdav"
        await fill(pilot, "webdav-url", "https://nas.example/dav/")
        await fill(pilot, "webdav-username", "alice")
        await fill(pilot, "webdav-password", "s3cret")
        await pilot.press("ctrl+s")
        # A typed password is not stored unless asked.
        assert isinstance(app.screen, RemoteForm)
        assert "store password in config" in error_of(app, "webdav-password")
        box = app.screen.query_one("#store_password", Checkbox)
        box.focus()
        await pilot.press("space")
        assert box.value
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved")
        cfg = setup.config().remotes["nas"]
        assert getattr(cfg, "password", "") == "s3cret"
        assert stat.S_IMODE(setup.config_path.stat().st_mode) == 0o600
        # Editing it to read the password from the environment drops the stored one.
        await pilot.press("down")
        table = app.screen.query_one("#remotes-table", DataTable)
        await wait_for(pilot, lambda: table.cursor_row == 1, "cursor on nas")
        await pilot.press("e")
        assert isinstance(app.screen, RemoteForm)
        assert app.screen.query_one("#webdav-password", Input).value == "s3cret"
        await fill(pilot, "webdav-password", "")
        await fill(pilot, "webdav-password_env", "NAS_PASSWORD")
        app.screen.query_one("#store_password", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved")
        text = setup.config_path.read_text()
        assert "s3cret" not in text
        assert 'password_env = "NAS_PASSWORD"' in text
        await pilot.press("escape", "q")


async def test_s3_keys_typed_in_the_form_are_kept_like_a_password(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncapp.config import missing_secret
    from syncapp.tui.remotes import secrets_env

    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await type_text(pilot, "minio")
        await choose_type(pilot, "s3")
        await fill(pilot, "s3-endpoint", "http://127.0.0.1:9000")
        await fill(pilot, "s3-bucket", "photos")
        await fill(pilot, "s3-access_key_id", "AKIAEXAMPLE")
        await fill(pilot, "s3-secret_access_key", "wJalrXUtnFEMI-secret")
        assert app.screen.query_one("#s3-secret_access_key", Input).password  # shown as dots
        await pilot.press("ctrl+s")
        # Typed keys are not stored unless asked, as a typed password.
        assert isinstance(app.screen, RemoteForm)
        assert "store keys in config" in error_of(app, "s3-secret_access_key")
        box = app.screen.query_one("#store_keys", Checkbox)
        box.focus()
        await pilot.press("space")
        assert box.value
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved")
        cfg = setup.config().remotes["minio"]
        assert isinstance(cfg, S3RemoteConfig)
        assert (cfg.access_key_id, cfg.secret_access_key) == ("AKIAEXAMPLE", "wJalrXUtnFEMI-secret")
        assert stat.S_IMODE(setup.config_path.stat().st_mode) == 0o600
        # Never logged: not in the config's repr, not in the session's log.
        assert "wJalrXUtnFEMI-secret" not in repr(cfg)
        assert all("wJalrXUtnFEMI-secret" not in line.plain for line in app.history.texts())
        # The kept keys stand in for unset variables (the variables win when set).
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
        assert missing_secret(cfg, {}) is None
        assert secrets_env(cfg)["AWS_SECRET_ACCESS_KEY"] == "wJalrXUtnFEMI-secret"
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
        assert secrets_env(cfg)["AWS_SECRET_ACCESS_KEY"] == "from-env"
        # Editing shows them kept (ticked); unticking and clearing drops them from the file.
        table = app.screen.query_one("#remotes-table", DataTable)
        table.move_cursor(row=table.get_row_index("minio"))
        await pilot.press("e")
        assert isinstance(app.screen, RemoteForm)
        assert app.screen.query_one("#store_keys", Checkbox).value
        assert app.screen.query_one("#s3-access_key_id", Input).value == "AKIAEXAMPLE"
        await fill(pilot, "s3-access_key_id", "")
        await fill(pilot, "s3-secret_access_key", "")
        app.screen.query_one("#store_keys", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved again")
        text = setup.config_path.read_text()
        assert "wJalrXUtnFEMI-secret" not in text and "AKIAEXAMPLE" not in text
        await pilot.press("escape", "q")


@pytest.mark.parametrize(
    ("rtype", "values", "field", "message"),
    [
        ("webdav", {}, "webdav-url", "the server's URL"),
        ("webdav", {"webdav-url": "ftp://x/"}, "webdav-url", "http:// or https://"),
        ("http", {"http-url": "https://api.example/up"}, "http-url", "{path}"),
        ("s3", {}, "s3-bucket", "the bucket name"),
        ("local", {}, "local-path", "the folder files are copied to"),
    ],
)
async def test_remote_form_invalid_input(
    setup: Setup, rtype: str, values: dict[str, str], field: str, message: str
) -> None:
    before = setup.config_path.read_text()
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await type_text(pilot, "r1")
        await choose_type(pilot, rtype)
        for fid, text in values.items():
            await fill(pilot, fid, text)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, RemoteForm)
        assert message in error_of(app, field)
        await pilot.press("escape")
        assert isinstance(app.screen, RemotesScreen)
        await pilot.press("escape", "q")
    assert setup.config_path.read_text() == before


async def test_remote_form_name_rules(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await choose_type(pilot, "local")
        await fill(pilot, "local-path", str(setup.root / "x"))
        await fill(pilot, "name", "")
        await pilot.press("ctrl+s")
        assert "give the remote a name" in error_of(app, "name")
        await fill(pilot, "name", "box")
        assert "exists already" in error_of(app, "name")
        await fill(pilot, "name", "no spaces")
        assert "letters, digits" in error_of(app, "name")
        await fill(pilot, "name", "fine")
        await pilot.click("#save")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved")
        assert "fine" in setup.config().remotes
        await pilot.press("escape", "q")


async def test_add_s3_and_http_remotes(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await type_text(pilot, "bucket")
        await choose_type(pilot, "s3")
        await fill(pilot, "s3-endpoint", "http://127.0.0.1:9000")
        await fill(pilot, "s3-bucket", "photos")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved s3")
        await pilot.press("a")
        await type_text(pilot, "api")
        await choose_type(pilot, "http")
        await fill(pilot, "http-url", "https://api.example/upload/{path}")
        await fill(pilot, "http-token_env", "API_TOKEN")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved http")
        remotes = setup.config().remotes
        bucket, api = remotes["bucket"], remotes["api"]
        assert isinstance(bucket, S3RemoteConfig) and bucket.bucket == "photos"
        assert isinstance(api, HTTPRemoteConfig) and api.token_env == "API_TOKEN"
        text = setup.config_path.read_text()
        # Defaults the user did not change are not written out.
        assert "region" not in text and "method" not in text
        await pilot.press("escape", "q")


async def test_test_connection_reports_the_exact_failure(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_remotes(pilot, app)
        await pilot.press("a")
        await type_text(pilot, "dead")
        await fill(pilot, "webdav-url", "http://127.0.0.1:9/")
        await pilot.click("#test")
        await wait_for(pilot, lambda: "✗" in result_text(app), "failure shown")
        assert "connection refused" in result_text(app)
        # An invalid form says what is wrong instead of testing.
        await fill(pilot, "webdav-url", "nope")
        await pilot.press("ctrl+t")
        assert "url" in result_text(app) and "✗" in result_text(app)
        await pilot.press("escape", "escape", "q")


async def test_test_connection_against_webdav_with_auth(setup: Setup, tmp_path: Path) -> None:
    with DavServer(tmp_path / "dav", username="alice", password="right") as server:
        app = SyncApp(setup.config(), engine=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await open_remotes(pilot, app)
            await pilot.press("a")
            await type_text(pilot, "dav")
            await fill(pilot, "webdav-url", server.url)
            await fill(pilot, "webdav-username", "alice")
            await fill(pilot, "webdav-password", "wrong")
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "✗" in result_text(app), "401 shown")
            assert result_text(app) == "✗ wrong user name or password (HTTP 401)"
            await fill(pilot, "webdav-password", "right")
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "✓" in result_text(app), "success shown")
            assert server.url in result_text(app)
            await pilot.press("escape", "escape", "q")


async def test_test_connection_counts_down_while_a_server_is_silent(setup: Setup) -> None:
    import socket

    # Accepts connections (the kernel does) and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        app = SyncApp(setup.config(), engine=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await open_remotes(pilot, app)
            await pilot.press("a")
            await type_text(pilot, "quiet")
            await fill(pilot, "webdav-url", f"http://127.0.0.1:{silent.getsockname()[1]}/")
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "giving up in" in result_text(app), "a countdown")
            first = result_text(app)
            assert first.startswith("Testing… no answer yet; giving up in ")
            assert 25 <= int(first.split()[-2]) <= 30  # the remote's timeout: 30 s
            await wait_for(pilot, lambda: result_text(app) != first, "the countdown moves")
            assert int(result_text(app).split()[-2]) < int(first.split()[-2])
            await pilot.press("escape", "escape", "q")
    finally:
        silent.close()


async def test_test_key_on_the_list(setup: Setup) -> None:
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_remotes(pilot, app)
        await pilot.press("t")
        status = screen.query_one("#remotes-status", Label)
        await wait_for(pilot, lambda: "✓" in str(status.content), "test result")
        assert "box" in str(status.content)
        await pilot.press("escape", "q")


async def test_edit_remote_reopens_its_folders(setup: Setup) -> None:
    elsewhere = setup.root / "elsewhere"
    app = SyncApp(setup.config())
    async with app.run_test(size=(80, 24)) as pilot:
        await up_to_date(pilot, app)
        await open_remotes(pilot, app)
        await pilot.press("e")
        assert isinstance(app.screen, RemoteForm)
        assert app.screen.query_one("#local-path", Input).value == str(setup.remote_dir)
        await fill(pilot, "local-path", str(elsewhere))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RemotesScreen), "saved")
        assert getattr(setup.config().remotes["box"], "path", "") == str(elsewhere)
        await wait_for(pilot, lambda: (elsewhere / "docs/sub/b.txt").exists(), "re-synced")
        await pilot.press("escape")
        await up_to_date(pilot, app)
        await pilot.press("q")


async def test_remove_remote(setup: Setup) -> None:
    extra = '\n[remotes.spare]\ntype = "local"\npath = "/tmp/spare"\n'
    setup.config_path.write_text(setup.config_path.read_text() + extra)
    app = SyncApp(setup.config(), engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_remotes(pilot, app)
        table = screen.query_one("#remotes-table", DataTable)
        # In use: refused, nothing asked.
        await pilot.press("d")
        assert isinstance(app.screen, RemotesScreen)
        assert "box" in setup.config().remotes
        await pilot.press("down")
        await wait_for(pilot, lambda: table.cursor_row == 1, "cursor on spare")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert "spare" in setup.config().remotes
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: "spare" not in setup.config().remotes, "removed")
        assert "spare" not in table.rows
        await pilot.press("escape", "q")


async def test_keys_on_an_empty_remote_list(tmp_path: Path) -> None:
    from syncapp.config import load_config

    path = tmp_path / "config.toml"
    path.write_text("")
    app = SyncApp(load_config(path), engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_remotes(pilot, app)
        assert "No remotes yet" in str(screen.query_one("#remotes-status", Label).content)
        for key in "edt":
            await pilot.press(key)
            assert isinstance(app.screen, RemotesScreen)
        await pilot.press("escape", "q")


@pytest.mark.parametrize("columns", [80, 60])
async def test_remotes_list_never_cuts_the_used_by_column(tmp_path: Path, columns: int) -> None:
    import tomlkit

    from syncapp.config import Config, FolderConfig, WebDAVRemoteConfig

    url = "https://nas.example/remote.php/dav/files/alice/with/a/long/path/"
    names = ["docs", "photos", "notes", "projects"]
    config = Config(
        path=tmp_path / "config.toml",
        remotes={"nas": WebDAVRemoteConfig(name="nas", type="webdav", url=url)},
        folders={n: FolderConfig(n, tmp_path / n, "nas", n) for n in names},
        document=tomlkit.document(),
    )
    app = SyncApp(config, engine=False)
    async with app.run_test(size=(columns, 24)) as pilot:
        screen = await open_remotes(pilot, app)
        await pilot.pause()
        table = screen.query_one("#remotes-table", DataTable)
        used = table.get_row("nas")[3]
        widths = [c.get_render_width(table) for c in table.columns.values()]
        # The whole table fits: nothing is drawn past the right edge.
        assert sum(widths) <= table.scrollable_content_region.width
        shown = table.columns[list(table.columns)[3]].width
        if columns == 80:
            assert str(used) == "docs, photos, notes, projects" and shown >= len(str(used))
        else:
            # Too narrow for every name: as many as fit, then how many more (never cut).
            assert str(used) == "docs, +3 more" and shown >= len(str(used))
        where = str(table.get_row("nas")[2])
        assert where == url  # the full text; the cell's end gives way on screen
        await pilot.press("escape", "q")
