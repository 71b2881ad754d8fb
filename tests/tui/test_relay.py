"""EventRelay: collapsing, batching and back-pressure (driven by hand; nothing is timed)."""

from __future__ import annotations

import asyncio

from syncapp.engine import (
    CountsChanged,
    Event,
    FolderState,
    FolderStateChanged,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
)
from syncapp.tui.relay import EventRelay


def progress(path: str, done: int, folder: str = "f") -> JobProgressed:
    return JobProgressed(folder, Op.UPLOAD, path, done, 100, 1.0)


async def test_replaceable_events_collapse_to_the_latest() -> None:
    batches: list[list[Event]] = []
    relay = EventRelay(batches.append, interval=3600)
    relay(JobStarted("f", Op.UPLOAD, "a", 100))
    for done in range(10):
        relay(progress("a", done))
        relay(progress("b", done))
        relay(CountsChanged("f", done, 0, 0, 0))
    relay(CountsChanged("g", 1, 0, 0, 0))
    relay(JobFinished("f", Op.UPLOAD, "a", 100))
    relay.flush()
    assert len(batches) == 1
    batch = batches[0]
    assert [type(e).__name__ for e in batch] == [
        "JobStarted",
        "JobProgressed",
        "JobProgressed",
        "CountsChanged",
        "CountsChanged",
        "JobFinished",
    ]
    assert [e.done for e in batch if isinstance(e, JobProgressed)] == [9, 9]
    counts = [e for e in batch if isinstance(e, CountsChanged)]
    assert [(c.folder, c.in_sync) for c in counts] == [("f", 9), ("g", 1)]


async def test_events_that_cannot_be_replaced_all_arrive_in_order() -> None:
    batches: list[list[Event]] = []
    relay = EventRelay(batches.append, interval=3600)
    events = [JobFinished("f", Op.UPLOAD, f"p{i}", i) for i in range(10_000)]
    for ev in events:
        relay(ev)
    relay.flush()
    assert batches == [events]


async def test_next_batch_waits_for_ack() -> None:
    batches: list[list[Event]] = []
    relay = EventRelay(batches.append, interval=0.0)
    relay(FolderStateChanged("f", FolderState.SCANNING))
    relay.flush()
    relay(FolderStateChanged("f", FolderState.SYNCING))
    relay.flush()  # the first batch is not handled yet: hold on
    assert len(batches) == 1
    assert relay.pending == 1
    relay.ack()
    while len(batches) < 2:  # the timer armed by ack delivers it
        await asyncio.sleep(0)
    assert [e.state for e in batches[1] if isinstance(e, FolderStateChanged)] == [
        FolderState.SYNCING
    ]


async def test_timer_delivers_and_close_stops() -> None:
    batches: list[list[Event]] = []
    relay = EventRelay(batches.append, interval=0.0)
    relay(FolderStateChanged("f", FolderState.SCANNING))
    while not batches:
        await asyncio.sleep(0)
    relay.ack()
    relay.close()
    relay(FolderStateChanged("f", FolderState.SYNCING))
    relay.flush()
    assert len(batches) == 1


async def test_after_a_big_batch_the_next_waits_longer() -> None:
    batches: list[list[Event]] = []
    relay = EventRelay(batches.append, interval=0.0, busy_interval=3600, busy_batch=3)
    relay(FolderStateChanged("f", FolderState.SCANNING))
    relay.flush()
    relay.ack()
    relay(FolderStateChanged("f", FolderState.SYNCING))
    while len(batches) < 2:  # a small batch: the next follows at once
        await asyncio.sleep(0)
    for i in range(3):
        relay(JobFinished("f", Op.UPLOAD, f"p{i}", i))
    relay.ack()
    while len(batches) < 3:
        await asyncio.sleep(0)
    relay.ack()
    relay(FolderStateChanged("f", FolderState.UP_TO_DATE))
    for _ in range(20):  # after a big one, the next waits (an hour here)
        await asyncio.sleep(0)
    assert len(batches) == 3 and relay.pending == 1
    relay.close()
