"""engine/remotepoll.py against an in-memory server: tree ETags, full listings, hostile names."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import pytest

from syncapp.engine.learned import (
    TREE_ETAGS_MAX_AGE,
    kept_tree_etags,
    learn_tree_etags,
    tree_etags_key,
)
from syncapp.engine.remotepoll import RemotePoller, probe_tree_etags, unsafe_reason
from syncapp.engine.state import StateDB
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import PutResult, Remote, RemoteEntry

Style = Literal["nextcloud", "apache", "none"]


class TreeRemote(Remote):
    """Files and folders in a dict. Collection ETags like Nextcloud (any change below changes
    them), like Apache (only the folder's own entries), or none; counts stat/list calls."""

    kind = "tree"

    def __init__(self, files: dict[str, bytes], style: Style = "nextcloud") -> None:
        super().__init__()
        self.files = dict(files)
        self.dirs: dict[str, int] = {}  # folder → its own change counter
        self.style = style
        self.calls: list[tuple[str, str]] = []
        self.raw: list[RemoteEntry] = []  # hostile entries a test injects into listings
        for p in files:
            self._touch(p)

    def _touch(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(len(parts) + 1):
            d = "/".join(parts[:i])
            self.dirs[d] = self.dirs.get(d, 0) + (1 if i == len(parts) else 0)
        if self.style == "nextcloud":
            for i in range(len(parts) + 1):
                d = "/".join(parts[:i])
                self.dirs[d] += 1 if i < len(parts) else 0

    def write(self, path: str, data: bytes) -> None:
        self.files[path] = data
        self._touch(path)

    def remove(self, path: str) -> None:
        del self.files[path]
        self._touch(path)

    @property
    def display_url(self) -> str:
        return "tree:"

    def _entry(self, path: str) -> RemoteEntry | None:
        if path in self.files:
            data = self.files[path]
            return RemoteEntry(path, False, len(data), 1, hashlib.md5(data).hexdigest())
        if path in self.dirs:
            etag = None if self.style == "none" else f"d{self.dirs[path]}"
            return RemoteEntry(path, True, 0, 1, etag)
        return None

    async def _stat(self, path: str) -> RemoteEntry | None:
        self.calls.append(("stat", path))
        return self._entry(path)

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        self.calls.append(("list", path))
        lo = path + "/" if path else ""
        for p in sorted({*self.files, *self.dirs}):
            if p and p.startswith(lo) and (recursive or "/" not in p[len(lo) :]):
                e = self._entry(p)
                assert e is not None
                yield e
        for e in self.raw:
            yield e

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
        self.write(path, b"".join([c async for c in body]))
        return PutResult()

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        async def one() -> AsyncIterator[bytes]:
            yield self.files[path]

        yield one()

    async def _mkdir(self, path: str) -> None:
        self.dirs.setdefault(path, 0)
        self._touch(path + "/x")  # the parent's entries changed

    async def _delete(self, path: str) -> None:
        for p in [p for p in self.files if p == path or p.startswith(path + "/")]:
            self.remove(p)
        for d in [d for d in self.dirs if d == path or d.startswith(path + "/")]:
            del self.dirs[d]


def tree(n_dirs: int = 5, per_dir: int = 10) -> dict[str, bytes]:
    return {
        f"root/d{i}/s/f{j}.txt": f"{i}-{j}".encode() for i in range(n_dirs) for j in range(per_dir)
    }


async def open_remote(files: dict[str, bytes], style: Style) -> TreeRemote:
    r = TreeRemote(files, style)
    await r.__aenter__()
    return r


async def test_full_listing_maps_relative_paths() -> None:
    r = await open_remote(tree(2, 2), "none")
    snap = await RemotePoller(r, "root").poll()
    assert sorted(snap.entries) == [
        "d0",
        "d0/s",
        "d0/s/f0.txt",
        "d0/s/f1.txt",
        "d1",
        "d1/s",
        "d1/s/f0.txt",
        "d1/s/f1.txt",
    ]
    e = snap.entries["d0/s/f1.txt"]
    assert (e.path, e.size, e.etag) == ("d0/s/f1.txt", 3, hashlib.md5(b"0-1").hexdigest())
    assert r.calls == [("list", "root")] and snap.calls == 1 and snap.root_exists


async def test_an_empty_folder_is_told_from_a_missing_one() -> None:
    r = await open_remote({"root/keep/x": b"1"}, "none")
    await r.delete("root")
    snap = await RemotePoller(r, "root").poll()
    assert snap.entries == {} and not snap.root_exists and snap.calls == 2
    r.dirs["root"] = 1
    snap = await RemotePoller(r, "root").poll()
    assert snap.entries == {} and snap.root_exists


async def test_tree_etags_no_change_poll_is_one_stat() -> None:
    r = await open_remote(tree(), "nextcloud")
    poller = RemotePoller(r, "root", tree_etags=True)
    first = await poller.poll()
    assert len(first.entries) == 5 * 12
    r.calls.clear()
    again = await poller.poll()
    assert r.calls == [("stat", "root")] and again.calls == 1
    assert again.entries == first.entries


async def test_tree_etags_still_walk_everything_now_and_then() -> None:
    """A server that stopped changing folder ETags with their contents is noticed."""
    now = [0.0]
    r = await open_remote(tree(), "nextcloud")
    poller = RemotePoller(r, "root", tree_etags=True, full_every=600, clock=lambda: now[0])
    await poller.poll()
    now[0] = 599.0
    r.calls.clear()
    await poller.poll()
    assert r.calls == [("stat", "root")]
    now[0] = 600.0
    r.calls.clear()
    again = await poller.poll()
    assert len([c for c in r.calls if c[0] == "list"]) == 1 + 5 + 5 and again.reused == 0
    r.calls.clear()
    await poller.poll()
    assert r.calls == [("stat", "root")]


async def test_tree_etags_walk_only_the_changed_subtree() -> None:
    r = await open_remote(tree(), "nextcloud")
    poller = RemotePoller(r, "root", tree_etags=True)
    await poller.poll()
    r.write("root/d3/s/f0.txt", b"edited")
    r.write("root/d3/s/new.txt", b"new")
    r.remove("root/d1/s/f9.txt")
    r.calls.clear()
    snap = await poller.poll()
    # stat root, list root, then d1 and d3 only (and their s/), never d0, d2, d4.
    listed = sorted(p for op, p in r.calls if op == "list")
    assert listed == ["root", "root/d1", "root/d1/s", "root/d3", "root/d3/s"]
    assert snap.entries["d3/s/f0.txt"].size == 6 and "d3/s/new.txt" in snap.entries
    assert "d1/s/f9.txt" not in snap.entries and "d0/s/f5.txt" in snap.entries
    assert snap.reused == 3 * 11
    # What a full listing sees now is the same.
    full = await RemotePoller(r, "root").poll()
    assert full.entries == snap.entries


async def test_without_tree_etags_a_poll_is_one_listing_every_time() -> None:
    r = await open_remote(tree(), "apache")
    poller = RemotePoller(r, "root")
    await poller.poll()
    r.calls.clear()
    await poller.poll()
    assert r.calls == [("list", "root")]


@pytest.mark.parametrize(
    ("style", "expected"), [("nextcloud", True), ("apache", False), ("none", False)]
)
async def test_probe_tells_tree_etags_from_folder_etags(style: Style, expected: bool) -> None:
    r = await open_remote({"root/a.txt": b"a"}, style)
    assert await probe_tree_etags(r, "root") is expected
    assert sorted(r.files) == ["root/a.txt"]  # the probe folder is gone again
    assert not any(".syncapp-tmp-" in d for d in r.dirs)


HOSTILE = [
    "root/../../etc/passwd",
    "root/a/../../../x",
    "root/./x",
    "root//x",
    "root/nul\0name",
    "root/" + "n" * 256,
    "/abs",
    "elsewhere/x",
]


async def test_hostile_names_never_become_paths() -> None:
    r = await open_remote({"root/ok.txt": b"ok"}, "none")
    r.raw = [RemoteEntry(p, False, 1) for p in HOSTILE]
    r.raw += [
        RemoteEntry("root/" + "d" * 300, True),
        RemoteEntry("root/" + "d" * 300 + "/inside.txt", False, 1),
        RemoteEntry("root/" + "/".join(["deep" * 60] * 20), False, 1),
    ]
    snap = await RemotePoller(r, "root").poll()
    assert list(snap.entries) == ["ok.txt"]
    assert len(snap.skipped) == len(HOSTILE) + 3, snap.skipped
    assert any("leave the folder" in why for why in snap.skipped.values())
    assert any("NUL" in why for why in snap.skipped.values())
    assert any("longer than 255" in why for why in snap.skipped.values())
    assert any("outside the folder's remote_path" in why for why in snap.skipped.values())


@pytest.mark.parametrize(
    ("rel", "words"),
    [
        ("..", "leave"),
        ("a/..", "leave"),
        ("", "leave"),
        ("/x", "absolute"),
        ("a\0b", "NUL"),
        ("x" * 256, "255"),
        ("a/\udcff", "UTF-8"),
    ],
)
def test_unsafe_reason(rel: str, words: str) -> None:
    why = unsafe_reason(rel)
    assert why is not None and words in why


def test_safe_names_pass() -> None:
    for rel in ["a", "a b/c.d", "ü/日本", "..hidden", "x" * 255, "a\\b"]:
        assert unsafe_reason(rel) is None, rel


async def test_own_and_ignored_names_are_left_out() -> None:
    files = {
        "root/.syncapp-versions/a.txt/1": b"v",
        "root/d/.syncapp-tmp-abc": b"half",
        "root/cache/x.bin": b"c",
        "root/a.swp": b"s",
        "root/d/keep.txt": b"k",
    }
    r = await open_remote(files, "none")
    snap = await RemotePoller(r, "root", IgnoreRules(["cache/"])).poll()
    assert sorted(snap.entries) == ["d", "d/keep.txt"]
    assert snap.staging == ["root/d/.syncapp-tmp-abc"]
    assert snap.skipped == {}


async def test_tree_walk_skips_hostile_folders_too() -> None:
    r = await open_remote({"root/ok/x.txt": b"x"}, "nextcloud")
    r.raw = [RemoteEntry("root/../up", True, 0, None, "e1")]
    snap = await RemotePoller(r, "root", tree_etags=True).poll()
    assert sorted(snap.entries) == ["ok", "ok/x.txt"]
    assert "leave the folder" in snap.skipped["../up"]


@pytest.mark.parametrize("file_first", [True, False])
async def test_a_file_and_a_folder_of_one_name_on_a_store_without_folders(
    file_first: bool,
) -> None:
    """S3 can hold a key ``x`` and keys ``x/…`` at once: the file keeps the name, the folder's
    files are reported as a clash (the remote side moves them to a conflict name)."""
    r = await open_remote({"root/keep.txt": b"k"}, "none")
    clash = [
        RemoteEntry("root/x", True),
        RemoteEntry("root/x/a.txt", False, 1),
        RemoteEntry("root/x/sub", True),
        RemoteEntry("root/x/sub/b.txt", False, 2),
    ]
    file = RemoteEntry("root/x", False, 5, 1, "e")
    r.raw = [file, *clash] if file_first else [*clash, file]
    snap = await RemotePoller(r, "root").poll()
    assert sorted(snap.entries) == ["keep.txt", "x"]
    assert not snap.entries["x"].is_dir and snap.entries["x"].size == 5
    assert sorted(e.path for e in snap.clashes["x"]) == ["x/a.txt", "x/sub/b.txt"]
    assert snap.skipped == {}


async def test_what_was_learned_of_folder_etags_is_kept_and_asked_again_later(
    tmp_path: Path,
) -> None:
    state = StateDB(tmp_path / "state.db")
    try:
        r = await open_remote({"root/a.txt": b"a"}, "nextcloud")
        assert await learn_tree_etags(r, state, "root", now=1000.0) is False  # not WebDAV
        r.kind = "webdav"  # only WebDAV servers have collection ETags to try
        assert await learn_tree_etags(r, state, "root", now=1000.0) is True
        r.style = "apache"  # the server changed; the kept answer holds until it is too old
        r.calls.clear()
        assert await learn_tree_etags(r, state, "root", now=1000.0 + 3600) is True
        assert r.calls == []
        later = 1000.0 + TREE_ETAGS_MAX_AGE
        assert kept_tree_etags(state, r, later) is None
        assert await learn_tree_etags(r, state, "root", now=later) is False
        # The dry run never probes: nothing kept means no tree ETags.
        state.set_meta(tree_etags_key(r), "")
        r.style = "nextcloud"
        assert await learn_tree_etags(r, state, "root", probe=False, now=later) is False
    finally:
        state.close()
