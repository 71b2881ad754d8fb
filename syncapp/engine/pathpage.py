"""A page of a folder's paths for a view: the rows it shows and the counts it sums up.

A folder in its first sync has tens of thousands of paths waiting; a view shows a few hundred
and says how many there are of each kind ("19,500 queued · 12 failed"). The engine answers with
just that (``EngineAPI.path_page``), so a detail screen costs the same over the control socket
for 50 paths or 50,000. Rows come in the order views list them (``PENDING_ORDER``, then by
path); a filter matches the path or the reason, in any case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncapp.engine.state import (
    Entry,
    Pending,
    PendingStatus,
    StateDB,
    path_matches,
    pending_rank,
)

IN_SYNC = PendingStatus.IN_SYNC.value


@dataclass(frozen=True, slots=True)
class PathQuery:
    #: Synced files too (status "in sync", after every path not in sync).
    everything: bool = False
    #: Only rows whose path or reason holds this, in any case.
    needle: str = ""
    offset: int = 0
    #: Rows at most; None: all of them.
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.offset < 0 or (self.limit is not None and self.limit < 0):
            raise ValueError("offset and limit cannot be negative")


@dataclass(frozen=True, slots=True)
class PathPage:
    rows: list[Pending]
    #: Paths of each status in the whole folder, the filter aside (with ``everything``, the
    #: synced files as "in sync"): exact however few rows came.
    counts: dict[str, int]
    #: Rows the query matches in all; ``rows`` are those from its offset.
    matching: int


def page_of(rows: Iterable[Pending], query: PathQuery) -> PathPage:
    """The page ``query`` asks for, out of rows all at hand (a view filtering what it holds)."""
    rows = list(rows)
    counts: dict[str, int] = {}
    for p in rows:
        counts[p.status] = counts.get(p.status, 0) + 1
    needle = query.needle.lower()
    hits = [p for p in rows if path_matches(p.path, p.reason, needle)]
    hits.sort(key=lambda p: (pending_rank(p.status), p.path))
    end = None if query.limit is None else query.offset + query.limit
    return PathPage(hits[query.offset : end], counts, len(hits))


def select(state: StateDB, folder: str, entries: Mapping[str, Entry], query: PathQuery) -> PathPage:
    """The page out of the state database (paths not in sync) and ``entries`` (the synced
    files, when ``everything``): only the rows asked for are built."""
    state.flush()
    needle = query.needle.lower()
    counts = state.pending_counts(folder)
    rows, matching = state.pending_page(folder, needle, query.offset, query.limit)
    if query.everything:
        # Synced files come after every path not in sync, by path.
        listed = state.pending_paths(folder)
        synced = [p for p, e in entries.items() if not e.is_dir and p not in listed]
        counts[IN_SYNC] = len(synced)
        if needle:
            synced = [p for p in synced if needle in p.lower()]
        synced.sort()
        start = max(0, query.offset - matching)
        room = None if query.limit is None else query.limit - len(rows)
        for path in synced[start : None if room is None else start + room]:
            e = entries[path]
            rows.append(Pending(path, IN_SYNC, "", updated=e.synced_at or 0.0, size=e.size))
        matching += len(synced)
    return PathPage(rows, counts, matching)


# -- JSON both ways (the control API) -------------------------------------------------------------


def page_to_dict(page: PathPage) -> dict[str, Any]:
    return {
        "rows": [dataclasses.asdict(p) for p in page.rows],
        "counts": page.counts,
        "matching": page.matching,
    }


def page_from_dict(d: Mapping[str, Any]) -> PathPage:
    return PathPage(
        [Pending(**r) for r in d["rows"]],
        {str(k): int(v) for k, v in d["counts"].items()},
        int(d["matching"]),
    )
