"""Two machines edit one file within one second to the same size: on servers that stamp a file
with (whole-second mtime, size) the second write looks like the first, and the machine that wrote
the first would keep its content for good (seen on rclone serve webdav). The writer of the second
now writes again with a stamp that differs (engine/restamp.py), so both machines converge."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncapp.engine import JobFinished, Op, SyncEngine
from syncapp.engine.restamp import looks_unchanged, next_mtime_ns, wait_for_server_clock
from syncapp.remotes.base import PutResult, RemoteEntry
from tests.helpers import write_tree
from tests.integration import twoway_machines
from tests.integration.twoway_machines import Shared, machines, text, until

# The fixtures (pytest finds them as this module's names).
own_trash = twoway_machines.own_trash
shared = twoway_machines.shared

S = 1_000_000_000


def test_a_stamp_like_the_old_one_is_seen_as_unchanged() -> None:
    old = RemoteEntry("a.txt", False, 10, 1_700_000_000 * S, "e1")
    # The ETag says it where there is one.
    assert looks_unchanged(old, 10, PutResult("e1", 1_700_000_005 * S), keeps_mtime=True)
    assert not looks_unchanged(old, 10, PutResult("e2", 1_700_000_000 * S), keeps_mtime=True)
    assert not looks_unchanged(old, 11, PutResult("e1", None), keeps_mtime=True)
    # No ETag: the mtime we sent (whole seconds) or the server's clock.
    bare = RemoteEntry("a.txt", False, 10, 1_700_000_000 * S)
    assert looks_unchanged(bare, 10, PutResult(None, 1_700_000_000 * S), keeps_mtime=True)
    assert not looks_unchanged(bare, 10, PutResult(None, 1_700_000_001 * S), keeps_mtime=True)
    assert looks_unchanged(bare, 10, PutResult(None, 1_700_000_000 * S), keeps_mtime=False)
    assert not looks_unchanged(bare, 10, PutResult(None, 1_700_000_001 * S), keeps_mtime=False)
    # Nothing to compare: a poller cannot compare either.
    assert not looks_unchanged(bare, 10, PutResult(None, None), keeps_mtime=True)
    # The new stamp: a second past the old one, or the file's own if that is later.
    assert next_mtime_ns(bare, 1_600_000_000 * S) == 1_700_000_001 * S
    assert next_mtime_ns(bare, 1_800_000_000 * S) == 1_800_000_000 * S
    assert 1.0 <= wait_for_server_clock(bare, PutResult(None, 1_700_000_000 * S)) < 1.2


async def test_a_same_size_edit_within_the_second_reaches_the_other_machine(
    tmp_path: Path,
    shared: Shared,
) -> None:
    async with machines(tmp_path, shared, "a", "b") as (a, b):
        a_notes, b_notes = a.folder / "notes.txt", b.folder / "notes.txt"
        a_notes.write_text("first one\n")
        await until(lambda: text(b_notes) == "first one\n")
        for m in (a, b):
            side = m.engine.folder("docs").remote_side
            assert side is not None
            await until(lambda side=side: not side.unconfirmed)  # type: ignore[misc]
        # Same size, mtimes in one whole second: the stamps many servers give are equal.
        second = int(time.time()) - 30
        uploads = a.uploads()
        a_notes.write_text("A version\n")
        os.utime(a_notes, (second + 0.1, second + 0.1))
        await until(lambda: a.uploads() > uploads and not a.engine.status()["docs"].in_flight)
        b_notes.write_text("B version\n")
        os.utime(b_notes, (second + 0.6, second + 0.6))

        def converged() -> bool:
            return text(a_notes) == text(b_notes) == "B version\n" and a.files() == b.files()

        try:
            await until(converged)
        except TimeoutError:
            seen = {n: {p: text(m.folder / p) for p in m.files()} for n, m in (("a", a), ("b", b))}
            raise AssertionError(f"the machines did not converge: {seen}") from None


async def test_an_overwrite_stamped_like_our_upload_keeps_both_contents(
    tmp_path: Path,
    shared: Shared,
) -> None:
    """Another machine that never saw our upload writes the same size in the same second: on
    servers whose stamps cannot tell the two apart the listing shows "our" stamp, so the
    upload is read back before it counts as settled (engine/ownwrites.py)."""
    async with machines(tmp_path, shared, "a") as (a,):
        notes = a.folder / "notes.txt"
        notes.write_text("first one\n")
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: a.uploads() == 1 and not side.unconfirmed)
        second = int(time.time()) - 30
        notes.write_text("A version\n")
        os.utime(notes, (second + 0.1, second + 0.1))
        await until(lambda: a.uploads() == 2 and not a.engine.status()["docs"].in_flight)
        assert "notes.txt" in side.unconfirmed  # not settled yet: no look has taken it for ours
        remote = a.engine.folder("docs").remote

        async def body() -> AsyncIterator[bytes]:
            yield b"B version\n"

        # As another machine's engine writes it: same size, its mtime in the same second.
        await remote.put("Docs/notes.txt", body(), size=10, mtime_ns=(second * S) + S // 2)

        def both_kept() -> bool:
            here = {p: text(a.folder / p) for p in a.files()}
            return (
                here.get("notes.txt") == "A version\n"
                and sorted(map(str, here.values())) == ["A version\n", "B version\n"]
                and not side.unconfirmed
                and not a.engine.status()["docs"].in_flight
            )

        try:
            await until(both_kept)
        except TimeoutError:
            seen = {p: text(a.folder / p) for p in a.files()}
            raise AssertionError(f"not both kept: {seen}") from None
        # And the remote holds both too (the conflict copy uploads like any new file).
        listed = [e async for e in remote.list("Docs")]
        names = {e.path for e in listed if not e.is_dir and "/.syncapp-" not in e.path}
        contents = set()
        for p in names:
            async with remote.get(p) as chunks:
                contents.add(b"".join([c async for c in chunks]))
        assert contents == {b"A version\n", b"B version\n"}, names


@pytest.mark.parametrize("shared", ["local", "rclone", "nginx"], indirect=True)
async def test_run_once_settles_its_uploads_before_it_ends(tmp_path: Path, shared: Shared) -> None:
    """A one-shot run remembers nothing for the next: its last look settles every upload (read
    back where the stamps cannot tell), so an unseen overwrite right after it is kept too."""
    cfg = twoway_machines.config(tmp_path, shared, "a")
    notes = cfg.folders["docs"].path / "notes.txt"
    notes.write_text("first one\n")
    state = tmp_path / "a" / "state" / "state.db"
    async with SyncEngine(cfg, state, live=False) as engine:
        await engine.wait_idle()
    second = int(time.time()) - 30
    notes.write_text("A version\n")
    os.utime(notes, (second + 0.1, second + 0.1))
    async with SyncEngine(cfg, state, live=False) as engine:
        remote = engine.folder("docs").remote
        tasks: list[asyncio.Task[object]] = []

        async def body() -> AsyncIterator[bytes]:
            yield b"B version\n"

        def overwrite(ev: object) -> None:
            # Another machine that never saw this upload writes right after it.
            if tasks or not isinstance(ev, JobFinished):
                return
            if ev.op is Op.UPLOAD and ev.path == "notes.txt":
                mtime = second * S + S // 2
                tasks.append(asyncio.ensure_future(
                    remote.put("Docs/notes.txt", body(), size=10, mtime_ns=mtime)
                ))  # fmt: skip

        engine.subscribe(overwrite)
        await engine.wait_idle()
        assert tasks and all(t.done() for t in tasks)
    here = cfg.folders["docs"].path
    kept = sorted(p.read_text() for p in here.iterdir() if p.name.startswith("notes"))
    assert kept == ["A version\n", "B version\n"], kept


@pytest.mark.parametrize("shared", ["rclone", "apache"], indirect=True)
async def test_uploads_settle_soon_after_they_end_not_at_the_next_regular_look(
    tmp_path: Path, shared: Shared
) -> None:
    """remote_poll = 300: the look that settles a burst of uploads comes about two seconds
    after the last, brought forward by the uploads themselves (a regular look is minutes away,
    and an edit by another machine meanwhile would be taken for an unseen overwrite)."""
    async with machines(tmp_path, shared, "a", poll=300) as (a,):
        side = a.engine.folder("docs").remote_side
        assert side is not None
        await until(lambda: side.looks >= 1)
        write_tree(a.folder, {f"d{i % 3}/f{i}.txt": f"file {i}\n" for i in range(30)})
        await until(lambda: a.uploads() == 30 and not a.engine.status()["docs"].in_flight)
        looks = side.looks
        await until(lambda: not side.unconfirmed, timeout=60)
        assert side.looks - looks <= 2  # one look for the burst (two if it straddled one)


@pytest.mark.parametrize("shared", ["local"], indirect=True)
async def test_a_paused_folder_with_uploads_due_to_settle_waits_at_the_polls_pace(
    tmp_path: Path, shared: Shared
) -> None:
    """Paused, no look settles anything: the loop must not spin on uploads that are due (it
    once did, starving the event loop and the UI)."""
    async with machines(tmp_path, shared, "a") as (a,):
        side = a.engine.folder("docs").remote_side
        assert side is not None
        write_tree(a.folder, {"a.txt": "a\n", "b.txt": "b\n"})
        await until(lambda: a.uploads() == 2 and not a.engine.status()["docs"].in_flight)
        a.engine.pause("docs")
        assert side.unconfirmed  # due in two seconds, and paused before that
        rounds = side.looks
        await asyncio.sleep(3.0)
        assert side.looks - rounds <= 3.0 / 0.5 + 2, side.looks - rounds
        a.engine.resume("docs")
        await until(lambda: not side.unconfirmed)
