"""The two-way planner: what was last synced, what is here, what is there → what to do.

Pure: no I/O, no clock but the ``now`` it is handed. Inputs are the state database's entries
(what both sides held at the last sync, with the ETag and mtime the server reported for it),
a local scan (``engine/scanner.py``) and a remote snapshot (``engine/remotepoll.py``); the
output is a ``TwoWayPlan`` of ``Action``s.

Per path, with K the state entry, L the local entry and R the remote entry:

==========================  =====================  ============================================
local since K               remote since K         action
==========================  =====================  ============================================
changed                     unchanged              UPLOAD (MKDIR_REMOTE for a folder)
unchanged                   changed                DOWNLOAD (MKDIR_LOCAL for a folder)
changed                     changed                CONFLICT (sizes differ); COMPARE when the
                                                   sizes are equal
deleted                     unchanged              DELETE_REMOTE
unchanged                   deleted                DELETE_LOCAL (to the trash)
deleted                     changed                DOWNLOAD (an edit beats a delete)
changed                     deleted                UPLOAD (an edit beats a delete)
deleted                     deleted                FORGET (drop the state entry)
new (no K)                  absent                 UPLOAD / MKDIR_REMOTE
absent                      new (no K)             DOWNLOAD / MKDIR_LOCAL
new (no K)                  new (no K)             RECORD when kept mtimes say it is the same
                                                   file, COMPARE for equal sizes, else CONFLICT
==========================  =====================  ============================================

**A file on one side, a folder on the other** (``L`` and ``R`` of different kinds), where a
folder counts as changed when something below it is new or edited on its side:

==========================  =====================  ============================================
local since K               remote since K         action
==========================  =====================  ============================================
changed (or no K)           unchanged              UPLOAD / MKDIR_REMOTE: the upload side
                                                   replaces the remote one (keeping versions)
unchanged                   changed                REPLACE_LOCAL: the local one to the trash,
                                                   the remote one comes down
changed (or no K)           changed (or no K)      CONFLICT: the local one keeps the name, the
                                                   remote one is kept as ``dst`` (a folder with
                                                   everything in it)
==========================  =====================  ============================================

Nothing below such a path is planned, except the files of a folder that comes down (after a
REPLACE_LOCAL) or goes up (after a file replaced it here).

"Remote changed" is ``adopt.remote_changed`` (the rule the upload side uses: the ETag the
server gave for our write, else its size and mtime); "local changed" is ``plan.changed`` (size
and mtime_ns against the state entry). So a first run (no state at all) is a union: nothing is
deleted on either side, and files that differ become conflict pairs.

Then, across paths:

- **Renames on the remote**: a file that vanished remotely while unchanged locally
  (DELETE_LOCAL) and a new remote file (DOWNLOAD, absent locally) with the same size and ETag
  (or, where the server gives no ETags, the same size and the exact server mtime recorded at
  the last sync) are one RENAME_LOCAL. Ambiguous matches are paired by file name, or not at
  all. When every synced entry of a folder moved to one new folder, the whole folder is one
  RENAME_LOCAL (50 files → 1 rename).
- **Folder deletes** cover their contents: one DELETE_LOCAL (a folder to the trash) or
  DELETE_REMOTE instead of one per file, but only when nothing below survives; a folder that
  still holds an edited or new file is kept (and re-created on the side that deleted it).

The plan is ordered for applying: renames, folders to create (parents first), transfers,
conflicts, records, deletes (deepest first), forgets.

Interface for the coordinator (phase 2)::

    plan = plan_twoway(state.entries(name), scan.entries, snap.entries,
                       server_mtime=remote.capabilities.server_mtime, rules=rules, now=time.time())
    guard: plan.local_deletes (files trashed locally) against max_delete and
           state.count_entries(name); a tripped guard holds every DELETE_LOCAL, like uploads
           hold DELETE_REMOTE today ("300 of 307 files were deleted on the remote").
    for a in plan.actions: dispatch on a.op —
        DOWNLOAD:      download.download(remote, join(prefix, a.path), root, a.path,
                                         size=a.remote.size, mtime_ns=a.remote.mtime_ns,
                                         expect=a.local)            then record (event "downloaded")
        RENAME_LOCAL:  os.rename + state.move_entries(name, a.path, a.dst)
        DELETE_LOCAL:  trash.trash(root, a.path)                     (event "trashed")
        COMPARE:       same = await download.same_content(...); a = resolve_compare(a, same)
        CONFLICT:      download the remote copy to a.dst (the conflict name), keep the local
                       file under a.path and upload it with if_match=a.remote.etag; the
                       conflict copy then uploads like any new file    (event "conflict")
        UPLOAD / MKDIR_REMOTE / DELETE_REMOTE: the upload pipeline's operations, as today
        RECORD:        state.put_entry(record_entry(a, now)) ; FORGET: state.delete_entry
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from syncapp.engine.adopt import remote_changed, same_mtime
from syncapp.engine.conflictname import conflict_name
from syncapp.engine.plan import changed as local_changed
from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import RemoteEntry

V = TypeVar("V")


class Op(enum.StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    #: Both sides changed: the local file keeps its name, the remote content comes down as
    #: ``dst`` (the conflict name), and both then sync. ``is_dir``: the remote one is a folder.
    CONFLICT = "conflict"
    #: Both sides changed to the same size: compare the contents (same → RECORD, else CONFLICT).
    COMPARE = "compare"
    #: Deleted on the remote: the local copy goes to the trash.
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"
    #: Renamed on the remote: rename the local file or folder ``path`` to ``dst`` (making the
    #: missing parents of ``dst``: renames come first in a plan).
    RENAME_LOCAL = "rename-local"
    MKDIR_LOCAL = "mkdir-local"
    #: The remote replaced a file by a folder or a folder by a file, and the local one is as
    #: last synced: it goes to the trash and the remote kind comes down (``is_dir``: a folder).
    REPLACE_LOCAL = "replace-local"
    MKDIR_REMOTE = "mkdir-remote"
    #: The same on both sides already: record it as synced.
    RECORD = "record"
    #: Gone on both sides: drop the state entry.
    FORGET = "forget"


#: What takes files away here (the guard counts their ``files``).
LOCAL_REMOVALS = (Op.DELETE_LOCAL, Op.REPLACE_LOCAL)

_ORDER = {
    Op.RENAME_LOCAL: 0,
    Op.REPLACE_LOCAL: 1,
    Op.MKDIR_LOCAL: 1,
    Op.MKDIR_REMOTE: 1,
    Op.DOWNLOAD: 2,
    Op.UPLOAD: 2,
    Op.COMPARE: 3,
    Op.CONFLICT: 3,
    Op.RECORD: 4,
    Op.DELETE_LOCAL: 5,
    Op.DELETE_REMOTE: 5,
    Op.FORGET: 6,
}


@dataclass(frozen=True, slots=True)
class Action:
    op: Op
    path: str
    is_dir: bool = False
    #: RENAME_LOCAL: the new path; CONFLICT: the name the remote content is saved under.
    dst: str | None = None
    #: What the remote snapshot showed at ``path`` (``dst`` for a rename), if anything.
    remote: RemoteEntry | None = None
    #: What the local scan showed at ``path``, if anything (a download's ``expect``).
    local: LocalEntry | None = None
    #: Why, in words (for ``why``, the dry run and events).
    reason: str = ""
    #: Files this action removes on its side (a folder delete counts its files), for the guard.
    files: int = 0


@dataclass(slots=True)
class TwoWayPlan:
    actions: list[Action] = field(default_factory=list)

    def of(self, *ops: Op) -> list[Action]:
        return [a for a in self.actions if a.op in ops]

    def paths(self, op: Op) -> list[str]:
        return [a.path for a in self.actions if a.op is op]

    @property
    def local_deletes(self) -> int:
        """Files this plan would move to the local trash (what the guard counts)."""
        return sum(a.files for a in self.actions if a.op in LOCAL_REMOVALS)

    @property
    def remote_deletes(self) -> int:
        return sum(a.files for a in self.actions if a.op is Op.DELETE_REMOTE)

    def __len__(self) -> int:
        return len(self.actions)


def _remote_changed(k: Entry, r: RemoteEntry, server_mtime: bool) -> bool:
    if k.is_dir != r.is_dir:
        return True
    return not k.is_dir and remote_changed(k, r, server_mtime=server_mtime)


def _under(path: str, ancestor: str) -> bool:
    return path.startswith(ancestor + "/")


def _depth(path: str) -> int:
    return path.count("/")


def plan_twoway(
    known: Mapping[str, Entry],
    local: Mapping[str, LocalEntry],
    remote: Mapping[str, RemoteEntry],
    *,
    server_mtime: bool,
    now: float,
    rules: IgnoreRules | None = None,
) -> TwoWayPlan:
    """The actions that bring both sides to the union of their changes since ``known``."""
    if rules is not None:
        known = {p: e for p, e in known.items() if not rules.ignored(p, is_dir=e.is_dir)}
        local = {p: e for p, e in local.items() if not rules.ignored(p, is_dir=e.is_dir)}
        remote = {p: e for p, e in remote.items() if not rules.ignored(p, is_dir=e.is_dir)}
    acts: dict[str, Action] = {}
    held: list[str] = []  # a file here, a folder there: what is below is handled with it
    for p in sorted({*known, *local, *remote}):
        if held and any(_under(p, h) for h in held):
            continue
        lo, r = local.get(p), remote.get(p)
        a: Action | None
        if lo is not None and r is not None and lo.is_dir != r.is_dir:
            a = _kinds(p, lo, r, known, local, remote, server_mtime, now)
            # The files of a folder that comes down (or goes up) are planned as new.
            if not ((a.op is Op.REPLACE_LOCAL and r.is_dir) or a.op is Op.MKDIR_REMOTE):
                held.append(p)
        else:
            a = _one(p, known.get(p), lo, r, server_mtime, now)
        if a is not None:
            acts[p] = a
    _renames(acts, known, local, remote)
    _folder_deletes(acts, local, remote)
    ordered = sorted(acts.values(), key=_sort_key)
    return TwoWayPlan(ordered)


def overruled(plan: TwoWayPlan, actions: list[Action | None]) -> TwoWayPlan:
    """``plan`` with ``actions`` instead of whatever it planned for their paths."""
    mine = {a.path: a for a in actions if a is not None}
    rest = [a for a in plan.actions if a.path not in mine and a.dst not in mine]
    return TwoWayPlan(sorted([*rest, *mine.values()], key=_sort_key))


def kept_both(
    p: str, local: Mapping[str, LocalEntry], remote: Mapping[str, RemoteEntry], now: float
) -> Action | None:
    """For a file whose remote content was written over by a machine that never saw ours
    (the stamps alike, the contents not): keep both, as for an edit on both sides."""
    lo, r = local.get(p), remote.get(p)
    if r is None or r.is_dir or (lo is not None and lo.is_dir):
        return None  # the plan has seen what became of it
    why = "written over on the remote by a machine that had not seen this one's upload"
    if lo is None:  # deleted here since: the other machine's edit beats the delete
        return Action(Op.DOWNLOAD, p, remote=r, reason=why)
    return Action(Op.CONFLICT, p, dst=conflict_name(p, now), local=lo, remote=r, reason=why)


def _sort_key(a: Action) -> tuple[int, int, str]:
    rank = _ORDER[a.op]
    depth = _depth(a.path)
    return rank, -depth if a.op in (Op.DELETE_LOCAL, Op.DELETE_REMOTE) else depth, a.path


def _one(
    p: str,
    k: Entry | None,
    lo: LocalEntry | None,
    r: RemoteEntry | None,
    server_mtime: bool,
    now: float,
) -> Action | None:
    if k is None:
        if lo is not None and r is not None:
            return _both_new(p, lo, r, server_mtime, now)
        if lo is not None:
            op = Op.MKDIR_REMOTE if lo.is_dir else Op.UPLOAD
            return Action(op, p, lo.is_dir, local=lo, reason="new here")
        if r is not None:
            op = Op.MKDIR_LOCAL if r.is_dir else Op.DOWNLOAD
            return Action(op, p, r.is_dir, remote=r, reason="new on the remote")
        return None
    lch = lo is None or local_changed(lo, k)
    rch = r is None or _remote_changed(k, r, server_mtime)
    if lo is None and r is None:
        return Action(Op.FORGET, p, k.is_dir, reason="deleted on both sides")
    if lo is None:
        assert r is not None
        if not rch:
            files = 0 if k.is_dir else 1
            return Action(
                Op.DELETE_REMOTE, p, k.is_dir, remote=r, reason="deleted here", files=files
            )
        op = Op.MKDIR_LOCAL if r.is_dir else Op.DOWNLOAD
        return Action(op, p, r.is_dir, remote=r, reason="changed on the remote, deleted here")
    if r is None:
        if not lch:
            files = 0 if k.is_dir else 1
            why = "deleted on the remote"
            return Action(Op.DELETE_LOCAL, p, k.is_dir, local=lo, reason=why, files=files)
        op = Op.MKDIR_REMOTE if lo.is_dir else Op.UPLOAD
        return Action(op, p, lo.is_dir, local=lo, reason="changed here, deleted on the remote")
    if not lch and not rch:
        return None
    if lch and not rch:
        op = Op.MKDIR_REMOTE if lo.is_dir else Op.UPLOAD
        return Action(op, p, lo.is_dir, local=lo, remote=r, reason="changed here")
    if rch and not lch:
        op = Op.MKDIR_LOCAL if r.is_dir else Op.DOWNLOAD
        return Action(op, p, r.is_dir, local=lo, remote=r, reason="changed on the remote")
    return _both_changed(p, lo, r, now, "changed on both sides since the last sync")


def _both_new(
    p: str, lo: LocalEntry, r: RemoteEntry, server_mtime: bool, now: float
) -> Action | None:
    if lo.is_dir and r.is_dir:
        return Action(Op.RECORD, p, True, local=lo, remote=r, reason="a folder on both sides")
    same_file = not lo.is_dir and not r.is_dir and lo.size == r.size and server_mtime
    if same_file and same_mtime(lo.mtime_ns, r.mtime_ns, server_mtime=True):
        why = "the same size and time on both sides"
        return Action(Op.RECORD, p, local=lo, remote=r, reason=why)
    return _both_changed(p, lo, r, now, "new on both sides")


def _both_changed(p: str, lo: LocalEntry, r: RemoteEntry, now: float, why: str) -> Action:
    if lo.is_dir and r.is_dir:
        return Action(Op.RECORD, p, True, local=lo, remote=r, reason=why)
    if lo.size == r.size:
        return Action(Op.COMPARE, p, local=lo, remote=r, reason=f"{why}, same size")
    return Action(Op.CONFLICT, p, dst=conflict_name(p, now), local=lo, remote=r, reason=why)


def _kinds(
    p: str,
    lo: LocalEntry,
    r: RemoteEntry,
    known: Mapping[str, Entry],
    local: Mapping[str, LocalEntry],
    remote: Mapping[str, RemoteEntry],
    server_mtime: bool,
    now: float,
) -> Action:
    """A file on one side, a folder on the other: the side that changed wins; both, a conflict."""
    k = known.get(p)
    if k is None:
        lch = rch = True
    elif k.is_dir == r.is_dir:  # the local kind is new
        lch = True
        if r.is_dir:
            rch = _folder_changed_remotely(p, known, remote, server_mtime)
        else:
            rch = remote_changed(k, r, server_mtime=server_mtime)
    else:  # the remote kind is new
        rch = True
        lch = _folder_changed_locally(p, known, local) if lo.is_dir else local_changed(lo, k)
    here, there = ("folder", "file") if lo.is_dir else ("file", "folder")
    if not rch:
        op = Op.MKDIR_REMOTE if lo.is_dir else Op.UPLOAD
        why = f"a {here} here replaced the {there}"
        return Action(op, p, lo.is_dir, local=lo, remote=r, reason=why)
    if not lch:
        files = sum(1 for _, e in _below(local, p) if not e.is_dir) if lo.is_dir else 1
        why = f"the {here} was replaced by a {there} on the remote; the {here} goes to the trash"
        return Action(Op.REPLACE_LOCAL, p, r.is_dir, local=lo, remote=r, reason=why, files=files)
    why = f"a {here} here, a {there} on the remote"
    dst = conflict_name(p, now)
    return Action(Op.CONFLICT, p, r.is_dir, dst=dst, local=lo, remote=r, reason=why)


def _folder_changed_locally(
    p: str, known: Mapping[str, Entry], local: Mapping[str, LocalEntry]
) -> bool:
    """Something below local folder ``p`` is new or edited since the last sync."""
    return any(local_changed(e, known.get(q)) for q, e in _below(local, p))


def _folder_changed_remotely(
    p: str, known: Mapping[str, Entry], remote: Mapping[str, RemoteEntry], server_mtime: bool
) -> bool:
    """Something below remote folder ``p`` is new or changed since the last sync."""
    for q, e in _below(remote, p):
        k = known.get(q)
        if k is None or _remote_changed(k, e, server_mtime):
            return True
    return False


def resolve_compare(a: Action, same: bool, now: float) -> Action:
    """A COMPARE's outcome: RECORD when the contents are the same, else a CONFLICT."""
    if same:
        return replace(a, op=Op.RECORD, reason=f"{a.reason}, same content")
    return replace(a, op=Op.CONFLICT, dst=conflict_name(a.path, now), reason=a.reason)


