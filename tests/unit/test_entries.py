"""The entry index: counts, the children index, and a move that re-keys only the subtree."""

from __future__ import annotations

import dataclasses
import random

from syncapp.engine.entries import EntryMap
from syncapp.engine.state import Entry


def e(path: str, *, d: bool = False) -> Entry:
    return Entry(path, d, 0 if d else 1, 10, hash(path) & 0xFFFF)


def emap(*paths: str) -> EntryMap:
    """Paths ending in "/" are folders."""
    out = EntryMap()
    for p in paths:
        out[p.rstrip("/")] = e(p.rstrip("/"), d=p.endswith("/"))
    return out


def reference_move(entries: dict[str, Entry], src: str, dst: str) -> dict[str, Entry]:
    """The whole-map rebuild ``move`` replaced: the answer it must keep giving."""
    out: dict[str, Entry] = {}
    for k, v in entries.items():
        if k == src:
            nk = dst
        elif k.startswith(src + "/"):
            nk = dst + k[len(src) :]
        elif k == dst or k.startswith(dst + "/"):
            continue
        else:
            nk = k
        out[nk] = dataclasses.replace(v, path=nk)
    return out


def check_index(m: EntryMap) -> None:
    """The counts and the children index agree with a map built from scratch."""
    fresh = EntryMap(dict(m))
    assert m.files == fresh.files
    for k in ["", *m]:
        assert sorted(m.below(k)) == sorted(fresh.below(k)), k


def test_counts_and_below() -> None:
    m = emap("a/", "a/x", "a/b/", "a/b/y", "top")
    assert m.files == 3
    assert sorted(m.below("a")) == ["a/b", "a/b/y", "a/x"]
    assert sorted(m.below("")) == sorted(m)
    del m["a/x"]
    m["top"] = e("top", d=True)  # a file replaced by a folder
    assert m.files == 1
    assert m.pop("nothing") is None
    check_index(m)


def test_below_without_folder_entries() -> None:
    # Object stores: "s3/dir" is no entry, yet its files are under it.
    m = emap("dir/sub/f1", "dir/f2")
    assert sorted(m.below("dir")) == ["dir/f2", "dir/sub/f1"]
    del m["dir/sub/f1"]
    assert m.below("dir/sub") == []
    assert m._children is not None and "dir/sub" not in m._children


def test_files_deleted_counts_each_file_once() -> None:
    m = emap("a/", "a/1", "a/b/", "a/b/2", "a/b/3", "c")
    assert m.files_deleted([("a", True), ("a/b", True), ("a/1", False), ("c", False)]) == 4
    assert m.files_deleted([("a/b", True)]) == 2
    assert m.files_deleted([]) == 0


def test_move_folder_rekeys_its_subtree() -> None:
    m = emap("a/", "a/x", "a/b/", "a/b/y", "ab", "other/z")
    m.below("")  # the index is built: the move must keep it right
    m.move("a", "n/a")
    assert sorted(m) == ["ab", "n/a", "n/a/b", "n/a/b/y", "n/a/x", "other/z"]
    assert all(v.path == k for k, v in m.items())
    assert m["n/a"].is_dir and not m["n/a/x"].is_dir
    assert m.files == 4
    assert m.below("a") == []
    check_index(m)


def test_move_replaces_what_was_at_the_destination() -> None:
    m = emap("src/", "src/1", "dst/", "dst/old", "dst/1")
    m.move("src", "dst")
    assert sorted(m) == ["dst", "dst/1"]
    assert m.files == 1
    check_index(m)


def test_move_of_a_file_and_of_nothing() -> None:
    m = emap("f", "g")
    m.move("f", "h")
    assert sorted(m) == ["g", "h"] and m["h"].path == "h"
    m.move("missing", "g")  # nothing moves; what was at the destination goes
    assert sorted(m) == ["h"]
    check_index(m)


def test_move_matches_the_whole_map_rebuild() -> None:
    rnd = random.Random(13)
    names = ["a", "b", "c"]
    for _ in range(300):
        m = EntryMap()
        for _ in range(rnd.randint(0, 25)):
            parts = [rnd.choice(names) for _ in range(rnd.randint(1, 4))]
            for i in range(1, len(parts)):
                m["/".join(parts[:i])] = e("/".join(parts[:i]), d=True)
            p = "/".join(parts)
            if p not in m:
                m[p] = e(p, d=rnd.random() < 0.3)
        if rnd.random() < 0.5:
            m.below("")  # with and without the index built
        src = "/".join(rnd.choice(names) for _ in range(rnd.randint(1, 3)))
        # Anywhere, overlaps with the source included (the rebuild handled those too).
        dst = "/".join(rnd.choice([*names, "x"]) for _ in range(rnd.randint(1, 3)))
        want = reference_move(m, src, dst)
        m.move(src, dst)
        assert dict(m) == want
        check_index(m)


made = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Counted(Entry):
    """An entry that counts how often one is made (``dataclasses.replace`` makes one)."""

    def __post_init__(self) -> None:
        global made
        made += 1


def test_move_costs_the_subtree_not_the_map() -> None:
    m = EntryMap({f"big/{i}": Counted(f"big/{i}", False, 1, 10, i) for i in range(20_000)})
    m["small"] = Counted("small", True, 0, 10, 1)
    m["small/f"] = Counted("small/f", False, 1, 10, 2)
    m.below("")
    before = made
    m.move("small", "moved")
    assert made - before == 2  # the two moved entries, none of the 20,000 others
    assert sorted(m.below("moved")) == ["moved/f"] and m.files == 20_001
