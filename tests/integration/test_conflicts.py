"""Conflicts: a remote edit between two syncs is never overwritten silently, on every kind of
remote (WebDAV, S3, the HTTP API), including an edit that keeps the file's size.

The remote edit is made by someone else through the server (a PUT of our own client, as another
user's would be), with an mtime 10 s away from ours, so neither ETags, nor kept mtimes, nor the
server's clock at our upload (1 s slack) can take it for our own upload.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.engine import ConflictKept, SyncEngine
from syncapp.remotes import open_remote
from tests.helpers import write_tree
from tests.integration.backends import BackendContext
from tests.servers.http_api import http_api_server
from tests.servers.s3 import rclone_s3_server, seaweedfs_server
from tests.servers.webdav import rclone_webdav_server, wsgidav_server

API_TOKEN = "conformance-token-0123"  # the session server's token (shared with backends.py)


@dataclass
class Site:
    remote_toml: str
    remote_path: str
    env: dict[str, str] = field(default_factory=dict)


def _webdav(ctx: BackendContext, key: str, start: Callable[..., object]) -> Site:
    server = ctx.server(key, start)  # type: ignore[arg-type]
    return Site(f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n', ctx.fresh_name("cf"))


def _s3(ctx: BackendContext, key: str, start: Callable[..., object]) -> Site:
    server = ctx.server(key, start)  # type: ignore[arg-type]
    toml = (
        f'[remotes.r]\ntype = "s3"\nendpoint = "{server.endpoint}"\n'
        f'bucket = "{server.bucket}"\n'
    )
    return Site(toml, ctx.fresh_name("cf"), server.env())


def _http(ctx: BackendContext) -> Site:
    server = ctx.server("http-api", lambda root: http_api_server(root, token=API_TOKEN))
    space = ctx.fresh_name("cf")
    toml = (
        f'[remotes.r]\ntype = "http"\nurl = "{server.url(space)}"\n'
        f'list_url = "{server.url(space, "list")}"\ntoken_env = "API_TOKEN"\natomic = true\n'
    )
    return Site(toml, "docs", {"API_TOKEN": API_TOKEN})


SITES: dict[str, Callable[[BackendContext], Site]] = {
    "webdav-rclone": lambda ctx: _webdav(ctx, "rclone-webdav", rclone_webdav_server),
    "webdav-wsgidav": lambda ctx: _webdav(ctx, "wsgidav", wsgidav_server),
    "s3-rclone": lambda ctx: _s3(ctx, "rclone-s3", rclone_s3_server),
    "s3-seaweedfs": lambda ctx: _s3(ctx, "seaweedfs", seaweedfs_server),
    "http-api": _http,
}


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize("kind", list(SITES))
async def test_same_size_remote_edit_keeps_one_conflict_copy(
    tmp_path: Path, backend_context: BackendContext, kind: str
) -> None:
    site = SITES[kind](backend_context)
    folder = tmp_path / "docs"
    write_tree(folder, {"report.txt": "ours v1", "untouched.txt": "same v1"})
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(
        site.remote_toml
        + f'\n[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "{site.remote_path}"\n'
    )
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    state = tmp_path / "state.db"
    conflicts: list[ConflictKept] = []

    async def sync_once() -> None:
        engine = SyncEngine(cfg, state, live=False, env=site.env)
        engine.subscribe(lambda e: conflicts.append(e) if isinstance(e, ConflictKept) else None)
        async with engine:
            await engine.wait_idle()
            st = engine.folder("docs").status()
            assert not st.failed, st

    await sync_once()
    assert conflicts == []

    rpath = f"{site.remote_path}/report.txt"
    theirs = b"THEIRS!"  # the same size as "ours v1"
    assert len(theirs) == (folder / "report.txt").stat().st_size
    mtime_ns = (folder / "report.txt").stat().st_mtime_ns + 10_000_000_000
    async with open_remote(cfg.remotes["r"], env=site.env) as remote:
        before = await remote.stat(rpath)
        assert before is not None
        await remote.put(rpath, _body(theirs), size=len(theirs), mtime_ns=mtime_ns)
        after = await remote.stat(rpath)
        assert after is not None and after.size == before.size
    time.sleep(0.2)  # past rclone's directory cache
    (folder / "report.txt").write_text("ours v2")
    (folder / "untouched.txt").write_text("same v2")  # ours only: no conflict
    await sync_once()

    assert [c.path for c in conflicts] == ["report.txt"], conflicts
    copies = list(folder.glob("report.conflict-*.txt"))
    assert len(copies) == 1 and copies[0].read_bytes() == theirs
    assert not list(folder.glob("untouched.conflict-*"))

    async def remote_bytes(rel: str) -> bytes:
        out = bytearray()
        async with remote.get(f"{site.remote_path}/{rel}") as body:
            async for chunk in body:
                out += chunk
        return bytes(out)

    async with open_remote(cfg.remotes["r"], env=site.env) as remote:
        assert await remote_bytes("report.txt") == b"ours v2"
        assert await remote_bytes(copies[0].name) == theirs
        assert await remote_bytes("untouched.txt") == b"same v2"