def copies_of_present(
    plan: TwoWayPlan, known: Mapping[str, Entry], remote: Mapping[str, RemoteEntry]
) -> set[str]:
    """New remote files (DOWNLOADs) with the size and ETag of a synced file still listed as
    it was, and new folders holding only such files: on a store without renames (S3) a
    folder moved by copy-then-delete, seen before the deletes. Waiting one look turns them
    into a rename once the sources are gone."""
    present = {
        (k.size, k.etag)
        for p, k in known.items()
        if not k.is_dir
        and k.etag
        and (r := remote.get(p)) is not None
        and not r.is_dir
        and r.etag == k.etag
    }
    copies = {
        a.path
        for a in plan.of(Op.DOWNLOAD)
        if a.local is None
        and a.path not in known
        and a.remote is not None
        and a.remote.etag
        and (a.remote.size, a.remote.etag) in present
    }
    for a in plan.of(Op.MKDIR_LOCAL):
        inside = [p for p, e in _below(remote, a.path) if not e.is_dir]
        if a.path not in known and inside and all(p in copies for p in inside):
            copies.add(a.path)
    return copies


def record_entry(a: Action, now: float) -> Entry:
    """The state entry for a RECORD (or a finished COMPARE that proved sameness)."""
    assert a.local is not None and a.remote is not None
    lo, r = a.local, a.remote
    return Entry(a.path, lo.is_dir, lo.size, lo.mtime_ns, lo.ino, r.etag, now, r.mtime_ns)


