"""Our own uploads are never taken for another machine's edit: a file uploaded half-written and
then again, a burst of new files, a stamp the server changes on its own (false conflict copies
are what users of sync tools complain about most after lost files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncapp.engine import ConflictKept
from tests.integration import twoway_machines
from tests.integration.twoway_machines import Shared, machines, until

own_trash = twoway_machines.own_trash
shared = twoway_machines.shared


@pytest.mark.parametrize("shared", ["local", "rclone", "apache"], indirect=True)
@pytest.mark.parametrize("wait_for_look", [False, True])
async def test_a_second_upload_right_after_the_first_is_no_conflict(
    tmp_path: Path, shared: Shared, wait_for_look: bool
) -> None:
    async with machines(tmp_path, shared, "a") as (a,):
        side = a.engine.folder("docs").remote_side
        assert side is not None
        f = a.folder / "f.txt"
        f.write_bytes(b"")
        await until(lambda: a.uploads() == 1 and not a.engine.status()["docs"].in_flight)
        if wait_for_look:
            looks = side.looks
            await until(lambda: side.looks > looks)
        f.write_bytes(b"x" * 4096)
        await until(lambda: a.uploads() >= 2 and not a.engine.status()["docs"].in_flight)
        await until(lambda: not side.unconfirmed)
        assert a.count(ConflictKept) == 0, sorted(a.files())
        assert sorted(a.files()) == ["f.txt"]


@pytest.mark.parametrize("shared", ["rclone", "apache", "seaweedfs"], indirect=True)
async def test_a_burst_of_new_files_makes_no_conflict(tmp_path: Path, shared: Shared) -> None:
    async with machines(tmp_path, shared, "a", poll=30) as (a,):
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: side.looks >= 1)
        for i in range(300):
            p = a.folder / f"d{i % 10}" / f"f{i:04}.bin"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(bytes([i % 251]) * 4096)
        await until(lambda: a.uploads() >= 300 and not a.engine.status()["docs"].in_flight)
        await until(lambda: not side.unconfirmed)
        kept = [e for e in a.events if isinstance(e, ConflictKept)]
        assert kept == [], kept


@pytest.mark.parametrize("shared", ["local"], indirect=True)
async def test_a_stamp_that_moves_on_its_own_before_the_upload_settles_is_no_conflict(
    tmp_path: Path, shared: Shared
) -> None:
    """The server lists our upload with another stamp than it answered (seen once on Apache
    under load): the content is ours, so it is recorded, not kept as a conflict."""
    async with machines(tmp_path, shared, "a", poll=1) as (a,):
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: side.looks >= 1)
        (a.folder / "f.txt").write_text("ours\n")
        await until(lambda: a.uploads() == 1 and not a.engine.status()["docs"].in_flight)
        stored = tmp_path / "store" / "Docs" / "f.txt"
        os.utime(stored, (1_700_000_000, 1_700_000_000))  # a new stamp, the same bytes
        await until(lambda: not side.unconfirmed)
        assert a.count(ConflictKept) == 0, sorted(a.files())
        assert sorted(a.files()) == ["f.txt"] and a.uploads() == 1
