"""Progress you can plan by: done of total, files/s or bytes/s, and the time left.

Per folder (a line in its panel) and in total (a line above the footer). The numbers come from
the engine's ``SyncProgress`` and ``ScanProgressed`` events; rates and the ETA from
``RateMeter`` (pure, in the engine package, unit-tested with a fake clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from textual.widgets import Static

from syncapp.engine.progress import RateMeter, Rates, Totals
from syncapp.tui.format import duration, files_rate, human_rate, human_size

#: Below this average file size, throughput reads in files/s (per-file overhead dominates).
SMALL_FILES = 512 * 1024


@dataclass
class FolderProgress:
    """One folder's round: totals from the engine and a meter over them."""

    totals: Totals = field(default_factory=Totals)
    meter: RateMeter = field(default_factory=RateMeter)
    #: Files seen by the scan running now (None: no scan running).
    scan_files: int | None = None

    def update(self, at: float, totals: Totals) -> None:
        self.totals = totals
        self.meter.sample(at, totals.files_done, totals.bytes_done)

    def active(self) -> bool:
        return self.totals.files_total > 0 and self.totals.files_left + self.totals.bytes_left > 0

    def rates(self, now: float) -> Rates | None:
        return self.meter.rates(now)

    def eta(self, now: float) -> float | None:
        return self.meter.eta(self.totals, now)


def percent(totals: Totals) -> str:
    return f"{int(totals.share * 100)}%"


def speed(rates: Rates | None) -> str:
    """files/s when the files are small, else bytes/s."""
    if rates is None or (rates.files <= 0 and rates.bytes <= 0):
        return ""
    if rates.files > 0 and rates.bytes / rates.files < SMALL_FILES:
        return files_rate(rates.files)
    return human_rate(rates.bytes)


def progress_line(totals: Totals, rates: Rates | None, eta: float | None) -> str:
    """``43% · 2,150/5,000 files · 12.3/48.0 MiB · 85 files/s · ETA 34 s``."""
    parts = [
        percent(totals),
        f"{totals.files_done:,}/{totals.files_total:,} files",
        f"{human_size(totals.bytes_done)}/{human_size(totals.bytes_total)}",
    ]
    rate = speed(rates)
    if rate:
        parts.append(rate)
    if eta is not None:
        parts.append(f"ETA {duration(eta)}")
    elif totals.files_done or totals.bytes_done:
        parts.append("ETA …")
    return " · ".join(parts)


class TotalProgress(Static):
    """All folders together: shown while any of them has a round under way."""

    def __init__(self) -> None:
        super().__init__("", id="total-progress", markup=False)
        self.display = False

    def show(self, folders: Iterable[FolderProgress], now: float) -> None:
        active = [f for f in folders if f.active()]
        if not active:
            self.display = False
            return
        totals = sum((f.totals for f in active), Totals())
        rates = [r for f in active if (r := f.rates(now)) is not None]
        summed = Rates(sum(r.files for r in rates), sum(r.bytes for r in rates)) if rates else None
        # Folders sync side by side: all are done when the slowest is.
        etas = [f.eta(now) for f in active]
        eta = None if any(e is None for e in etas) else max(e for e in etas if e is not None)
        text = "Total " + progress_line(totals, summed, eta)
        if summed is not None and speed(summed) != human_rate(summed.bytes):
            text += f" · {human_rate(summed.bytes)}"
        if str(self.content) != text:
            # One row, the screen's width: a new text never moves anything (a layout of the
            # whole dashboard per batch of events was most of a busy UI's frame time).
            self.update(text, layout=False)
        self.display = True
