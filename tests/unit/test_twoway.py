"""engine/twoway.py: the two-way planner, case by case (pure: no disk, no server)."""

from __future__ import annotations

from syncapp.engine.ownwrites import SETTLE_SECONDS, Upload, confirm_own_writes
from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry
from syncapp.engine.twoway import (
    Action,
    Op,
    TwoWayPlan,
    copies_of_present,
    kept_both,
    overruled,
    plan_twoway,
    record_entry,
    resolve_compare,
)
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import RemoteEntry

NOW = 1_800_000_000.0
T0 = 1_700_000_000_000_000_000  # local mtime at the last sync
RT0 = 1_700_000_005_000_000_000  # the server's mtime for our upload


def K(path: str, size: int = 10, *, etag: str | None = None, d: bool = False) -> Entry:
    etag = etag if etag is not None or d else f"e-{path}"
    return Entry(path, d, 0 if d else size, T0, hash(path) & 0xFFFF, etag, NOW - 100, RT0)


def L(path: str, size: int = 10, *, mtime: int = T0, d: bool = False) -> LocalEntry:
    return LocalEntry(path, d, 0 if d else size, mtime, hash(path) & 0xFFFF)


def R(path: str, size: int = 10, *, etag: str | None = None, d: bool = False) -> RemoteEntry:
    etag = etag if etag is not None or d else f"e-{path}"
    return RemoteEntry(path, d, 0 if d else size, RT0, None if d else etag)


def plan(
    known: list[Entry],
    local: list[LocalEntry],
    remote: list[RemoteEntry],
    *,
    server_mtime: bool = False,
    rules: IgnoreRules | None = None,
) -> TwoWayPlan:
    return plan_twoway(
        {e.path: e for e in known},
        {e.path: e for e in local},
        {e.path: e for e in remote},
        server_mtime=server_mtime,
        now=NOW,
        rules=rules,
    )


def ops(p: TwoWayPlan) -> list[tuple[str, str]]:
    return [(str(a.op), a.path) for a in p.actions]


def one(p: TwoWayPlan) -> Action:
    assert len(p.actions) == 1, ops(p)
    return p.actions[0]


# -- one path -----------------------------------------------------------------------------------


def test_in_sync_is_nothing() -> None:
    assert len(plan([K("a")], [L("a")], [R("a")])) == 0


def test_local_edit_uploads() -> None:
    a = one(plan([K("a")], [L("a", 11)], [R("a")]))
    assert a.op is Op.UPLOAD and a.path == "a"
    # A touched file (same size, new mtime) is an edit too.
    assert one(plan([K("a")], [L("a", mtime=T0 + 1)], [R("a")])).op is Op.UPLOAD


def test_remote_edit_downloads_with_what_the_remote_and_local_showed() -> None:
    a = one(plan([K("a")], [L("a")], [R("a", 12, etag="new")]))
    assert a.op is Op.DOWNLOAD and a.remote == R("a", 12, etag="new") and a.local == L("a")


def test_remote_edit_same_size_is_told_by_etag() -> None:
    assert one(plan([K("a")], [L("a")], [R("a", etag="other")])).op is Op.DOWNLOAD


def test_remote_edit_without_etags_is_told_by_the_server_mtime() -> None:
    k = Entry("a", False, 10, T0, 1, None, NOW - 100, RT0)
    later = RemoteEntry("a", False, 10, RT0 + 10**9, None)
    same = RemoteEntry("a", False, 10, RT0, None)
    assert one(plan([k], [L("a")], [later])).op is Op.DOWNLOAD
    assert len(plan([k], [L("a")], [same])) == 0


def test_both_changed_different_sizes_is_a_conflict_keeping_both() -> None:
    a = one(plan([K("notes/a.txt")], [L("notes/a.txt", 11)], [R("notes/a.txt", 12, etag="x")]))
    assert a.op is Op.CONFLICT and a.path == "notes/a.txt"
    assert a.dst is not None and a.dst.startswith("notes/a.conflict-") and a.dst.endswith(".txt")


def test_both_changed_same_size_needs_a_compare() -> None:
    a = one(plan([K("a")], [L("a", 20)], [R("a", 20, etag="x")]))
    assert a.op is Op.COMPARE
    assert resolve_compare(a, True, NOW).op is Op.RECORD
    c = resolve_compare(a, False, NOW)
    assert c.op is Op.CONFLICT and c.dst and "conflict" in c.dst
    e = record_entry(resolve_compare(a, True, NOW), NOW)
    assert (e.size, e.etag, e.remote_mtime_ns, e.mtime_ns) == (20, "x", RT0, T0)


