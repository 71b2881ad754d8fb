"""The ``http`` remote against a real upload API (tests/servers/http_api.py under uvicorn)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from syncapp.config import HTTPRemoteConfig
from syncapp.errors import (
    RemoteAuthError,
    RemoteBusy,
    RemoteError,
    RemoteFull,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteTooLarge,
    RemoteUnavailable,
)
from syncapp.remotes import open_remote
from syncapp.remotes.http import HTTPRemote
from tests.helpers import syncapp, tree, write_tree
from tests.integration.backends import BackendContext
from tests.servers import free_port
from tests.servers.http_api import HTTPAPIServer, http_api_server

TOKEN = "conformance-token-0123"  # the session server's token (shared with backends.py)
MiB = 1024 * 1024


@dataclass
class APICase:
    server: HTTPAPIServer
    space: str

    def cfg(self, **changes: Any) -> HTTPRemoteConfig:
        base = HTTPRemoteConfig(
            name="api",
            type="http",
            url=self.server.url(self.space),
            list_url=self.server.url(self.space, "list"),
            token_env="API_TOKEN",
        )
        return replace(base, **changes)

    def remote(self, env: dict[str, str] | None = None, **changes: Any) -> HTTPRemote:
        r = open_remote(self.cfg(**changes), env={"API_TOKEN": TOKEN} if env is None else env)
        assert isinstance(r, HTTPRemote)
        return r

    def stored(self, path: str) -> Path:
        return self.server.root / self.space / path


@pytest.fixture
def api(backend_context: BackendContext) -> APICase:
    server = backend_context.server("http-api", lambda root: http_api_server(root, token=TOKEN))
    return APICase(server, backend_context.fresh_name("api"))


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read(r: HTTPRemote, path: str) -> bytes:
    out = bytearray()
    async with r.get(path) as body:
        async for c in body:
            out += c
    return bytes(out)


async def paths(r: HTTPRemote, path: str = "", *, recursive: bool = True) -> list[str]:
    return [e.path async for e in r.list(path, recursive=recursive)]


# -- uploads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,body", [("PUT", "raw"), ("POST", "raw"), ("POST", "multipart")])
async def test_upload_round_trip(api: APICase, method: str, body: str) -> None:
    data = b"payload\r\n--not-a-boundary--\r\n" * 1000
    async with api.remote(method=method, body=body) as r:
        result = await r.put("docs/a file.txt", chunks(data), size=len(data), mtime_ns=10**18)
        assert api.stored("docs/a file.txt").read_bytes() == data
        st = await r.stat("docs/a file.txt")
        assert st is not None and st.size == len(data) and not st.is_dir
        assert st.etag == result.etag == hashlib.md5(data).hexdigest()
        assert st.mtime_ns is not None
        assert await read(r, "docs/a file.txt") == data
        await r.put("empty", chunks(b""), size=0)
        assert api.stored("empty").read_bytes() == b""


@pytest.mark.parametrize("body", ["raw", "multipart"])
async def test_uploads_are_streamed(api: APICase, body: str) -> None:
    size = 32 * MiB
    block = hashlib.sha256(b"x").digest() * (MiB // 32)

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield block

    async with api.remote(body=body) as r:
        await r.put("warm", chunks(b"x"), size=1)
        tracemalloc.start()
        try:
            await r.put("big.bin", gen(), size=size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert api.stored("big.bin").stat().st_size == size
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB held while uploading 32 MiB"


ODD = ["sp ace", "hash#tag", "100%", "%41", "what?x=1", "a&b=c", "plus+", "ünï ☃", "semi;colon"]


async def test_odd_names(api: APICase) -> None:
    async with api.remote() as r:
        for name in ODD:
            await r.put(f"d/{name}", chunks(name.encode()), size=len(name.encode()))
            assert api.stored(f"d/{name}").read_bytes() == name.encode()  # not double-encoded
            assert await read(r, f"d/{name}") == name.encode()
        assert sorted(await paths(r, "d")) == sorted(f"d/{n}" for n in ODD)
        for name in ODD:
            await r.delete(f"d/{name}")
        assert await paths(r) == []


async def test_wrong_body_size_stores_nothing(api: APICase) -> None:
    async with api.remote() as r:
        with pytest.raises(RemoteError):
            await r.put("short", chunks(b"12345"), size=10)
        with pytest.raises(RemoteError):
            await r.put("long", chunks(b"x" * 15), size=10)
        assert await paths(r) == []


# -- listing, stat, delete ------------------------------------------------------------------------


async def test_listing_and_implied_directories(api: APICase) -> None:
    async with api.remote() as r:
        assert not r.capabilities.directories and not r.capabilities.server_move
        for p in ("top", "a/one", "a/b/two", "a/b/c/three"):
            await r.put(p, chunks(p.encode()), size=len(p))
        assert await paths(r) == ["a", "a/b", "a/b/c", "a/b/c/three", "a/b/two", "a/one", "top"]
        assert await paths(r, recursive=False) == ["a", "top"]
        assert await paths(r, "a/b", recursive=False) == ["a/b/c", "a/b/two"]
        a = await r.stat("a/b")
        assert a is not None and a.is_dir
        assert await r.stat("a/bx") is None
        entries = {e.path: e async for e in r.list("a")}
        assert entries["a/one"].size == 5 and entries["a/one"].etag
        await r.delete("a/b")  # each file the listing knows
        assert await paths(r) == ["a", "a/one", "top"]
        await r.delete("a/b")  # missing already is fine
        with pytest.raises(RemoteError):
            await r.delete("")


async def test_without_list_url(api: APICase) -> None:
    async with api.remote(list_url="") as r:
        await r.put("d/f", chunks(b"x"), size=1)
        assert await paths(r) == []
        assert await r.stat("d") is None  # cannot know without a listing
        root = await r.stat("")
        assert root is not None and root.is_dir
        await r.delete("d/f")
        assert not api.stored("d/f").exists()
        with pytest.raises(RemoteNotFound):
            await read(r, "d/f")


async def test_custom_delete_method_and_url(api: APICase) -> None:
    remove = api.server.url(api.space, "remove")
    async with api.remote(delete_method="POST", delete_url=remove, list_url="") as r:
        await r.put("f", chunks(b"x"), size=1)
        await r.delete("f")
        assert not api.stored("f").exists()
        await r.delete("f")  # 404: already gone


# -- auth and errors ------------------------------------------------------------------------------


async def test_wrong_token_fails_once(api: APICase) -> None:
    bad = "wrong-token-abcdef"
    async with api.remote(env={"API_TOKEN": bad}) as r:
        before = api.server.requests()
        with pytest.raises(RemoteAuthError) as info:
            await r.put("f", chunks(b"x"), size=1)
        assert api.server.requests() == before + 1  # no retries from the remote
        assert info.value.fatal_for_folder and not info.value.retryable
        assert bad not in f"{info.value} {info.value!r}"
        assert info.value.status == 401


async def test_missing_token_env(api: APICase) -> None:
    with pytest.raises(RemoteAuthError, match="API_TOKEN"):
        async with api.remote(env={}):
            pass


@pytest.fixture
def strict_api(tmp_path: Path) -> Iterator[APICase]:
    """An API that wants a token, an X-Api-Key header and the form field "upload"."""
    with http_api_server(
        tmp_path / "strict", token=TOKEN, require_header=("X-Api-Key", "k-123456"),
        field_name="upload",
    ) as server:
        yield APICase(server, "s")


async def test_extra_headers_and_field_name(strict_api: APICase) -> None:
    async with strict_api.remote(method="POST", body="multipart", field_name="upload") as r:
        with pytest.raises(RemoteAuthError) as info:
            await r.put("f", chunks(b"x"), size=1)
        assert info.value.status == 403
    headers = {"X-Api-Key": "k-123456"}
    async with strict_api.remote(
        method="POST", body="multipart", field_name="upload", headers=headers
    ) as r:
        await r.put("ünï.txt", chunks(b"form data"), size=9)
        assert strict_api.stored("ünï.txt").read_bytes() == b"form data"
    async with strict_api.remote(
        method="POST", body="multipart", field_name="file", headers=headers
    ) as r:
        with pytest.raises(RemoteProtocolError, match="no form field"):
            await r.put("g", chunks(b"x"), size=1)


@pytest.mark.parametrize(
    "status,error,retryable",
    [
        (503, RemoteUnavailable, True),
        (500, RemoteUnavailable, True),
        (429, RemoteBusy, True),
        (507, RemoteFull, False),
        (413, RemoteTooLarge, False),
        (400, RemoteProtocolError, False),
        (403, RemoteAuthError, False),
    ],
)
async def test_status_mapping(
    api: APICase, status: int, error: type[RemoteError], retryable: bool
) -> None:
    url = f"{api.server.base_url}/{api.space}/status/{status}?name={{path}}"
    async with api.remote(url=url) as r:
        with pytest.raises(error) as info:
            await r.put("f", chunks(b"x" * 1000), size=1000)
    err = info.value
    assert type(err) is error and err.status == status and err.retryable is retryable
    assert f"forced status {status}" in str(err)  # the API's own explanation
    if retryable:
        assert err.retry_after == 7


async def test_unreachable_api_is_retryable() -> None:
    cfg = HTTPRemoteConfig(name="x", type="http", url=f"http://127.0.0.1:{free_port()}/{{path}}")
    async with open_remote(cfg, env={}) as r:
        with pytest.raises(RemoteUnavailable) as info:
            await r.put("f", chunks(b"x"), size=1)
        assert info.value.retryable


async def test_capabilities_follow_config(api: APICase) -> None:
    assert api.remote(atomic=True).capabilities.atomic_put
    assert not api.remote().capabilities.atomic_put


# -- the engine on an API without copy or move -----------------------------------------------------


def test_renamed_folder_arrives_in_the_same_run(api: APICase, tmp_path: Path) -> None:
    """No server-side rename or copy: a renamed folder is uploaded again under its new name (all
    of it, in the same run) and the old name is deleted."""
    folder = tmp_path / "docs"
    write_tree(folder, {f"Photos/img {i}.jpg": f"image {i}" for i in range(5)})
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.api]\ntype = "http"\nurl = "{api.cfg().url}"\n'
        f'list_url = "{api.cfg().list_url}"\ntoken_env = "API_TOKEN"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "api"\n'
    )
    env = {"API_TOKEN": TOKEN}
    assert syncapp("--config", str(cfg), "run", "--once", env=env).returncode == 0
    (folder / "Photos").rename(folder / "Photos 2024")
    res = syncapp("--config", str(cfg), "run", "--once", env=env)
    assert res.returncode == 0, res.stderr + res.stdout
    assert tree(api.server.root / api.space) == tree(folder)
    status = syncapp("--config", str(cfg), "status", "--json", env=env)
    assert '"files_in_sync": 5' in status.stdout, status.stdout
