"""When a folder scans and plans, on fake steps: no disk, no server."""

from __future__ import annotations

import asyncio

from syncapp.engine.scanloop import ScanLoop, Steps


class Recorder:
    def __init__(self, root_ok: bool = True) -> None:
        self.root_is_ok = root_ok
        self.calls: list[object] = []

    async def root_ok(self) -> bool:
        self.calls.append("root_ok")
        return self.root_is_ok

    async def full_scan(self) -> None:
        self.calls.append("scan")

    async def plan_batch(self, paths: set[str]) -> None:
        self.calls.append(sorted(paths))

    def steps(self) -> Steps:
        return Steps(
            root_ok=self.root_ok,
            full_scan=self.full_scan,
            plan_batch=self.plan_batch,
            watched=lambda paths: None,
            no_scan=lambda: self.calls.append("no scan"),
            watch_problem=lambda m: self.calls.append(("watch", m)),
            changed=lambda: None,
            crashed=lambda e: self.calls.append(("crashed", str(e))),
        )


async def test_once_scans_once_and_a_missing_root_is_no_scan() -> None:
    r = Recorder()
    await ScanLoop("f", "/nowhere", r.steps(), live=False, rescan_interval=0).run()
    assert r.calls == ["root_ok", "scan"]
    gone = Recorder(root_ok=False)
    await ScanLoop("f", "/nowhere", gone.steps(), live=False, rescan_interval=0).run()
    assert gone.calls == ["root_ok", "no scan"]


async def test_a_burst_of_batches_is_one_plan() -> None:
    r = Recorder()
    loop = ScanLoop("f", "/nowhere", r.steps(), live=True, rescan_interval=0)
    for i in range(1000):
        loop.add_batch({"notes.txt"} if i % 2 else {"notes.txt", "other.txt"})
    assert loop.batches_waiting()
    consumer = asyncio.create_task(loop._consume())
    await asyncio.sleep(0.05)
    consumer.cancel()
    assert r.calls == [["notes.txt", "other.txt"]]
    assert not loop.batches_waiting()


async def test_a_bug_in_a_step_is_said_not_swallowed() -> None:
    r = Recorder()

    async def broken() -> None:
        raise RuntimeError("boom")

    steps = r.steps()
    steps.full_scan = broken
    await ScanLoop("f", "/nowhere", steps, live=False, rescan_interval=0).run()
    assert r.calls == ["root_ok", ("crashed", "boom")]


async def test_watcher_trouble_asks_for_a_rescan() -> None:
    r = Recorder()
    loop = ScanLoop("f", "/nowhere", r.steps(), live=True, rescan_interval=0)
    loop._on_watch_error("out of inotify watches")
    assert loop._requested.is_set() and r.calls == [("watch", "out of inotify watches")]
    loop._requested.clear()
    loop._on_watch_recovered()
    assert loop._requested.is_set() and r.calls[-1] == ("watch", "")