# -- renames ----------------------------------------------------------------------------------


def _rename_key(size: int, etag: str | None, rmtime: int | None) -> tuple[object, ...] | None:
    if etag:
        return ("etag", size, etag)
    if rmtime is not None:
        return ("mtime", size, rmtime)
    return None


def _name(p: str) -> str:
    return p.rsplit("/", 1)[-1]


def _renames(
    acts: dict[str, Action],
    known: Mapping[str, Entry],
    local: Mapping[str, LocalEntry],
    remote: Mapping[str, RemoteEntry],
) -> None:
    gone: dict[tuple[object, ...], list[str]] = {}
    for p, a in acts.items():
        if a.op is Op.DELETE_LOCAL and not a.is_dir:
            k = known[p]
            key = _rename_key(k.size, k.etag, k.remote_mtime_ns)
            if key is not None:
                gone.setdefault(key, []).append(p)
    new: dict[tuple[object, ...], list[str]] = {}
    for p, a in acts.items():
        if a.op is Op.DOWNLOAD and p not in known and a.local is None and a.remote is not None:
            r = a.remote
            seen = ("etag", r.size, r.etag) if r.etag else ("mtime", r.size, r.mtime_ns)
            new.setdefault(seen, []).append(p)
    pairs: dict[str, str] = {}
    for key, srcs in gone.items():
        dsts = new.get(key, [])
        if len(srcs) == 1 and len(dsts) == 1:
            pairs[srcs[0]] = dsts[0]
            continue
        # Several files with the same content: pair those whose names match, one to one.
        by_name: dict[str, list[str]] = {}
        for d in dsts:
            by_name.setdefault(_name(d), []).append(d)
        src_names = [_name(s) for s in srcs]
        for s in srcs:
            ds = by_name.get(_name(s), [])
            if len(ds) == 1 and src_names.count(_name(s)) == 1:
                pairs[s] = ds[0]
    if not pairs:
        return
    for src, dst in _folder_renames(pairs, acts, known, local, remote):
        for p in [p for p in acts if p == src or _under(p, src)]:
            if acts[p].op in (Op.DELETE_LOCAL, Op.FORGET):
                del acts[p]
        for p in [p for p in pairs if _under(p, src)]:
            acts.pop(pairs.pop(p), None)
        for p in [p for p in acts if p == dst or _under(p, dst)]:
            if acts[p].op is Op.MKDIR_LOCAL:
                del acts[p]
        why = "renamed on the remote (a folder)"
        acts[src] = Action(Op.RENAME_LOCAL, src, True, dst=dst, remote=remote[dst], reason=why)
    for src, dst in pairs.items():
        del acts[dst]
        why = "renamed on the remote"
        acts[src] = Action(
            Op.RENAME_LOCAL, src, dst=dst, local=local.get(src), remote=remote[dst], reason=why
        )


