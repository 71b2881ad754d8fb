"""Credentials stay where they belong: never followed through redirects, never printed."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import syncapp, write_tree


class _Listener:
    """A TCP port that counts who connects (the host a redirect points at)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def redirecting_server() -> Iterator[tuple[str, _Listener]]:
    other = _Listener()

    class Redirect(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{other.port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_PROPFIND = do_MKCOL = do_MOVE = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", other
    finally:
        server.shutdown()
        server.server_close()
        other.close()


def test_redirects_are_not_followed_and_secrets_stay_out_of_output(
    tmp_path: Path, redirecting_server: tuple[str, _Listener]
) -> None:
    url, other = redirecting_server
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "webdav"\nurl = "{url}"\nusername = "alice"\n'
        f'password_env = "DAV_PW"\n\n[folders.docs]\npath = "{folder}"\nremote = "r"\n'
    )
    res = syncapp("--config", str(cfg), "run", "--once", "--json", env={"DAV_PW": "s3cr3t-pw"})
    assert res.returncode == 1
    assert "307" in res.stderr
    assert other.connections == 0  # nothing, and so no Authorization header, went elsewhere
    assert "s3cr3t-pw" not in res.stdout + res.stderr
    state_dir = Path(os.environ["XDG_STATE_HOME"]) / "syncapp"
    dbs = list(state_dir.glob("state.db*"))  # the database and its WAL
    assert dbs and all(b"s3cr3t-pw" not in p.read_bytes() for p in dbs)
    assert "s3cr3t-pw" not in syncapp("--config", str(cfg), "status", "--pending").stdout
