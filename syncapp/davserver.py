"""A small embedded WebDAV server (WsgiDAV on cheroot) serving one local directory.

Used by ``syncapp demo`` and by the test suite. In-process use::

    with DavServer(root, username="u", password="p") as server:
        print(server.url)          # http://127.0.0.1:PORT/

or as a separate process (tests prefer this: the server then does not share the GIL with the
client under test)::

    python -m syncapp.davserver ROOT --port 8080 [--user U --password-env VAR]

The process prints ``LISTENING <url>`` on stdout once it accepts connections and runs until it
gets SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self
from urllib.parse import ParseResult, unquote, urlsplit

_log = logging.getLogger("syncapp.davserver")


def _quiet_loggers() -> None:
    # WsgiDAV logs every request at INFO and its own failures at ERROR with tracebacks; both
    # would scribble over a terminal UI. Our own logger gets anything worth keeping.
    for name in ("wsgidav", "cheroot"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _parse_destination(url: str, allow_fragments: bool = True) -> ParseResult:
    """Split a Destination URL first and decode its path after, so ``%3F``/``%3B`` stay in it."""
    parts = urlsplit(url, allow_fragments=allow_fragments)
    return ParseResult(
        parts.scheme, parts.netloc, unquote(parts.path), "", parts.query, parts.fragment
    )


def _fix_destination_parsing() -> None:
    """Work around WsgiDAV 4.4 decoding the Destination header before parsing it as a URL.

    ``request_server._copy_or_move`` does ``urlparse(unquote(header))``, so a MOVE to
    ``what%3F`` lands on ``what`` and one to ``a%3Bb`` on ``a``. It uses both names nowhere
    else; swapping them for "parse, then decode the path" fixes that one call.
    """
    from wsgidav import request_server

    rs: Any = request_server
    rs.unquote = lambda s: s
    rs.urlparse = _parse_destination


def _build_app(
    root: Path, username: str | None, password: str | None, fix_destination: bool
) -> Any:
    from wsgidav.wsgidav_app import WsgiDAVApp

    if fix_destination:
        _fix_destination_parsing()

    if username is not None:
        user_mapping: dict[str, Any] = {"*": {username: {"password": password or ""}}}
    else:
        user_mapping = {"*": True}  # anonymous access
    config: dict[str, Any] = {
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": user_mapping},
        "http_authenticator": {
            # Basic only: digest needs a challenge round trip per connection for no gain on
            # loopback, and syncapp's WebDAV backend speaks Basic.
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        # Keep the client's mtime (X-OC-Mtime, whole seconds) like rclone and Nextcloud do.
        "honor_mtime_header": True,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": True, "response_trailer": ""},
        "suppress_version_info": True,
    }
    return WsgiDAVApp(config)


class DavServer:
    """WsgiDAV serving ``root`` on ``host:port`` (0 picks a free port) in a background thread."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str | None = None,
        password: str | None = None,
        *,
        threads: int = 16,
        fix_destination: bool = True,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self._threads = threads
        self._fix_destination = fix_destination
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}/"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already running")
        from cheroot import wsgi

        _quiet_loggers()
        self.root.mkdir(parents=True, exist_ok=True)
        app = _build_app(self.root, self.username, self._password, self._fix_destination)

        class _QuietServer(wsgi.Server):
            def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
                # cheroot writes these to stderr by default (client disconnects and the like).
                _log.debug("cheroot: %s", msg, exc_info=traceback)

        server = _QuietServer(
            bind_addr=(self.host, self.port),
            wsgi_app=app,
            numthreads=self._threads,
            server_name="syncapp-davserver",
            shutdown_timeout=1,
        )
        # The serve loop polls at this interval; cheroot's 0.5 s makes every stop() take that.
        server.expiration_interval = 0.1
        # prepare() binds and listens, so with port 0 we learn the real port before serving and
        # a client may connect as soon as start() returns.
        server.prepare()
        self.port = int(server.socket.getsockname()[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="davserver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syncapp.davserver", description="Serve a directory over WebDAV."
    )
    parser.add_argument("root", type=Path, help="directory to serve (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--user", default=None, help="require Basic auth as this user")
    parser.add_argument(
        "--password-env", default=None, help="environment variable holding the password"
    )
    parser.add_argument(
        "--stock",
        action="store_true",
        help="leave WsgiDAV's Destination parsing as shipped (names with ? or ; break MOVE)",
    )
    args = parser.parse_args(argv)

    password: str | None = None
    if args.user is not None:
        if not args.password_env:
            parser.error("--user needs --password-env")
        password = os.environ.get(args.password_env)
        if password is None:
            parser.error(f"environment variable {args.password_env} is not set")

    server = DavServer(
        args.root, args.host, args.port, args.user, password, fix_destination=not args.stock
    )
    try:
        server.start()
    except OSError as e:
        print(f"cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"LISTENING {server.url}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
