"""Two-way sync, phase 1, on real servers: the remote poll (and its request count when nothing
changed), the probe for tree ETags, and atomic downloads that fail or are killed half-way."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from syncapp.config import LocalRemoteConfig, S3RemoteConfig, WebDAVRemoteConfig
from syncapp.engine.download import DOWNLOAD_PREFIX, download, sweep_partial_downloads
from syncapp.engine.remotepoll import RemotePoller, probe_tree_etags
from syncapp.engine.scanner import scan_tree
from syncapp.engine.state import Entry
from syncapp.engine.twoway import Op, plan_twoway
from syncapp.errors import RemoteError
from syncapp.ignore import IgnoreRules
from syncapp.remotes import Remote, open_remote
from syncapp.remotes.base import join
from tests.integration.backends import Backend, BackendContext
from tests.servers.dav_httpd import apache_dav_server, nginx_dav_server
from tests.servers.faultproxy import FaultProxy
from tests.servers.s3 import rclone_s3_server, seaweedfs_server
from tests.servers.webdav import rclone_webdav_server, wsgidav_server

DIRS, PER_DIR = 10, 20  # 200 files in 10 folders below the folder's remote_path "docs"


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def fill(remote: Remote, prefix: str = "docs") -> dict[str, bytes]:
    files = {
        f"d{i}/f{j}.txt": f"file {i}/{j}\n".encode() for i in range(DIRS) for j in range(PER_DIR)
    }
    if remote.capabilities.directories:
        await remote.mkdir(prefix)
        for i in range(DIRS):
            await remote.mkdir(join(prefix, f"d{i}"))
    # One at a time: rclone serve s3 answers 500 to concurrent PUTs that create one folder.
    for rel, data in files.items():
        await remote.put(join(prefix, rel), _body(data), size=len(data))
    return files


# -- the poll on every backend ------------------------------------------------------------------


async def test_poll_sees_the_tree_and_a_remote_edit(remote_backend: Backend) -> None:
    async with remote_backend.remote() as remote:
        files = await fill(remote)
        poller = RemotePoller(remote, "docs", IgnoreRules())
        snap = await poller.poll()
        got = {p for p, e in snap.entries.items() if not e.is_dir}
        assert got == set(files) and snap.root_exists and snap.skipped == {}
        assert all(snap.entries[p].size == len(files[p]) for p in files)
        # What the state DB would hold after syncing exactly this.
        known = {
            p: Entry(p, e.is_dir, e.size, 1, 1, e.etag, time.time(), e.mtime_ns)
            for p, e in snap.entries.items()
        }
        local = {p: scan_like(p, e.is_dir, e.size) for p, e in snap.entries.items()}
        await asyncio.sleep(1.1)  # servers without ETags tell an edit by a later mtime
        await remote.put("docs/d3/f7.txt", _body(b"edited elsewhere, longer\n"), size=25)
        await remote.delete("docs/d5/f0.txt")
        after = await poller.poll()
        plan = plan_twoway(
            known, local, after.entries, server_mtime=remote.capabilities.server_mtime, now=0
        )
        assert [(a.op, a.path) for a in plan.actions] == [
            (Op.DOWNLOAD, "d3/f7.txt"),
            (Op.DELETE_LOCAL, "d5/f0.txt"),
        ]


def scan_like(path: str, is_dir: bool, size: int):
    from syncapp.engine.scanner import LocalEntry

    return LocalEntry(path, is_dir, size, 1, 1)


async def test_no_server_here_keeps_tree_etags(remote_backend: Backend) -> None:
    """None of the servers in the suite has collection ETags that cover their subtree."""
    async with remote_backend.remote() as remote:
        if remote.capabilities.directories:
            await remote.mkdir("docs")
        assert await probe_tree_etags(remote, "docs") is False
        names = [e.path async for e in remote.list("", recursive=True)]
        assert not any(".syncapp-tmp-" in n for n in names), names


# -- requests a no-change poll sends, counted by a proxy in front of each server ---------------

ServerStart = Callable[[Path], Any]
#: kind → (the session's server key, how to start it)
DAV: dict[str, tuple[str, ServerStart]] = {
    "rclone": ("rclone-webdav", rclone_webdav_server),
    "wsgidav": ("wsgidav", wsgidav_server),
    "apache": ("apache-dav", apache_dav_server),
    "nginx": ("nginx-dav", nginx_dav_server),
}


def mkcol(url: str, auth: Any) -> None:
    httpx.request("MKCOL", url, auth=auth, timeout=10)


@pytest.mark.parametrize("kind", list(DAV))
async def test_no_change_poll_requests_webdav(
    kind: str, backend_context: BackendContext, record_property: Callable[[str, object], None]
) -> None:
    server = backend_context.server(*DAV[kind])
    coll = backend_context.fresh_name("poll")
    mkcol(server.url + quote(coll) + "/", server.auth)
    with FaultProxy(server.port) as proxy:
        cfg = WebDAVRemoteConfig(
            name="t", type="webdav", url=proxy.url + quote(coll) + "/", connections=4
        )
        async with open_remote(cfg, env={}) as remote:
            await fill(remote)
            poller = RemotePoller(remote, "docs")
            first = await poller.poll()
            assert len([e for e in first.entries.values() if not e.is_dir]) == DIRS * PER_DIR
            proxy.reset_records()
            again = await poller.poll()
            assert again.entries == first.entries
            counts = proxy.counts()
    requests = sum(counts.values())
    record_property("no_change_poll_requests", requests)
    print(f"\n{kind}: a no-change poll of {DIRS * PER_DIR} files in {DIRS} folders: {dict(counts)}")
    assert set(counts) == {"PROPFIND"}
    if kind in ("rclone", "wsgidav"):
        assert requests == 1  # one PROPFIND Depth: infinity
    else:
        assert requests == 1 + DIRS  # Depth: 1 per collection: docs and d0..d9


S3: dict[str, ServerStart] = {"rclone-s3": rclone_s3_server, "seaweedfs": seaweedfs_server}


@pytest.mark.parametrize("kind", list(S3))
async def test_no_change_poll_requests_s3(kind: str, backend_context: BackendContext) -> None:
    server = backend_context.server(kind, S3[kind])
    with FaultProxy(server.port) as proxy:
        cfg = S3RemoteConfig(
            name="t",
            type="s3",
            endpoint=proxy.url.rstrip("/"),
            bucket=server.bucket,
            prefix=backend_context.fresh_name("poll"),
        )
        async with open_remote(cfg, env=server.env()) as remote:
            await fill(remote)
            poller = RemotePoller(remote, "docs")
            first = await poller.poll()
            assert len([e for e in first.entries.values() if not e.is_dir]) == DIRS * PER_DIR
            proxy.reset_records()
            await poller.poll()
            counts = proxy.counts()
    print(f"\n{kind}: a no-change poll of {DIRS * PER_DIR} files: {dict(counts)}")
    assert sum(counts.values()) == 1 and set(counts) == {"GET"}  # one ListObjectsV2 page


# -- downloads ---------------------------------------------------------------------------------


def rclone_backend(ctx: BackendContext, url: str | None = None) -> tuple[Remote, Path]:
    server = ctx.server("rclone-webdav", rclone_webdav_server)
    coll = ctx.fresh_name("dl")
    mkcol(server.url + coll + "/", server.auth)
    cfg = WebDAVRemoteConfig(name="t", type="webdav", url=(url or server.url) + coll + "/")
    return open_remote(cfg, env={}), server.root / coll


BIG = os.urandom(3 * 1024 * 1024 + 17)
MTIME = 1_600_000_000_000_000_000


@pytest.mark.parametrize("kind", ["local", "webdav-rclone"])
async def test_download_is_whole_with_the_remote_mtime(
    kind: str, backend_context: BackendContext, tmp_path: Path
) -> None:
    if kind == "local":
        remote = open_remote(
            LocalRemoteConfig(name="t", type="local", path=str(backend_context.fresh_dir("l")))
        )
    else:
        remote, _ = rclone_backend(backend_context)
    root = tmp_path / "folder"
    root.mkdir()
    async with remote:
        await remote.mkdir("docs")
        await remote.put("docs/big.bin", _body(BIG), size=len(BIG), mtime_ns=MTIME)
        snap = await RemotePoller(remote, "docs").poll()
        r = snap.entries["big.bin"]
        entry = await download(
            remote, "docs/big.bin", str(root), "sub/big.bin", size=r.size, mtime_ns=r.mtime_ns
        )
    target = root / "sub" / "big.bin"
    assert target.read_bytes() == BIG
    assert entry.size == len(BIG) and target.stat().st_mtime_ns == r.mtime_ns
    if remote.capabilities.server_mtime:
        assert r.mtime_ns is not None and abs(r.mtime_ns - MTIME) < 10**9
    assert [p.name for p in root.rglob(f"{DOWNLOAD_PREFIX}*")] == []


async def test_download_cut_by_the_network_leaves_the_old_file(
    backend_context: BackendContext, tmp_path: Path
) -> None:
    server = backend_context.server("rclone-webdav", rclone_webdav_server)
    root = tmp_path / "folder"
    root.mkdir()
    (root / "big.bin").write_bytes(b"the old content")
    before = scan_tree(str(root), IgnoreRules()).entries["big.bin"]
    with FaultProxy(server.port) as proxy:
        remote, _ = rclone_backend(backend_context, proxy.url)
        async with remote:
            await remote.put("big.bin", _body(BIG), size=len(BIG))
            proxy.reset_response(count=1, methods=["GET"])
            with pytest.raises(RemoteError):
                await download(
                    remote, "big.bin", str(root), "big.bin", size=len(BIG), expect=before
                )
            assert proxy.actions()["reset_response"] == 1
            assert (root / "big.bin").read_bytes() == b"the old content"
            assert sorted(p.name for p in root.iterdir()) == ["big.bin"]
            # Tried again, it lands.
            await download(remote, "big.bin", str(root), "big.bin", size=len(BIG), expect=before)
    assert (root / "big.bin").read_bytes() == BIG


KILLED = """
import asyncio, sys
from syncapp.config import WebDAVRemoteConfig
from syncapp.engine import download as dl
from syncapp.remotes import open_remote

