"""The S3 remote against real servers: ``rclone serve s3`` and SeaweedFS (``weed mini``).

Both servers are shared by the session (see ``backend_context``); each test works under a fresh
key prefix of the shared bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncapp.config import S3RemoteConfig
from syncapp.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteNotFound,
    RemoteUnavailable,
)
from syncapp.remotes import open_remote
from syncapp.remotes.s3 import NoSuchBucketError, S3Remote
from tests.integration.backends import BackendContext
from tests.servers import free_port
from tests.servers.s3 import S3Server, rclone_s3_server, seaweedfs_server

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
SERVERS: dict[str, Callable[[Path], Any]] = {
    "rclone": rclone_s3_server,
    "seaweedfs": seaweedfs_server,
}
SERVER_KEYS = {"rclone": "rclone-s3", "seaweedfs": "seaweedfs"}  # shared with backends.py


@dataclass
class S3Case:
    server: S3Server
    prefix: str

    def cfg(self, **changes: Any) -> S3RemoteConfig:
        base = S3RemoteConfig(
            name="t",
            type="s3",
            endpoint=self.server.endpoint,
            bucket=self.server.bucket,
            prefix=self.prefix,
            part_size="5MiB",
            multipart_threshold="5MiB",
        )
        return replace(base, **changes)

    def remote(self, env: dict[str, str] | None = None, **changes: Any) -> S3Remote:
        remote = open_remote(self.cfg(**changes), env=self.server.env() if env is None else env)
        assert isinstance(remote, S3Remote)
        return remote

    def raw(self) -> httpx.Client:
        return self.server.client()

    def key_url(self, key: str) -> str:
        from urllib.parse import quote

        return f"{self.server.endpoint}/{self.server.bucket}/{quote(self.prefix + '/' + key)}"

    def uploads(self) -> list[str]:
        """Keys (below the prefix) with an in-progress multipart upload."""
        with self.raw() as c:
            r = c.get(
                f"{self.server.endpoint}/{self.server.bucket}",
                params={"uploads": "", "prefix": self.prefix + "/"},
            )
            r.raise_for_status()
        import xml.etree.ElementTree as ET

        root = ET.fromstring(r.content)
        return [
            el.text[len(self.prefix) + 1 :]
            for el in root.iter()
            if el.tag.endswith("}Key") or el.tag == "Key"
            if el.text
        ]


@pytest.fixture(params=list(SERVERS))
def s3(request: pytest.FixtureRequest, backend_context: BackendContext) -> S3Case:
    server = backend_context.server(SERVER_KEYS[request.param], SERVERS[request.param])
    return S3Case(server, backend_context.fresh_name("s3test"))


class Requests:
    """Records the requests a remote sends (an httpx event hook: observation, not a mock)."""

    def __init__(self, remote: S3Remote) -> None:
        self.seen: list[httpx.Request] = []
        client = remote._client
        assert client is not None
        client.event_hooks["request"].append(self._hook)

    async def _hook(self, request: httpx.Request) -> None:
        self.seen.append(request)

    def where(self, method: str, query: str = "") -> list[httpx.Request]:
        return [
            r for r in self.seen if r.method == method and query in r.url.query.decode()
        ]


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def pattern(size: int) -> bytes:
    block = hashlib.sha256(size.to_bytes(8, "big")).digest()
    return (block * (size // len(block) + 1))[:size]


async def read(r: S3Remote, path: str) -> bytes:
    out = bytearray()
    async with r.get(path) as body:
        async for c in body:
            out += c
    return bytes(out)


async def paths(r: S3Remote, path: str = "", *, recursive: bool = True) -> list[str]:
    return [e.path async for e in r.list(path, recursive=recursive)]


class BodyFailed(Exception):
    pass


# -- basics ---------------------------------------------------------------------------------------


async def test_round_trip_keeps_mtime_metadata(s3: S3Case) -> None:
    mtime = 1_600_000_000_123_456_789
    async with s3.remote() as r:
        result = await r.put("docs/a.txt", chunks(b"hello"), size=5, mtime_ns=mtime)
        entry = await r.stat("docs/a.txt")
        assert entry is not None and not entry.is_dir and entry.size == 5
        assert result.etag == entry.etag == hashlib.md5(b"hello").hexdigest()
        assert entry.mtime_ns is not None  # the server's Last-Modified
        assert await read(r, "docs/a.txt") == b"hello"
        (listed,) = [e async for e in r.list("docs")]
        assert (listed.path, listed.size, listed.etag) == ("docs/a.txt", 5, entry.etag)
    with s3.raw() as c:
        head = c.head(s3.key_url("docs/a.txt"))
    # rclone's own format, so rclone and syncapp read each other's buckets
    assert head.headers["x-amz-meta-mtime"] == "1600000000.123456789"
    assert head.headers["content-type"].startswith("text/plain")


ODD = [
    "sp ace.txt",
    "hash#tag",
    "100%",
    "%41%2F",
    "what?x=1",
    "a&b=c;d",
    "plus+plus",
    "tilde~star*(paren)!'",
    "ünïcødé/日本語 ☃.txt",
    "emoji 🎉.bin",
    "brackets[1]{2}@$,",
    "quote\"d",
]


async def test_odd_key_names_round_trip(s3: S3Case) -> None:
    async with s3.remote() as r:
        for name in ODD:
            await r.put(name, chunks(name.encode()), size=len(name.encode()))
        listed = await paths(r)
        files = {e.path async for e in r.list() if not e.is_dir}
        assert files == set(ODD)
        assert "ünïcødé" in listed
        for name in ODD:
            assert await read(r, name) == name.encode()
            st = await r.stat(name)
            assert st is not None and st.path == name
        await r.copy("hash#tag", "copy of 100%?")
        assert await read(r, "copy of 100%?") == b"hash#tag"
        for name in ODD:
            await r.delete(name)
        assert await paths(r) == ["copy of 100%?"]
    if s3.server.root is not None:  # rclone keeps keys as plain files: exactly these names
        stored = s3.server.root / s3.server.bucket / s3.prefix / "copy of 100%?"
        assert stored.read_bytes() == b"hash#tag"


async def test_prefixes_are_isolated(s3: S3Case) -> None:
    other = S3Case(s3.server, s3.prefix + "-other")
    async with s3.remote() as a, other.remote() as b:
        await a.put("f", chunks(b"a"), size=1)
        await a.put("dir/g", chunks(b"a"), size=1)
        await b.put("f", chunks(b"bb"), size=2)
        assert await paths(a) == ["dir", "dir/g", "f"]
        assert await paths(b) == ["f"]
        root = await a.stat("")
        assert root is not None and root.is_dir
        await b.delete("f")
        assert await read(a, "f") == b"a"
        assert await b.stat("f") is None


async def test_directories_are_implied_by_keys(s3: S3Case) -> None:
    async with s3.remote() as r:
        assert not r.capabilities.directories
        await r.mkdir("empty")  # writes nothing
        assert await r.stat("empty") is None
        await r.put("a/bc", chunks(b"x"), size=1)
        await r.put("a.txt", chunks(b"x"), size=1)
        a = await r.stat("a")
        assert a is not None and a.is_dir
        assert await r.stat("a/b") is None  # a key prefix, but not a directory
        assert sorted(await paths(r, recursive=False)) == ["a", "a.txt"]
        assert await paths(r, "a") == ["a/bc"]
        assert await paths(r, "a.txt") == []


async def test_directory_marker_objects(s3: S3Case) -> None:
    # Other tools (the AWS console, rclone --s3-directory-markers) write "dir/" objects.
    if s3.server.kind == "rclone":
        pytest.skip("rclone serve s3 stores a 'm/' key as a file 'm' (500 once 'm' is a dir)")
    with s3.raw() as c:
        assert c.put(s3.key_url("m/"), content=b"").status_code == 200
        assert c.put(s3.key_url("m/n/f"), content=b"x").status_code == 200
    async with s3.remote() as r:
        m = await r.stat("m")
        assert m is not None and m.is_dir
        assert await paths(r) == ["m", "m/n", "m/n/f"]
        await r.delete("m")
        assert await paths(r) == []
        assert await r.stat("m") is None


async def test_pagination_and_prefix_deletes(s3: S3Case) -> None:
    names = [f"d/{i}" for i in range(5)] + [f"d/sub{i}/x" for i in range(3)] + ["dd", "d.txt"]
    async with s3.remote() as r:
        for n in names:
            await r.put(n, chunks(b"x"), size=1)
        r._page_size = 2  # exercise continuation tokens without thousands of keys
        seen = Requests(r)
        everything = await paths(r)
        # SeaweedFS lists folder by folder ("d/0" before "d.txt"), not in strict key order.
        assert sorted(everything) == sorted([*names, "d", "d/sub0", "d/sub1", "d/sub2"])
        assert len(seen.where("GET", "list-type=2")) == 5  # 10 keys, 2 a page
        top = await paths(r, "d", recursive=False)
        assert sorted(top) == sorted([f"d/{i}" for i in range(5)] + ["d/sub0", "d/sub1", "d/sub2"])
        # a prefix delete spans several pages and leaves the siblings "dd" and "d.txt" alone
        await r.delete("d")
        assert await paths(r) == ["d.txt", "dd"]
        await r.delete("d")  # missing already is fine
        with pytest.raises(RemoteError):
            await r.delete("")  # never the root


@pytest.mark.parametrize("checksums", [True, False])
async def test_prefix_delete_batches(s3: S3Case, checksums: bool) -> None:
    async with s3.remote(checksums=checksums) as r:
        for i in range(3):
            await r.put(f"d/{i}", chunks(b"x"), size=1)
        seen = Requests(r)
        await r.delete("d")
        assert await paths(r) == []
    batches = seen.where("POST", "delete")
    if checksums:  # one DeleteObjects (it must carry Content-MD5), then the key "d" itself
        assert len(batches) == 1 and "content-md5" in batches[0].headers
        assert len(seen.where("DELETE")) == 1
    else:  # no checksum headers at all: key by key
        assert batches == [] and len(seen.where("DELETE")) == 4


async def test_copy_is_server_side_and_keeps_metadata(s3: S3Case) -> None:
    async with s3.remote() as r:
        assert r.capabilities.server_copy and not r.capabilities.server_move
        await r.put("src", chunks(b"content"), size=7, mtime_ns=1_500_000_000_000_000_000)
        seen = Requests(r)
        await r.copy("src", "dir/dst")
        assert [q.method for q in seen.seen] == ["PUT"]  # no download, no upload
        assert "x-amz-copy-source" in seen.seen[0].headers
        assert await read(r, "dir/dst") == b"content"
        with pytest.raises(RemoteNotFound):
            await r.copy("missing", "dir/dst")
        with pytest.raises(NotImplementedError):
            await r.move("src", "elsewhere")
    with s3.raw() as c:
        assert c.head(s3.key_url("dir/dst")).headers["x-amz-meta-mtime"] == "1500000000.000000000"


async def test_get_missing(s3: S3Case) -> None:
    async with s3.remote() as r:
        with pytest.raises(RemoteNotFound):
            await read(r, "nothing/here")


# -- uploads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("checksums", [True, False])
async def test_multipart_round_trip_and_checksum_switch(s3: S3Case, checksums: bool) -> None:
    data = pattern(12 * MiB + 12345)
    async with s3.remote(checksums=checksums) as r:
        seen = Requests(r)
        result = await r.put("big.bin", chunks(data, MiB), size=len(data), mtime_ns=10**18)
        parts = seen.where("PUT", "partNumber=")
        assert len(parts) == 3  # 5 + 5 + 2.01 MiB
        assert all(("content-md5" in p.headers) == checksums for p in parts)
        # every in-memory body is signed with its real SHA-256
        assert all(len(p.headers["x-amz-content-sha256"]) == 64 for p in parts)
        st = await r.stat("big.bin")
        assert st is not None and st.size == len(data) and st.etag == result.etag
        assert hashlib.sha256(await read(r, "big.bin")).digest() == hashlib.sha256(data).digest()

        small = seen.where("PUT")
        await r.put("small", chunks(b"tiny"), size=4)
        (single,) = seen.where("PUT")[len(small) :]
        assert ("content-md5" in single.headers) == checksums
    assert s3.uploads() == []


async def test_big_single_put_is_streamed_unsigned(s3: S3Case) -> None:
    # Above the in-memory limit but below a raised threshold: one PUT, streamed, so it can
    # carry neither Content-MD5 nor a payload hash; the server must still accept the signature.
    data = pattern(9 * MiB)
    async with s3.remote(multipart_threshold="64MiB") as r:
        seen = Requests(r)
        await r.put("streamed", chunks(data, MiB), size=len(data))
        (put,) = seen.where("PUT")
        assert put.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert put.headers["content-length"] == str(len(data))
        assert "content-md5" not in put.headers
        assert await read(r, "streamed") == data


async def test_multipart_memory_is_bounded(s3: S3Case) -> None:
    """The body never runs more than part_concurrency parts ahead of finished part uploads."""
    part = 5 * MiB
    size = 8 * part + 100
    produced = 0
    done = 0
    worst = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced, worst
        block = pattern(256 * 1024)
        while produced < size:
            n = min(len(block), size - produced)
            produced += n
            worst = max(worst, produced - done)
            yield block[:n]

    async def on_response(response: httpx.Response) -> None:
        nonlocal done
        if "partNumber=" in response.request.url.query.decode() and response.status_code == 200:
            done += int(response.request.headers["content-length"])

    async with s3.remote(part_concurrency=2) as r:
        assert r._client is not None
        r._client.event_hooks["response"].append(on_response)
        await r.put("bounded.bin", body(), size=size)
    # two parts uploading plus the one being filled (its first chunk, at most)
    assert worst <= 2 * part + 256 * 1024, worst / MiB


async def test_failed_body_aborts_multipart(s3: S3Case) -> None:
    async def failing() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield pattern(MiB)
        raise BodyFailed("disk gone")

    async with s3.remote() as r:
        await r.put("f", chunks(b"old"), size=3)
        with pytest.raises(BodyFailed):
            await r.put("f", failing(), size=30 * MiB, upload_id="u1")
        assert s3.uploads() == []
        assert await read(r, "f") == b"old"
        with pytest.raises(RemoteError):  # fewer bytes than promised
            await r.put("short", chunks(pattern(11 * MiB)), size=12 * MiB)
        with pytest.raises(RemoteError):  # more bytes than promised
            await r.put("long", chunks(pattern(13 * MiB)), size=12 * MiB)
        assert s3.uploads() == []
        assert await paths(r) == ["f"]


async def test_cancelled_upload_aborts_multipart(s3: S3Case) -> None:
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for i in range(100):
            if i == 11:
                started.set()
                await asyncio.sleep(60)
            yield pattern(MiB)

    async with s3.remote() as r:
        task = asyncio.create_task(r.put("c", slow(), size=100 * MiB))
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(0.3)
        assert s3.uploads() == ["c"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s3.uploads() == []


KILLED_UPLOAD = textwrap.dedent(
    """
    import asyncio, sys
    from syncapp.config import S3RemoteConfig
    from syncapp.remotes.s3 import S3Remote

    async def body():
        for i in range(100):
            if i == 6:
                print("parts sent", flush=True)
                await asyncio.sleep(3600)  # killed here
            yield bytes(1024 * 1024)

    async def main():
        endpoint, bucket, prefix, key, secret = sys.argv[1:]
        cfg = S3RemoteConfig(name="k", type="s3", endpoint=endpoint, bucket=bucket,
                             prefix=prefix, part_size="5MiB", multipart_threshold="5MiB")
        env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
        async with S3Remote(cfg, env) as r:
            await r.put("killed.bin", body(), size=100 * 1024 * 1024)

    asyncio.run(main())
    """
)


async def test_cleanup_of_uploads_left_by_a_killed_process(s3: S3Case) -> None:
    srv = s3.server
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child to kill, not one to wait for
        [sys.executable, "-c", KILLED_UPLOAD, srv.endpoint, srv.bucket, s3.prefix,
         srv.access_key, srv.secret_key],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == b"parts sent"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert s3.uploads() == ["killed.bin"]
    # two more strays, one of them outside the prefix we clean
    with s3.raw() as c:
        c.post(s3.key_url("a/stray") + "?uploads", content=b"")
        c.post(s3.key_url("other/stray") + "?uploads", content=b"")
    async with s3.remote() as r:
        await r.discard_upload("a/stray", "whatever-id")
        assert sorted(s3.uploads()) == ["killed.bin", "other/stray"]
        r._page_size = 1  # walk several pages of uploads
        assert await r.cleanup_stale_uploads("other") == 1
        assert await r.cleanup_stale_uploads() == 1
        assert await r.cleanup_stale_uploads() == 0
        assert await r.stat("killed.bin") is None
    assert s3.uploads() == []


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["secret", "key id"])
async def test_wrong_credentials_fail_once_and_clearly(s3: S3Case, wrong: str) -> None:
    bad_secret = "not-the-secret-but-a-long-one-9876"
    env = s3.server.env()
    if wrong == "secret":
        env["AWS_SECRET_ACCESS_KEY"] = bad_secret
    else:
        env["AWS_ACCESS_KEY_ID"] = "AKIDNOTKNOWNHERE"
    async with s3.remote(env=env) as r:
        seen = Requests(r)
        for op in ("put", "list", "stat"):
            before = len(seen.seen)
            with pytest.raises(RemoteAuthError) as info:
                if op == "put":
                    await r.put("f", chunks(b"x"), size=1)
                elif op == "list":
                    await paths(r)
                else:
                    await r.stat("")
            assert len(seen.seen) == before + 1  # one request: no retries from the remote
            err = info.value
            assert err.fatal_for_folder and not err.retryable
            text = f"{err} {err!r}"
            assert bad_secret not in text and s3.server.secret_key not in text
            assert "AWS_SECRET_ACCESS_KEY" in str(err)
            expected = "secret access key" if wrong == "secret" else "access key id"
            assert expected in str(err)


async def test_missing_credentials(s3: S3Case) -> None:
    with pytest.raises(RemoteAuthError, match="MY_SECRET"):
        async with s3.remote(env={"AWS_ACCESS_KEY_ID": "x"}, secret_access_key_env="MY_SECRET"):
            pass


async def test_missing_bucket_is_fatal_and_named(s3: S3Case) -> None:
    async with s3.remote(bucket="no-such-bucket-here", prefix="") as r:
        for op in ("stat", "put", "list"):
            with pytest.raises(NoSuchBucketError, match="no-such-bucket-here") as info:
                if op == "stat":
                    await r.stat("")
                elif op == "put":
                    await r.put("f", chunks(b"x"), size=1)
                else:
                    await paths(r)
            assert info.value.fatal_for_folder


async def test_unreachable_server_is_retryable() -> None:
    cfg = S3RemoteConfig(
        name="t", type="s3", endpoint=f"http://127.0.0.1:{free_port()}", bucket="b", timeout=5
    )
    async with open_remote(cfg, env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}) as r:
        with pytest.raises(RemoteUnavailable, match="connection refused") as info:
            await r.stat("x")
        assert info.value.retryable


async def test_server_restart_mid_session(tmp_path: Path) -> None:
    with rclone_s3_server(tmp_path / "rc") as srv:
        case = S3Case(srv, "restart")
        async with case.remote() as r:
            await r.put("f", chunks(b"1"), size=1)
            srv.stop()
            with pytest.raises(RemoteUnavailable):
                await r.stat("f")
            srv.start()
            assert await read(r, "f") == b"1"


# -- memory: a 100 MiB multipart upload -----------------------------------------------------------

PROBE = textwrap.dedent(
    """
    import asyncio, hashlib, json, sys
    from syncapp.config import S3RemoteConfig
    from syncapp.remotes.s3 import S3Remote

    SIZE = 100 * 1024 * 1024

    async def body(total, digest):
        for i in range(total // (1024 * 1024)):
            chunk = hashlib.sha256(i.to_bytes(4, "big")).digest() * 32768
            digest.update(chunk)
            yield chunk

    def peak_kib():
        # VmHWM, not ru_maxrss: ru_maxrss survives exec, so it starts at the size of the
        # (much bigger) pytest process that forked us.
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    async def main():
        endpoint, bucket, prefix, key, secret = sys.argv[1:]
        cfg = S3RemoteConfig(name="m", type="s3", endpoint=endpoint, bucket=bucket,
                             prefix=prefix, part_size="8MiB", multipart_threshold="8MiB",
                             part_concurrency=4)
        env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
        async with S3Remote(cfg, env) as r:
            await r.put("warm", body(1024 * 1024, hashlib.md5()), size=1024 * 1024)
            base = peak_kib()
            sent = hashlib.md5()
            await r.put("big.bin", body(SIZE, sent), size=SIZE)
            after_put = peak_kib()
            got = hashlib.md5()
            async with r.get("big.bin") as chunks:
                async for c in chunks:
                    got.update(c)
            st = await r.stat("big.bin")
        print(json.dumps({"base": base, "put": after_put, "get": peak_kib(),
                          "same": sent.digest() == got.digest(), "size": st.size}))

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_100mib_multipart_upload_memory(s3: S3Case) -> None:
    srv = s3.server
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, srv.endpoint, srv.bucket, s3.prefix,
         srv.access_key, srv.secret_key],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)
    assert m["same"] and m["size"] == 100 * MiB
    growth_mb = (max(m["put"], m["get"]) - m["base"]) * 1024 / 1e6  # VmHWM is in KiB
    took = time.monotonic() - started
    print(f"{srv.kind}: 100 MiB up and down in {took:.1f}s, peak RSS growth {growth_mb:.0f} MB", m)
    assert growth_mb < 100



async def test_keys_kept_in_the_config_are_used_and_a_set_variable_wins(s3: S3Case) -> None:
    """Keys typed in the remote form live in the config (0600); the engine signs with them."""
    env = s3.server.env()
    inline = {
        "access_key_id": env["AWS_ACCESS_KEY_ID"],
        "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    async with s3.remote(env={}, **inline) as r:
        await r.put("kept-keys.txt", chunks(b"signed with the kept keys"), size=25)
        found = await r.stat("kept-keys.txt")
        assert found is not None and found.size == 25
        assert s3.server.secret_key not in repr(r)
    # A set variable wins over the kept key (here a wrong one: refused, and said so).
    wrong = {"AWS_SECRET_ACCESS_KEY": "not-the-secret-but-a-long-one-9876"}
    async with s3.remote(env=wrong, **inline) as r:
        with pytest.raises(RemoteAuthError):
            await r.stat("kept-keys.txt")