def _folder_renames(
    pairs: Mapping[str, str],
    acts: Mapping[str, Action],
    known: Mapping[str, Entry],
    local: Mapping[str, LocalEntry],
    remote: Mapping[str, RemoteEntry],
) -> list[tuple[str, str]]:
    """Folders every synced entry of which moved to one new folder, outermost first."""
    candidates: set[tuple[str, str]] = set()
    for s, d in pairs.items():
        ss, ds = s.split("/"), d.split("/")
        # Strip the common tail: a/x/f → b/x/f proposes (a/x, b/x) and (a, b).
        while len(ss) > 1 and len(ds) > 1 and ss[-1] == ds[-1]:
            ss, ds = ss[:-1], ds[:-1]
            candidates.add(("/".join(ss), "/".join(ds)))
    done: list[tuple[str, str]] = []
    for src, dst in sorted(candidates, key=lambda c: (_depth(c[0]), c)):
        if any(src == s or _under(src, s) for s, _ in done):
            continue
        if _folder_moved(src, dst, pairs, acts, known, local, remote):
            done.append((src, dst))
    return done


def _folder_moved(
    src: str,
    dst: str,
    pairs: Mapping[str, str],
    acts: Mapping[str, Action],
    known: Mapping[str, Entry],
    local: Mapping[str, LocalEntry],
    remote: Mapping[str, RemoteEntry],
) -> bool:
    k, lo, r = known.get(src), local.get(src), remote.get(dst)
    if k is None or not k.is_dir or lo is None or not lo.is_dir or r is None or not r.is_dir:
        return False
    # (An emptied folder left at src, as an object store may list for a while, is no obstacle.)
    if any(_under(p, src) for p in remote) or dst in known or dst in local:
        return False
    if any(_under(p, dst) for p in local):
        return False
    for p, e in _below(known, src):
        assert isinstance(e, Entry)
        moved_to = dst + p[len(src) :]
        if e.is_dir:
            entry = remote.get(moved_to)
            if entry is None or not entry.is_dir or p in remote:
                return False
        elif pairs.get(p) != moved_to:
            return False
    # Nothing new or changed locally inside: the folder moves as it is.
    for p, _ in _below(local, src):
        a = acts.get(p)
        if p not in known or (a is not None and a.op not in (Op.DELETE_LOCAL,)):
            return False
    return True


