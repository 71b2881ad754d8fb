"""What only the running engine knows, for the views that ask it (``status``, ``why``).

``Figures``: a folder's live numbers (upload and download rates, the round's done of total,
an ETA, the files in flight with their bytes sent). ``PathNow``: where one path stands right
now (in flight, queued, waiting to retry or to settle, held by the delete guard, ignored by the
rules the engine runs with). The state database says what was decided; these say what is
happening, so they are asked of the engine and never stored.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from syncapp.engine.events import (
    Event,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    SyncProgress,
)
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.progress import RateMeter
from syncapp.engine.scanner import parents

if TYPE_CHECKING:
    from syncapp.engine.folder import FolderSync

#: Downloads are rated over the bytes received in this many seconds.
DOWN_WINDOW = 10.0


@dataclass(frozen=True, slots=True)
class Transfer:
    """A job running now: an upload with its bytes sent so far, or a delete, move or mkdir."""

    path: str
    op: str
    done: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class Figures:
    """One folder's live numbers. Rates are None while too little has moved to tell."""

    #: Upload bytes/s and files/s in this round (0.0 when nothing is being uploaded).
    up_rate: float | None = 0.0
    up_files_rate: float | None = 0.0
    #: Download bytes/s over the last ``DOWN_WINDOW`` seconds; None for one-way folders.
    down_rate: float | None = None
    #: Seconds until the round's uploads are done; None when unknown.
    eta: float | None = None
    #: The round (since the folder was last up to date): uploads done of planned.
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    transfers: tuple[Transfer, ...] = ()


def figures_to_dict(f: Figures) -> dict[str, Any]:
    return dataclasses.asdict(f)


def figures_from_dict(d: dict[str, Any] | None) -> Figures | None:
    if d is None:
        return None
    names = {f.name for f in dataclasses.fields(Figures)} - {"transfers"}
    transfers = tuple(Transfer(**t) for t in d.get("transfers") or ())
    return Figures(**{k: v for k, v in d.items() if k in names}, transfers=transfers)


class _Folder:
    def __init__(self) -> None:
        self.meter = RateMeter()
        #: (when, bytes) received by downloads, newest last.
        self.received: deque[tuple[float, int]] = deque()
        #: Downloads running now: path → [bytes received, size].
        self.downloads: dict[str, list[int]] = {}

    def got(self, at: float, path: str, done: int) -> None:
        sizes = self.downloads.get(path)
        if sizes is not None and done > sizes[0]:
            self.received.append((at, done - sizes[0]))
            sizes[0] = done
        self.forget_before(at - DOWN_WINDOW)

    def forget_before(self, start: float) -> None:
        while self.received and self.received[0][0] < start:
            self.received.popleft()


