"""WebDAV-specific behaviour, on real WsgiDAV, rclone, Apache httpd and nginx servers (the shared
contract is in test_conformance.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from syncapp.config import WebDAVRemoteConfig
from syncapp.davserver import DavServer
from syncapp.errors import RemoteAuthError, RemoteError, RemoteUnavailable
from syncapp.remotes import open_remote
from syncapp.remotes._http import normalize_etag
from syncapp.remotes.base import STAGING_PREFIX
from syncapp.remotes.webdav import WebDAVRemote
from tests.servers import free_port
from tests.servers.dav_httpd import EXPECTED, WEBDAV_PROCESSES, kind_of
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import Auth, ServerProcess, wsgidav_process

PASSWORD = "s3cret-Pa55word!"
AUTH: Auth = ("alice", PASSWORD)

ServerFactory = Callable[..., ServerProcess]
SERVERS: dict[str, ServerFactory] = dict(WEBDAV_PROCESSES)


def webdav(url: str, **kw: object) -> WebDAVRemote:
    cfg = WebDAVRemoteConfig(name="t", type="webdav", url=url, timeout=10, **kw)  # type: ignore[arg-type]
    remote = open_remote(cfg, env={"DAV_PW": PASSWORD, "WRONG_PW": "not-" + PASSWORD})
    assert isinstance(remote, WebDAVRemote)
    return remote


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own, without auth."""
    with SERVERS[request.param](tmp_path / "root") as s:
        yield s


@pytest.fixture(params=list(SERVERS))
def auth_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own that wants alice's password."""
    with SERVERS[request.param](tmp_path / "root", AUTH) as s:
        yield s


# -- credentials --------------------------------------------------------------------------------


async def test_wrong_password_is_auth_error_without_the_password(
    auth_server: ServerProcess,
) -> None:
    async with webdav(auth_server.url, username="alice", password_env="WRONG_PW") as r:
        errors: list[RemoteError] = []
        with pytest.raises(RemoteAuthError) as e1:
            await r.stat("")
        errors.append(e1.value)
        with pytest.raises(RemoteAuthError) as e2:
            await r.put("f", body(b"data"), size=4)
        errors.append(e2.value)
        with pytest.raises(RemoteAuthError) as e3:
            _ = [e async for e in r.list()]
        errors.append(e3.value)
    for err in errors:
        assert err.fatal_for_folder and not err.retryable
        assert err.status == 401
        for text in (str(err), repr(err), err.message):
            assert PASSWORD not in text
            assert "not-" + PASSWORD not in text
    assert not any(auth_server.root.iterdir()), "nothing may be written without auth"


async def test_no_credentials_is_auth_error(auth_server: ServerProcess) -> None:
    async with webdav(auth_server.url) as r:
        with pytest.raises(RemoteAuthError):
            await r.stat("")


async def test_right_password_from_env_or_config(auth_server: ServerProcess) -> None:
    async with webdav(auth_server.url, username="alice", password_env="DAV_PW") as r:
        assert PASSWORD not in r.display_url
        await r.put("f", body(b"data"), size=4)
        entry = await r.stat("f")
        assert entry is not None and entry.size == 4
    async with webdav(auth_server.url, username="alice", password=PASSWORD) as r:
        assert (await r.stat("f")) is not None
    assert (auth_server.root / "f").read_bytes() == b"data"


# -- outages ------------------------------------------------------------------------------------


async def test_server_down_is_retryable_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/dav/"
    async with webdav(url, username="alice", password_env="DAV_PW") as r:
        for attempt in (
            lambda: r.stat("x"),
            lambda: r.put("x", body(b"1"), size=1),
            lambda: r.mkdir("d"),
            lambda: r.delete("x"),
        ):
            with pytest.raises(RemoteUnavailable) as err:
                await attempt()
            assert err.value.retryable and not err.value.fatal_for_folder
            assert "refused" in str(err.value)
            assert PASSWORD not in str(err.value)
        with pytest.raises(RemoteUnavailable):
            _ = [e async for e in r.list()]


