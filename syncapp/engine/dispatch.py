"""The dispatcher: queue → operations, for one folder.

Woken by a new job, a finished one or a delay running out, it takes the jobs that may start
now off the queue (none while the folder is stopped or the pacer holds the server; one while
the pacer probes; else up to the folder's concurrency) and runs each one's operation as a
task. What went wrong goes to the failure policy; a job whose path changed under it runs again.

A dry run holds the operations back here (rclone's ``SkipDestructive``): its jobs are taken
off the queue in the same order and dropped, so nothing reaches the remote. What the run
would do was recorded when it was planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from syncapp.engine.failures import Failures
from syncapp.engine.jobqueue import Job, JobKind, JobQueue
from syncapp.engine.operations import Operations, _Requeue
from syncapp.engine.pacer import Pacer
from syncapp.errors import LocalError, RemoteError

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        name: str,
        jobs: JobQueue,
        pacer: Pacer,
        ops: Operations,
        failures: Failures,
        *,
        concurrency: int,
        stopped: Callable[[], bool],
        requeue: Callable[[Job, float], None],
        done: Callable[[Job], None],
        after_pass: Callable[[], None],
        dry_run: bool = False,
    ) -> None:
        self.name = name
        self.jobs = jobs
        self.pacer = pacer
        self.ops = ops
        self.failures = failures
        self.concurrency = concurrency
        self.stopped = stopped
        self.requeue = requeue
        self.done = done
        self.after_pass = after_pass
        self.dry_run = dry_run
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            now = time.monotonic()
            self.jobs.release_due(now)
            if self.stopped() or self.pacer.held(now):
                self._arm_delay_wakeup()
                self.after_pass()
                continue
            self.jobs.unpark_ready()
            limit = self.pacer.limit(self.concurrency)
            for job in self.jobs.take(limit, max_skipped=4 * self.concurrency):
                self.spawn(self._run(job), f"{job.kind} {job.path}")
            self._arm_delay_wakeup()
            self.after_pass()

    def _arm_delay_wakeup(self) -> None:
        due = self.jobs.next_due()
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            asyncio.get_running_loop().call_later(delay, self.wake.set)

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.name} {what}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, job: Job) -> None:
        try:
            if self.dry_run:
                pass  # held back: planned and recorded, never sent
            elif job.kind is JobKind.SYNC:
                await self.ops.sync_path(job)
            elif job.kind is JobKind.DELETE:
                await self.ops.delete(job)
            else:
                await self.ops.move(job)
        except _Requeue:
            self.requeue(Job(job.kind, job.path, job.src, job.is_dir), 0.05)
        except RemoteError as e:
            self.failures.job_failed(job, e)
        except LocalError as e:
            self.failures.fail(job, e.problem)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("job %s %s failed", job.kind, job.path)
            self.failures.fail(job, f"internal error: {e}")
        else:
            self.pacer.succeeded()
            if self.ops.stale_uploads and not self.ops.discarding:
                self.ops.discarding = True
                self.spawn(self.ops.discard_stale_once(), "discard stale uploads")
        finally:
            self.jobs.finish(job)
            self.done(job)
            self.wake.set()

    async def cancel(self) -> None:
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
