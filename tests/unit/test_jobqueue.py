"""The job queue on a fake clock: merging, delays, parking and path locks, no server."""

from __future__ import annotations

from syncapp.engine.jobqueue import Job, JobKind, JobQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sync(path: str) -> Job:
    return Job(JobKind.SYNC, path)


def paths(jobs: list[Job]) -> list[str]:
    return [j.path for j in jobs]


def test_a_burst_to_one_path_is_one_job() -> None:
    q = JobQueue(Clock())
    for _ in range(1000):
        assert q.put(sync("notes.txt"))
    assert q.waiting == 1
    started = q.take(limit=8, max_skipped=32)
    assert paths(started) == ["notes.txt"]
    assert q.waiting == 0 and not q.take(8, 32)


def test_the_last_job_for_a_path_wins_and_goes_to_the_back() -> None:
    q = JobQueue(Clock())
    q.put(sync("a"))
    q.put(sync("b"))
    q.put(Job(JobKind.DELETE, "a"))
    jobs = q.take(limit=8, max_skipped=32)
    assert [(j.kind, j.path) for j in jobs] == [("sync", "b"), ("delete", "a")]


def test_a_queued_move_keeps_its_destination() -> None:
    q = JobQueue(Clock())
    q.put(Job(JobKind.MOVE, "new", src="old"))
    assert not q.put(sync("new"))  # the move re-syncs its destination itself
    (job,) = q.take(8, 32)
    assert job.kind == JobKind.MOVE


def test_delays_on_the_clock() -> None:
    clock = Clock()
    q = JobQueue(clock)
    q.put(sync("late"), delay=5.0)
    q.put(sync("soon"), delay=1.0)
    assert q.next_due() == 101.0
    q.release_due(clock.now)
    assert q.take(8, 32) == [] and q.waiting == 2
    clock.now = 101.0
    q.release_due(clock.now)
    assert paths(q.take(8, 32)) == ["soon"]
    clock.now = 106.0
    q.release_due(clock.now)
    assert paths(q.take(8, 32)) == ["late"]
    assert q.next_due() is None


def test_a_newer_job_replaces_a_delayed_one_and_keeps_its_count() -> None:
    clock = Clock()
    q = JobQueue(clock)
    retry = sync("f")
    retry.attempts, retry.first_seen = 3, 50.0
    q.put(retry, delay=10.0)
    fresh = sync("f")
    q.put(fresh)  # a new local change: goes now, counting on from the retry
    assert q.waiting == 1
    assert q.take(8, 32) == [fresh]
    assert (fresh.attempts, fresh.first_seen) == (3, 50.0)
    clock.now = 200.0
    q.finish(fresh)
    q.release_due(clock.now)  # the old heap item is stale: nothing comes back
    assert q.waiting == 0


def test_release_all_delayed_and_drain() -> None:
    q = JobQueue(Clock())
    q.put(sync("d1"), delay=30.0)
    q.put(sync("d2"), delay=60.0)
    q.release_all_delayed()
    assert paths(q.take(1, 4)) == ["d1"]
    q.put(sync("d3"), delay=5.0)
    q.put(sync("q"))
    assert paths(q.drain()) == ["d3", "d2", "q"]
    assert q.busy()  # d1 still runs
    assert q.waiting == 0 and q.next_due() is None


def test_children_park_under_a_pending_folder_and_come_back_in_order() -> None:
    q = JobQueue(Clock())
    q.put(sync("dir"))  # a file became a folder: "dir" must be synced first
    for name in ["dir/1", "dir/2", "dir/3", "other"]:
        q.put(sync(name))
    q.put(sync("dir"))  # changed again: now queued behind its children
    started = q.take(limit=8, max_skipped=32)
    assert paths(started) == ["other", "dir"]
    assert q.parked() and paths(q.parked()) == ["dir/1", "dir/2", "dir/3"]
    q.unpark_ready()
    assert q.take(8, 32) == []  # "dir" still runs: they stay parked
    q.finish(started[1])
    q.unpark_ready()
    assert paths(q.take(8, 32)) == ["dir/1", "dir/2", "dir/3"]


def test_a_newer_job_for_a_parked_path_supersedes_it() -> None:
    q = JobQueue(Clock())
    q.put(sync("dir"))
    q.put(sync("dir/f"))
    q.put(sync("dir"))
    (d,) = q.take(8, 32)
    assert paths(q.parked()) == ["dir/f"]
    delete = Job(JobKind.DELETE, "dir/f")
    q.put(delete)
    assert q.parked() == []
    q.finish(d)
    q.unpark_ready()
    assert q.take(8, 32) == [delete]


def test_path_locks_and_the_running_limit() -> None:
    q = JobQueue(Clock())
    q.put(Job(JobKind.MOVE, "b", src="a", is_dir=True))
    (move,) = q.take(8, 32)
    q.put(sync("a/x"))  # under the move's source: parked until the move ends
    q.put(sync("b"))  # the move's own destination: locked while it runs
    q.put(sync("c"))
    q.put(sync("d"))
    assert paths(q.take(limit=2, max_skipped=32)) == ["c"]  # 2 running: the limit
    assert q.conflicts(sync("b")) and q.conflicts(sync("a"))
    assert q.pending_ancestor(sync("b/deep")) == "b"
    q.finish(move)
    q.unpark_ready()
    assert paths(q.take(limit=8, max_skipped=32)) == ["a/x", "b", "d"]
    assert set(q.running) == {"a/x", "b", "c", "d"}
    assert q.clock() == 100.0 and all(j.started == 100.0 for j in q.running.values())


def test_skipped_jobs_stay_in_order_and_a_pass_ends_after_max_skipped() -> None:
    q = JobQueue(Clock())
    q.put(sync("f"))
    (running,) = q.take(8, 32)
    for _ in range(3):
        q.put(sync("f"))  # merged: one job waiting for the running one
    q.put(sync("g"))
    assert paths(q.take(8, max_skipped=0)) == []  # the pass stopped at the first locked job
    assert paths(q.queued()) == ["f", "g"]
    q.finish(running)
    assert paths(q.take(8, 32)) == ["f", "g"]
