"""The status word, the throttled counts and idleness, no server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from syncapp.engine.events import CountsChanged, Event, EventBus, FolderState, FolderStateChanged
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.jobqueue import Job, JobKind, JobQueue
from syncapp.engine.progress import RoundTally
from syncapp.engine.state import StateDB
from syncapp.engine.status import Flags, StatusBoard


def test_the_word_follows_one_order_of_precedence() -> None:
    f = Flags(scanning=False)
    assert f.word(busy=False, failed=0) == (FolderState.UP_TO_DATE, "")
    assert f.word(busy=False, failed=2) == (FolderState.ERROR, "2 path(s) failed to sync")
    assert f.word(busy=True, failed=2)[0] is FolderState.SYNCING
    f.watch_problem = "watcher down"
    assert f.word(busy=False, failed=0) == (FolderState.UP_TO_DATE, "watcher down")
    f.scanning = True
    assert f.word(busy=True, failed=0)[0] is FolderState.SCANNING
    f.offline = "remote unreachable"
    assert f.word(busy=True, failed=0) == (FolderState.OFFLINE, "remote unreachable")
    f.pause("held by the guard")
    assert f.word(busy=True, failed=0) == (FolderState.PAUSED, "held by the guard")
    f.error = "401"
    assert f.word(busy=True, failed=0) == (FolderState.ERROR, "401")
    f.unpause()
    assert not f.paused and f.pause_reason == ""


def board(tmp_path: Path) -> tuple[StatusBoard, JobQueue, DeleteGuard, list[Event], StateDB]:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    state = StateDB(tmp_path / "state.db")
    state.open_folder("f", "r")
    jobs, guard = JobQueue(), DeleteGuard()
    b = StatusBoard(
        "f",
        bus,
        state,
        RoundTally(),
        jobs=jobs,
        guard=guard,
        synced_files=lambda: 3,
        watch_waiting=lambda: False,
    )
    return b, jobs, guard, seen, state


async def test_the_word_is_said_once_per_change_and_counts_are_throttled(tmp_path: Path) -> None:
    b, _jobs, _, seen, state = board(tmp_path)
    for _ in range(100):
        b.update()  # still scanning: one word, and the counts at most once per tick
    await asyncio.sleep(0.15)
    words = [e for e in seen if isinstance(e, FolderStateChanged)]
    assert [w.state for w in words] == [FolderState.SCANNING]
    assert len([e for e in seen if isinstance(e, CountsChanged)]) == 1
    b.flags.scanning = False
    b.scan_done.set()
    b.update()
    said = [e.state for e in seen if isinstance(e, FolderStateChanged)]
    assert said[-1] is FolderState.UP_TO_DATE
    assert b.last_sync is not None and b.idle.is_set()
    assert b.status().in_sync == 3
    state.close()


async def test_idle_waits_for_jobs_and_held_deletes_but_not_while_paused(tmp_path: Path) -> None:
    b, jobs, guard, _, state = board(tmp_path)
    b.flags.scanning = False
    b.scan_done.set()
    jobs.put(Job(JobKind.SYNC, "a"))
    b.check_idle()
    assert not b.idle.is_set()
    (job,) = jobs.take(8, 32)
    jobs.finish(job)
    guard.hold("gone", False)
    b.check_idle()
    assert not b.idle.is_set()  # a held delete is work still to do
    b.flags.pause("the guard")
    b.check_idle()
    assert b.idle.is_set()  # paused: nothing more will happen by itself
    waiter = asyncio.create_task(b.wait_idle())
    await asyncio.wait_for(waiter, 1)
    state.close()
