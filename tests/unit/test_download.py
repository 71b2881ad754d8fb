"""engine/download.py with an in-memory remote: atomic, checked, refusing unsafe names."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from syncapp.engine.download import (
    DOWNLOAD_PREFIX,
    DownloadSkipped,
    LocalChanged,
    UnsafePath,
    download,
    same_content,
    sweep_partial_downloads,
)
from syncapp.engine.scanner import scan_tree
from syncapp.errors import RemoteError, RemoteNotFound, RemoteUnavailable
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import PutResult, Remote, RemoteEntry


class MemRemote(Remote):
    """Files in a dict; ``cut_after`` bytes then a connection error, ``gate`` to pause."""

    kind = "mem"

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files
        self.cut_after: int | None = None
        self.gate: asyncio.Event | None = None
        self.halfway = asyncio.Event()
        self.gets = 0

    @property
    def display_url(self) -> str:
        return "mem:"

    async def _stat(self, path: str) -> RemoteEntry | None:
        data = self.files.get(path)
        return None if data is None else RemoteEntry(path, False, len(data))

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        for p, d in self.files.items():
            yield RemoteEntry(p, False, len(d))

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
        self.files[path] = b"".join([c async for c in body])
        return PutResult()

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        self.gets += 1
        if path not in self.files:
            raise RemoteNotFound(f"{path} not found", status=404, path=path)
        data = self.files[path]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 1000):
                if self.cut_after is not None and i >= self.cut_after:
                    self.halfway.set()
                    if self.gate is not None:
                        await self.gate.wait()
                    raise RemoteUnavailable("connection reset", path=path)
                yield data[i : i + 1000]

        yield chunks()

    async def _mkdir(self, path: str) -> None:
        pass

    async def _delete(self, path: str) -> None:
        self.files.pop(path, None)


DATA = os.urandom(50_000)
MTIME = 1_700_000_000_000_000_000


@pytest.fixture
async def remote() -> AsyncIterator[MemRemote]:
    async with MemRemote({"d/f.bin": DATA, "top.txt": b"hi"}) as r:
        yield r


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The local folder (tmp_path itself holds the test's XDG directories)."""
    r = tmp_path / "folder"
    r.mkdir()
    return r


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(DOWNLOAD_PREFIX)]


async def test_download_lands_whole_with_the_remote_mtime(remote: MemRemote, root: Path) -> None:
    entry = await download(
        remote, "d/f.bin", str(root), "sub/f.bin", size=len(DATA), mtime_ns=MTIME
    )
    target = root / "sub" / "f.bin"
    assert target.read_bytes() == DATA
    assert target.stat().st_mtime_ns == MTIME
    assert (entry.path, entry.size, entry.mtime_ns, entry.ino) == (
        "sub/f.bin",
        len(DATA),
        MTIME,
        target.stat().st_ino,
    )
    assert leftovers(root) == []


async def test_cut_midway_leaves_the_old_file_and_no_temp(remote: MemRemote, root: Path) -> None:
    (root / "f.bin").write_bytes(b"old")
    old = scan_tree(str(root), IgnoreRules()).entries["f.bin"]
    remote.cut_after = 20_000
    with pytest.raises(RemoteUnavailable):
        await download(remote, "d/f.bin", str(root), "f.bin", size=len(DATA), expect=old)
    assert (root / "f.bin").read_bytes() == b"old"
    assert leftovers(root) == []


async def test_cancelled_midway_leaves_nothing(remote: MemRemote, root: Path) -> None:
    remote.cut_after, remote.gate = 20_000, asyncio.Event()
    task = asyncio.create_task(download(remote, "d/f.bin", str(root), "f.bin"))
    await remote.halfway.wait()
    # Half of it is on disk, under the temporary name only, which the scanner ignores.
    assert len(leftovers(root)) == 1
    assert scan_tree(str(root), IgnoreRules()).entries == {}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(root.iterdir()) == []


async def test_short_body_is_an_error(remote: MemRemote, root: Path) -> None:
    with pytest.raises(RemoteError, match="listing said"):
        await download(remote, "top.txt", str(root), "top.txt", size=3)
    assert list(root.iterdir()) == []


async def test_missing_remote_file(remote: MemRemote, root: Path) -> None:
    with pytest.raises(RemoteNotFound):
        await download(remote, "gone", str(root), "gone")
    assert list(root.iterdir()) == []


async def test_local_edit_during_download_wins(remote: MemRemote, root: Path) -> None:
    # The plan saw nothing at top.txt; the user created it meanwhile.
    (root / "top.txt").write_text("mine")
    with pytest.raises(LocalChanged):
        await download(remote, "top.txt", str(root), "top.txt", size=2, expect=None)
    assert (root / "top.txt").read_text() == "mine"
    assert leftovers(root) == []


@pytest.mark.parametrize(
    "rel", ["../escape", "/etc/x", "a/../../escape", "a//b", "./a", "nul\0", "a/.."]
)
async def test_unsafe_names_are_refused(remote: MemRemote, tmp_path: Path, rel: str) -> None:
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    with pytest.raises(UnsafePath):
        await download(remote, "top.txt", str(root), rel)
    assert list((tmp_path / "a").rglob("*")) == [root]
    assert remote.gets == 0


async def test_a_parent_that_is_a_link_is_not_written_through(
    remote: MemRemote, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePath, match="symbolic link"):
        await download(remote, "top.txt", str(root), "link/top.txt")
    assert list(outside.iterdir()) == []


async def test_too_long_name_is_skipped_with_a_reason(remote: MemRemote, root: Path) -> None:
    with pytest.raises(DownloadSkipped) as info:
        await download(remote, "top.txt", str(root), "d/" + "x" * 300)
    assert "allows 255" in info.value.reason and info.value.rel.startswith("d/")
    assert list(root.iterdir()) == [] and remote.gets == 0


def test_sweep_removes_leftovers(root: Path) -> None:
    (root / "a").mkdir()
    (root / "a" / f"{DOWNLOAD_PREFIX}abc").write_bytes(b"half")
    (root / "keep.txt").write_text("x")
    assert sweep_partial_downloads(str(root)) == [f"a/{DOWNLOAD_PREFIX}abc"]
    assert sorted(p.name for p in root.rglob("*")) == ["a", "keep.txt"]


async def test_same_content(remote: MemRemote, root: Path) -> None:
    f = root / "f.bin"
    f.write_bytes(DATA)
    assert await same_content(remote, "d/f.bin", str(f), None)
    f.write_bytes(DATA[:-1] + b"!")
    assert not await same_content(remote, "d/f.bin", str(f), None)
    f.write_bytes(DATA + b"more")
    assert not await same_content(remote, "d/f.bin", str(f), None)
    gets = remote.gets
    md5 = hashlib.md5(DATA).hexdigest()
    f.write_bytes(DATA)
    assert await same_content(remote, "d/f.bin", str(f), md5)
    assert remote.gets == gets  # proven by the MD5 ETag: nothing downloaded
    assert not await same_content(remote, "nope", str(f), None)
