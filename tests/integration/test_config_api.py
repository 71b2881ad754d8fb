"""Folders and remotes added, changed and removed through the running engine's control API: the
engine re-reads the config file, edits it keeping the user's comments, writes it and opens,
reopens or closes folders; refusals answer 422/404/409 naming the key and change nothing;
secrets go into the 0600 file and nowhere else. One engine serves the whole module."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncapp.config import load_config
from syncapp.configedit import FolderDraft
from syncapp.engine import ConfigChanged
from syncapp.engine.client import EngineClient
from syncapp.engine.control import socket_path
from syncapp.errors import ConfigConflict, ConfigError, UnknownName
from tests.helpers import syncapp, tree, wait_for, write_tree
from tests.servers.webdav import rclone_webdav_server

PASSWORD = "pw-Zq8vX3-never-shown"


@dataclass
class Engine:
    root: Path
    config: Path
    remote: Path
    runtime: Path
    state: Path
    log: Path
    sock: Path

    def call(self, method: str, url: str, body: object = None) -> tuple[int, Any, str]:
        """One request: status, JSON answer, raw text (to look for secrets in)."""
        transport = httpx.HTTPTransport(uds=str(self.sock))
        with httpx.Client(transport=transport, base_url="http://syncapp", timeout=60) as c:
            resp = c.request(method, url, json=body)
        return resp.status_code, resp.json(), resp.text

    def folders(self) -> dict[str, Any]:
        _, answer, _ = self.call("GET", "/v1/folders")
        return {f["name"]: f for f in answer}


CONFIG = """\
# my sync config: comments must survive the engine's edits
[remotes.r]  # the backup disk
type = "local"
path = "{remote}"

