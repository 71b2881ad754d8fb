"""Telling a remote edit from our own upload (``adopt.remote_changed``), and the state database
that keeps what the server reported."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from syncapp.engine.adopt import remote_changed
from syncapp.engine.state import Entry, StateDB
from syncapp.remotes.base import RemoteEntry

S = 1_000_000_000
SYNCED_AT = 1_800_000_000.0


def known(**kw: object) -> Entry:
    base: dict[str, object] = {
        "path": "a.txt",
        "is_dir": False,
        "size": 10,
        "mtime_ns": 1_700_000_000 * S + 123,
        "ino": 1,
        "etag": None,
        "synced_at": SYNCED_AT,
        "remote_mtime_ns": None,
    }
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def remote(
    size: int = 10, mtime_s: int | None = 1_700_000_000, etag: str | None = None
) -> RemoteEntry:
    return RemoteEntry("a.txt", False, size, None if mtime_s is None else mtime_s * S, etag)


def test_size_differs_is_a_change() -> None:
    assert remote_changed(known(), remote(size=11), server_mtime=True)
    assert remote_changed(
        known(remote_mtime_ns=1_800_000_000 * S), remote(size=9), server_mtime=False
    )


def test_etags_decide_when_both_are_there() -> None:
    k = known(etag="abc", remote_mtime_ns=1_800_000_000 * S)
    assert not remote_changed(k, remote(mtime_s=1_900_000_000, etag="abc"), server_mtime=False)
    # Same size, same second, another ETag: someone else wrote it.
    assert remote_changed(k, remote(mtime_s=1_800_000_000, etag="abd"), server_mtime=False)


def test_kept_mtime_compares_with_what_we_sent() -> None:
    assert not remote_changed(known(), remote(mtime_s=1_700_000_000), server_mtime=True)
    assert remote_changed(known(), remote(mtime_s=1_700_000_005), server_mtime=True)


def test_server_clock_at_upload_without_kept_mtimes() -> None:
    # The server stamps its own time; ours is years off (a skewed client clock does not matter).
    k = known(remote_mtime_ns=1_800_000_000 * S, synced_at=100.0)
    assert not remote_changed(k, remote(mtime_s=1_800_000_000), server_mtime=False)
    assert not remote_changed(k, remote(mtime_s=1_799_999_999), server_mtime=False)
    # Written again by someone, same size, seconds later: a change.
    assert remote_changed(k, remote(mtime_s=1_800_000_005), server_mtime=False)


def test_old_records_fall_back_to_the_time_of_the_sync() -> None:
    assert not remote_changed(known(), remote(mtime_s=int(SYNCED_AT)), server_mtime=False)
    assert remote_changed(known(), remote(mtime_s=int(SYNCED_AT) + 60), server_mtime=False)


def test_no_mtime_and_same_size_is_no_change() -> None:
    assert not remote_changed(known(), remote(mtime_s=None), server_mtime=False)


def test_version_1_database_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE entries (folder TEXT NOT NULL, path TEXT NOT NULL, is_dir INTEGER NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, etag TEXT,"
        " synced_at REAL NOT NULL, PRIMARY KEY (folder, path)) WITHOUT ROWID;"
        "INSERT INTO entries VALUES ('f', 'a.txt', 0, 3, 5, 7, NULL, 9.0);"
    )
    db.commit()
    db.close()
    # A reader of the old file (status, dry run) sees the row without the new field.
    ro = StateDB(path, readonly=True)
    assert ro.get("f", "a.txt") == Entry("a.txt", False, 3, 5, 7, None, 9.0, None)
    ro.close()
    state = StateDB(path)
    assert state.get("f", "a.txt") == Entry("a.txt", False, 3, 5, 7, None, 9.0, None)
    state.put_entry("f", Entry("b.txt", False, 1, 2, 3, "e", 4.0, 5 * S))
    state.flush()
    assert state.entries("f")["b.txt"].remote_mtime_ns == 5 * S
    state.close()