def test_local_delete_deletes_remote() -> None:
    a = one(plan([K("a")], [], [R("a")]))
    assert a.op is Op.DELETE_REMOTE and a.files == 1


def test_remote_delete_goes_to_the_trash() -> None:
    p = plan([K("a")], [L("a")], [])
    a = one(p)
    assert a.op is Op.DELETE_LOCAL and p.local_deletes == 1


def test_an_edit_beats_a_delete_on_either_side() -> None:
    assert one(plan([K("a")], [], [R("a", 12, etag="x")])).op is Op.DOWNLOAD
    assert one(plan([K("a")], [L("a", 11)], [])).op is Op.UPLOAD


def test_gone_on_both_sides_is_forgotten() -> None:
    assert one(plan([K("a")], [], [])).op is Op.FORGET


def test_new_on_one_side() -> None:
    assert ops(plan([], [L("a")], [])) == [("upload", "a")]
    assert ops(plan([], [], [R("b")])) == [("download", "b")]
    assert ops(plan([], [L("d", d=True)], [])) == [("mkdir-remote", "d")]
    assert ops(plan([], [], [R("d", d=True)])) == [("mkdir-local", "d")]


def test_file_here_folder_there_is_a_conflict_and_nothing_below_is_planned() -> None:
    p = plan([], [L("x")], [R("x", d=True), R("x/inner.txt")])
    a = one(p)
    assert a.op is Op.CONFLICT and a.is_dir and a.dst and a.dst.startswith("x.conflict-")
    assert a.local == L("x") and a.remote == R("x", d=True)
    assert p.local_deletes == 0


def test_folder_here_file_there_is_a_conflict_and_nothing_below_is_planned() -> None:
    p = plan([], [L("x", d=True), L("x/mine.txt")], [R("x")])
    a = one(p)
    assert a.op is Op.CONFLICT and not a.is_dir and a.dst and a.dst.startswith("x.conflict-")
    assert p.local_deletes == 0


# A file and a folder that became one since the last sync: the side that changed wins.

SYNCED_FOLDER = [K("x", d=True), K("x/a.txt"), K("x/b.txt")]


def test_remote_made_a_synced_file_a_folder_it_comes_down_and_the_file_goes_to_the_trash() -> None:
    p = plan([K("x")], [L("x")], [R("x", d=True), R("x/new.txt")])
    assert ops(p) == [("replace-local", "x"), ("download", "x/new.txt")]
    a = p.actions[0]
    assert a.is_dir and a.files == 1 and a.local == L("x")
    assert p.local_deletes == 1  # the guard counts what goes to the trash


def test_remote_made_a_synced_folder_a_file_the_folder_goes_to_the_trash() -> None:
    p = plan(SYNCED_FOLDER, [L("x", d=True), L("x/a.txt"), L("x/b.txt")], [R("x")])
    a = one(p)
    assert a.op is Op.REPLACE_LOCAL and not a.is_dir and a.files == 2
    assert p.local_deletes == 2


def test_remote_made_a_folder_a_file_while_something_inside_changed_here_is_a_conflict() -> None:
    local = [L("x", d=True), L("x/a.txt", 11), L("x/b.txt")]
    a = one(plan(SYNCED_FOLDER, local, [R("x")]))
    assert a.op is Op.CONFLICT and not a.is_dir
    # A file new inside counts as a change too.
    local = [L("x", d=True), L("x/a.txt"), L("x/b.txt"), L("x/c.txt")]
    assert one(plan(SYNCED_FOLDER, local, [R("x")])).op is Op.CONFLICT


def test_remote_made_a_file_a_folder_while_it_was_edited_here_is_a_conflict() -> None:
    a = one(plan([K("x")], [L("x", 99)], [R("x", d=True), R("x/new.txt")]))
    assert a.op is Op.CONFLICT and a.is_dir


def test_a_file_here_replaced_a_synced_folder_it_uploads_over_it() -> None:
    remote = [R("x", d=True), R("x/a.txt"), R("x/b.txt")]
    a = one(plan(SYNCED_FOLDER, [L("x")], remote))
    # The upload side removes the remote folder (keeping versions) and uploads the file.
    assert a.op is Op.UPLOAD and not a.is_dir


def test_a_file_here_replaced_a_folder_changed_on_the_remote_is_a_conflict() -> None:
    remote = [R("x", d=True), R("x/a.txt", etag="edited"), R("x/b.txt")]
    a = one(plan(SYNCED_FOLDER, [L("x")], remote))
    assert a.op is Op.CONFLICT and a.is_dir
    remote = [R("x", d=True), R("x/a.txt"), R("x/b.txt"), R("x/c.txt")]
    assert one(plan(SYNCED_FOLDER, [L("x")], remote)).op is Op.CONFLICT


