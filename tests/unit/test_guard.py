"""The delete guard's rule, no server: counts, thresholds, the floor of 10, spread wipes."""

from __future__ import annotations

import pytest

from syncapp.engine.entries import EntryMap
from syncapp.engine.guard import FLOOR, DeleteGuard, check, guard_reason, guard_tripped
from syncapp.engine.state import Entry


def tree(dirs: int, files_each: int) -> EntryMap:
    m = EntryMap()
    for d in range(dirs):
        m[f"d{d}"] = Entry(f"d{d}", True, 0, 1, d)
        for f in range(files_each):
            p = f"d{d}/f{f}"
            m[p] = Entry(p, False, 1, 1, 1000 * d + f)
    return m


@pytest.mark.parametrize(
    ("max_delete", "deletes", "known", "tripped"),
    [
        ("50%", 9, 10, False),  # under the floor: never
        ("50%", 10, 10, True),
        ("50%", 10, 20, False),  # exactly half is not more than half
        ("50%", 11, 20, True),
        ("10%", 10, 1000, False),
        ("10%", 101, 1000, True),
        (100, 100, 200, False),
        (100, 101, 200, True),
        ("5", 9, 9, False),  # a count below the floor: the floor wins
        ("5", 10, 1000, True),
        ("0%", 10, 0, False),  # nothing known: no share to exceed
    ],
)
def test_thresholds_and_the_floor(
    max_delete: str | int, deletes: int, known: int, tripped: bool
) -> None:
    assert guard_tripped(max_delete, deletes, known) is tripped
    assert FLOOR == 10


def test_a_folder_delete_counts_its_files() -> None:
    m = tree(2, 10)  # 20 files
    trip = check(m, [("d0", True)], "40%")
    assert trip is not None
    assert (trip.files, trip.known, trip.paths) == (10, 20, ("d0",))
    assert trip.reason == "10 of 20 files were deleted locally; deletes are held until you confirm"
    assert guard_reason(10, 20) in trip.reason
    assert check(m, [("d0", True)], "50%") is None


def test_a_spread_wipe_trips_it_like_one_folder() -> None:
    # One file from each of 40 folders: no folder delete, still most of the synced files.
    m = tree(40, 1)
    deletes = [(f"d{d}/f0", False) for d in range(40)]
    trip = check(m, deletes, "50%")
    assert trip is not None and (trip.files, trip.known) == (40, 40)
    assert trip.paths == tuple(sorted(p for p, _ in deletes))


def test_nested_and_repeated_deletes_count_each_file_once() -> None:
    m = tree(3, 5)  # 15 files
    deletes = [("d0", True), ("d0/f1", False), ("d1", True), ("d1/f2", False)]
    trip = check(m, deletes, "50%")
    assert trip is not None and trip.files == 10


def test_file_deletes_count_as_given_folders_by_their_files() -> None:
    m = tree(1, 3)
    assert check(m, [(f"new{i}", False) for i in range(20)], "50%") is not None  # paths given
    assert check(m, [(f"newdir{i}", True) for i in range(20)], "50%") is None  # no files under


def test_the_guard_holds_until_confirmed_once() -> None:
    m = tree(2, 10)
    g = DeleteGuard()
    g.hold("d0", True)
    g.hold("d1/f0", False)
    assert len(g) == 2
    trip = g.review(m, dict(g.held), "10%")
    assert trip is not None and trip.files == 11
    g.allow_once = True  # the user said "delete on remote"
    assert g.review(m, dict(g.held), "10%") is None
    g.release()
    assert not g.held and not g.allow_once
    g.hold("d0", True)
    assert g.review(m, dict(g.held), "10%") is not None  # a confirmation is for once
    g.drop("d0")
    g.drop("never held")
    assert len(g) == 0


def test_allow_mass_delete_lets_everything_go() -> None:
    m = tree(2, 10)
    g = DeleteGuard(allow_mass_delete=True)
    assert g.review(m, {"d0": True, "d1": True}, "1%") is None


def test_settle_sorts_out_what_came_back_and_what_is_ignored_now() -> None:
    m = tree(2, 3)
    g = DeleteGuard()
    for p in ("d0/f0", "d0/f1", "d1/f2"):
        g.hold(p, False)
    out = g.settle(
        m,
        "50%",
        exists=lambda p: p == "d0/f0",  # saved again by rename-over
        ignored=lambda p, is_dir: p == "d0/f1",  # matched by a new ignore pattern
    )
    assert out.back == ["d0/f0"] and out.ignored == [("d0/f1", False)]
    assert out.go == {"d1/f2": False} and out.trip is None
    assert not g.held and g.tripped is None


def test_settle_trips_on_what_is_left_and_keeps_it_held() -> None:
    m = tree(3, 10)  # 30 files
    g = DeleteGuard()
    for d in range(3):
        g.hold(f"d{d}", True)
    out = g.settle(m, "50%", exists=lambda p: p == "d2", ignored=lambda p, d: False)
    # d2 came back: 20 of 30 files still go, more than half: held for the user.
    assert out.back == ["d2"] and out.go == {}
    assert out.trip is not None and (out.trip.files, out.trip.known) == (20, 30)
    assert g.tripped is out.trip and g.held == {"d0": True, "d1": True}
    g.allow_once = True  # "Delete on remote"
    again = g.settle(m, "50%", exists=lambda p: False, ignored=lambda p, d: False)
    assert again.go == {"d0": True, "d1": True} and again.trip is None
    assert g.tripped is None and not g.allow_once