class LiveMeters:
    """Fed with the engine's events; turns them into ``Figures`` when asked."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._folders: dict[str, _Folder] = {}

    def _of(self, name: str) -> _Folder:
        if name not in self._folders:
            self._folders[name] = _Folder()
        return self._folders[name]

    def add(self, ev: Event) -> None:
        if isinstance(ev, SyncProgress):
            self._of(ev.folder).meter.sample(self.clock(), ev.files_done, ev.bytes_done)
            return
        # Downloads are jobs the upload side's queue does not know: followed by their events.
        if not isinstance(ev, JobStarted | JobProgressed | JobFinished | JobFailed):
            return
        if ev.op is not Op.DOWNLOAD:
            return
        live = self._of(ev.folder)
        if isinstance(ev, JobStarted):
            live.downloads[ev.path] = [0, ev.size]
        elif isinstance(ev, JobProgressed):
            live.got(self.clock(), ev.path, ev.done)
        else:
            if isinstance(ev, JobFinished):
                live.got(self.clock(), ev.path, ev.size)
            live.downloads.pop(ev.path, None)

    def receiving(self, name: str, path: str) -> tuple[int, int] | None:
        """(bytes received, size) of a download of ``path`` running now."""
        sizes = self._of(name).downloads.get(path)
        return (sizes[0], sizes[1]) if sizes is not None else None

    def figures(self, folder: FolderSync) -> Figures:
        now = self.clock()
        live = self._of(folder.name)
        totals = folder.tally.totals()
        active = totals.files_total > 0 and totals.files_left + totals.bytes_left > 0
        up: float | None = 0.0
        files: float | None = 0.0
        eta = None
        if active:
            live.meter.sample(now, totals.files_done, totals.bytes_done)
            rates = live.meter.rates(now)
            up, files = (rates.bytes, rates.files) if rates is not None else (None, None)
            eta = live.meter.eta(totals, now)
        down = None
        if folder.remote_side is not None:
            live.forget_before(now - DOWN_WINDOW)
            # Over the time since the oldest bytes still in the window (a burst that began a
            # second ago is not spread over the whole window).
            span = max(1.0, now - live.received[0][0]) if live.received else DOWN_WINDOW
            down = sum(n for _, n in live.received) / span
        ups = [_transfer(folder, job.path, job.kind) for job in folder.jobs.running.values()]
        downs = [Transfer(p, "download", *sizes) for p, sizes in live.downloads.items()]
        return Figures(
            up,
            files,
            down,
            eta,
            totals.files_done,
            totals.files_total,
            totals.bytes_done,
            totals.bytes_total,
            (*ups, *downs),
        )


def _transfer(folder: FolderSync, path: str, kind: JobKind) -> Transfer:
    sent = folder.tally.progress_of(path) if kind is JobKind.SYNC else None
    if sent is not None:
        return Transfer(path, "upload", *sent)
    return Transfer(path, kind.value)


# -- one path --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathNow:
    """Where one path stands in the running engine right now.

    ``state`` is one word: "in flight", "queued", "waiting for parent", "retrying",
    "settling", "guard" (a delete the guard holds for the user), "delete held" (a delete held
    briefly in case the file comes back), "failed", "ignored", "scanning" (not looked at yet) or
    "idle" (the engine holds nothing for it: the state database's answer stands).
    """

    path: str
    state: str
    #: The same, in words.
    detail: str
    #: In flight: "upload", "download", "delete", "move" or "sync" (a folder, a check).
    op: str = ""
    #: In flight: bytes sent (received) and the size; queued: jobs ahead of it.
    done: int = 0
    size: int = 0
    ahead: int = 0
    #: Retrying or settling: when the next try is due (wall clock).
    at: float | None = None
    attempts: int = 0
    #: The engine's own reason row, if any (the error a retry waits after, say).
    reason: str = ""
    #: The ignore pattern of the rules the engine runs with that matches ("" for none).
    pattern: str = ""
    #: The folder's word and reason now (a paused folder holds its queue).
    folder_state: str = ""
    folder_reason: str = ""


def path_now(folder: FolderSync, rel: str, meters: LiveMeters | None = None) -> PathNow:
    """``rel``'s place in ``folder``'s engine: its job, a download, the guard, the failed set,
    the rules."""
    folder.state.flush()  # what the caller reads from the database next is current
    pending = folder.state.pending_for(folder.name, rel)
    reason = pending.reason if pending is not None else ""
    word, why = folder.board.word()
    base = PathNow(rel, "idle", "", reason=reason, folder_state=word.value, folder_reason=why)
    is_dir = os.path.isdir(os.path.join(folder.root, rel))
    for p in [rel, *parents(rel)]:
        m = folder.rules.match(p, is_dir=is_dir if p == rel else True)
        if m is not None:
            via = f" (via {p}/)" if p != rel else ""
            detail = f"the running engine ignores it: {m.describe()}{via}"
            return replace(base, state="ignored", detail=detail, pattern=m.pattern)
    found = folder.jobs.where(rel)
    if found is None:  # the source of a running move
        running = [j for j in folder.jobs.running.values() if rel in j.paths]
        found = ("running", running[0], 0.0) if running else None
    if found is not None:
        return _job_state(folder, base, *found)
    receiving = meters.receiving(folder.name, rel) if meters is not None else None
    if receiving is not None:
        done, size = receiving
        share = f" ({done * 100 // size}%)" if size else ""
        detail = f"downloading now: {human_size(done)} of {human_size(size)} received{share}"
        return replace(base, state="in flight", detail=detail, op="download", done=done, size=size)
    side = folder.remote_side
    trip = folder.guard.tripped
    by_side = side is not None and rel in side.held  # two-way: deleted on the remote
    if rel in folder.guard.held or by_side:
        if by_side or (trip is not None and rel in trip.paths):
            detail = f"held by the delete guard: {trip.reason if trip else why}"
            return replace(base, state="guard", detail=detail)
        detail = "deleted locally; the delete is held a moment in case the file comes back"
        return replace(base, state="delete held", detail=detail)
    if rel in folder.board.failed:
        return replace(base, state="failed", detail=f"failed: {reason or 'see the log'}")
    if folder.flags.scanning:
        return replace(base, state="scanning", detail="the folder's scan has not reached it")
    return replace(base, state="idle", detail="")


def _job_state(folder: FolderSync, base: PathNow, where: str, job: Job, at: float) -> PathNow:
    held = _held_by_folder(folder)
    if where == "running":
        sent = folder.tally.progress_of(job.path) if job.kind is JobKind.SYNC else None
        if sent is not None:
            done, size = sent
            share = f" ({done * 100 // size}%)" if size else ""
            detail = f"uploading now: {human_size(done)} of {human_size(size)} sent{share}"
            return replace(
                base, state="in flight", detail=detail, op="upload", done=done, size=size
            )
        what = {JobKind.DELETE: "deleting it on the remote now", JobKind.MOVE: "moving it"}
        detail = what.get(job.kind, "syncing it now")
        return replace(base, state="in flight", detail=detail, op=job.kind.value)
    if where == "delayed":
        due = time.time() + max(0.0, at - folder.jobs.clock())
        if job.attempts:
            detail = f"waiting to retry at {_clock(due)} (attempt {job.attempts + 1})"
            error = base.reason.removeprefix("waiting to retry after: ")
            detail += (f" after: {error}" if error != base.reason else "") + held
            return replace(base, state="retrying", detail=detail, at=due, attempts=job.attempts)
        detail = f"waiting for the file to stop changing, until {_clock(due)}" + held
        return replace(base, state="settling", detail=detail, at=due)
    if where == "parked":
        detail = "waiting for its parent folder to be synced first" + held
        return replace(base, state="waiting for parent", detail=detail)
    ahead = int(at)
    pacer = folder.pacer
    if pacer.held(pacer.clock()):
        until = time.time() + pacer.hold_until - pacer.clock()
        held = held or f"; the server asked for a pause until {_clock(until)}"
    detail = f"queued now, {ahead} job(s) ahead of it" + held
    return replace(base, state="queued", detail=detail, ahead=ahead, attempts=job.attempts)


def _held_by_folder(folder: FolderSync) -> str:
    """Why queued jobs of this folder do not move now ("" when they do)."""
    word, reason = folder.board.word()
    if folder.flags.paused or folder.flags.offline or folder.flags.error:
        return f"; the folder is {word.value}" + (f" ({reason})" if reason else "")
    return ""


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))