def test_a_folder_here_replaced_a_synced_file_it_goes_up_with_its_files() -> None:
    p = plan([K("x")], [L("x", d=True), L("x/mine.txt")], [R("x")])
    assert ops(p) == [("mkdir-remote", "x"), ("upload", "x/mine.txt")]
    a = plan([K("x")], [L("x", d=True)], [R("x", etag="edited")]).actions
    assert [(b.op, b.is_dir) for b in a] == [(Op.CONFLICT, False)]


# -- first run: a union -------------------------------------------------------------------------


def test_first_run_is_a_union_nothing_deleted() -> None:
    local = [L("only-here"), L("both-same", 5), L("both-differ", 5), L("d", d=True)]
    remote = [R("only-there"), R("both-same", 5), R("both-differ", 7), R("d", d=True)]
    p = plan([], local, remote)
    got = dict((path, op) for op, path in ops(p))
    assert got == {
        "only-here": "upload",
        "only-there": "download",
        "both-same": "compare",  # no kept mtimes: the contents decide
        "both-differ": "conflict",
        "d": "record",
    }
    assert p.local_deletes == 0 and p.remote_deletes == 0


def test_first_run_with_kept_mtimes_records_what_is_the_same() -> None:
    lo = L("a", 5, mtime=RT0)
    a = one(plan([], [lo], [R("a", 5)], server_mtime=True))
    assert a.op is Op.RECORD
    assert record_entry(a, NOW) == Entry("a", False, 5, RT0, lo.ino, "e-a", NOW, RT0)


# -- renames --------------------------------------------------------------------------------------


def test_a_remote_rename_is_one_local_rename() -> None:
    p = plan([K("old.txt", etag="E")], [L("old.txt")], [R("new.txt", etag="E")])
    a = one(p)
    assert (a.op, a.path, a.dst) == (Op.RENAME_LOCAL, "old.txt", "new.txt")


def test_rename_without_etags_by_size_and_server_mtime() -> None:
    k = Entry("old", False, 10, T0, 1, None, NOW - 100, RT0)
    moved = RemoteEntry("new", False, 10, RT0, None)
    a = one(plan([k], [L("old")], [moved]))
    assert (a.op, a.dst) == (Op.RENAME_LOCAL, "new")


def test_rename_of_a_locally_edited_file_is_not_a_rename() -> None:
    p = plan([K("old", etag="E")], [L("old", 11)], [R("new", etag="E")])
    assert sorted(ops(p)) == [("download", "new"), ("upload", "old")]


def test_ambiguous_renames_pair_by_name_or_not_at_all() -> None:
    known = [K("a/x", etag="E"), K("a/y", etag="E")]
    local = [L("a/x"), L("a/y")]
    p = plan(known, local, [R("b/x", etag="E"), R("b/y", etag="E")])
    assert sorted((a.path, a.dst) for a in p.of(Op.RENAME_LOCAL)) == [
        ("a/x", "b/x"),
        ("a/y", "b/y"),
    ]
    p = plan(known, local, [R("b/p", etag="E"), R("b/q", etag="E")])
    assert p.of(Op.RENAME_LOCAL) == []
    assert sorted(p.paths(Op.DOWNLOAD)) == ["b/p", "b/q"]


def folder(name: str, n: int, *, side: str) -> list[object]:
    out: list[object] = []
    make = {"K": K, "L": L, "R": R}[side]
    out.append(make(name, d=True))
    out.append(make(f"{name}/sub", d=True))
    for i in range(n):
        sub = "sub/" if i % 2 else ""
        out.append(
            make(f"{name}/{sub}f{i}.txt", 100 + i, **({} if side == "L" else {"etag": f"E{i}"}))
        )
    return out


def test_a_folder_of_50_files_renamed_on_the_remote_is_one_rename() -> None:
    known = folder("photos", 50, side="K")
    local = folder("photos", 50, side="L")
    remote = [*folder("albums/2026", 50, side="R"), R("albums", d=True)]
    p = plan(known, local, remote)  # type: ignore[arg-type]
    # The rename makes the missing parents of its target (albums/); the mkdir then finds it.
    assert ops(p) == [("rename-local", "photos"), ("mkdir-local", "albums")]
    r = p.of(Op.RENAME_LOCAL)[0]
    assert r.is_dir and r.dst == "albums/2026"
    assert p.local_deletes == 0


