"""What a failure means for one folder: a path failed, retry it later, hold the whole server,
go offline and probe, or stop the folder with an error it says in words.

When calls may go again is the pacer's rule; this room applies it to the folder's queue and
status (the folder's ``error`` and ``offline``, the UI's words).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING

from syncapp.engine.events import JobFailed, Op, RemoteOffline, RemoteOnline, RemoteStillOffline
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.pacer import PROBE_FIRST, REMOTE_WIDE, backoff, folder_retry_delay, probe_delays
from syncapp.engine.plan import Plan
from syncapp.engine.state import Pending, PendingStatus
from syncapp.errors import RemoteConflict, RemoteError, RemoteProtocolError, RemoteUnavailable

if TYPE_CHECKING:
    from syncapp.engine.folder import FolderSync

log = logging.getLogger(__name__)


class Failures:
    def __init__(self, folder: FolderSync) -> None:
        self.folder = folder
        self.name = folder.name
        self.state = folder.state
        self.bus = folder.bus
        self.remote = folder.remote
        self.remote_root = folder.remote_root
        self.live = folder.live
        self.max_attempts_once = folder.max_attempts_once
        # An error a whole-folder remote step set (live): retried by itself with capped backoff,
        # at once on a rescan or a new local change; cleared by the next scan that gets through.
        self.remote_error = ""
        self.remote_failures = 0
        self.remote_retry: asyncio.TimerHandle | None = None
        self.remote_failed_at = 0.0
        # The last scan could not plan against the remote: the next answer must rescan.
        self.scan_failed = False
        self.probe_task: asyncio.Task[None] | None = None

    def close(self) -> list[asyncio.Task[None]]:
        """Leaving: no retry is scheduled any more; the probe (if any) is for the caller to
        cancel with the folder's other tasks."""
        if self.remote_retry is not None:
            self.remote_retry.cancel()
        return [self.probe_task] if self.probe_task is not None else []

    def remote_unusable(self, e: RemoteError, plan: Plan) -> None:
        """The remote failed before anything could be planned against it.

        Every change waits with the error as its reason (so `why` can say so). Live mode goes
        offline and rescans when the remote answers again; --once stops the folder.
        """
        self.folder._forget_ignored(plan.forgets)
        paths = [*plan.mkdirs, *plan.uploads, *(d for _, d, _ in plan.moves)]
        paths += [p for p, _ in plan.deletes]
        retry_at = None if not self.live else time.time() + 5.0
        status = PendingStatus.RETRYING if self.live else PendingStatus.FAILED
        reason = f"waiting for the remote: {e}" if self.live else f"remote unusable: {e}"
        self.state.set_pending_many(
            self.name, (Pending(p, status, reason, 1, retry_at) for p in paths)
        )
        self.scan_failed = True
        if not self.live:
            self.folder.flags.error = remote_problem(e)
            self.folder._failed.update(paths)
            return
        if e.fatal_for_folder or not e.retryable:
            self._remote_failed(e)
            return
        self.note_remote_failure(e)

    def _remote_failed(self, e: RemoteError) -> None:
        """Live: a whole-folder remote step failed in a way waiting offline would not cure
        (a broken answer, 401, 507). Say what it was and rescan by itself after a capped
        backoff; a rescan or a new local change tries at once."""
        self.remote_failures += 1
        delay = folder_retry_delay(self.remote_failures, e.retry_after, fatal=e.fatal_for_folder)
        self.remote_error = f"{remote_problem(e)}; retrying in {math.ceil(delay)} s"
        self.folder.flags.error = self.remote_error
        self.remote_failed_at = time.monotonic()
        if self.remote_retry is not None:
            self.remote_retry.cancel()
        self.remote_retry = asyncio.get_running_loop().call_later(delay, self.folder.rescan)
        log.warning("%s: %s", self.name, self.remote_error)
        self.folder._update_state()

    def remote_usable(self) -> None:
        """A scan got through to the remote: an error a failed one set is over."""
        self.scan_failed = False
        if self.remote_retry is not None:
            self.remote_retry.cancel()
            self.remote_retry = None
        if self.remote_error and self.folder.flags.error == self.remote_error:
            self.folder.flags.error = ""
            self.folder.wake()
        self.remote_error = ""

    def retry_remote_now(self) -> None:
        """A new local change while a remote error holds the folder: try again at once, but
        not more than once every few seconds (a busy folder must not hammer a broken server)."""
        if self.remote_error and time.monotonic() - self.remote_failed_at >= 5.0:
            self.remote_failed_at = time.monotonic()
            self.folder.rescan()

    def fail(self, job: Job, reason: str, *, op: Op = Op.UPLOAD) -> None:
        self.folder._failed.add(job.path)
        self.state.set_pending(
            self.name, Pending(job.path, PendingStatus.FAILED, reason, job.attempts)
        )
        self.bus.publish(JobFailed(self.name, op, job.path, reason, None))

    def job_failed(self, job: Job, e: RemoteError) -> None:
        op = {JobKind.DELETE: Op.DELETE, JobKind.MOVE: Op.MOVE}.get(job.kind, Op.UPLOAD)
        if e.fatal_for_folder:
            self.folder.flags.error = str(e)
            self.folder._enqueue(job)  # kept for when the problem is fixed
            self.bus.publish(JobFailed(self.name, op, job.path, str(e), None))
            self.state.set_pending(
                self.name, Pending(job.path, PendingStatus.FAILED, str(e), job.attempts)
            )
            if self.live:
                # Try again much later by itself; the user can retry at once with resume.
                asyncio.get_running_loop().call_later(300, self._clear_fatal, str(e))
            return
        if isinstance(e, RemoteConflict) and self.folder.jobs.pending_ancestor(job) is not None:
            # A file is still where our folder should be: its own job (replace the file with
            # the folder) came after this one started. Wait for it (parked) instead of failing.
            self.folder._enqueue(job)
            self.state.set_pending(
                self.name,
                Pending(
                    job.path,
                    PendingStatus.QUEUED,
                    f"waiting for its parent folder to be synced: {e}",
                ),
            )
            return
        if not e.retryable:
            self.fail(job, str(e), op=op)
            return
        job.attempts += 1
        if not self.live and job.attempts >= self.max_attempts_once:
            self.fail(job, f"gave up after {job.attempts} attempts: {e}", op=op)
            return
        if e.status in REMOTE_WIDE:
            # The server as a whole says "not now": every job waits, not just this one.
            delay = self.folder.pacer.hold(job.started, e.retry_after)
            self.folder._enqueue(job)
            self.folder.jobs.to_front(job.path)
            asyncio.get_running_loop().call_later(delay, self.folder.wake)
        else:
            delay = backoff(job.attempts, e.retry_after)
            self.folder._enqueue(job, delay=delay)
        retry_at = time.time() + delay
        self.state.set_pending(
            self.name,
            Pending(
                job.path,
                PendingStatus.RETRYING,
                f"waiting to retry after: {e}",
                job.attempts,
                retry_at,
            ),
        )
        self.bus.publish(JobFailed(self.name, op, job.path, str(e), retry_at))
        if isinstance(e, RemoteUnavailable) and e.status is None:
            self.note_remote_failure(e)

    def _clear_fatal(self, message: str) -> None:
        if self.folder.flags.error == message:
            self.folder.flags.error = ""
            self.folder.wake()
            self.folder._update_state()

    def note_remote_failure(self, e: RemoteError) -> None:
        if e.fatal_for_folder:
            self.folder.flags.error = str(e)
            self.folder._update_state()
            return
        if not self.folder.flags.offline:
            self.folder.flags.offline = remote_problem(e)
            self.bus.publish(RemoteOffline(self.name, str(e), time.time() + PROBE_FIRST))
            self.folder._update_state()
        if self.probe_task is None or self.probe_task.done():
            self.probe_task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        """While offline, check the remote now and then; resume everything when it answers."""
        delays = probe_delays()
        delay = next(delays)
        tries = 0
        while True:
            await asyncio.sleep(delay)
            tries += 1
            try:
                await self.remote.stat(self.remote_root)
            except RemoteError as e:
                if e.retryable:
                    if not self.live and tries >= self.max_attempts_once:
                        self._give_up_offline(remote_problem(e))
                        return
                    delay = next(delays)
                    self.folder.flags.offline = remote_problem(e)
                    self.bus.publish(RemoteStillOffline(self.name, str(e), time.time() + delay))
                    continue
                if e.fatal_for_folder:
                    self.folder.flags.offline = ""
                    if self.live:
                        self._remote_failed(e)
                    else:
                        self.folder.flags.error = str(e)
                        self.folder._update_state()
                    return
            break
        self.folder.flags.offline = ""
        self.bus.publish(RemoteOnline(self.name))
        # A scan that ran while the remote was gone planned nothing: run it again.
        if not self.folder.reconciler.ready or self.scan_failed:
            self.folder.rescan()
        # Everything waiting to retry goes now.
        self.folder.jobs.release_all_delayed()
        self.folder.wake()
        self.folder._update_state()

    def _give_up_offline(self, error: str) -> None:
        for job in self.folder.jobs.drain():
            self.fail(job, error)
        self.folder.flags.offline = ""
        self.folder.flags.error = error
        self.folder._update_state()


def remote_problem(e: RemoteError) -> str:
    """What went wrong, in words: "unreachable" only when the server did not answer."""
    if e.fatal_for_folder:
        return str(e)
    if isinstance(e, RemoteUnavailable) and e.status is None:
        return f"remote unreachable: {e}"
    if isinstance(e, RemoteProtocolError):
        return f"remote answered something syncapp cannot read: {e}"
    return f"remote error: {e}"