async def test_server_restart_mid_run(server: ServerProcess) -> None:
    async with webdav(server.url) as r:
        await r.put("before", body(b"1"), size=1)
        server.stop()
        with pytest.raises(RemoteUnavailable):
            await r.stat("before")
        with pytest.raises(RemoteUnavailable):
            await r.put("during", body(b"2"), size=1)
        server.start()  # same port, same root
        entry = await r.stat("before")
        assert entry is not None and entry.size == 1
        await r.put("after", body(b"3"), size=1)
        names = {e.path async for e in r.list()}
        assert names == {"before", "after"}


# -- listing ------------------------------------------------------------------------------------


async def test_depth_one_walk_matches_depth_infinity(server: ServerProcess) -> None:
    """Nextcloud and Apache refuse ``Depth: infinity``; the walk that replaces it must agree."""
    async with webdav(server.url, connections=3) as r:
        for d in ("a", "a/b", "a/b/c", "x", "x/y", "x/y/z #1"):
            await r.mkdir(d)
        await asyncio.gather(
            *(r.put(f"{d}/f{i}", body(b"x" * i), size=i)
              for d in ("a", "a/b/c", "x/y/z #1") for i in range(3))
        )
        deep = sorted((e.path, e.is_dir, e.size) for e in [e async for e in r.list()])
        # Apache and nginx refuse Depth: infinity (403): there both listings are walks.
        assert r._infinity_ok is EXPECTED[kind_of(server)].depth_infinity
        r._infinity_ok = False  # what a server refusing infinite depth leads to
        walked = sorted((e.path, e.is_dir, e.size) for e in [e async for e in r.list()])
        assert walked == deep
        assert len(deep) == 6 + 9
        sub = sorted([e.path async for e in r.list("x")])
        assert sub == ["x/y", "x/y/z #1", "x/y/z #1/f0", "x/y/z #1/f1", "x/y/z #1/f2"]


async def test_stopping_a_listing_early_cancels_the_walk(server: ServerProcess) -> None:
    async with webdav(server.url) as r:
        for i in range(6):
            await r.mkdir(f"d{i}")
            await r.put(f"d{i}/f", body(b"1"), size=1)
        r._infinity_ok = False
        listing = r.list()
        assert isinstance(listing, AsyncGenerator)
        first = await anext(listing)
        assert first.path.startswith("d")
        await listing.aclose()  # must not leave PROPFIND tasks running
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in pending if "_walk" in repr(t.get_coro())]


# -- the Destination header ---------------------------------------------------------------------


async def test_stock_wsgidav_destination_bug_never_clobbers(tmp_path: Path) -> None:
    """Stock WsgiDAV decodes Destination before parsing it: a MOVE to ``what?`` would replace
    ``what``. The backend notices (one probe) and moves such names by hand instead."""
    with wsgidav_process(tmp_path / "root") as server:  # stock: the bug is in
        async with webdav(server.url) as r:
            await r.put("what", body(b"precious"), size=8)
            await r.put("a", body(b"also precious"), size=13)
            await r.put("what?", body(b"question"), size=8)
            await r.put("a;b", body(b"semicolon"), size=9)
            assert r._dest_ok is False
            await r.move("a;b", "moved?")
            await r.copy("what?", "copied;1")
            await r.mkdir("dir")
            with pytest.raises(RemoteError):
                await r.move("dir", "dir?")
            files = {e.path: e async for e in r.list()}
        assert set(files) == {"what", "a", "what?", "moved?", "copied;1", "dir"}
        assert (server.root / "what").read_bytes() == b"precious"
        assert (server.root / "a").read_bytes() == b"also precious"
        assert (server.root / "what?").read_bytes() == b"question"
        assert (server.root / "moved?").read_bytes() == b"semicolon"
        assert (server.root / "copied;1").read_bytes() == b"question"
        assert not [n for n in os.listdir(server.root) if n.startswith(STAGING_PREFIX)]


async def test_odd_destinations_land_intact_on_every_server(server: ServerProcess) -> None:
    """Servers that parse Destination right keep atomic moves of such names (``_dest_ok``);
    stock WsgiDAV gets the fallback; on every server the bytes land under the right names."""
    async with webdav(server.url) as r:
        await r.put("what", body(b"precious"), size=8)
        await r.put("what?", body(b"question"), size=8)
        assert r._dest_ok is EXPECTED[kind_of(server)].destination_intact
        await r.move("what?", "a;b?c")
        assert (server.root / "what").read_bytes() == b"precious"
        assert (server.root / "a;b?c").read_bytes() == b"question"
        assert not [n for n in os.listdir(server.root) if n.startswith(STAGING_PREFIX)]