def test_a_folder_renamed_by_copy_is_one_rename_though_its_emptied_folder_is_listed() -> None:
    """An object store may list the emptied source folder for a while after the move."""
    known, local = folder("big", 5, side="K"), folder("big", 5, side="L")
    remote: list[object] = [R("big", d=True), *folder("moved", 5, side="R")]
    p = plan(known, local, remote)  # type: ignore[arg-type]
    assert ops(p) == [("rename-local", "big")] and p.actions[0].dst == "moved"
    # Something still inside it on the remote: not the folder as a whole (its subfolder is).
    p = plan(known, local, [*remote, R("big/late.txt", 3, etag="late")])  # type: ignore[arg-type, list-item]
    renamed = sorted(p.paths(Op.RENAME_LOCAL))
    assert renamed == ["big/f0.txt", "big/f2.txt", "big/f4.txt", "big/sub"]


def test_folder_rename_with_a_new_remote_file_inside_renames_then_downloads() -> None:
    known, local = folder("a", 6, side="K"), folder("a", 6, side="L")
    remote = [*folder("b", 6, side="R"), R("b/extra.txt", 7, etag="X")]
    p = plan(known, local, remote)  # type: ignore[arg-type]
    assert ops(p) == [("rename-local", "a"), ("download", "b/extra.txt")]


def test_folder_rename_with_a_local_new_file_inside_is_file_by_file() -> None:
    known = folder("a", 4, side="K")
    local = [*folder("a", 4, side="L"), L("a/mine.txt", 3)]
    p = plan(known, local, folder("b", 4, side="R"))  # type: ignore[arg-type]
    renames = sorted((a.path, a.dst) for a in p.of(Op.RENAME_LOCAL))
    # a/sub holds nothing new: it moves whole; a itself stays for the new file.
    assert renames == [("a/f0.txt", "b/f0.txt"), ("a/f2.txt", "b/f2.txt"), ("a/sub", "b/sub")]
    assert ("upload", "a/mine.txt") in ops(p)
    assert ("mkdir-remote", "a") in ops(p)  # a stays, and comes back on the remote
    assert p.local_deletes == 0


# -- folder deletes -------------------------------------------------------------------------------


def test_a_folder_deleted_on_the_remote_is_one_trash() -> None:
    known, local = folder("old", 30, side="K"), folder("old", 30, side="L")
    p = plan(known, local, [])  # type: ignore[arg-type]
    a = one(p)
    assert (a.op, a.path, a.is_dir, a.files) == (Op.DELETE_LOCAL, "old", True, 30)
    assert p.local_deletes == 30


def test_a_folder_deleted_locally_is_one_remote_delete() -> None:
    known, remote = folder("old", 8, side="K"), folder("old", 8, side="R")
    p = plan(known, [], remote)  # type: ignore[arg-type]
    a = one(p)
    assert (a.op, a.path, a.files) == (Op.DELETE_REMOTE, "old", 8)


def test_a_folder_deleted_on_the_remote_keeps_a_local_edit_inside() -> None:
    known = folder("d", 4, side="K")
    local = [*folder("d", 4, side="L")]
    local[2] = L("d/f0.txt", 999)  # edited here
    p = plan(known, local, [])  # type: ignore[arg-type]
    got = ops(p)
    assert ("upload", "d/f0.txt") in got and ("mkdir-remote", "d") in got
    # d/sub goes whole (one trash), d/f2.txt alone; d stays for the edited file.
    assert ops(p) == [
        ("mkdir-remote", "d"),
        ("upload", "d/f0.txt"),
        ("delete-local", "d/f2.txt"),
        ("delete-local", "d/sub"),
    ]
    assert p.local_deletes == 3


def test_deletes_come_last_deepest_first_and_renames_first() -> None:
    known = [K("keep", d=True), K("keep/a"), K("x")]
    local = [L("keep", d=True), L("keep/a"), L("x")]
    remote = [R("keep", d=True), R("y", etag="e-x")]
    p = plan(known, local, remote)
    assert ops(p) == [("rename-local", "x"), ("delete-local", "keep/a")]


# -- ignore rules ---------------------------------------------------------------------------------


def test_ignored_paths_are_left_alone_on_both_sides() -> None:
    rules = IgnoreRules(["*.log", "cache/"])
    known = [K("app.log"), K("cache", d=True), K("cache/x")]
    local = [L("app.log", 99), L("new.log")]  # cache/ deleted locally
    remote = [R("cache", d=True), R("cache/x"), R("other.log")]  # app.log deleted remotely
    assert len(plan(known, local, remote, rules=rules)) == 0