# the documents
[folders.docs]
path = "{docs}"
remote = "r"
remote_path = "docs"
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """``syncapp run`` in the background as ``syncapp start`` runs it (output in engine.log),
    on its own state and runtime dirs; logging at DEBUG so a leaked secret would show."""
    root = tmp_path_factory.mktemp("config-api")
    runtime = Path(tempfile.mkdtemp(prefix="run-"))  # short: a socket path has ~100 bytes
    docs, remote = root / "docs", root / "remote"
    write_tree(docs, {"a.txt": "first"})
    remote.mkdir()
    cfg = root / "config.toml"
    cfg.write_text(CONFIG.format(remote=remote, docs=docs))
    state = root / "state" / "syncapp" / "state.db"
    state.parent.mkdir(parents=True)
    log = state.parent / "engine.log"
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(root / "state"),
        "XDG_RUNTIME_DIR": str(runtime),
        "SYNCAPP_LOGLEVEL": "DEBUG",
    }
    with open(log, "ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    sock = runtime / "syncapp" / socket_path(state).name  # the name hashes the state path
    eng = Engine(root, cfg, remote, runtime, state, log, sock)
    try:
        assert wait_for(lambda: eng.sock.exists() and (remote / "docs" / "a.txt").exists())
        yield eng
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def client_env(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's ``EngineClient`` finds the module's engine (the socket is named by the
    runtime dir and the state path)."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(engine.runtime))
    return engine.state


def test_add_folder_syncs_and_keeps_the_users_comments(engine: Engine) -> None:
    photos = engine.root / "photos"
    write_tree(photos, {"cat.jpg": "meow"})
    # A hand edit since the engine read the file: the engine reads it again, so it stays.
    engine.config.write_text(engine.config.read_text() + "# hand edit: keep me\n")
    code, answer, _ = engine.call(
        "POST", "/v1/folders", {"name": "photos", "path": str(photos), "remote": "r"}
    )
    assert code == 201, answer
    assert answer["folder"]["remote_path"] == "photos"  # the form's default: the base name
    assert answer["config"] == str(engine.config) and answer["errors"] == {}
    assert "photos" in engine.folders()
    assert wait_for(lambda: (engine.remote / "photos" / "cat.jpg").exists())
    text = engine.config.read_text()
    assert text.startswith("# my sync config") and "# the backup disk" in text
    assert text.index("# the documents") < text.index("[folders.photos]")
    assert "# hand edit: keep me" in text
    assert list(load_config(engine.config).folders) == ["docs", "photos"]


async def test_edit_folder_reopens_it_with_the_new_ignore_list(
    engine: Engine, client_env: Path
) -> None:
    notes = engine.root / "notes"
    write_tree(notes, {"n.txt": "note", "scratch.tmp": "scratch"})
    async with EngineClient(client_env) as api:
        draft = FolderDraft("notes", str(notes), "r", "notes")
        config = await api.save_folder(draft)
        assert "notes" in config.folders
        assert wait_for(lambda: (engine.remote / "notes" / "scratch.tmp").exists())
        synced = {p.path for p in await api.paths("notes", everything=True)}
        assert "scratch.tmp" in synced

        edited = FolderDraft("notes", str(notes), "r", "notes", ignore=("*.tmp",))
        config = await api.save_folder(edited, "notes")
        assert config.folders["notes"].ignore == ("*.tmp",)
        assert 'ignore = ["*.tmp"]' in engine.config.read_text()
        # The reopened folder ignores it: forgotten by the engine, its remote copy left alone.
        (notes / "later.tmp").write_text("ignored")
        (notes / "later.txt").write_text("synced")
        assert wait_for(lambda: (engine.remote / "notes" / "later.txt").exists())

        async def listed() -> set[str]:
            return {p.path for p in await api.paths("notes", everything=True)}

        rows = await listed()
        assert "later.txt" in rows and "later.tmp" not in rows and "scratch.tmp" not in rows
        assert not (engine.remote / "notes" / "later.tmp").exists()
        assert (engine.remote / "notes" / "scratch.tmp").exists()


def test_remove_folder_closes_it_and_deletes_nothing(engine: Engine) -> None:
    old = engine.root / "old"
    write_tree(old, {"keep.txt": "keep"})
    code, _, _ = engine.call(
        "POST", "/v1/folders", {"name": "old", "path": str(old), "remote": "r"}
    )
    assert code == 201
    assert wait_for(lambda: (engine.remote / "old" / "keep.txt").exists())
    before_local, before_remote = tree(old), tree(engine.remote / "old")
    code, answer, _ = engine.call("DELETE", "/v1/folders/old")
    assert code == 200 and answer["removed"] == "old"
    assert "old" not in engine.folders()
    assert "[folders.old]" not in engine.config.read_text()
    assert "old" not in load_config(engine.config).folders
    (old / "after.txt").write_text("not synced any more")
    # A file in a folder still open arrives; by then an open "old" would have sent its own.
    (engine.root / "docs" / "sentinel.txt").write_text("open")
    assert wait_for(lambda: (engine.remote / "docs" / "sentinel.txt").exists())
    assert set(tree(old)) == {*before_local, "after.txt"}  # nothing deleted here
    assert tree(engine.remote / "old") == before_remote  # nor there, and nothing added
    code, _, _ = engine.call("DELETE", "/v1/folders/old")
    assert code == 404


async def test_remotes_add_edit_remove_and_one_in_use_stays(
    engine: Engine, client_env: Path
) -> None:
    spare = engine.root / "spare"
    code, answer, _ = engine.call(
        "POST", "/v1/remotes", {"name": "spare", "type": "local", "path": str(spare)}
    )
    assert code == 201 and answer["remote"] == {
        "name": "spare",
        "type": "local",
        "path": str(spare),
        "secrets_stored": False,
    }
    code, answer, _ = engine.call("PUT", "/v1/remotes/spare", {"path": str(spare) + "2"})
    assert code == 200 and answer["remote"]["path"] == str(spare) + "2"
    assert load_config(engine.config).remotes["spare"].path == str(spare) + "2"  # type: ignore[attr-defined]
    code, _, _ = engine.call("DELETE", "/v1/remotes/spare")
    assert code == 200 and "spare" not in load_config(engine.config).remotes

    # A remote a folder uses: neither removed nor renamed, and the file stays as it was.
    before = engine.config.read_bytes()
    code, answer, _ = engine.call("DELETE", "/v1/remotes/r")
    assert code == 409 and answer["key"] == "folders.docs.remote", answer
    assert "used by folder(s) docs" in answer["error"]
    code, answer, _ = engine.call("PUT", "/v1/remotes/r", {"name": "r2"})
    assert code == 409 and answer["key"] == "name"
    async with EngineClient(client_env) as api:
        with pytest.raises(ConfigConflict) as refused:
            await api.remove_remote("r")
        assert refused.value.key == "folders.docs.remote"
        with pytest.raises(UnknownName):
            await api.remove_remote("nope")
    assert engine.config.read_bytes() == before
    assert engine.folders()["docs"]["status"] is not None  # still open


async def test_bad_values_answer_422_naming_the_key_and_change_nothing(
    engine: Engine, client_env: Path
) -> None:
    fresh = engine.root / "fresh"
    fresh.mkdir()
    before = engine.config.read_bytes()
    refusals: list[tuple[str, str, object, str]] = [
        ("PUT", "/v1/folders/docs", {"settle": -1}, "settle"),
        ("PUT", "/v1/folders/docs", {"max_delete": "lots"}, "max_delete"),
        ("POST", "/v1/folders", {"name": "x", "path": str(engine.root / "gone"), "remote": "r"},
         "path"),
        ("POST", "/v1/folders", {"name": "docs", "path": str(fresh), "remote": "r"}, "name"),
        ("POST", "/v1/folders", {"name": "y", "path": str(fresh), "remote": "nope"}, "remote"),
        ("POST", "/v1/folders", {"name": "z", "path": str(fresh), "remote": "r", "colour": 1},
         "colour"),
        ("POST", "/v1/remotes", {"name": "w", "type": "webdav", "url": "ftp://x/"}, "url"),
    ]  # fmt: skip
    for method, url, body, key in refusals:
        code, answer, _ = engine.call(method, url, body)
        assert (code, answer.get("key")) == (422, key), (url, body, answer)
        assert str(engine.config) in answer["error"] and answer["problem"]
    code, answer, _ = engine.call("PUT", "/v1/folders/nope", {"settle": 1})
    assert code == 404 and "no folder named 'nope'" in answer["error"]
    async with EngineClient(client_env) as api:
        draft = FolderDraft("docs", str(engine.root / "docs"), "r", "docs", settle="-1")
        with pytest.raises(ConfigError) as refused:
            await api.save_folder(draft, "docs")
        assert (refused.value.key, refused.value.problem) == ("settle", "must not be negative")
    assert engine.config.read_bytes() == before


async def test_every_config_change_is_told_to_the_views(engine: Engine, client_env: Path) -> None:
    """Added, changed, removed through the API or by hand and ``reload``: an attached view is
    told each (``ConfigChanged``, rebuilt from the event stream), and the log says it."""
    tunes, extra = engine.root / "tunes", engine.root / "extra"
    write_tree(tunes, {"t.ogg": "la"})
    write_tree(extra, {"e.txt": "e"})
    told: list[ConfigChanged] = []

    async def told_of(what: str, count: int) -> ConfigChanged:
        for _ in range(600):
            if len(told) >= count:
                return told[count - 1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no ConfigChanged for {what}: {told}")

    async with EngineClient(client_env) as view:
        view.subscribe(lambda ev: told.append(ev) if isinstance(ev, ConfigChanged) else None)
        serving = asyncio.ensure_future(view.serve())
        await asyncio.sleep(0.5)  # the stream is open
        body = {"name": "tunes", "path": str(tunes), "remote": "r"}
        assert (await asyncio.to_thread(engine.call, "POST", "/v1/folders", body))[0] == 201
        ev = await told_of("an added folder", 1)
        assert (ev.added, ev.removed, ev.changed) == (("tunes",), (), ())
        assert "tunes" in ev.folders and ev.remotes[0] == "r" and ev.file == str(engine.config)
        assert ev.folder == ""  # about the whole engine

        body = {"remote_path": "music"}
        assert (await asyncio.to_thread(engine.call, "PUT", "/v1/folders/tunes", body))[0] == 200
        ev = await told_of("a changed folder", 2)
        assert (ev.added, ev.removed, ev.changed) == ((), (), ("tunes",))

        by_hand = f'\n[folders.extra]\npath = "{extra}"\nremote = "r"\nremote_path = "extra"\n'
        engine.config.write_text(engine.config.read_text() + by_hand)
        code, _, _ = await asyncio.to_thread(engine.call, "POST", "/v1/config/reload")
        assert code == 200
        ev = await told_of("a folder added by hand", 3)
        assert ev.added == ("extra",)

        # Read again with nothing changed: nothing to tell.
        code, _, _ = await asyncio.to_thread(engine.call, "POST", "/v1/config/reload")
        assert code == 200
        for name in ("tunes", "extra"):
            code, _, _ = await asyncio.to_thread(engine.call, "DELETE", f"/v1/folders/{name}")
            assert code == 200
        ev = await told_of("the removed folders", 5)
        assert [e.removed for e in told[3:]] == [("tunes",), ("extra",)]
        assert "tunes" not in ev.folders and "extra" not in ev.folders
        view.close()
        await serving
    log = engine.log.read_text()
    assert "config changed: added folder tunes" in log
    assert "config changed: removed folder extra" in log


class EventTap(threading.Thread):
    """The raw event stream, kept whole while the test runs."""

    def __init__(self, sock: Path) -> None:
        super().__init__(daemon=True)
        self.conn = socket.socket(socket.AF_UNIX)
        self.conn.connect(str(sock))
        self.conn.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        self.data = b""

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.conn.recv(65536):
                self.data += chunk

    def close(self) -> bytes:
        self.conn.shutdown(socket.SHUT_RDWR)
        self.join(timeout=10)
        self.conn.close()
        return self.data


def test_a_password_goes_into_the_0600_file_and_nowhere_else(engine: Engine) -> None:
    served = engine.root / "dav"
    events = EventTap(engine.sock)
    events.start()
    with rclone_webdav_server(served, ("alice", PASSWORD)) as server:
        answers: list[str] = []
        dav = {"name": "dav", "type": "webdav", "url": server.url, "username": "alice"}
        # Not asked to store it: refused, and the refusal does not repeat it.
        code, answer, text = engine.call("POST", "/v1/remotes", {**dav, "password": PASSWORD})
        assert code == 422 and answer["key"] == "password"
        answers.append(text)
        code, answer, text = engine.call(
            "POST", "/v1/remotes", {**dav, "password": PASSWORD, "store_password": True}
        )
        assert code == 201 and answer["remote"]["secrets_stored"] is True
        answers.append(text)
        assert PASSWORD in engine.config.read_text()
        assert stat.S_IMODE(engine.config.stat().st_mode) == 0o600
        # The password works: a folder on that remote syncs through the server's auth.
        shared = engine.root / "shared"
        write_tree(shared, {"s.txt": "shared"})
        body = {"name": "shared", "path": str(shared), "remote": "dav"}
        code, _, text = engine.call("POST", "/v1/folders", body)
        assert code == 201
        answers.append(text)
        assert wait_for(lambda: (served / "shared" / "s.txt").exists())
        # An edit that leaves the password out keeps it.
        code, _, text = engine.call("PUT", "/v1/remotes/dav", {"username": "alice"})
        assert code == 200
        answers.append(text)
        assert PASSWORD in engine.config.read_text()
        for url in ("/v1/status", "/v1/folders", "/v1/remotes/dav/describe"):
            answers.append(engine.call("GET", url)[2])
        code, _, _ = engine.call("DELETE", "/v1/folders/shared")
        assert code == 200
    assert not [a for a in answers if PASSWORD in a]
    stream = events.close()
    assert b'"folder": "shared"' in stream  # it saw the folder open and sync
    assert PASSWORD.encode() not in stream
    log = engine.log.read_text()
    assert "DEBUG" in log  # the log was as talkative as it gets
    assert PASSWORD not in log


def test_cli_folder_add_and_remove_go_through_the_engine(engine: Engine) -> None:
    env = {"XDG_STATE_HOME": str(engine.root / "state"), "XDG_RUNTIME_DIR": str(engine.runtime)}
    music = engine.root / "music"
    write_tree(music, {"song.ogg": "la"})
    cfg = str(engine.config)
    res = syncapp("--config", cfg, "folder", "add", "music", str(music), "--remote", "r", env=env)
    assert res.returncode == 0, res.stderr
    assert "the engine (pid" in res.stdout and "syncs it" in res.stdout
    assert wait_for(lambda: (engine.remote / "music" / "song.ogg").exists())
    assert "music" in engine.folders()
    res = syncapp("--config", cfg, "folder", "add", "music", str(music), "--remote", "r", env=env)
    assert res.returncode == 2 and "name: a folder named 'music' exists already" in res.stderr
    res = syncapp("--config", cfg, "folder", "remove", "music", env=env)
    assert res.returncode == 0 and "stopped syncing it (no file deleted)" in res.stdout
    assert "music" not in engine.folders() and "music" not in load_config(engine.config).folders
    assert (music / "song.ogg").exists() and (engine.remote / "music" / "song.ogg").exists()


def test_cli_folder_add_without_an_engine_writes_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(remote=tmp_path / "remote", docs=tmp_path / "docs"))
    (tmp_path / "docs").mkdir()
    write_tree(tmp_path / "pics", {"p.png": "png"})
    res = syncapp(
        "--config", str(cfg), "folder", "add", "pics", "pics", "--remote", "r", cwd=tmp_path
    )
    assert res.returncode == 0 and "no engine is running" in res.stdout, res.stderr
    added = load_config(cfg).folders["pics"]
    assert (added.path, added.remote_path) == (tmp_path / "pics", "pics")  # made absolute here
    assert cfg.read_text().startswith("# my sync config")
    res = syncapp("--config", str(cfg), "folder", "remove", "nope")
    assert res.returncode == 1 and "no folder named 'nope'" in res.stderr