async def main():
    url, root = sys.argv[1], sys.argv[2]
    async with open_remote(WebDAVRemoteConfig(name="t", type="webdav", url=url), env={}) as r:
        real = dl._batched
        async def slow(chunks):
            async for piece in real(chunks):
                yield piece
                print("WRITING", flush=True)
                await asyncio.sleep(0.2)   # a slow line: the kill comes mid-way
        dl._batched = slow
        await dl.download(r, "big.bin", root, "big.bin", size=int(sys.argv[3]))
    print("DONE", flush=True)

asyncio.run(main())
"""


async def test_download_killed_midway_leaves_no_partial_file(
    backend_context: BackendContext, tmp_path: Path
) -> None:
    remote, _ = rclone_backend(backend_context)
    root = tmp_path / "folder"
    root.mkdir()
    async with remote:
        await remote.put("big.bin", _body(BIG), size=len(BIG))
    url = remote._cfg.url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED,
        url,
        str(root),
        str(len(BIG)),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    for _ in range(3):  # three chunks written, then kill -9
        assert (await proc.stdout.readline()).strip() == b"WRITING"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    names = sorted(p.name for p in root.iterdir())
    assert "big.bin" not in names  # nothing under the real name
    assert len(names) == 1 and names[0].startswith(DOWNLOAD_PREFIX)
    partial = root / names[0]
    assert 0 < partial.stat().st_size < len(BIG)
    assert scan_tree(str(root), IgnoreRules()).entries == {}  # the scanner ignores it
    # The next run sweeps the leftover and finishes the download.
    assert sweep_partial_downloads(str(root)) == [names[0]]
    async with rclone_reopen(url) as again:
        await download(again, "big.bin", str(root), "big.bin", size=len(BIG))
    assert sorted(p.name for p in root.iterdir()) == ["big.bin"]
    assert (root / "big.bin").read_bytes() == BIG


def rclone_reopen(url: str) -> Remote:
    return open_remote(WebDAVRemoteConfig(name="t", type="webdav", url=url), env={})


async def test_no_change_poll_requests_http_api(backend_context: BackendContext) -> None:
    from tests.integration.backends import http_api

    backend = http_api(backend_context)
    server = backend_context.server("http-api", lambda root: None)  # started by http_api()
    async with backend.remote() as remote:
        await fill(remote)
        poller = RemotePoller(remote, "docs")
        first = await poller.poll()
        assert len([e for e in first.entries.values() if not e.is_dir]) == DIRS * PER_DIR
        before = await asyncio.to_thread(server.requests)
        await poller.poll()
        after = await asyncio.to_thread(server.requests)
    print(f"\nhttp-api: a no-change poll of {DIRS * PER_DIR} files: {after - before} request")
    assert after - before == 1  # one GET of list_url


async def test_no_change_poll_of_the_local_backend_is_one_listing(tmp_path: Path) -> None:
    cfg = LocalRemoteConfig(name="t", type="local", path=str(tmp_path / "remote"))
    (tmp_path / "remote").mkdir()
    async with open_remote(cfg) as remote:
        await fill(remote)
        poller = RemotePoller(remote, "docs")
        await poller.poll()
        again = await poller.poll()
    assert again.calls == 1 and len(again.entries) == DIRS * PER_DIR + DIRS
