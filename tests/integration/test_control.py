"""The running engine's control API on a Unix socket: what the CLI asks, the event stream, the
socket's modes, and a client of another user refused by its peer credentials."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncapp.engine.control import may_connect, socket_path
from syncapp.engine.lock import running_pid
from tests.helpers import config_text, syncapp, wait_for, write_tree


@pytest.fixture
def engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, Path, Path]]:
    """A live `syncapp run` on a local remote: (config, folder, remote folder, socket)."""
    # Outside tmp_path, whose parents are closed to other users: the peer-credential test
    # opens this one up to let another uid reach the socket at all.
    runtime = Path(tempfile.mkdtemp(prefix="syncapp-run-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    folder, remote = tmp_path / "docs", tmp_path / "remote"
    write_tree(folder, {"a.txt": "first"})
    remote.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(f'[remotes.r]\ntype = "local"\npath = "{remote}"\n', {"docs": folder})
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"
    sock = socket_path(state)
    assert wait_for(lambda: sock.exists() and (remote / "docs" / "a.txt").exists())
    yield cfg, folder, remote / "docs", sock
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert not sock.exists()  # removed on the way out
    shutil.rmtree(runtime, ignore_errors=True)


def _request(sock: Path, method: str, path: str) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_cli_asks_the_running_engine(engine: tuple[Path, Path, Path, Path]) -> None:
    cfg, folder, remote, sock = engine
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    res = syncapp("--config", str(cfg), "pause", "docs")
    assert res.returncode == 0 and res.stdout.strip() == "docs: paused (paused by the user)"
    (folder / "b.txt").write_text("written while paused")
    status = json.loads(syncapp("--config", str(cfg), "status", "--json").stdout)
    assert status["docs"]["live"]["state"] == "paused"
    assert not (remote / "b.txt").exists()
    res = syncapp("--config", str(cfg), "resume", "docs")
    assert res.returncode == 0, res.stderr
    assert wait_for(lambda: (remote / "b.txt").exists())
    assert syncapp("--config", str(cfg), "rescan", "nope").returncode == 2  # no such folder


def test_event_stream_replays_state_then_follows(engine: tuple[Path, Path, Path, Path]) -> None:
    _, folder, _, sock = engine
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = s.makefile("rb")
        while reader.readline() not in (b"\r\n", b""):
            pass  # the response head
        events: list[dict[str, object]] = []

        def line() -> dict[str, object]:
            size = int(reader.readline().strip(), 16)  # chunked transfer encoding
            data = reader.read(size + 2)[:size]
            return json.loads(data)

        first = line()
        assert first["event"] == "FolderStateChanged" and first["folder"] == "docs"
        (folder / "c.txt").write_text("seen on the stream")
        while not any(e.get("event") == "JobFinished" and e.get("path") == "c.txt" for e in events):
            events.append(line())


def test_stop_through_the_api(engine: tuple[Path, Path, Path, Path]) -> None:
    _, _, _, sock = engine
    state = Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"
    code, body = _request(sock, "POST", "/v1/stop")
    assert code == 202 and json.loads(body)["stopping"] == running_pid(state)
    assert wait_for(lambda: running_pid(state) is None)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_another_user_is_refused_by_peer_credentials(
    engine: tuple[Path, Path, Path, Path],
) -> None:
    _, _, _, sock = engine
    # Open the modes wide, so only the peer-credential check stands in the way.
    os.chmod(sock.parent.parent, 0o755)
    os.chmod(sock.parent, 0o755)
    os.chmod(sock, 0o666)
    probe = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "s.sendall(b'GET /v1/status HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
        "data = b''\n"
        "while chunk := s.recv(65536): data += chunk\n"
        "print(data.split()[1].decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(sock)], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == "403", out.stderr
    code, _ = _request(sock, "GET", "/v1/status")
    assert code == 200  # the engine's own user still gets in


def test_peer_rule() -> None:
    assert may_connect(1000, own=1000)
    assert may_connect(0, own=1000)  # root can read the state database anyway
    assert not may_connect(1001, own=1000)
    assert not may_connect(None, own=1000)


def test_versions_and_restore_are_asked_of_the_running_engine(
    engine: tuple[Path, Path, Path, Path],
) -> None:
    engine_cfg, folder, remote, sock = engine
    (folder / "a.txt").write_text("second")
    assert wait_for(lambda: (remote / "a.txt").read_text() == "second")
    # The CLI's own config points the remote at an empty folder: only the running engine, with
    # its open remote, can know the versions (a CLI that opened the remote itself finds none).
    empty = folder.parent / "empty-remote"
    empty.mkdir()
    cfg = folder.parent / "cli-config.toml"
    cfg.write_text(engine_cfg.read_text().replace(str(remote.parent), str(empty)))
    assert str(empty) in cfg.read_text()
    listed = syncapp("--config", str(cfg), "versions", "docs", "a.txt", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    kept = [v for v in found if not v["current"]]
    assert kept and kept[0]["size"] == len("first")
    out = folder.parent / "restored.txt"
    res = syncapp("--config", str(cfg), "restore", "docs", "a.txt", "--to", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text() == "second"  # the current remote copy first
    # What stood at a time before the edit: the kept version.
    res = syncapp(
        "--config", str(cfg), "restore", "docs", "a.txt", "--at", "1970-01-02", "--to", str(out)
    )
    assert res.returncode == 0 and "version replaced" in res.stdout, res.stderr
    assert out.read_text() == "first"
    # Nothing kept for a file the remote never had: the engine's answer, in one line.
    res = syncapp("--config", str(cfg), "restore", "docs", "nothing.txt", "--to", str(out))
    assert res.returncode == 1 and "no version of nothing.txt kept" in res.stderr
    assert not list(empty.iterdir())  # nothing went to the CLI config's remote
    code, body = _request(sock, "GET", "/v1/folders/docs/versions?path=a.txt")
    assert code == 200 and len(json.loads(body)) == len(found)


def test_unknown_folder_is_404_and_a_bad_body_400(engine: tuple[Path, Path, Path, Path]) -> None:
    _cfg, _folder, _remote, sock = engine
    code, body = _request(sock, "GET", "/v1/folders/nope/pending")
    assert code == 404 and "no folder named 'nope'" in json.loads(body)["error"]
    code, body = _request(sock, "POST", "/v1/folders/docs/guard")  # no JSON body
    assert code == 400 and "bad request" in json.loads(body)["error"]
    code, _ = _request(sock, "POST", "/v1/folders/docs/pause")
    assert code == 200


def test_reload_takes_a_config_edited_by_hand(engine: tuple[Path, Path, Path, Path]) -> None:
    cfg, folder, remote, _sock = engine
    (folder / "x.tmp").write_text("scratch")
    assert wait_for(lambda: (remote / "x.tmp").exists())
    notes = folder.parent / "notes"
    write_tree(notes, {"n.txt": "note"})
    ignoring = 'remote_path = "docs"\nignore = ["*.tmp"]'
    text = cfg.read_text().replace('remote_path = "docs"', ignoring)
    text += f'\n[folders.notes]\npath = "{notes}"\nremote = "r"\nremote_path = "notes"\n'
    cfg.write_text(text)
    res = syncapp("--config", str(cfg), "reload")
    assert res.returncode == 0 and "config reloaded" in res.stdout, res.stderr
    assert wait_for(lambda: (remote.parent / "notes" / "n.txt").exists())  # a new folder opened
    why = syncapp("--config", str(cfg), "why", "docs", "x.tmp")
    assert "ignored by pattern '*.tmp'" in why.stdout  # the changed folder reopened with it
    assert (remote / "x.tmp").exists()  # and its remote copy is left alone
    # A broken edit is said by the CLI and changes nothing in the engine.
    cfg.write_text(text + "\n[folders.bad]\npath = 3\n")
    res = syncapp("--config", str(cfg), "reload")
    assert res.returncode == 2 and "config error" in res.stderr
