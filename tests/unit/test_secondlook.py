"""engine/secondlook.py: deletes, renames and copies of present files wait for a second look."""

from __future__ import annotations

from syncapp.engine.secondlook import SecondLook
from syncapp.engine.twoway import TwoWayPlan
from tests.unit.test_twoway import K, L, R, folder, plan


def ops_of(p: TwoWayPlan) -> list[tuple[str, str]]:
    return [(str(a.op), a.path) for a in p.actions]


def test_a_delete_and_a_rename_apply_when_the_next_look_agrees() -> None:
    known = [K("gone.txt"), K("old.txt", 7)]
    local = [L("gone.txt"), L("old.txt", 7)]
    remote = [R("new.txt", 7, etag="e-old.txt"), R("fresh.txt", 3, etag="f")]
    second = SecondLook()
    now, later = second.agreed(
        plan(known, local, remote), {e.path: e for e in known}, {}, confirmed=False
    )
    assert ops_of(now) == [("download", "fresh.txt")] and later == ["gone.txt"]
    assert second.waiting
    now, later = second.agreed(
        plan(known, local, remote), {e.path: e for e in known}, {}, confirmed=False
    )
    assert sorted(ops_of(now)) == [
        ("delete-local", "gone.txt"),
        ("download", "fresh.txt"),
        ("rename-local", "old.txt"),
    ]
    assert later == []


def test_confirmed_deletes_need_no_second_look_renames_still_do() -> None:
    known, local = [K("gone.txt"), K("old.txt", 7)], [L("gone.txt"), L("old.txt", 7)]
    p = plan(known, local, [R("new.txt", 7, etag="e-old.txt")])
    now, later = SecondLook().agreed(p, {e.path: e for e in known}, {}, confirmed=True)
    assert ops_of(now) == [("delete-local", "gone.txt")] and later == []


def test_a_folder_moved_by_copy_seen_half_done_is_one_rename_later() -> None:
    known, local = folder("big", 4, side="K"), folder("big", 4, side="L")
    k = {e.path: e for e in known}  # type: ignore[attr-defined]
    half = [*folder("big", 4, side="R"), *folder("moved", 4, side="R")]
    done = folder("moved", 4, side="R")
    second = SecondLook()
    seen = []
    for remote in (half, done, done):
        r = {e.path: e for e in remote}  # type: ignore[attr-defined]
        now, _ = second.agreed(plan(known, local, remote), k, r, confirmed=False)  # type: ignore[arg-type]
        seen.append(ops_of(now))
    assert seen == [[], [], [("rename-local", "big")]]
