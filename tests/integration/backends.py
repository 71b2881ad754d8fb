"""Every remote backend the conformance suite runs against, on its real server.

``BACKENDS`` maps a name to a factory. A factory gets the session's ``BackendContext`` (which
starts shared servers lazily and hands out fresh directories) and returns a ``Backend`` whose
``remote()`` opens a new ``Remote`` rooted at an empty, fresh directory/collection/bucket.

Adding a backend is one function and one line in ``BACKENDS``, e.g.::

    def s3_rclone(ctx: BackendContext) -> Backend:
        server = ctx.server("rclone-s3", lambda root: rclone_s3_server(root))
        bucket = ctx.fresh_name("bkt")
        (server.root / bucket).mkdir()
        cfg = S3RemoteConfig(name="t", type="s3", endpoint=server.url, bucket=bucket, ...)
        return Backend("s3-rclone", lambda: open_remote(cfg, env=ENV), server.root / bucket)

    BACKENDS["s3-rclone"] = s3_rclone
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from syncapp.config import (
    HTTPRemoteConfig,
    LocalRemoteConfig,
    S3RemoteConfig,
    WebDAVRemoteConfig,
)
from syncapp.remotes import Remote, open_remote
from tests.servers.dav_httpd import apache_dav_server, nginx_dav_server
from tests.servers.http_api import http_api_server
from tests.servers.s3 import S3Server, rclone_s3_server, seaweedfs_server
from tests.servers.webdav import rclone_webdav_server, wsgidav_server

T = TypeVar("T")


@dataclass
class Backend:
    name: str
    #: A new, unopened remote on this test's fresh root: ``async with backend.remote() as r``.
    remote: Callable[[], Remote]
    #: Where the server keeps this remote's root on local disk, for looking behind its back;
    #: None when the storage is not a plain directory.
    storage: Path | None = None
    #: Names the server itself cannot store (e.g. it turns ``\`` into ``/``): the odd-names
    #: test expects these to fail (xfail) instead of failing the suite. Say why in a comment.
    unsupported_names: frozenset[str] = frozenset()

    def stored(self, path: str) -> Path:
        """The file the server holds for remote ``path`` (only when ``storage`` is known)."""
        assert self.storage is not None, f"{self.name} has no local storage to inspect"
        return self.storage.joinpath(*[s for s in path.split("/") if s])


class BackendContext:
    """Servers shared by a whole test session, and fresh names below a session directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._stack = ExitStack()
        self._servers: dict[str, Any] = {}
        self._counter = itertools.count(1)

    def server(self, key: str, start: Callable[[Path], AbstractContextManager[T]]) -> T:
        """The session's server ``key``, started on first use with a root of its own."""
        if key not in self._servers:
            root = self.base / f"server-{key}"
            root.mkdir(parents=True)
            self._servers[key] = self._stack.enter_context(start(root))
        server: T = self._servers[key]
        return server

    def fresh_name(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}"

    def fresh_dir(self, prefix: str) -> Path:
        d = self.base / self.fresh_name(prefix)
        d.mkdir()
        return d

    def close(self) -> None:
        self._stack.close()


def local(ctx: BackendContext) -> Backend:
    root = ctx.fresh_dir("local")
    cfg = LocalRemoteConfig(name="t", type="local", path=str(root))
    return Backend("local", lambda: open_remote(cfg), root)


def _webdav(ctx: BackendContext, name: str, server: Any) -> Backend:
    # The remote's root is a fresh collection whose name needs percent-encoding, so every test
    # also checks that hrefs are decoded relative to an encoded base path.
    coll = ctx.fresh_name("root é")
    url = server.url + quote(coll) + "/"
    # Through the server, not on its disk: rclone would not see a new directory until its
    # directory cache expires.
    httpx.request("MKCOL", url, auth=server.auth, timeout=10).raise_for_status()
    cfg = WebDAVRemoteConfig(name="t", type="webdav", url=url, connections=4, timeout=30)
    storage = Path(server.root) / coll
    return Backend(name, lambda: open_remote(cfg, env={}), storage)


