"""``run --once --dry-run``: the real run with the operations held back, printed.

Every folder goes through the same engine as ``run --once`` (``SyncEngine(dry_run=True)``):
the same scan, first-run reconcile, planner and delete guard decide; the dispatcher drops each
job instead of running it (rclone's ``SkipDestructive``), and the engine works on an in-memory
copy of the state database. Nothing on the remote or in the state changes. This module only
prints what each folder held back (``syncapp.engine.heldback``).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from syncapp.config import Config
from syncapp.engine import SyncEngine
from syncapp.engine.guard import guard_reason
from syncapp.engine.heldback import HeldBack


def guard_note(held: HeldBack) -> str | None:
    """What the delete guard said of the held deletes, or None if it let them through."""
    if held.trip is None:
        return None
    return (
        f"delete guard: {guard_reason(held.trip.files, held.trip.known, held.trip.where)};"
        " a real run holds these"
        " deletes (exit 1) unless given --allow-mass-delete"
    )


def actions(held: HeldBack) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    out += [{"action": "mkdir", "path": p} for p in held.mkdirs]
    out += [{"action": "upload", "path": p} for p in held.uploads]
    out += [{"action": "move", "path": s, "to": d} for s, d, _ in held.moves]
    out += [{"action": "delete", "path": p} for p, _ in held.deletes]
    # Ignored now: the state forgets them; their remote copies stay.
    out += [{"action": "forget", "path": p} for p, _ in held.forgets]
    # Two-way: what would come down (or go to the trash, or be renamed) here.
    for action, path, to in held.remote:
        out.append({"action": action, "path": path, **({"to": to} if to else {})})
    return out


def report(name: str, held: HeldBack, *, as_json: bool, out: TextIO) -> None:
    note = guard_note(held)
    if as_json:
        for a in actions(held):
            out.write(json.dumps({"folder": name, **a}, ensure_ascii=False) + "\n")
        if note:
            out.write(json.dumps({"folder": name, "guard": note}, ensure_ascii=False) + "\n")
        return
    out.write(
        f"{name}: would upload {len(held.uploads)}, create {len(held.mkdirs)} folders, "
        f"move {len(held.moves)}, delete {len(held.deletes)}\n"
    )
    if note:
        out.write(f"  {note}\n")
    for a in actions(held):
        tail = f" -> {a['to']}" if "to" in a else ""
        out.write(f"  {a['action']:<7} {a['path']}{tail}\n")


async def dry_run(
    config: Config,
    *,
    as_json: bool,
    out: TextIO,
    allow_mass_delete: bool = False,
    err: TextIO | None = None,
) -> int:
    """0 when every folder could be planned; 1 (said on ``err``) when one could not."""
    err = err or sys.stderr
    code = 0
    engine = SyncEngine(config, live=False, dry_run=True, allow_mass_delete=allow_mass_delete)
    async with engine:
        await engine.wait_idle()
        for name, folder in engine.folders.items():
            assert folder.held_back is not None
            if folder.flags.error:
                err.write(f"syncapp: folder {name}: {folder.flags.error}\n")
                code = 1
                continue
            report(name, folder.held_back, as_json=as_json, out=out)
    return code
