"""Progress you can plan by: done of total for a round of work, rates and an honest ETA.

Pure and clock-free: callers pass the times. ``RoundTally`` is what a folder has done of what it
planned since it was last up to date; ``RateMeter`` turns samples of the done counts into
files/s, bytes/s and an ETA (used by the UI, and by anything else that shows progress).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Totals:
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.files_done + other.files_done,
            self.files_total + other.files_total,
            self.bytes_done + other.bytes_done,
            self.bytes_total + other.bytes_total,
        )

    @property
    def files_left(self) -> int:
        return max(0, self.files_total - self.files_done)

    @property
    def bytes_left(self) -> int:
        return max(0, self.bytes_total - self.bytes_done)

    @property
    def share(self) -> float:
        """Done as a share of the total, 0..1: bytes and files weighted alike."""
        if self.files_total <= 0 and self.bytes_total <= 0:
            return 0.0
        parts = []
        if self.files_total > 0:
            parts.append(self.files_done / self.files_total)
        if self.bytes_total > 0:
            parts.append(self.bytes_done / self.bytes_total)
        return min(1.0, max(0.0, sum(parts) / len(parts)))

    @property
    def furthest(self) -> float:
        """The larger of the files and the bytes share done (one big file: its bytes)."""
        shares = [0.0]
        if self.files_total > 0:
            shares.append(self.files_done / self.files_total)
        if self.bytes_total > 0:
            shares.append(self.bytes_done / self.bytes_total)
        return min(1.0, max(shares))


class RoundTally:
    """Uploads planned, started and finished since the folder was last up to date.

    A path planned twice counts once (its latest size); a path that leaves the queue without
    being uploaded (gone, failed for good) leaves the total too, so the round can reach 100 %.
    """

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}
        self._pending_bytes = 0
        self._partial: dict[str, int] = {}
        self.files_done = 0
        self.bytes_done = 0

    def __contains__(self, path: str) -> bool:
        return path in self._pending

    def planned(self, path: str, size: int) -> None:
        self._pending_bytes += size - self._pending.get(path, 0)
        self._pending[path] = size

    def started(self, path: str, size: int) -> None:
        """An upload begins (planned or not: a retry, a re-upload after a remote loss)."""
        self.planned(path, size)
        self._partial.pop(path, None)

    def sent(self, path: str, done: int) -> None:
        if path in self._pending:
            self._partial[path] = min(done, self._pending[path])

    def finished(self, path: str) -> None:
        size = self._pending.pop(path, None)
        self._partial.pop(path, None)
        if size is not None:
            self._pending_bytes -= size
            self.files_done += 1
            self.bytes_done += size

    def dropped(self, path: str) -> None:
        size = self._pending.pop(path, None)
        self._partial.pop(path, None)
        if size is not None:
            self._pending_bytes -= size

    def progress_of(self, path: str) -> tuple[int, int] | None:
        """(bytes sent, size) of a planned or running upload; None when not in the round."""
        if path not in self._pending:
            return None
        return self._partial.get(path, 0), self._pending[path]

    def reset(self) -> None:
        self._pending.clear()
        self._partial.clear()
        self._pending_bytes = 0
        self.files_done = self.bytes_done = 0

    def totals(self) -> Totals:
        return Totals(
            self.files_done,
            self.files_done + len(self._pending),
            self.bytes_done + sum(self._partial.values()),
            self.bytes_done + self._pending_bytes,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    files: float
    bytes: float


class RateMeter:
    """Rates over a sliding window of cumulative samples, and the time left from them.

    The window is the later half of the round so far, at most ``window`` seconds. The rate is
    what was done between the oldest sample inside it (or the newest one before it) and *now*:
    a stall brings it down instead of freezing the last good value. The ETA counts both the
    bytes and the per-file cost: it is the longer of "files left at the current files/s" and
    "bytes left at the current bytes/s", so 5,000 small files are paced by files/s and one big
    file by bytes/s.
    """

    def __init__(self, window: float = 20.0, warmup: float = 3.0, min_share: float = 0.1) -> None:
        self.window = window
        self.warmup = warmup
        #: No ETA before this share of the work is done: the first files of a first sync
        #: also create the folders and open connections, and say little about the rest.
        self.min_share = min_share
        self._samples: deque[tuple[float, int, int]] = deque()
        self._round_start: float | None = None

    def reset(self) -> None:
        self._samples.clear()
        self._round_start = None

    def sample(self, at: float, files_done: int, bytes_done: int) -> None:
        if self._samples:
            _, f, b = self._samples[-1]
            if files_done < f or bytes_done < b:
                self.reset()  # a new round
            elif (files_done, bytes_done) == (f, b):
                return  # nothing new: keep the older sample, it spans more time
        if self._round_start is None:
            self._round_start = at
        self._samples.append((at, files_done, bytes_done))
        # Pruned here too: in the engine nobody may ask for rates for hours, and the samples
        # of a long round must not pile up meanwhile.
        self._prune(at)

    def span(self, now: float) -> float:
        """The window in use: the later half of the round so far (a start-up that was slower or
        faster than the rest fades out), at least ``warmup`` and at most ``window`` seconds."""
        elapsed = now - (self._round_start if self._round_start is not None else now)
        return min(self.window, max(self.warmup, elapsed / 2))

    def _prune(self, now: float) -> None:
        start = now - self.span(now)
        while len(self._samples) > 1 and self._samples[1][0] <= start:
            self._samples.popleft()

    def rates(self, now: float) -> Rates | None:
        """None until the window spans ``warmup`` seconds."""
        self._prune(now)
        if not self._samples:
            return None
        t0, f0, b0 = self._samples[0]
        _, f1, b1 = self._samples[-1]
        span = now - t0
        if span < self.warmup:
            return None
        return Rates((f1 - f0) / span, (b1 - b0) / span)

    def eta(self, totals: Totals, now: float) -> float | None:
        """Seconds left, or None when unknown (too early, or stalled)."""
        if totals.files_left == 0 and totals.bytes_left == 0:
            return 0.0 if totals.files_total else None
        if totals.furthest < self.min_share:
            return None
        rates = self.rates(now)
        if rates is None:
            return None
        parts = []
        if totals.files_left and rates.files > 0:
            parts.append(totals.files_left / rates.files)
        if totals.bytes_left and rates.bytes > 0:
            parts.append(totals.bytes_left / rates.bytes)
        if not parts:
            return None
        return max(parts)