def _below(entries: Mapping[str, V], folder: str) -> list[tuple[str, V]]:
    lo = folder + "/"
    return [(p, e) for p, e in entries.items() if p.startswith(lo)]


# -- folder deletes ---------------------------------------------------------------------------


def _folder_deletes(
    acts: dict[str, Action], local: Mapping[str, LocalEntry], remote: Mapping[str, RemoteEntry]
) -> None:
    """One delete per folder whose contents all go; keep (re-create) a folder that must stay."""
    for op, side, remake in (
        (Op.DELETE_LOCAL, local, Op.MKDIR_REMOTE),
        (Op.DELETE_REMOTE, remote, Op.MKDIR_LOCAL),
    ):
        folders = sorted(
            (p for p, a in acts.items() if a.op is op and a.is_dir), key=_depth, reverse=True
        )
        for d in folders:
            inside = [p for p in side if _under(p, d)]
            # A file renamed away (applied first) leaves the folder too.
            goes = (op, Op.RENAME_LOCAL) if op is Op.DELETE_LOCAL else (op,)
            if all(p in acts and acts[p].op in goes for p in inside):
                files = sum(
                    acts[p].files for p in inside if acts[p].op is op and not acts[p].is_dir
                )
                acts[d] = replace(acts[d], files=files)
                continue
            a = acts[d]
            why = "kept: something inside changed, " + a.reason
            acts[d] = replace(a, op=remake, reason=why, files=0)
        # A folder that goes covers what is inside it.
        gone = [p for p, a in acts.items() if a.op is op and a.is_dir]
        for p in [p for p, a in acts.items() if a.op is op]:
            if any(_under(p, g) for g in gone):
                del acts[p]