def test_syncapp_names_are_never_planned() -> None:
    rules = IgnoreRules()
    remote = [R(".syncapp-trash", d=True), R(".syncapp-trash/x"), R(".syncapp-tmp-dl-1")]
    local = [L(".syncapp-versions", d=True), L("a.swp")]
    assert len(plan([], local, remote, rules=rules)) == 0


def test_new_remote_copies_of_files_still_there_wait_a_look() -> None:
    """A folder moved by copy-then-delete (S3), seen before the deletes: the copies are held
    one look (then the sources are gone and it is one rename); a copy of a file that was
    edited, or with another ETag, is not."""
    known = [K("big/a.txt"), K("big/b.txt", 11), K("other.txt", 12)]
    local = [L("big/a.txt"), L("big/b.txt", 11), L("other.txt", 12)]
    remote = [
        R("big/a.txt"),
        R("big/b.txt", 11),
        R("other.txt", 12, etag="edited"),
        R("moved/a.txt", etag="e-big/a.txt"),
        R("moved/b.txt", 11, etag="e-big/b.txt"),
        R("elsewhere/o.txt", 12, etag="e-other.txt"),  # its source changed: no copy of it
        R("new.txt", 10, etag="fresh"),
    ]
    p = plan(known, local, remote)
    held = copies_of_present(p, {e.path: e for e in known}, {e.path: e for e in remote})
    assert held == {"moved/a.txt", "moved/b.txt"}
    # The new folder of those copies waits too (made now, it would stop the folder rename).
    remote += [R("moved", d=True)]
    p = plan(known, local, remote)
    held = copies_of_present(p, {e.path: e for e in known}, {e.path: e for e in remote})
    assert held == {"moved", "moved/a.txt", "moved/b.txt"}



def test_an_overwrite_stamped_like_ours_is_overruled_into_keeping_both() -> None:
    lo = LocalEntry("a.txt", False, 10, 5, 1)
    r = RemoteEntry("a.txt", False, 10, 5, "e")
    plan = TwoWayPlan(
        [Action(Op.UPLOAD, "a.txt", local=lo), Action(Op.DOWNLOAD, "b.txt", remote=r)]
    )
    both = overruled(plan, [kept_both("a.txt", {"a.txt": lo}, {"a.txt": r}, 0.0)])
    ops = [(a.op, a.path) for a in both.actions]
    assert ops == [(Op.DOWNLOAD, "b.txt"), (Op.CONFLICT, "a.txt")]
    # Deleted here since: the other machine's content comes down.
    gone_here = kept_both("a.txt", {}, {"a.txt": r}, 0.0)
    assert gone_here is not None and gone_here.op is Op.DOWNLOAD
    # Gone there: nothing to keep, the plan decides.
    assert kept_both("a.txt", {"a.txt": lo}, {}, 0.0) is None


def test_an_upload_settles_after_two_seconds_or_twice_its_duration() -> None:
    k = Entry("a.txt", False, 10, 5, 1, "e1", 0.0, 7)
    up = Upload.finished(100.0, 0.1, None)
    assert up.settles == 100.0 + SETTLE_SECONDS
    assert Upload.finished(100.0, 30.0, None).settles == 160.0
    unconfirmed = {"a.txt": up}

    def due(etag: str, now: float) -> list[str]:
        listed = {"a.txt": RemoteEntry("a.txt", False, 10, 7, etag)}
        return confirm_own_writes(
            unconfirmed, set(), {"a.txt": k}, listed, server_mtime=True, now=now
        )[1]

    assert due("e1", 101.0) == [] and list(unconfirmed) == ["a.txt"]  # ours, not settled yet
    assert due("e1", 102.5) == ["a.txt"]
    # Another ETag: not ours, never due (the look plans it as a remote edit).
    assert due("e2", 103.0) == []


def test_the_settling_look_waits_for_a_burst_and_never_for_what_was_judged() -> None:
    from syncapp.engine.ownwrites import OwnWrites

    own = OwnWrites(None, "", {})  # type: ignore[arg-type]  # no remote: nothing is read here
    assert own.next_settle(0.0) == float("inf")
    own.unconfirmed.update(
        a=Upload(10.0), b=Upload(11.5), c=Upload(13.0)  # a burst, and one past its reach
    )
    assert abs(own.next_settle(5.0) - (11.5 - 5.0 + 0.05)) < 1e-9
    assert own.next_settle(20.0) == 0.0  # due already: look now
    own._checked = 11.5  # a look judged a and b (still here: not shown as ours, say)
    assert abs(own.next_settle(12.0) - (13.0 - 12.0 + 0.05)) < 1e-9
    own._checked = 13.0
    assert own.next_settle(14.0) == float("inf")  # the regular looks take it from here