def webdav_wsgidav(ctx: BackendContext) -> Backend:
    return _webdav(ctx, "webdav-wsgidav", ctx.server("wsgidav", wsgidav_server))


def webdav_rclone(ctx: BackendContext) -> Backend:
    return _webdav(ctx, "webdav-rclone", ctx.server("rclone-webdav", rclone_webdav_server))


def webdav_apache(ctx: BackendContext) -> Backend:
    """Apache httpd 2.4 with mod_dav_fs (tests/servers/conf/apache-dav.conf)."""
    return _webdav(ctx, "webdav-apache", ctx.server("apache-dav", apache_dav_server))


def webdav_nginx(ctx: BackendContext) -> Backend:
    """nginx 1.22 with dav + dav-ext (tests/servers/conf/nginx-dav.conf)."""
    backend = _webdav(ctx, "webdav-nginx", ctx.server("nginx-dav", nginx_dav_server))
    # dav-ext leaves names that start with a dot out of PROPFIND listings (it stores and serves
    # them, a Depth: 0 PROPFIND finds them): a known limit of that server (EXPECTED in dav_httpd).
    return dataclasses.replace(backend, unsupported_names=frozenset({".hidden"}))


BACKENDS: dict[str, Callable[[BackendContext], Backend]] = {
    "local": local,
    "webdav-wsgidav": webdav_wsgidav,
    "webdav-rclone": webdav_rclone,
    "webdav-apache": webdav_apache,
    "webdav-nginx": webdav_nginx,
}


# -- S3 and HTTP API (each test gets a fresh key prefix / space on a shared server) --------------


def _s3(ctx: BackendContext, name: str, server: S3Server) -> Backend:
    # A fresh key prefix in the session's bucket: SeaweedFS gives every bucket its own volumes,
    # so a bucket per test would be slow and fill the volume limit. The odd prefix name checks
    # that keys are encoded below an encoded prefix.
    prefix = ctx.fresh_name("root é+%")
    cfg = S3RemoteConfig(
        name="t",
        type="s3",
        endpoint=server.endpoint,
        bucket=server.bucket,
        prefix=prefix,
        connections=8,
        timeout=30,
        # Small multipart parts so the 50 MiB conformance upload goes multipart.
        part_size="5MiB",
        multipart_threshold="5MiB",
    )
    env = server.env()
    storage = server.root / server.bucket / prefix if server.root is not None else None
    return Backend(name, lambda: open_remote(cfg, env=env), storage)


def s3_rclone(ctx: BackendContext) -> Backend:
    return _s3(ctx, "s3-rclone", ctx.server("rclone-s3", rclone_s3_server))


def s3_seaweedfs(ctx: BackendContext) -> Backend:
    backend = _s3(ctx, "s3-seaweedfs", ctx.server("seaweedfs", seaweedfs_server))
    # SeaweedFS's filer stores "\" in a key as "/": a known limit of that server (README).
    return dataclasses.replace(backend, unsupported_names=frozenset({"back\\slash"}))


_API_TOKEN = "conformance-token-0123"


def http_api(ctx: BackendContext) -> Backend:
    server = ctx.server("http-api", lambda root: http_api_server(root, token=_API_TOKEN))
    space = ctx.fresh_name("space")
    cfg = HTTPRemoteConfig(
        name="t",
        type="http",
        url=server.url(space),
        list_url=server.url(space, "list"),
        token_env="API_TOKEN",
        atomic=True,  # the test API writes to a temporary name and renames
    )
    env = {"API_TOKEN": _API_TOKEN}
    return Backend("http-api", lambda: open_remote(cfg, env=env), server.root / space)


BACKENDS["s3-rclone"] = s3_rclone
BACKENDS["s3-seaweedfs"] = s3_seaweedfs
BACKENDS["http-api"] = http_api