# -- mtime --------------------------------------------------------------------------------------


async def test_send_mtime_off(server: ServerProcess) -> None:
    async with webdav(server.url, send_mtime=False) as r:
        assert not r.capabilities.server_mtime
        await r.put("f", body(b"x"), size=1, mtime_ns=1_000_000_000 * 10**9)
        entry = await r.stat("f")
        assert entry is not None and entry.mtime_ns is not None
        assert entry.mtime_ns > 1_700_000_000 * 10**9  # the server's clock, not ours


async def test_server_mode_puts_in_place(server: ServerProcess) -> None:
    with FaultProxy(server.port) as proxy:  # pass-through: it records every request
        async with webdav(proxy.url, atomic_upload="server") as r:
            first = await r.put("f", body(b"one"), size=3)
            entry = await r.stat("f")
            if EXPECTED[kind_of(server)].file_etags:
                # A plain put returns the ETag of the PUT answer (nothing changed the file after
                # it), or none; never one that differs from what the server lists.
                assert entry is not None and entry.etag and first.etag in (None, entry.etag)
                second = await r.put("f", body(b"two!"), size=4, if_match=entry.etag)
                again = await r.stat("f")
                assert again is not None and second.etag == again.etag
            else:  # nginx: no ETag to be conditional on
                await r.put("f", body(b"two!"), size=4)
            assert (server.root / "f").read_bytes() == b"two!"
        sent = [(rec.method, rec.path) for rec in proxy.records()]
    # In place: each put is one PUT to the real name; no temporary name, no MOVE.
    assert [p for m, p in sent if m == "PUT"] == ["/f", "/f"], sent
    assert not [m for m, _ in sent if m in ("MOVE", "COPY")], sent
    assert not [p for _, p in sent if STAGING_PREFIX in p], sent


# -- the embedded server ------------------------------------------------------------------------


def test_davserver_in_process(tmp_path: Path) -> None:
    with DavServer(tmp_path / "served", username="bob", password=PASSWORD) as dav:
        assert dav.port != 0 and dav.url == f"http://127.0.0.1:{dav.port}/"
        assert httpx.request("PROPFIND", dav.url, headers={"Depth": "0"}).status_code == 401
        ok = httpx.put(dav.url + "hello.txt", content=b"hi", auth=("bob", PASSWORD))
        assert ok.status_code == 201
    assert (tmp_path / "served" / "hello.txt").read_bytes() == b"hi"
    with pytest.raises(httpx.ConnectError):
        httpx.get(dav.url)


# -- pure helpers -------------------------------------------------------------------------------


def test_hrefs_are_decoded_relative_to_the_base() -> None:
    r = webdav("http://example.test:8080/remote.php/dav/files/al%20ice/")
    rel = r._rel_path
    assert rel("/remote.php/dav/files/al%20ice/") == ""
    assert rel("/remote.php/dav/files/al%20ice") == ""
    assert rel("http://example.test:8080/remote.php/dav/files/al%20ice/") == ""
    assert rel("/remote.php/dav/files/al%20ice/a%20b/") == "a b"
    assert rel("https://proxy.example/remote.php/dav/files/al%20ice/x%3Fy") == "x?y"
    assert rel("/remote.php/dav/files/al%20ice/semi;colon") == "semi;colon"
    assert rel("/remote.php/dav/files/al%20ice/a%252Fb") == "a%2Fb"
    assert rel("/remote.php/dav/files/al%20ice/caf%C3%A9/%E6%97%A5") == "café/日"
    assert rel("/remote.php/dav/files/al%20ice/a+b&amp") == "a+b&amp"
    assert rel("sub/rel") == "sub/rel"
    assert rel("/remote.php/dav/files/bob/x") is None
    assert r._url("a b/c#d?e") == (
        "http://example.test:8080/remote.php/dav/files/al%20ice/a%20b/c%23d%3Fe"
    )


def test_etags_are_normalised() -> None:
    assert normalize_etag('"abc"') == "abc"
    assert normalize_etag('W/"abc"') == "abc"
    assert normalize_etag("abc-1-2") == "abc-1-2"
    assert normalize_etag("") is None
    assert normalize_etag(None) is None
