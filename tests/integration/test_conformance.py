"""One conformance suite for every remote backend, each on its real server (see backends.py).

Optional behaviour is tested when the backend declares it in ``capabilities`` and skipped
otherwise, so a new backend only has to be honest about what it can do.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from syncapp.errors import (
    RemoteClosedError,
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemotePreconditionFailed,
    RemoteUnsupported,
)
from syncapp.remotes import Remote, RemoteEntry
from syncapp.remotes.base import STAGING_PREFIX, PutResult, staging_name
from tests.integration.backends import Backend
from tests.servers.dav_httpd import EXPECTED

# -- helpers ------------------------------------------------------------------------------------


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def put_bytes(r: Remote, path: str, data: bytes, **kw: object) -> PutResult:
    return await r.put(path, chunks(data), size=len(data), **kw)  # type: ignore[arg-type]


async def read(r: Remote, path: str) -> bytes:
    out = bytearray()
    async with r.get(path) as body:
        async for chunk in body:
            out += chunk
    return bytes(out)


async def listing(r: Remote, path: str = "", *, recursive: bool = True) -> dict[str, RemoteEntry]:
    entries = [e async for e in r.list(path, recursive=recursive)]
    by_path = {e.path: e for e in entries}
    assert len(by_path) == len(entries), f"duplicate paths in listing: {entries}"
    return by_path


def assert_no_staging(entries: dict[str, RemoteEntry]) -> None:
    leftovers = [p for p in entries if p.rsplit("/", 1)[-1].startswith(STAGING_PREFIX)]
    assert not leftovers, f"staging files left behind: {leftovers}"


def check_tree(
    r: Remote, entries: dict[str, RemoteEntry], files: set[str], dirs: set[str]
) -> None:
    """``entries`` hold exactly ``files``, and ``dirs`` as directories. A backend without real
    directories (S3, plain HTTP) may leave some or all directories out, never invent others."""
    assert {p for p, e in entries.items() if not e.is_dir} == files
    listed_dirs = {p for p, e in entries.items() if e.is_dir}
    if r.capabilities.directories:
        assert listed_dirs == dirs
    else:
        assert listed_dirs <= dirs


def needs(r: Remote, flag: str) -> None:
    if not getattr(r.capabilities, flag):
        pytest.skip(f"{r.kind} does not declare {flag}")


class BodyFailed(Exception):
    """Raised by a test's body to simulate a local read error half-way through an upload."""


# -- basic operations ----------------------------------------------------------------------------


async def test_put_stat_get_roundtrip(remote_backend: Backend) -> None:
    data = b"hello, remote\n" * 1000
    async with remote_backend.remote() as r:
        result = await put_bytes(r, "hello.txt", data)
        entry = await r.stat("hello.txt")
        assert entry is not None
        assert entry.path == "hello.txt"
        assert not entry.is_dir
        assert entry.size == len(data)
        if result.etag is not None:
            assert entry.etag == result.etag
        assert await read(r, "hello.txt") == data
        assert_no_staging(await listing(r))
    if remote_backend.storage is not None:
        assert remote_backend.stored("hello.txt").read_bytes() == data


