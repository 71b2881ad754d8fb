"""The dispatcher (queue → operations) on fake operations: no disk, no server."""

from __future__ import annotations

import asyncio
from typing import Any

from syncapp.engine.dispatch import Dispatcher
from syncapp.engine.jobqueue import Job, JobKind, JobQueue
from syncapp.engine.pacer import Pacer
from syncapp.errors import RemoteUnavailable


class FakeOps:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or {}
        self.stale_uploads: dict[str, str] = {}
        self.discarding = False
        self.running = 0
        self.most = 0

    async def _op(self, kind: str, job: Job) -> None:
        self.calls.append((kind, job.path))
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        if job.path in self.fail:
            raise self.fail.pop(job.path)

    async def sync_path(self, job: Job) -> None:
        await self._op("sync", job)

    async def delete(self, job: Job) -> None:
        await self._op("delete", job)

    async def move(self, job: Job) -> None:
        await self._op("move", job)


class FakeFailures:
    def __init__(self) -> None:
        self.failed: list[tuple[str, Exception]] = []

    def job_failed(self, job: Job, e: Exception) -> None:
        self.failed.append((job.path, e))

    def fail(self, job: Job, reason: str) -> None:
        self.failed.append((job.path, RuntimeError(reason)))


def dispatcher(ops: FakeOps, *, dry_run: bool = False, pacer: Pacer | None = None) -> Any:
    jobs = JobQueue()
    d = Dispatcher(
        "f",
        jobs,
        pacer or Pacer(),
        ops,  # type: ignore[arg-type]
        FakeFailures(),  # type: ignore[arg-type]
        concurrency=4,
        stopped=lambda: False,
        requeue=lambda job, delay: jobs.put(job, delay),
        done=lambda job: None,
        after_pass=lambda: None,
        dry_run=dry_run,
    )
    return d, jobs


async def drain(d: Dispatcher, jobs: JobQueue) -> None:
    task = asyncio.create_task(d.run())
    d.wake.set()
    for _ in range(300):
        await asyncio.sleep(0.01)
        if not jobs.busy():
            break
    task.cancel()
    await d.cancel()


async def test_a_burst_of_1000_changes_to_one_path_is_one_operation() -> None:
    ops = FakeOps()
    d, jobs = dispatcher(ops)
    for _ in range(1000):
        jobs.put(Job(JobKind.SYNC, "notes.txt"))
    await drain(d, jobs)
    assert ops.calls == [("sync", "notes.txt")]


async def test_jobs_run_by_kind_within_the_concurrency() -> None:
    ops = FakeOps()
    d, jobs = dispatcher(ops)
    for i in range(10):
        jobs.put(Job(JobKind.SYNC, f"f{i}"))
    jobs.put(Job(JobKind.DELETE, "gone"))
    jobs.put(Job(JobKind.MOVE, "new", src="old"))
    await drain(d, jobs)
    assert len(ops.calls) == 12 and ops.most <= 4
    assert ("delete", "gone") in ops.calls and ("move", "new") in ops.calls


async def test_a_dry_run_holds_every_operation_back() -> None:
    ops = FakeOps()
    d, jobs = dispatcher(ops, dry_run=True)
    for i in range(20):
        jobs.put(Job(JobKind.SYNC, f"f{i}"))
    jobs.put(Job(JobKind.DELETE, "gone"))
    await drain(d, jobs)
    assert ops.calls == [] and not jobs.busy()


async def test_a_held_server_starts_nothing_then_one_probe() -> None:
    pacer = Pacer(uniform=lambda a, b: b)
    pacer.hold(started=0.0, retry_after=3600)  # a 429 with Retry-After: an hour
    ops = FakeOps()
    d, jobs = dispatcher(ops, pacer=pacer)
    for i in range(5):
        jobs.put(Job(JobKind.SYNC, f"f{i}"))
    task = asyncio.create_task(d.run())
    d.wake.set()
    await asyncio.sleep(0.05)
    assert ops.calls == []  # held: nothing starts
    pacer.hold_until = 0.0  # the hour is over
    d.wake.set()
    await asyncio.sleep(0.005)
    assert len(ops.calls) == 1  # probing: one job alone
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not jobs.busy():
            break
    task.cancel()
    await d.cancel()
    assert len(ops.calls) == 5 and not pacer.probing


async def test_failures_go_to_the_failure_policy() -> None:
    ops = FakeOps(fail={"f1": RemoteUnavailable("503", status=503)})
    d, jobs = dispatcher(ops)
    jobs.put(Job(JobKind.SYNC, "f1"))
    await drain(d, jobs)
    assert [p for p, _ in d.failures.failed] == ["f1"]
