"""A two-way folder never takes its own uploads for remote changes.

What the engine records after an upload must be what the next poll lists: where a PUT
answers no ETag (rclone serve webdav, nginx), or one computed before the server applied
X-OC-Mtime (rclone, WsgiDAV), or the upload went to a staging name and was moved into place,
a poll that compared the listing with a guess would download (or compare) every file just
uploaded. Counted by the fault proxy in front of each server: after uploads, edits (one of
the same size, in the same second) and a rename, and the looks that follow, not one download
(where stamps cannot tell two writes apart, one read-back GET an upload, nothing written here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from syncapp.engine import ConflictKept, FileDownloaded
from tests.helpers import write_tree
from tests.integration import twoway_machines
from tests.integration.backends import BackendContext
from tests.integration.twoway_machines import WEBDAV, Machine, Shared, machines, until
from tests.servers.faultproxy import FaultProxy
from tests.servers.s3 import seaweedfs_server
from tests.servers.treedav import treedav_process
from tests.servers.webdav import ServerProcess

own_trash = twoway_machines.own_trash


#: The suite's WebDAV servers, and one whose folder ETags follow their contents (its polls
#: skip what did not change: tests/servers/treedav.py).
DAV: dict[str, tuple[str, Callable[[Path], AbstractContextManager[ServerProcess]]]] = {
    **WEBDAV,
    "treedav": ("treedav", treedav_process),
}


@pytest.fixture(params=[*DAV, "seaweedfs"])
def counted(
    request: pytest.FixtureRequest,
    backend_context: BackendContext,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Shared, FaultProxy]]:
    """A fresh place on one of the session's servers, reached through a counting proxy."""
    if request.param == "seaweedfs":
        s3 = backend_context.server("seaweedfs", seaweedfs_server)
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        with FaultProxy(int(s3.endpoint.rsplit(":", 1)[1])) as proxy:
            prefix = backend_context.fresh_name("own")
            endpoint = proxy.url.rstrip("/")
            yield (
                Shared(
                    "seaweedfs",
                    f'[remotes.r]\ntype = "s3"\nendpoint = "{endpoint}"\n'
                    f'bucket = "{s3.bucket}"\nprefix = "{prefix}"\n',
                ),
                proxy,
            )
        return
    key, start = DAV[request.param]
    server: ServerProcess = backend_context.server(key, start)
    coll = backend_context.fresh_name("own")
    httpx.request("MKCOL", f"{server.url}{coll}/", auth=server.auth, timeout=10)
    with FaultProxy(server.port) as proxy:
        auth = ""
        if server.auth is not None:
            auth = f'username = "{server.auth[0]}"\npassword = "{server.auth[1]}"\n'
        url = f"{proxy.url}{coll}/"
        yield Shared(request.param, f'[remotes.r]\ntype = "webdav"\nurl = "{url}"\n{auth}'), proxy


async def looked(m: Machine, more: int) -> None:
    side = m.engine.folder("docs").remote_side
    assert side is not None
    target = side.looks + more
    await until(lambda: side.looks >= target)


async def test_own_uploads_are_never_downloaded(
    tmp_path: Path, counted: tuple[Shared, FaultProxy]
) -> None:
    shared, proxy = counted
    async with machines(tmp_path, shared, "a") as (a,):
        await looked(a, 1)
        write_tree(
            a.folder, {f"d{i}/f{j}.txt": f"file {i} {j}\n" for i in range(3) for j in range(5)}
        )
        folder = a.engine.folder("docs")
        await until(lambda: folder.entries.files == 15)
        await looked(a, 2)
        # Edits: another size, and the same size (within the same second as the upload,
        # where only an ETag or the server's own mtime can tell).
        (a.folder / "d0" / "f0.txt").write_text("edited, longer now\n")
        (a.folder / "d1" / "f1.txt").write_text("FILE 1 1\n")
        (a.folder / "d2").rename(a.folder / "moved")
        await until(lambda: "moved/f3.txt" in folder.entries and "d2/f3.txt" not in folder.entries)
        await until(lambda: folder.status().state.value == "up to date")
        await looked(a, 2)
        side = folder.remote_side
        assert side is not None
        await until(lambda: not side.unconfirmed)  # settled
        # (On S3 a listing is a GET of the bucket: only GETs of objects are downloads.)
        gets = [r.path for r in proxy.records("GET") if "/Docs/" in r.path]
        if folder.remote.capabilities.distinct_stamps:
            assert gets == [], (shared.name, gets, dict(proxy.counts()))
        else:
            # Where stamps cannot tell two writes apart, each upload is read back once when
            # it settles (engine/ownwrites.py): a GET a file we uploaded, at most one an upload.
            uploads = [r.path for r in proxy.records("PUT")] + [
                r.destination for r in proxy.records("MOVE") if r.destination
            ]
            assert all(gets.count(p) <= uploads.count(p) for p in gets), (shared.name, gets)
        print(f"\n{shared.name}: {dict(proxy.counts())}")
        assert a.count(FileDownloaded) == 0 and a.count(ConflictKept) == 0
        # What the state holds for each upload is what the server lists.
        assert side.poller.last is not None
        listed = side.poller.last.entries
        recorded = {
            p: (e.etag, e.remote_mtime_ns) for p, e in folder.entries.items() if not e.is_dir
        }
        assert recorded == {p: (listed[p].etag, listed[p].mtime_ns) for p in recorded}
