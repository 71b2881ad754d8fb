"""The engine against *stock* WsgiDAV, whose Destination-header bug the backend must work around.

WsgiDAV 4.4 decodes the ``Destination`` header before it parses it as a URL, so a MOVE or COPY
onto ``report?.txt`` lands on ``report`` and one onto ``a;b.txt`` on ``a``. The WebDAV backend
finds this out once and then uploads such names in place and moves or copies them by GET + PUT
(+ DELETE). These tests run that fallback end to end, through the engine, on a server without the
test suite's patch (tests/servers/webdav.py), and check that the right bytes land under the right
names, that nothing the bug would clobber is touched, and that no temporary name remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import httpx

from syncapp.config import parse_config
from syncapp.engine import FolderState, SyncEngine
from tests.helpers import VERSIONS, config_text, staging_leftovers, tree, write_tree
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import wsgidav_process

#: Each odd name next to the plain name the bug would write instead.
FILES: dict[str, bytes | str] = {
    "report?.txt": "the report, with a question mark",
    "report": "a plain 'report': a MOVE onto 'report?.txt' would replace it",
    "a;b.txt": "semicolon, first version",
    "a": "a plain 'a': a MOVE onto 'a;b.txt' would replace it",
    "renamed": "a plain 'renamed': a MOVE onto 'renamed;1?.txt' would replace it",
    "sub;dir/in?side.txt": "nested under an odd folder name",
    "sub;dir/in": "a plain 'in' beside it",
    "plain.txt": "an ordinary name still goes by staging name + MOVE",
}


async def _wait_exact(local: Path, remote: Path, timeout: float = 60.0) -> None:
    async def poll() -> None:
        while tree(remote) != tree(local, synced_only=True) or staging_leftovers(remote):
            await asyncio.sleep(0.05)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(poll(), timeout)
    assert tree(remote) == tree(local, synced_only=True)
    assert staging_leftovers(remote) == []


async def _wait_up_to_date(engine: SyncEngine, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while engine.status()["docs"].state is not FolderState.UP_TO_DATE:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def _versions_holding(remote: Path, data: bytes) -> list[str]:
    found = []
    for dirpath, _dirs, names in os.walk(remote / VERSIONS):
        for name in names:
            p = Path(dirpath) / name
            if p.read_bytes() == data:
                found.append(str(p.relative_to(remote)))
    return found


def test_the_server_really_is_stock(tmp_path: Path) -> None:
    """Guards the test below: if this server stops mangling, that test proves nothing."""
    with wsgidav_process(tmp_path / "storage") as srv:
        httpx.put(srv.url + "what", content=b"precious").raise_for_status()
        httpx.put(srv.url + "src", content=b"moved").raise_for_status()
        httpx.request(
            "MOVE", srv.url + "src", headers={"Destination": srv.url + "what%3F", "Overwrite": "T"}
        ).raise_for_status()
        assert (srv.root / "what").read_bytes() == b"moved"
        assert not (srv.root / "what?").exists()


async def test_odd_names_sync_rename_and_keep_versions_on_stock_wsgidav(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, FILES)
    with wsgidav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        remote = srv.root / "Docs"
        text = config_text(f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}"', {"docs": folder})
        cfg = parse_config(
            text.replace('remote_path = "docs"', 'remote_path = "Docs"'), tmp_path / "config.toml"
        )
        async with SyncEngine(cfg, tmp_path / "state.db", live=True) as engine:
            await engine.wait_idle()
            await _wait_exact(folder, remote)
            # The ordinary name went the atomic way; the odd ones were put in place.
            assert any(r.destination == "/Docs/plain.txt" for r in proxy.records("MOVE"))
            puts = {r.path for r in proxy.records("PUT")}
            assert {"/Docs/report?.txt", "/Docs/a;b.txt", "/Docs/sub;dir/in?side.txt"} <= puts

            # An overwrite keeps the old content as a version (a server-side move or copy of an
            # odd name: by hand here), then puts the new content in place.
            proxy.reset_records()
            (folder / "a;b.txt").write_text("semicolon, second version")
            await _wait_exact(folder, remote)
            await _wait_up_to_date(engine)
            assert _versions_holding(remote, b"semicolon, first version")

            # A rename onto an odd name: moved by GET + PUT + DELETE, never by a MOVE that the
            # server would land on "renamed".
            proxy.reset_records()
            (folder / "report?.txt").rename(folder / "renamed;1?.txt")
            await _wait_exact(folder, remote)
            await _wait_up_to_date(engine)
            assert (remote / "renamed;1?.txt").read_text() == FILES["report?.txt"]
            assert not (remote / "report?.txt").exists()
            # One move by hand (not a delete, which would keep a version, plus an upload).
            sent = [(r.method, r.path) for r in proxy.records() if r.method != "PROPFIND"]
            assert sent == [
                ("GET", "/Docs/report?.txt"),
                ("PUT", "/Docs/renamed;1?.txt"),
                ("DELETE", "/Docs/report?.txt"),
            ]

            # A folder renamed onto an odd name cannot be moved there by hand: its files go up
            # under the new name and the old folder goes as a delete (kept as versions).
            (folder / "sub;dir").rename(folder / "moved?dir")
            await _wait_exact(folder, remote)
            await _wait_up_to_date(engine)
            assert (remote / "moved?dir" / "in").read_text() == FILES["sub;dir/in"]
            assert _versions_holding(remote, str(FILES["sub;dir/in"]).encode())

        # Nothing was ever MOVEd or COPYed onto a name the bug would mangle.
        mangled = [
            r
            for r in proxy.records()
            if r.destination and ("?" in r.destination or ";" in r.destination)
        ]
        assert mangled == []
    for plain in ("report", "a", "renamed"):
        assert (remote / plain).read_text() == FILES[plain], plain
    assert staging_leftovers(remote) == []
