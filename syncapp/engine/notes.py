"""What two-way sync did to a path, and its tally per folder: kept in the state database's
meta table, so ``syncapp why`` and ``syncapp status`` can say it after the engine stopped.

``note`` records the last two-way change of one path (downloaded, trashed, renamed, kept in a
conflict) and counts it in the folder's tally; ``read_note`` and ``read_tally`` read them back.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from syncapp.engine.state import StateDB

#: What the last two-way change to a path was (``syncapp why`` reads it): a state meta key.
NOTE_KEY = "twoway:{folder}:{path}"
#: The folder's two-way tally (``syncapp status`` reads it): JSON in a state meta key.
TALLY_KEY = "twoway-tally:{folder}"
#: Conflicts the tally keeps by name (the newest).
RECENT_CONFLICTS = 20


def note_key(folder: str, path: str) -> str:
    return NOTE_KEY.format(folder=folder, path=path)


def read_note(state: StateDB, folder: str, path: str) -> tuple[float, str] | None:
    """The last two-way change to ``path``: (when, what in words), or None."""
    raw = state.get_meta(note_key(folder, path))
    if not raw:
        return None
    when, _, what = raw.partition(" ")
    try:
        return float(when), what
    except ValueError:
        return None


def read_tally(state: StateDB, folder: str) -> dict[str, Any]:
    """``{"downloaded", "trashed", "renamed", "conflicts": counts, "recent_conflicts": [...]}``."""
    raw = state.get_meta(TALLY_KEY.format(folder=folder))
    out: dict[str, Any] = {"downloaded": 0, "trashed": 0, "renamed": 0, "conflicts": 0}
    out["recent_conflicts"] = []
    if raw:
        with contextlib.suppress(ValueError, TypeError):
            out.update(json.loads(raw))
    return out


def note(
    state: StateDB,
    folder: str,
    path: str,
    what: str,
    now: float,
    *,
    count: str = "",
    conflict: str = "",
) -> None:
    """Remember ``what`` happened to ``path``; ``count``: the tally to add one to;
    ``conflict``: the conflict copy's name (kept among the recent conflicts)."""
    state.set_meta(note_key(folder, path), f"{now:.0f} {what}")
    if not count:
        return
    tally = read_tally(state, folder)
    tally[count] = int(tally.get(count, 0)) + 1
    if conflict:
        recent = [[path, conflict, round(now)], *tally["recent_conflicts"]]
        tally["recent_conflicts"] = recent[:RECENT_CONFLICTS]
    state.set_meta(TALLY_KEY.format(folder=folder), json.dumps(tally))