async def test_stat_missing_and_directories(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        assert await r.stat("nope") is None
        assert await r.stat("nope/deeper") is None
        await r.mkdir("d")
        if r.capabilities.directories:
            root = await r.stat("")
            assert root is not None and root.is_dir
            d = await r.stat("d")
            assert d is not None and d.is_dir and d.path == "d"


async def test_list_recursive_nested(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.mkdir("a")
        await r.mkdir("a/b")
        await r.mkdir("a/b/c")
        await r.mkdir("empty")
        await put_bytes(r, "top.txt", b"1")
        await put_bytes(r, "a/one.txt", b"22")
        await put_bytes(r, "a/b/two.txt", b"333")
        await put_bytes(r, "a/b/c/three.txt", b"4444")

        everything = await listing(r)
        check_tree(
            r, everything,
            {"top.txt", "a/one.txt", "a/b/two.txt", "a/b/c/three.txt"},
            {"a", "a/b", "a/b/c", "empty"},
        )
        assert everything["a/b/c/three.txt"].size == 4
        assert everything["top.txt"].size == 1

        check_tree(r, await listing(r, recursive=False), {"top.txt"}, {"a", "empty"})
        check_tree(
            r, await listing(r, "a"),
            {"a/one.txt", "a/b/two.txt", "a/b/c/three.txt"}, {"a/b", "a/b/c"},
        )
        check_tree(r, await listing(r, "a/b", recursive=False), {"a/b/two.txt"}, {"a/b/c"})
        assert await listing(r, "empty") == {}


async def test_list_of_missing_path_or_file_is_empty(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await put_bytes(r, "f", b"x")
        assert await listing(r, "missing") == {}
        assert await listing(r, "missing", recursive=False) == {}
        assert await listing(r, "f") == {}


async def test_put_replaces(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await put_bytes(r, "f.bin", b"first version, rather long")
        await put_bytes(r, "f.bin", b"second")
        assert await read(r, "f.bin") == b"second"
        entry = await r.stat("f.bin")
        assert entry is not None and entry.size == 6
        assert_no_staging(await listing(r))


async def test_put_into_missing_parent_fails(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        needs(r, "directories")
        with pytest.raises((RemoteConflict, RemoteNotFound)):
            await put_bytes(r, "no/such/dir/f.txt", b"data")
        assert await r.stat("no") is None
        assert_no_staging(await listing(r))


async def test_empty_file(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.put("empty", chunks(b""), size=0)
        entry = await r.stat("empty")
        assert entry is not None and not entry.is_dir and entry.size == 0
        assert await read(r, "empty") == b""


async def test_get_missing_raises_not_found(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        with pytest.raises(RemoteNotFound):
            await read(r, "missing.txt")


async def test_get_streams_in_chunks(remote_backend: Backend) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    async with remote_backend.remote() as r:
        await put_bytes(r, "two-mib", data)
        sizes = []
        digest = hashlib.sha256()
        async with r.get("two-mib") as body:
            async for chunk in body:
                sizes.append(len(chunk))
                digest.update(chunk)
        assert digest.digest() == hashlib.sha256(data).digest()
        assert len(sizes) > 1, "a 2 MiB download arrived as one chunk"


async def test_mkdir_is_idempotent_and_checks(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.mkdir("d")
        await r.mkdir("d")  # existing already is fine
        await r.mkdir("")  # the root exists
        needs(r, "directories")
        entry = await r.stat("d")
        assert entry is not None and entry.is_dir
        with pytest.raises((RemoteConflict, RemoteNotFound)):
            await r.mkdir("missing/child")
        await put_bytes(r, "file", b"x")
        with pytest.raises(RemoteConflict):
            await r.mkdir("file")
        assert await read(r, "file") == b"x"


async def test_delete(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await put_bytes(r, "f", b"x")
        await r.mkdir("d")
        await r.mkdir("d/e")
        await put_bytes(r, "d/e/g", b"y")
        await put_bytes(r, "keep", b"z")
        assert await r.stat("d/e/g") is not None

        await r.delete("f")
        assert await r.stat("f") is None
        await r.delete("d")  # recursive
        assert await r.stat("d") is None
        assert await r.stat("d/e/g") is None
        await r.delete("d")  # missing already is fine
        await r.delete("never/was/here")
        assert set(await listing(r)) == {"keep"}
        with pytest.raises(RemoteError):
            await r.delete("")  # never the root


async def test_invalid_paths_are_refused(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        for bad in ("..", "../escape", "a/../../escape", "a/./b"):
            with pytest.raises(RemoteError):
                await put_bytes(r, bad, b"x")
            with pytest.raises(RemoteError):
                await r.stat(bad)
    if remote_backend.storage is not None:
        assert not (remote_backend.storage.parent / "escape").exists()


# -- move and copy ------------------------------------------------------------------------------


async def test_move_file(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        needs(r, "server_move")
        await r.mkdir("sub")
        await put_bytes(r, "a.txt", b"content a")
        await r.move("a.txt", "sub/b.txt")
        assert await r.stat("a.txt") is None
        assert await read(r, "sub/b.txt") == b"content a"

        # replaces an existing destination
        await put_bytes(r, "c.txt", b"content c")
        await r.move("c.txt", "sub/b.txt")
        assert await read(r, "sub/b.txt") == b"content c"
        check_tree(r, await listing(r), {"sub/b.txt"}, {"sub"})


async def test_move_directory(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        needs(r, "server_move")
        await r.mkdir("src")
        await r.mkdir("src/inner")
        await put_bytes(r, "src/inner/f", b"deep")
        await put_bytes(r, "src/g", b"shallow")
        await r.move("src", "dst")
        assert await r.stat("src") is None
        check_tree(r, await listing(r), {"dst/inner/f", "dst/g"}, {"dst", "dst/inner"})
        assert await read(r, "dst/inner/f") == b"deep"


async def test_move_errors_keep_data(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        needs(r, "server_move")
        await put_bytes(r, "dst", b"precious")
        # A missing source must not destroy the destination (rclone's MOVE would).
        with pytest.raises(RemoteNotFound):
            await r.move("missing", "dst")
        assert await read(r, "dst") == b"precious"
        if r.capabilities.directories:
            # Refused (the data stays), or done with the parents made (nginx): never lost.
            try:
                await r.move("dst", "no/parent/here")
            except (RemoteConflict, RemoteNotFound):
                assert await read(r, "dst") == b"precious"
            else:
                assert await read(r, "no/parent/here") == b"precious"
                await r.move("no/parent/here", "dst")
        await r.mkdir("d")
        with pytest.raises(RemoteConflict):
            await r.move("d", "d/inside")
        assert (await r.stat("d")) is not None


async def test_copy(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        needs(r, "server_copy")
        await r.mkdir("sub")
        await put_bytes(r, "a", b"original")
        await r.copy("a", "sub/a-copy")
        assert await read(r, "a") == b"original"
        assert await read(r, "sub/a-copy") == b"original"

        await put_bytes(r, "b", b"other")
        await r.copy("b", "sub/a-copy")  # replaces
        assert await read(r, "sub/a-copy") == b"other"

        with pytest.raises(RemoteNotFound):
            await r.copy("missing", "sub/a-copy")
        assert await read(r, "sub/a-copy") == b"other"
        assert_no_staging(await listing(r))


# -- names --------------------------------------------------------------------------------------

ODD_NAMES = [
    "with space.txt",
    "hash#tag",
    "100% sure",
    "what?",
    "a&b=c",
    "a+b",
    "semi;colon",
    "café é",
    "日本語のファイル",
    "a%2Fb",
    "%20",
    "quote'n\"double",
    "[brackets]{braces}",
    "back\\slash",
    "~tilde",
    ".hidden",
    "trailing.dot.",
]


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_names_round_trip(
    remote_backend: Backend, name: str, request: pytest.FixtureRequest
) -> None:
    if name in remote_backend.unsupported_names:
        # A marker, not pytest.xfail(): the test still runs, and strict turns a server that
        # learned to store the name (or a fix of ours) into a failure to notice.
        request.applymarker(
            pytest.mark.xfail(reason=f"{remote_backend.name} cannot store {name!r}", strict=True)
        )
    data = name.encode() * 3
    async with remote_backend.remote() as r:
        await put_bytes(r, name, data)
        await r.mkdir(f"dir {name}")
        await put_bytes(r, f"dir {name}/{name}", data)

        check_tree(r, await listing(r), {name, f"dir {name}/{name}"}, {f"dir {name}"})
        entry = await r.stat(name)
        assert entry is not None and entry.path == name and entry.size == len(data)
        assert await read(r, f"dir {name}/{name}") == data
        if remote_backend.storage is not None:
            # exactly this name on the server's disk: no double encoding, no decoding
            assert remote_backend.stored(f"dir {name}/{name}").read_bytes() == data

        if r.capabilities.server_move:
            await r.move(name, f"moved {name}")
            assert await read(r, f"moved {name}") == data
        await r.delete(f"dir {name}")
        assert await r.stat(f"dir {name}") is None


# -- big and many -------------------------------------------------------------------------------

LARGE = 50 * 1024 * 1024
LARGE_CHUNK = 1024 * 1024


async def large_body(digest: hashlib._Hash) -> AsyncIterator[bytes]:
    """50 MiB made one chunk at a time: the test never holds the file either."""
    for i in range(LARGE // LARGE_CHUNK):
        chunk = hashlib.sha256(i.to_bytes(4, "big")).digest() * (LARGE_CHUNK // 32)
        digest.update(chunk)
        yield chunk


async def test_large_streamed_put(remote_backend: Backend) -> None:
    sent = hashlib.sha256()
    async with remote_backend.remote() as r:
        await r.put("large.bin", large_body(sent), size=LARGE)
        entry = await r.stat("large.bin")
        assert entry is not None and entry.size == LARGE
        got = hashlib.sha256()
        async with r.get("large.bin") as body:
            async for chunk in body:
                got.update(chunk)
        assert got.hexdigest() == sent.hexdigest()
        assert_no_staging(await listing(r))


async def test_concurrent_puts(remote_backend: Backend) -> None:
    async def put_as_the_engine_does(r: Remote, path: str, data: bytes) -> None:
        # A server may answer a burst with a retryable 5xx (rclone serve s3 now and then says 500
        # while it creates the folder on its disk); retrying those is the engine's job, and the
        # contract is only that the error says so. Anything else fails at once.
        for attempt in range(3):
            try:
                await put_bytes(r, path, data)
                return
            except RemoteError as e:
                if not e.retryable or attempt == 2:
                    raise
                await asyncio.sleep(0.2)

    async with remote_backend.remote() as r:
        await r.mkdir("many")
        await asyncio.gather(
            *(put_as_the_engine_does(r, f"many/f{i:02}", b"x" * i) for i in range(24))
        )
        entries = await listing(r, "many")
        assert set(entries) == {f"many/f{i:02}" for i in range(24)}
        assert all(entries[f"many/f{i:02}"].size == i for i in range(24))


# -- metadata and preconditions -----------------------------------------------------------------


async def test_mtime_is_kept(remote_backend: Backend) -> None:
    mtime_ns = 1_600_000_000_123_456_789
    async with remote_backend.remote() as r:
        await r.learn("")  # a server's mtime handling is seen, not declared
        needs(r, "server_mtime")
        await put_bytes(r, "old.txt", b"from the past", mtime_ns=mtime_ns)
        entry = await r.stat("old.txt")
        assert entry is not None and entry.mtime_ns is not None
        # HTTP dates have one-second resolution; a local folder keeps nanoseconds.
        assert entry.mtime_ns // 10**9 == mtime_ns // 10**9
        assert mtime_ns - entry.mtime_ns < 10**9
        listed = (await listing(r))["old.txt"]
        assert listed.mtime_ns == entry.mtime_ns


async def test_distinct_stamps(remote_backend: Backend) -> None:
    """Two writes of one size within one second, with the same mtime sent: a backend that
    declares (or, for WebDAV, learned) distinct stamps shows them apart; a WebDAV server
    learns what its table of facts says."""
    second = 10**9
    async with remote_backend.remote() as r:
        await r.learn("")
        if remote_backend.name.startswith("webdav-"):
            kind = remote_backend.name.removeprefix("webdav-")
            assert r.capabilities.distinct_stamps is EXPECTED[kind].distinct_stamps
        needs(r, "distinct_stamps")
        for _ in range(3):  # a server on its own clock may pass a second between the writes
            await put_bytes(r, "s", b"one", mtime_ns=1_600_000_000 * second)
            one = await r.stat("s")
            await put_bytes(r, "s", b"two", mtime_ns=1_600_000_000 * second)
            two = await r.stat("s")
            assert one is not None and two is not None and one.mtime_ns and two.mtime_ns
            if one.mtime_ns // second == two.mtime_ns // second:
                break
        assert one is not None and two is not None
        assert (one.etag, one.mtime_ns) != (two.etag, two.mtime_ns)


async def test_if_match(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.learn("")  # If-Match needs ETags, which a server shows or not
        needs(r, "conditional_put")
        first = await put_bytes(r, "f", b"one")
        entry = await r.stat("f")
        assert entry is not None and entry.etag
        etag = entry.etag
        if first.etag is not None:
            assert first.etag == etag

        with pytest.raises(RemotePreconditionFailed):
            await put_bytes(r, "f", b"two", if_match="not-the-etag")
        assert await read(r, "f") == b"one"

        second = await put_bytes(r, "f", b"three", if_match=etag)
        assert await read(r, "f") == b"three"
        now = await r.stat("f")
        assert now is not None and now.etag != etag
        if second.etag is not None:
            assert second.etag == now.etag

        with pytest.raises(RemotePreconditionFailed):
            await put_bytes(r, "f", b"four", if_match=etag)  # stale
        assert await read(r, "f") == b"three"
        with pytest.raises(RemotePreconditionFailed):
            await put_bytes(r, "new", b"x", if_match=etag)  # nothing there to match
        assert await r.stat("new") is None
        assert_no_staging(await listing(r))


# -- staging and interrupted uploads ------------------------------------------------------------


async def test_failed_body_leaves_nothing(remote_backend: Backend) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 300_000
        raise BodyFailed("local disk went away")

    async with remote_backend.remote() as r:
        await put_bytes(r, "f", b"old content")
        with pytest.raises((BodyFailed, RemoteError)):
            await r.put("f", failing(), size=1_000_000, upload_id="attempt1")
        assert await read(r, "f") == b"old content"
        # A server may still be finishing the cut-off request when the client has given up
        # (rclone then writes the partial staging file after our cleanup); what the engine does
        # next, discard_upload, must get rid of it.
        for _ in range(20):
            await r.discard_upload("f", "attempt1")
            if set(await listing(r)) == {"f"}:
                break
            await asyncio.sleep(0.1)
        assert set(await listing(r)) == {"f"}


async def test_wrong_body_size_fails(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        with pytest.raises(RemoteError):
            await r.put("short", chunks(b"12345"), size=10)
        with pytest.raises(RemoteError):
            await r.put("long", chunks(b"123456789012345"), size=10)
        entries = await listing(r)
        assert "short" not in entries and "long" not in entries
        assert_no_staging(entries)


async def test_discard_upload_removes_leftover(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.mkdir("d")
        leftover = staging_name("d/f.txt", "crashed42")
        await put_bytes(r, leftover, b"partial")  # what a crashed attempt left behind
        assert await r.stat(leftover) is not None
        await r.discard_upload("d/f.txt", "crashed42")
        assert await r.stat(leftover) is None
        await r.discard_upload("d/f.txt", "crashed42")  # idempotent
        await r.discard_upload("d/f.txt", "never-started")
        assert await listing(r, "d") == {}


# -- the contract: flags and implementations agree ------------------------------------------------

PUBLIC_OPERATIONS = (
    "stat", "list", "put", "get", "mkdir", "delete", "move", "copy",
    "cleanup_stale_uploads", "discard_upload",
)


def overrides(r: Remote, name: str) -> bool:
    return getattr(type(r), name) is not getattr(Remote, name)


async def test_capabilities_agree_with_implementations(remote_backend: Backend) -> None:
    """A flag says what a backend can do, and only the flag: a backend that declares
    server_move/server_copy implements ``_move``/``_copy``, one that does not leaves them alone,
    and the public operations (with their checks) are the base class's for every backend."""
    async with remote_backend.remote() as r:
        caps = r.capabilities
        assert caps.server_move == overrides(r, "_move"), f"{r.kind}: server_move vs _move"
        assert caps.server_copy == overrides(r, "_copy"), f"{r.kind}: server_copy vs _copy"
        assert not [name for name in PUBLIC_OPERATIONS if overrides(r, name)]
        await put_bytes(r, "a", b"1")
        if not caps.server_move:
            with pytest.raises(RemoteUnsupported):
                await r.move("a", "b")
            with pytest.raises(NotImplementedError):  # what older callers catch
                await r.move("a", "b")
        if not caps.server_copy:
            with pytest.raises(RemoteUnsupported):
                await r.copy("a", "b")
        assert await read(r, "a") == b"1"
        if not (caps.server_move and caps.server_copy):
            assert await r.stat("b") is None
        assert await r.cleanup_stale_uploads() >= 0


async def test_root_is_refused_before_the_backend(remote_backend: Backend) -> None:
    async with remote_backend.remote() as r:
        await r.mkdir("")  # the root exists: nothing to do
        await put_bytes(r, "f", b"x")
        with pytest.raises(RemoteError):
            await put_bytes(r, "/", b"x")
        with pytest.raises(RemoteError):
            async with r.get(""):
                pass
        for op in ("move", "copy"):
            if getattr(r.capabilities, f"server_{op}"):
                with pytest.raises(RemoteConflict):
                    await getattr(r, op)("", "elsewhere")
                with pytest.raises(RemoteConflict):
                    await getattr(r, op)("f", "")
        assert await read(r, "/f/") == b"x"  # leading/trailing slashes are cleaned for all


# -- lifecycle ----------------------------------------------------------------------------------


async def test_closed_remote_refuses_use(remote_backend: Backend) -> None:
    r = remote_backend.remote()
    with pytest.raises(RemoteClosedError):
        await r.stat("x")  # never opened
    async with r:
        await put_bytes(r, "x", b"1")
    await r.aclose()  # closing twice is fine
    with pytest.raises(RemoteClosedError):
        await r.stat("x")
    with pytest.raises(RemoteClosedError):
        await put_bytes(r, "y", b"1")
    with pytest.raises(RemoteClosedError):
        await listing(r)
    with pytest.raises(RemoteClosedError):
        await read(r, "x")
    with pytest.raises(RemoteClosedError):
        await r.mkdir("d")
    with pytest.raises(RemoteClosedError):
        await r.delete("x")
    # Optional operations too, whatever the flags say (the open check comes first).
    with pytest.raises(RemoteClosedError):
        await r.move("x", "y")
    with pytest.raises(RemoteClosedError):
        await r.copy("x", "y")
    with pytest.raises(RemoteClosedError):
        await r.discard_upload("x", "someid")
    with pytest.raises(RemoteClosedError):
        await r.cleanup_stale_uploads()
    with pytest.raises(RemoteClosedError):
        async with r:
            pass
    # and what was written before closing is still there
    async with remote_backend.remote() as again:
        assert await read(again, "x") == b"1"
