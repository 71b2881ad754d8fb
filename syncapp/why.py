"""``syncapp why``: one path's answer, from the state database, the ignore rules and the disk."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from syncapp.config import FolderConfig
from syncapp.engine.live import PathNow
from syncapp.engine.notes import read_note
from syncapp.engine.scanner import lstat_entry, parents, printable
from syncapp.engine.state import StateDB
from syncapp.errors import SyncappError
from syncapp.ignore import IgnoreRules

log = logging.getLogger(__name__)


def relative_path(folder: FolderConfig, path: str) -> str:
    """``path`` relative to the folder; absolute paths must lie inside it."""
    root = os.path.realpath(folder.path)
    if os.path.isabs(path):
        full = os.path.realpath(path) if os.path.lexists(path) else os.path.normpath(path)
        if full != root and not full.startswith(root + os.sep):
            raise ValueError(f"{path} is not inside folder {folder.name} ({folder.path})")
        rel = os.path.relpath(full, root)
    else:
        rel = os.path.normpath(path)
    rel = "" if rel == "." else rel.replace(os.sep, "/")
    if rel.startswith("../") or rel == "..":
        raise ValueError(f"{path} is not inside folder {folder.name}")
    return rel


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "unknown time"


def explain(folder: FolderConfig, path: str, db: StateDB | None) -> dict[str, Any]:
    out = _explain(folder, path, db)
    if not db or out["status"] == "outside":
        return out
    # Two-way (and conflicts on upload): what last came from the remote for this path.
    found = read_note(db, folder.name, out["path"])
    if out["status"] == "unknown":
        # Gone here: a folder around it that went to the trash since says where it is.
        for anc in parents(out["path"]):
            around = read_note(db, folder.name, anc)
            if around and "trash" in around[1] and (found is None or around[0] >= found[0]):
                inside = out["path"][len(anc) + 1 :]
                found = (around[0], f"its folder {anc}: {around[1]} (with {inside} in it)")
                break
    if found is None:
        return out
    when, what = found
    out["twoway"] = {"at": when, "what": what}
    if out["status"] == "unknown":  # "never synced" is not so: say what became of it
        out["answer"] = f"not here; last from the remote: {what} ({_when(when)})"
    else:
        out["answer"] += f"; last from the remote: {what} ({_when(when)})"
    return out


def _explain(folder: FolderConfig, path: str, db: StateDB | None) -> dict[str, Any]:
    try:
        rel = relative_path(folder, path)
    except ValueError as e:
        return {"path": path, "status": "outside", "answer": str(e)}
    # The disk is asked with the real name; the state database and the answer use the printable
    # one (non-UTF-8 bytes as \xff escapes), as the engine stores it.
    disk_rel, rel = rel, printable(rel)
    rules = IgnoreRules(folder.ignore)
    full = os.path.join(folder.path, disk_rel)
    is_dir = os.path.isdir(full)
    for p in [disk_rel, *parents(disk_rel)]:
        m = rules.match(p, is_dir=is_dir if p == disk_rel else True)
        if m is not None:
            detail = m.describe() + (f" (via {printable(p)}/)" if p != disk_rel else "")
            return {"path": rel, "status": "ignored", "pattern": m.pattern, "answer": detail}
    pending = db.pending_for(folder.name, rel) if db else None
    entry = db.get(folder.name, rel) if db else None
    local, skip = lstat_entry(str(folder.path), disk_rel, rules, folder.follow_symlinks)
    if pending is not None:
        answer = f"{pending.status}: {pending.reason}"
        if pending.retry_at:
            answer += f" (next try at {_when(pending.retry_at)})"
        if pending.attempts:
            answer += f"; {pending.attempts} attempt(s) so far"
        return {
            "path": rel,
            "status": pending.status,
            "reason": pending.reason,
            "attempts": pending.attempts,
            "retry_at": pending.retry_at,
            "answer": answer,
        }
    if skip:
        return {"path": rel, "status": "skipped", "answer": f"not synced: {skip}"}
    if entry is not None:
        if local is None:
            return {
                "path": rel,
                "status": "pending",
                "answer": "deleted locally since the last sync; the remote copy is deleted "
                "on the next run"
                if folder.mirror_deletes
                else "deleted locally; mirror_deletes is off, so the remote copy stays",
            }
        if entry.is_dir or (local.size, local.mtime_ns) == (entry.size, entry.mtime_ns):
            what = "folder" if entry.is_dir else f"{entry.size} bytes"
            return {
                "path": rel,
                "status": "in sync",
                "synced_at": entry.synced_at,
                "size": entry.size,
                "answer": f"in sync since {_when(entry.synced_at)} ({what})",
            }
        return {
            "path": rel,
            "status": "pending",
            "answer": "changed locally since the last sync "
            f"(synced {entry.size} bytes at {_when(entry.synced_at)}, now {local.size} bytes); "
            "uploaded on the next run",
        }
    if local is not None:
        return {
            "path": rel,
            "status": "pending",
            "answer": "not synced yet: new since the last scan; uploaded on the next run",
        }
    return {
        "path": rel,
        "status": "unknown",
        "answer": "not known: no such file locally and never synced",
    }


# -- what the running engine adds -----------------------------------------------------------------

#: The live word of ``PathNow`` in the vocabulary of ``status`` above.
_LIVE_STATUS = {
    "queued": "queued",
    "waiting for parent": "queued",
    "retrying": "retrying",
    "settling": "settling",
    "guard": "guard",
    "delete held": "pending",
    "failed": "failed",
}


def with_live(out: dict[str, Any], now: PathNow | None, pid: int | None = None) -> dict[str, Any]:
    """``out`` (the database's answer) with what the running engine says about the path now.

    The same keys either way: ``source`` ("engine" or "database"), ``live`` (the engine's
    ``PathNow``, or None) and ``rules_changed`` (the engine runs with other ignore rules than
    the config file has now: ``syncapp reload`` applies them)."""
    out["source"] = "database" if now is None else "engine"
    out["live"] = None if now is None else {**dataclasses.asdict(now), "pid": pid}
    out["rules_changed"] = False
    if now is None or out["status"] == "outside":
        return out
    suffix = ""
    if "twoway" in out:
        suffix = "; last from the remote: " + out["twoway"]["what"]
    reload = "; `syncapp reload` applies the config file's rules"
    if out["status"] == "ignored" and now.state != "ignored":
        out["rules_changed"] = True
        doing = now.detail or "it stays synced"
        out["answer"] += " (the config file's); the running engine started without that rule: "
        out["answer"] += doing + reload
        return out
    if now.state == "ignored" and out["status"] != "ignored":
        out["rules_changed"] = True
        out.update(status="ignored", pattern=now.pattern)
        out["answer"] = f"{now.detail}, a rule the config file no longer has{reload}"
        return out
    if now.state == "in flight":
        word = {"upload": "uploading", "download": "downloading"}.get(now.op, "pending")
        out.update(status=word, answer=now.detail + suffix)
        out.update(reason=now.detail, size=now.size, done=now.done)
        return out
    if now.state in _LIVE_STATUS:
        out.update(status=_LIVE_STATUS[now.state], answer=now.detail + suffix)
        out.update(reason=now.reason or now.detail, attempts=now.attempts, retry_at=now.at)
    return out


async def path_now(
    folder: FolderConfig, path: str, state_path: Path
) -> tuple[PathNow | None, int | None]:
    """The running engine's ``PathNow`` for ``path`` and its pid; (None, None) when no engine
    runs, or it does not run this folder (then the database answers alone)."""
    from syncapp.engine.client import running_engine

    client = running_engine(state_path)
    try:
        rel = printable(relative_path(folder, path))
    except ValueError:
        return None, None
    if client is None:
        return None, None
    try:
        async with client:
            return await client.path_now(folder.name, rel), client.pid
    except SyncappError as e:
        log.info("the running engine could not say where %s stands: %s", rel, e)
        return None, None
