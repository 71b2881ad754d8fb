"""Servers whose folder ETags follow their contents (Nextcloud, ownCloud, SabreDAV): the probe
finds out, and a poll that finds nothing changed is one request.

The server is tests/servers/treedav.py: real WsgiDAV whose collection ETag is a hash of its
subtree, a stand-in for that class of server (none of the suite's servers behaves so:
``test_no_server_here_keeps_tree_etags`` in test_twoway_io.py). Requests are counted by the
fault proxy in front of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from syncapp.config import WebDAVRemoteConfig
from syncapp.engine import FileDownloaded, SyncEngine
from syncapp.engine.learned import learn_tree_etags, tree_etags_key
from syncapp.engine.remotepoll import RemotePoller, probe_tree_etags
from syncapp.engine.state import StateDB
from syncapp.remotes import Remote, open_remote
from tests.helpers import syncapp, write_tree
from tests.integration import twoway_machines
from tests.integration.backends import BackendContext
from tests.integration.twoway_machines import Machine, Shared, config, until
from tests.servers.faultproxy import FaultProxy
from tests.servers.treedav import treedav_process
from tests.servers.webdav import ServerProcess

own_trash = twoway_machines.own_trash

#: Below the folder's remote_path "docs": 4 folders, two levels deep, 3 files at each level.
TREE = {
    f"d{i}/{sub}f{j}.txt": f"{i} {sub} {j}\n"
    for i in range(4)
    for sub in ("", "s/", "s/t/")
    for j in range(3)
}


@pytest.fixture
def treedav(backend_context: BackendContext) -> ServerProcess:
    server: ServerProcess = backend_context.server("treedav", treedav_process)
    return server


@pytest.fixture
def place(treedav: ServerProcess, backend_context: BackendContext) -> Iterator[tuple[str, Path]]:
    """A fresh collection on the server: (its name, where the server stores it)."""
    coll = backend_context.fresh_name("tree")
    httpx.request("MKCOL", treedav.url + quote(coll) + "/", timeout=10).raise_for_status()
    yield coll, treedav.root / coll


def remote_at(url: str) -> Remote:
    cfg = WebDAVRemoteConfig(name="t", type="webdav", url=url, connections=4)
    return open_remote(cfg, env={})


async def test_the_probe_says_yes_here_and_leaves_nothing(
    treedav: ServerProcess, place: tuple[str, Path], tmp_path: Path
) -> None:
    coll, storage = place
    async with remote_at(treedav.url + quote(coll) + "/") as remote:
        await remote.mkdir("docs")
        assert await probe_tree_etags(remote, "docs") is True
        listed = [e.path async for e in remote.list("", recursive=True)]
        assert listed == ["docs"]
        # Learned once and kept in the state database, per server.
        state = StateDB(tmp_path / "state.db")
        try:
            assert await learn_tree_etags(remote, state, "docs", now=1000.0) is True
            assert state.get_meta(tree_etags_key(remote))
            await remote.delete("docs")  # a probe now would fail: the kept answer is used
            assert await learn_tree_etags(remote, state, "docs", now=2000.0) is True
        finally:
            state.close()
    assert [p.name for p in storage.iterdir()] == []


async def test_a_no_change_poll_is_one_request_and_a_deep_change_walks_only_its_path(
    treedav: ServerProcess, place: tuple[str, Path]
) -> None:
    coll, storage = place
    write_tree(storage / "docs", TREE)
    with FaultProxy(treedav.port) as proxy:
        async with remote_at(proxy.url + quote(coll) + "/") as remote:
            poller = RemotePoller(remote, "docs", tree_etags=True)
            first = await poller.poll()
            assert {p for p, e in first.entries.items() if not e.is_dir} == set(TREE)

            for _ in range(3):
                proxy.reset_records()
                again = await poller.poll()
                assert [(r.method, r.path) for r in proxy.records()] == [
                    ("PROPFIND", f"/{coll}/docs")
                ]
                assert again.entries == first.entries

            # A file added two levels down: the walk follows the changed ETags only.
            (storage / "docs" / "d2" / "s" / "t" / "new.txt").write_text("new\n")
            proxy.reset_records()
            changed = await poller.poll()
            assert set(changed.entries) - set(first.entries) == {"d2/s/t/new.txt"}
            walked = [r.path for r in proxy.records()]
            assert sorted(walked) == sorted(
                [f"/{coll}/docs", f"/{coll}/docs/"]
                + [f"/{coll}/docs/{d}/" for d in ("d2", "d2/s", "d2/s/t")]
            )
            # Everything else came from the last look: the other three folders' trees.
            assert changed.reused == 3 * (3 + 1 + 3 + 1 + 3)

            # An edit deep down is found the same way (and nothing else is listed).
            (storage / "docs" / "d0" / "s" / "f1.txt").write_text("edited, longer\n")
            proxy.reset_records()
            edited = await poller.poll()
            assert edited.entries["d0/s/f1.txt"].size == len("edited, longer\n")
            assert len(proxy.records()) == 1 + 1 + 2  # stat, docs/, d0/, d0/s/


async def test_a_two_way_folder_there_polls_with_one_request(
    treedav: ServerProcess, place: tuple[str, Path], tmp_path: Path
) -> None:
    """Two machines on the server; B talks through the proxy. Once B is in sync, each look
    that finds nothing changed sends one PROPFIND; a change made on A still arrives."""
    coll, _ = place
    with FaultProxy(treedav.port) as proxy:
        direct = Shared("treedav", f'[remotes.r]\ntype = "webdav"\nurl = "{treedav.url}{coll}/"\n')
        proxied = Shared("treedav", f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}{coll}/"\n')
        async with AsyncExitStack() as stack:
            machines = []
            for name, shared in (("a", direct), ("b", proxied)):
                cfg = config(tmp_path, shared, name)
                db = tmp_path / name / "state.db"
                engine = await stack.enter_async_context(SyncEngine(cfg, db))
                machines.append(Machine(engine, cfg.folders["docs"].path))
            a, b = machines
            write_tree(a.folder, {"d0/s/f.txt": "f\n", "d1/g.txt": "g\n", "top.txt": "t\n"})
            await until(lambda: b.files() == a.files() and b.count(FileDownloaded) == 3)
            side = b.engine.folder("docs").remote_side
            assert side is not None
            await until(lambda: side.poller.tree_etags)
            looks = side.looks
            await until(lambda: side.looks >= looks + 2)  # past what B's downloads changed
            proxy.reset_records()
            looks = side.looks
            await until(lambda: side.looks >= looks + 3)
            records = proxy.records()
            print(f"\n{side.looks - looks} looks: {[(r.method, r.path) for r in records]}")
            # One PROPFIND (Depth: 0) of the folder a look (one more may be under way).
            assert {(r.method, r.path) for r in records} == {("PROPFIND", f"/{coll}/Docs")}
            assert side.looks - looks <= len(records) <= side.looks - looks + 1

            (a.folder / "d0" / "s" / "f.txt").write_text("changed on a\n")
            await until(lambda: (b.folder / "d0" / "s" / "f.txt").read_text() == "changed on a\n")


def test_syncapp_remotes_says_what_was_learned(
    treedav: ServerProcess, place: tuple[str, Path], tmp_path: Path
) -> None:
    coll, _ = place
    cfg = config(
        tmp_path,
        Shared("treedav", f'[remotes.r]\ntype = "webdav"\nurl = "{treedav.url}{coll}/"\n'),
        "a",
    )
    probed = syncapp("--config", str(cfg.path), "remotes", "--probe")
    assert probed.returncode == 0, probed.stderr
    said = "folder ETags follow their contents: yes; a two-way poll that finds nothing changed"
    assert said in probed.stdout, probed.stdout
    kept = syncapp("--config", str(cfg.path), "remotes")
    assert said in kept.stdout, kept.stdout
