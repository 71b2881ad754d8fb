"""The ``Remote`` base class does the checks once, for every backend (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from syncapp.errors import (
    RemoteClosedError,
    RemoteConflict,
    RemoteError,
    RemoteUnsupported,
    SyncappError,
)
from syncapp.remotes.base import Capabilities, PutResult, Remote, RemoteEntry


class Recorder(Remote):
    """A backend that records what reaches it."""

    kind = "recorder"
    capabilities = Capabilities(server_move=False, server_copy=False)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ...]] = []

    @property
    def display_url(self) -> str:
        return "recorder:"

    async def _stat(self, path: str) -> RemoteEntry | None:
        self.calls.append(("stat", path))
        return None

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        self.calls.append(("list", path))
        try:
            for i in range(3):
                yield RemoteEntry(path=f"{path}/{i}".lstrip("/"), is_dir=False)
        finally:
            self.calls.append(("list-closed", path))

    async def _put(
        self,
        path: str,
        body: AsyncIterable[bytes],
        *,
        size: int,
        mtime_ns: int | None,
        if_match: str | None,
        upload_id: str | None,
    ) -> PutResult:
        self.calls.append(("put", path))
        return PutResult()

    def _get(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.calls.append(("get", path))

        @asynccontextmanager
        async def cm() -> AsyncIterator[AsyncIterator[bytes]]:
            async def chunks() -> AsyncIterator[bytes]:
                yield b""

            yield chunks()

        return cm()

    async def _mkdir(self, path: str) -> None:
        self.calls.append(("mkdir", path))

    async def _delete(self, path: str) -> None:
        self.calls.append(("delete", path))


class Mover(Recorder):
    capabilities = Capabilities(server_move=True, server_copy=False)

    async def _move(self, src: str, dst: str) -> None:
        self.calls.append(("move", src, dst))


async def empty() -> AsyncIterator[bytes]:
    return
    yield b""


async def test_backends_see_clean_paths_only() -> None:
    async with Recorder() as r:
        await r.stat("/a//b/")
        await r.put("a/b/", empty(), size=0)
        await r.mkdir("//d")
        await r.delete("d/")
        async with r.get("/a/b"):
            pass
        assert [e.path async for e in r.list("/x/")] == ["x/0", "x/1", "x/2"]
        await r.discard_upload("/a/b", "u1")
    assert r.calls == [
        ("stat", "a/b"),
        ("put", "a/b"),
        ("mkdir", "d"),
        ("delete", "d"),
        ("get", "a/b"),
        ("list", "x"),
        ("list-closed", "x"),
        ("delete", "a/.syncapp-tmp-u1"),
    ]


async def test_bad_paths_and_the_root_never_reach_the_backend() -> None:
    async with Recorder() as r:
        for bad in ("..", "a/../b", "a/./b", "a\0b"):
            with pytest.raises(RemoteError):
                await r.stat(bad)
            with pytest.raises(RemoteError):
                await r.put(bad, empty(), size=0)
        with pytest.raises(RemoteConflict):
            await r.put("/", empty(), size=0)
        with pytest.raises(RemoteError):
            await r.delete("")
        with pytest.raises(RemoteConflict):
            r.get("")
        with pytest.raises(RemoteError):
            await r.discard_upload("a", "../../x")
        await r.mkdir("/")  # the root exists: nothing to do
    assert r.calls == []


async def test_unsupported_operations_say_so() -> None:
    async with Recorder() as r:
        with pytest.raises(RemoteUnsupported) as caught:
            await r.move("a", "b")
        assert isinstance(caught.value, NotImplementedError)
        assert isinstance(caught.value, SyncappError) and not caught.value.retryable
        with pytest.raises(RemoteUnsupported):
            await r.copy("a", "b")
        assert await r.cleanup_stale_uploads("x") == 0
    assert r.calls == []


async def test_declared_move_is_checked_then_called() -> None:
    async with Mover() as r:
        await r.move("/a/", "b//c")
        for src, dst in (("", "b"), ("a", ""), ("a", "a/b"), ("a/b", "a")):
            with pytest.raises(RemoteConflict):
                await r.move(src, dst)
        with pytest.raises(RemoteUnsupported):
            await r.copy("a", "b")
    assert r.calls == [("move", "a", "b/c")]


async def test_closed_or_unopened_remote_refuses_everything() -> None:
    r = Mover()
    with pytest.raises(RemoteClosedError):
        await r.stat("x")
    async with r:
        pass
    for call in (
        lambda: r.stat("x"),
        lambda: r.put("x", empty(), size=0),
        lambda: r.mkdir("x"),
        lambda: r.delete("x"),
        lambda: r.move("x", "y"),
        lambda: r.copy("x", "y"),  # not declared: the closed remote says so first
        lambda: r.cleanup_stale_uploads(),
        lambda: r.discard_upload("x", "u"),
    ):
        with pytest.raises(RemoteClosedError):
            await call()
    with pytest.raises(RemoteClosedError):
        r.get("x")
    with pytest.raises(RemoteClosedError):
        [e async for e in r.list()]
    assert r.calls == []


async def test_leaving_a_listing_early_closes_the_backends() -> None:
    async with Recorder() as r:
        listing = r.list("x")
        first = await anext(listing)
        assert first.path == "x/0"
        assert ("list-closed", "x") not in r.calls
        await listing.aclose()  # type: ignore[attr-defined]
        # At once, not when the garbage collector finds the backend's generator.
        assert ("list-closed", "x") in r.calls
