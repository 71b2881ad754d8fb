"""The job queue of one folder: merging, delays, parking and path locks. No asyncio, no I/O.

Jobs are keyed by path; a newer job for a queued path replaces the older one (the last one
wins), so a burst of changes to one file costs one job. Delayed jobs wait in a heap until
their time. A job under a path that has a job queued, waiting or running is parked until that
ancestor is done (a folder replacing a file, a moved folder), so it can neither starve the
ancestor nor race it. Jobs whose paths are the same or nested never run at the same time.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from syncapp.engine.scanner import parents


class JobKind(enum.StrEnum):
    """What a job does: bring one path in sync (upload, mkdir, or find it gone), delete one
    path remotely, or move one path there."""

    SYNC = "sync"
    DELETE = "delete"
    MOVE = "move"


@dataclass(slots=True)
class Job:
    kind: JobKind
    path: str
    src: str = ""  # for moves
    is_dir: bool = False  # for deletes and moves
    attempts: int = 0
    first_seen: float = field(default_factory=time.monotonic)
    started: float = 0.0

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.src, self.path) if self.kind is JobKind.MOVE else (self.path,)


class JobQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._queue: OrderedDict[str, Job] = OrderedDict()
        self._delayed: dict[str, tuple[float, Job]] = {}
        self._delay_heap: list[tuple[float, int, str]] = []
        self._seq = 0
        # Parked, not polled: a parked job costs nothing until its ancestor is done.
        self._parked: dict[str, Job] = {}
        self._parked_on: dict[str, list[str]] = {}
        self._running: dict[str, Job] = {}
        self._running_paths: Counter[str] = Counter()
        self._running_below: Counter[str] = Counter()

    # -- what is in it ----------------------------------------------------------------------------

    @property
    def running(self) -> dict[str, Job]:
        return self._running

    @property
    def waiting(self) -> int:
        """Jobs not running: queued, delayed or parked."""
        return len(self._queue) + len(self._delayed) + len(self._parked)

    def busy(self) -> bool:
        return bool(self._queue or self._running or self._delayed or self._parked)

    def holds(self, path: str) -> bool:
        """A job for ``path`` is queued, delayed or parked (not running)."""
        return path in self._queue or path in self._delayed or path in self._parked

    def keys(self) -> list[str]:
        return [*self._queue, *self._delayed, *self._parked]

    def queued(self) -> list[Job]:
        return list(self._queue.values())

    def delayed(self) -> list[Job]:
        return [job for _, job in self._delayed.values()]

    def parked(self) -> list[Job]:
        return list(self._parked.values())

    def where(self, path: str) -> tuple[str, Job, float] | None:
        """Where ``path``'s job is, for ``why``: ("running" | "queued" | "delayed" | "parked",
        the job, and its place in the queue or, delayed, when it is due on this queue's clock)."""
        if path in self._running:
            return "running", self._running[path], 0.0
        if path in self._delayed:
            when, job = self._delayed[path]
            return "delayed", job, when
        if path in self._queue:
            ahead = next(i for i, key in enumerate(self._queue) if key == path)
            return "queued", self._queue[path], float(ahead)
        if path in self._parked:
            return "parked", self._parked[path], 0.0
        return None

    # -- adding -----------------------------------------------------------------------------------

    def put(self, job: Job, delay: float = 0.0) -> bool:
        """Queue ``job``, replacing a queued or delayed job for its path; False when a pending
        move keeps the path instead (the move re-syncs its destination afterwards anyway)."""
        key = job.path
        parked = self._parked.pop(key, None)
        if parked is not None and parked.kind is JobKind.MOVE and job.kind is JobKind.SYNC:
            self._parked[key] = parked
            return False
        old_delayed = self._delayed.pop(key, None)
        if (
            old_delayed is not None
            and job.kind is JobKind.SYNC
            and old_delayed[1].kind is JobKind.SYNC
        ):
            # A retry keeps counting its attempts, a settling file its first sighting.
            job.attempts = old_delayed[1].attempts
            job.first_seen = old_delayed[1].first_seen
        existing = self._queue.get(key)
        if existing is not None and existing.kind is JobKind.MOVE and job.kind is JobKind.SYNC:
            return False
        if delay > 0:
            self._queue.pop(key, None)
            when = self.clock() + delay
            self._delayed[key] = (when, job)
            self._seq += 1
            heapq.heappush(self._delay_heap, (when, self._seq, key))
        else:
            self._queue[key] = job
            self._queue.move_to_end(key)
        return True

    def to_front(self, path: str) -> None:
        self._queue.move_to_end(path, last=False)

    # -- delays -----------------------------------------------------------------------------------

    def release_due(self, now: float) -> None:
        """Delayed jobs whose time has come join the queue (a newer queued job wins)."""
        while self._delay_heap and self._delay_heap[0][0] <= now:
            when, _, key = heapq.heappop(self._delay_heap)
            item = self._delayed.get(key)
            # A heap item whose job was replaced since is stale: its time differs.
            if item is not None and item[0] == when:
                del self._delayed[key]
                if key not in self._queue:
                    self._queue[key] = item[1]

    def next_due(self) -> float | None:
        """When the earliest delayed job is due (a stale heap item may make it early)."""
        return self._delay_heap[0][0] if self._delay_heap else None

    def release_all_delayed(self) -> None:
        """Every delayed job goes now (the remote is back)."""
        for key, (_, job) in list(self._delayed.items()):
            del self._delayed[key]
            self._queue[key] = job
        self._delay_heap.clear()

    def drain(self) -> list[Job]:
        """Empty the queue of everything not running: delayed jobs, then queued, then parked."""
        jobs = [*self.delayed(), *self._queue.values(), *self._parked.values()]
        self._delayed.clear()
        self._queue.clear()
        self._parked.clear()
        self._parked_on.clear()
        self._delay_heap.clear()
        return jobs

    # -- parking and path locks -------------------------------------------------------------------

    def path_pending(self, path: str) -> bool:
        return path in self._queue or path in self._delayed or bool(self._running_paths[path])

    def pending_ancestor(self, job: Job) -> str | None:
        """The nearest ancestor of the job's paths that has a job queued, waiting or running."""
        for p in job.paths:
            for a in parents(p):
                if self.path_pending(a):
                    return a
        return None

    def conflicts(self, job: Job) -> bool:
        # Ancestors need no check here: a job under a pending ancestor is parked before this.
        return any(self._running_paths[p] or self._running_below[p] for p in job.paths)

    def park(self, ancestor: str, key: str, job: Job) -> None:
        self._parked[key] = job
        self._parked_on.setdefault(ancestor, []).append(key)

    def unpark_ready(self) -> None:
        """Jobs whose ancestor has nothing pending any more go back to the front of the queue."""
        if not self._parked_on:
            return
        for ancestor in [a for a in self._parked_on if not self.path_pending(a)]:
            for key in reversed(self._parked_on.pop(ancestor)):
                job = self._parked.pop(key, None)
                if job is None or key in self._queue or key in self._delayed:
                    continue  # superseded by a newer job for the same path
                self._queue[key] = job
                self._queue.move_to_end(key, last=False)

    def _mark_running(self, job: Job, delta: int) -> None:
        for p in job.paths:
            self._running_paths[p] += delta
            for a in parents(p):
                self._running_below[a] += delta

    # -- running ----------------------------------------------------------------------------------

    def take(self, limit: int, max_skipped: int) -> list[Job]:
        """Jobs to start now, in queue order, up to ``limit`` running; each is marked running.

        A job under a pending ancestor is parked; one whose path is locked by a running job
        waits at the front, in order (more than ``max_skipped`` of those end the pass).
        """
        started: list[Job] = []
        skipped: list[tuple[str, Job]] = []
        while self._queue and len(self._running) < limit:
            key, job = self._queue.popitem(last=False)
            ancestor = self.pending_ancestor(job)
            if ancestor is not None:
                self.park(ancestor, key, job)
                continue
            if self.conflicts(job):
                skipped.append((key, job))
                if len(skipped) > max_skipped:
                    break
                continue
            self.begin(job)
            started.append(job)
        for key, job in reversed(skipped):
            self._queue[key] = job
            self._queue.move_to_end(key, last=False)
        return started

    def begin(self, job: Job) -> None:
        job.started = self.clock()
        self._running[job.path] = job
        self._mark_running(job, +1)

    def finish(self, job: Job) -> None:
        self._running.pop(job.path, None)
        self._mark_running(job, -1)
