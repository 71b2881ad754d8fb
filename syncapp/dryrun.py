"""``run --once --dry-run``: every folder's plan, printed; nothing remote or in state changes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TextIO

from syncapp.config import Config
from syncapp.engine import default_state_path
from syncapp.engine.adopt import adopt, list_remote_tree
from syncapp.engine.entries import EntryMap
from syncapp.engine.guard import check, guard_reason
from syncapp.engine.learned import learn_remote
from syncapp.engine.plan import Plan, diff
from syncapp.engine.scanner import scan_tree
from syncapp.engine.state import Entry, StateDB, open_state
from syncapp.ignore import IgnoreRules
from syncapp.remotes import open_remote


def guard_note(
    plan: Plan, known: dict[str, Entry], max_delete: str, *, renames: bool = True
) -> str | None:
    """What the delete guard would say of this plan's deletes, or None if it lets them through.

    ``renames``: the remote can rename or copy on the server; without, a move is an upload
    plus a delete of the old name, and that delete counts."""
    deletes = list(plan.deletes)
    if not renames:
        deletes += [(src, is_dir) for src, _, is_dir in plan.moves]
    trip = check(EntryMap(known), deletes, max_delete)  # the real run's rule
    if trip is None:
        return None
    return (
        f"delete guard: {guard_reason(trip.files, trip.known)}; a real run holds these deletes"
        " (exit 1) unless given --allow-mass-delete"
    )


async def plan_folder(
    config: Config, name: str, db: StateDB | None
) -> tuple[Plan, dict[str, Entry]]:
    """The folder's plan and the synced state it was made against."""
    fc = config.folders[name]
    rules = IgnoreRules(fc.ignore)
    scan = await asyncio.to_thread(
        scan_tree, str(fc.path), rules, follow_symlinks=fc.follow_symlinks
    )
    known: dict[str, Entry] = db.entries(name) if db and db.folder(name) else {}
    if not known:
        # First run: files already identical remotely would be adopted, not uploaded.
        async with open_remote(config.remotes[fc.remote]) as remote:
            if db is not None:
                # What a real run learned of this server (never probed here: nothing is sent).
                await learn_remote(remote, db, fc.remote_path, probe=False)
            listing = await list_remote_tree(remote, fc.remote_path)
            adopted = await adopt(
                remote, fc.remote_path.strip("/"), str(fc.path), scan.entries, listing, known,
                now=time.time(),
            )
        known = {e.path: e for e in adopted}
    plan = diff(scan.entries, known, protected=scan.unreadable_dirs, rules=rules)
    if not fc.mirror_deletes:
        plan.deletes = []
    return plan, known


async def dry_run(config: Config, *, as_json: bool, out: TextIO) -> int:
    path = default_state_path()
    db = open_state(path, readonly=True) if path.exists() else None
    try:
        for name in config.folders:
            plan, known = await plan_folder(config, name, db)
            fc = config.folders[name]
            caps = open_remote(config.remotes[fc.remote]).capabilities  # never opened: no I/O
            renames = caps.server_move or caps.server_copy
            note = guard_note(plan, known, fc.max_delete, renames=renames)
            actions: list[dict[str, str]] = []
            actions += [{"action": "mkdir", "path": p} for p in plan.mkdirs]
            actions += [{"action": "upload", "path": p} for p in plan.uploads]
            actions += [{"action": "move", "path": s, "to": d} for s, d, _ in plan.moves]
            actions += [{"action": "delete", "path": p} for p, _ in plan.deletes]
            # Ignored now: the state forgets them; their remote copies stay.
            actions += [{"action": "forget", "path": p} for p, _ in plan.forgets]
            if as_json:
                for a in actions:
                    out.write(json.dumps({"folder": name, **a}, ensure_ascii=False) + "\n")
                if note:
                    line = {"folder": name, "guard": note}
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                continue
            out.write(
                f"{name}: would upload {len(plan.uploads)}, create {len(plan.mkdirs)} folders, "
                f"move {len(plan.moves)}, delete {len(plan.deletes)}\n"
            )
            if note:
                out.write(f"  {note}\n")
            for a in actions:
                tail = f" -> {a['to']}" if "to" in a else ""
                out.write(f"  {a['action']:<7} {a['path']}{tail}\n")
    finally:
        if db:
            db.close()
    return 0
