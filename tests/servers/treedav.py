"""A WebDAV server whose collection ETags change with everything below them, as Nextcloud's,
ownCloud's and other SabreDAV-based servers' do (their file cache propagates an ETag change
up to the root on every write, rename and delete).

None of the servers the suite installs behaves so (rclone serve webdav, WsgiDAV and nginx
report no collection ETag; Apache's changes only with the collection's own entries), and
Nextcloud itself is far too heavy for the suite. This is real WsgiDAV (the same request
handling, XML and filesystem storage as the stock server) with one change: a folder's ETag is
a hash of the names, kinds, sizes and mtimes of everything below it, computed when asked. It
models that class of server for the poller's one-request path, not Nextcloud's other ways.

Run as a separate process (``treedav_process``), like the other servers::

    python -m tests.servers.treedav ROOT --port PORT
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from tests.servers.webdav import ServerProcess


def subtree_etag(folder: str) -> str:
    """What changes whenever anything below ``folder`` is added, removed, renamed or written."""
    h = hashlib.sha1()
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        rel = os.path.relpath(top, folder)
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(top, name))
            except FileNotFoundError:
                continue  # removed while we looked: the next ask sees it gone
            h.update(f"f\0{rel}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        for name in dirs:
            h.update(f"d\0{rel}/{name}\n".encode())
    return h.hexdigest()


def _app(root: Path) -> Any:
    from wsgidav.fs_dav_provider import FilesystemProvider, FolderResource
    from wsgidav.wsgidav_app import WsgiDAVApp

    class TreeFolder(FolderResource):  # type: ignore[misc]
        def get_etag(self) -> str:
            return subtree_etag(self._file_path)

    class TreeProvider(FilesystemProvider):  # type: ignore[misc]
        def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
            res = super().get_resource_inst(path, environ)
            if isinstance(res, FolderResource):
                return TreeFolder(path, environ, res._file_path)
            return res

    return WsgiDAVApp(
        {
            "provider_mapping": {"/": TreeProvider(str(root))},
            "simple_dc": {"user_mapping": {"*": True}},
            "http_authenticator": {"accept_basic": True, "accept_digest": False},
            "honor_mtime_header": True,
            "verbose": 0,
            "logging": {"enable": False},
            "dir_browser": {"enable": False},
        }
    )


def main(argv: list[str] | None = None) -> int:
    from cheroot import wsgi

    parser = argparse.ArgumentParser(prog="python -m tests.servers.treedav")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    server = wsgi.Server(("127.0.0.1", args.port), _app(args.root), numthreads=8)
    server.expiration_interval = 0.1
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.stop()
    return 0


def treedav_process(root: Path) -> ServerProcess:
    """An unstarted tree-ETag WebDAV server serving ``root``."""
    repo = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "tests.servers.treedav", str(root), "--port", str(port)]

    return ServerProcess("treedav", root, argv, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
