"""The state database: what was last synced for every path, and why other paths are not.

One SQLite file (WAL). Writes are grouped into one transaction committed every ``commit_every``
seconds (and on ``flush``/``close``): after a crash the last fraction of a second of records may
be missing, which only makes the next scan upload or delete again. The database never claims a
file synced before the remote confirmed it, because records are written only after success.

No credentials are ever stored here: the remote is identified by its display URL, which has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncapp.errors import StateError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    folder     TEXT PRIMARY KEY,
    remote_id  TEXT NOT NULL,
    root_dev   INTEGER,
    root_ino   INTEGER,
    clean      INTEGER NOT NULL DEFAULT 1,
    last_sync  REAL
);
CREATE TABLE IF NOT EXISTS entries (
    folder    TEXT NOT NULL,
    path      TEXT NOT NULL,
    is_dir    INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ino       INTEGER NOT NULL,
    etag      TEXT,
    synced_at REAL NOT NULL,
    rmtime_ns INTEGER,
    PRIMARY KEY (folder, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    folder   TEXT NOT NULL,
    path     TEXT NOT NULL,
    status   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at REAL,
    updated  REAL NOT NULL,
    PRIMARY KEY (folder, path)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    is_dir: bool
    size: int
    mtime_ns: int
    ino: int
    etag: str | None = None
    synced_at: float = 0.0
    #: The file's modification time as the server reported it after our upload (its own
    #: clock), for telling a later remote edit from our own write; None when unknown.
    remote_mtime_ns: int | None = None


class PendingStatus(enum.StrEnum):
    """Why a path is not in sync, in one word (kept in the database as its value)."""

    QUEUED = "queued"
    SETTLING = "settling"
    UPLOADING = "uploading"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    GUARD = "guard"
    #: Not stored: what a view shows for a path that is synced.
    IN_SYNC = "in sync"


#: The order views list paths in (then by path): what needs the user first, then what waits by
#: itself; a word this version does not know goes with "uploading".
PENDING_ORDER: tuple[str, ...] = tuple(
    s.value
    for s in (
        PendingStatus.FAILED,
        PendingStatus.GUARD,
        PendingStatus.RETRYING,
        PendingStatus.SKIPPED,
        PendingStatus.SETTLING,
        PendingStatus.UPLOADING,
        PendingStatus.QUEUED,
        PendingStatus.IN_SYNC,
    )
)
_RANK = {s: i for i, s in enumerate(PENDING_ORDER)}
_UNKNOWN_RANK = _RANK[PendingStatus.UPLOADING.value]
_ORDER_SQL = (
    "CASE status "
    + " ".join(f"WHEN '{s}' THEN {i}" for s, i in _RANK.items())
    + f" ELSE {_UNKNOWN_RANK} END, path"
)


def pending_rank(status: str) -> int:
    return _RANK.get(status, _UNKNOWN_RANK)


def path_matches(path: str, reason: str, needle: str) -> bool:
    """``needle`` (lower case) is in the path or the reason, in any case."""
    return not needle or needle in path.lower() or needle in reason.lower()


@dataclass(frozen=True, slots=True)
class Pending:
    path: str
    #: A ``PendingStatus``; a plain word only from a newer version's database (or a view's own).
    status: PendingStatus | str
    reason: str
    attempts: int = 0
    retry_at: float | None = None
    updated: float = 0.0
    #: The file's size, for synced files listed beside the pending ones (0: not given).
    size: int = 0


@dataclass(frozen=True, slots=True)
class FolderRecord:
    folder: str
    remote_id: str
    root_dev: int | None
    root_ino: int | None
    clean: bool
    last_sync: float | None


class StateDB:
    def __init__(
        self,
        path: Path,
        *,
        commit_every: float = 0.1,
        readonly: bool = False,
        in_memory_copy: bool = False,
    ) -> None:
        self.path = path
        self.commit_every = commit_every
        self._in_tx = False
        self._tx_started = 0.0
        if in_memory_copy:
            # For --dry-run: the real engine runs on a copy in memory; the file is only read.
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            if path.exists():
                src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    src.backup(self._db)
                finally:
                    src.close()
            self._db.executescript(_SCHEMA)
            if "rmtime_ns" not in self._entry_columns():  # a version 1 database
                self._db.execute("ALTER TABLE entries ADD COLUMN rmtime_ns INTEGER")
            self._cols = self._entry_columns()
            return
        if readonly:
            # For status, why and --dry-run: never create or change the database.
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
            self._cols = self._entry_columns()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves so many writes share one.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        if "rmtime_ns" not in self._entry_columns():  # a version 1 database
            self._db.execute("ALTER TABLE entries ADD COLUMN rmtime_ns INTEGER")
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )
        self._cols = self._entry_columns()

    def _entry_columns(self) -> str:
        """The SELECT list for an ``Entry`` (a read-only version 1 database lacks rmtime_ns)."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(entries)")}
        rmtime = "rmtime_ns" if "rmtime_ns" in have else "NULL"
        return f"path, is_dir, size, mtime_ns, ino, etag, synced_at, {rmtime}"

    # -- transactions -----------------------------------------------------------------------------

    def _write(self) -> sqlite3.Connection:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True
            self._tx_started = time.monotonic()
            # Commits ride on later writes; the last batch before a quiet spell must not wait
            # for one (other processes, `status` and `why`, read the database).
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                loop.call_later(self.commit_every, self._commit_if, self._tx_started)
        return self._db

    def _commit_if(self, started: float) -> None:
        if self._in_tx and self._tx_started == started:
            self.flush()

    def maybe_commit(self) -> None:
        if self._in_tx and time.monotonic() - self._tx_started >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        self.flush()
        self._db.close()

    # -- small key/value facts -------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._write().execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
        self.maybe_commit()

    # -- folders ----------------------------------------------------------------------------------

    def folder(self, folder: str) -> FolderRecord | None:
        row = self._db.execute(
            "SELECT folder, remote_id, root_dev, root_ino, clean, last_sync FROM folders"
            " WHERE folder = ?",
            (folder,),
        ).fetchone()
        if row is None:
            return None
        return FolderRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5])

    def open_folder(self, folder: str, remote_id: str) -> FolderRecord | None:
        """Mark the folder as running (unclean until ``close_folder``); returns the old record.

        A changed remote identity forgets what was synced: it described another place.
        """
        old = self.folder(folder)
        db = self._write()
        if old is not None and old.remote_id != remote_id:
            self.forget_folder(folder)
            old = None
        if old is None:
            db.execute(
                "INSERT INTO folders(folder, remote_id, clean) VALUES (?, ?, 0)",
                (folder, remote_id),
            )
        else:
            db.execute("UPDATE folders SET clean = 0 WHERE folder = ?", (folder,))
        self.flush()
        return old

    def set_root(self, folder: str, dev: int, ino: int) -> None:
        self._write().execute(
            "UPDATE folders SET root_dev = ?, root_ino = ? WHERE folder = ?", (dev, ino, folder)
        )

    def mark_synced(self, folder: str) -> None:
        self._write().execute(
            "UPDATE folders SET last_sync = ? WHERE folder = ?", (time.time(), folder)
        )

    def close_folder(self, folder: str) -> None:
        self._write().execute("UPDATE folders SET clean = 1 WHERE folder = ?", (folder,))
        self.flush()

    def forget_folder(self, folder: str) -> None:
        db = self._write()
        for table in ("entries", "pending", "folders"):
            db.execute(f"DELETE FROM {table} WHERE folder = ?", (folder,))

    def folders(self) -> list[FolderRecord]:
        rows = self._db.execute(
            "SELECT folder, remote_id, root_dev, root_ino, clean, last_sync FROM folders"
        ).fetchall()
        return [FolderRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    # -- entries ----------------------------------------------------------------------------------

    def entries(self, folder: str) -> dict[str, Entry]:
        rows = self._db.execute(
            f"SELECT {self._cols} FROM entries WHERE folder = ?",
            (folder,),
        )
        return {r[0]: Entry(r[0], bool(r[1]), *r[2:]) for r in rows}

    def get(self, folder: str, path: str) -> Entry | None:
        r = self._db.execute(
            f"SELECT {self._cols} FROM entries WHERE folder = ? AND path = ?",
            (folder, path),
        ).fetchone()
        return None if r is None else Entry(r[0], bool(r[1]), *r[2:])

    def put_entry(self, folder: str, e: Entry) -> None:
        self._write().execute(
            "INSERT OR REPLACE INTO entries(folder, path, is_dir, size, mtime_ns, ino, etag,"
            " synced_at, rmtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                folder,
                e.path,
                int(e.is_dir),
                e.size,
                e.mtime_ns,
                e.ino,
                e.etag,
                e.synced_at or time.time(),
                e.remote_mtime_ns,
            ),
        )
        self.maybe_commit()

    def delete_entry(self, folder: str, path: str, *, recursive: bool = False) -> None:
        db = self._write()
        db.execute("DELETE FROM entries WHERE folder = ? AND path = ?", (folder, path))
        if recursive:
            lo, hi = _prefix_range(path)
            db.execute(
                "DELETE FROM entries WHERE folder = ? AND path >= ? AND path < ?", (folder, lo, hi)
            )
        self.maybe_commit()

    def move_entries(self, folder: str, src: str, dst: str) -> None:
        """Re-key ``src`` and everything under it to ``dst`` (after a remote move)."""
        db = self._write()
        lo, hi = _prefix_range(src)
        db.execute("DELETE FROM entries WHERE folder = ? AND path = ?", (folder, dst))
        db.execute(
            "DELETE FROM entries WHERE folder = ? AND path >= ? AND path < ?",
            (folder, *_prefix_range(dst)),
        )
        db.execute("UPDATE entries SET path = ? WHERE folder = ? AND path = ?", (dst, folder, src))
        db.execute(
            "UPDATE entries SET path = ? || substr(path, ?) WHERE folder = ? AND path >= ?"
            " AND path < ?",
            (dst, len(src) + 1, folder, lo, hi),
        )
        self.maybe_commit()

    def count_entries(self, folder: str, *, files_only: bool = True) -> int:
        q = "SELECT count(*) FROM entries WHERE folder = ?"
        if files_only:
            q += " AND is_dir = 0"
        return int(self._db.execute(q, (folder,)).fetchone()[0])

    # -- pending (reasons) ------------------------------------------------------------------------

    def set_pending(self, folder: str, p: Pending) -> None:
        self._write().execute(
            "INSERT OR REPLACE INTO pending(folder, path, status, reason, attempts, retry_at,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                folder,
                p.path,
                _word(p.status),
                p.reason,
                p.attempts,
                p.retry_at,
                p.updated or time.time(),
            ),
        )
        self.maybe_commit()

    def set_pending_many(self, folder: str, items: Iterable[Pending]) -> None:
        now = time.time()
        self._write().executemany(
            "INSERT OR REPLACE INTO pending(folder, path, status, reason, attempts, retry_at,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    folder,
                    p.path,
                    _word(p.status),
                    p.reason,
                    p.attempts,
                    p.retry_at,
                    p.updated or now,
                )
                for p in items
            ],
        )
        self.maybe_commit()

    def clear_pending(self, folder: str, path: str) -> None:
        self._write().execute("DELETE FROM pending WHERE folder = ? AND path = ?", (folder, path))
        self.maybe_commit()

    def clear_all_pending(self, folder: str, *, keep_skipped: bool = False) -> None:
        q = "DELETE FROM pending WHERE folder = ?"
        if keep_skipped:
            q += f" AND status != '{PendingStatus.SKIPPED.value}'"
        self._write().execute(q, (folder,))
        self.maybe_commit()

    def pending(self, folder: str) -> list[Pending]:
        rows = self._db.execute(
            "SELECT path, status, reason, attempts, retry_at, updated FROM pending"
            " WHERE folder = ? ORDER BY path",
            (folder,),
        )
        return [_pending(r) for r in rows]

    def pending_for(self, folder: str, path: str) -> Pending | None:
        r = self._db.execute(
            "SELECT path, status, reason, attempts, retry_at, updated FROM pending"
            " WHERE folder = ? AND path = ?",
            (folder, path),
        ).fetchone()
        return None if r is None else _pending(r)

    def pending_page(
        self, folder: str, needle: str = "", offset: int = 0, limit: int | None = None
    ) -> tuple[list[Pending], int]:
        """The folder's paths not in sync that match ``needle`` (``path_matches``), in the
        order views list them (``PENDING_ORDER``, then by path), from ``offset``, at most
        ``limit``; and how many match in all. Only the rows asked for become ``Pending``."""
        select = (
            "SELECT path, status, reason, attempts, retry_at, updated FROM pending"
            f" WHERE folder = ? ORDER BY {_ORDER_SQL}"
        )
        if not needle:
            (total,) = self._db.execute(
                "SELECT count(*) FROM pending WHERE folder = ?", (folder,)
            ).fetchone()
            page = self._db.execute(
                f"{select} LIMIT ? OFFSET ?", (folder, -1 if limit is None else limit, offset)
            )
            return [_pending(r) for r in page], int(total)
        # SQLite's lower() folds ASCII only: match in Python, as the views do (then sort the
        # few that match the same way: code point order is SQLite's for UTF-8 text).
        rows = self._db.execute(select.partition(" ORDER BY ")[0], (folder,))
        hits = [r for r in rows if path_matches(r[0], r[2], needle)]
        hits.sort(key=lambda r: (pending_rank(r[1]), r[0]))
        end = None if limit is None else offset + limit
        return [_pending(r) for r in hits[offset:end]], len(hits)

    def pending_paths(self, folder: str) -> set[str]:
        rows = self._db.execute("SELECT path FROM pending WHERE folder = ?", (folder,))
        return {r[0] for r in rows}

    def pending_counts(self, folder: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT status, count(*) FROM pending WHERE folder = ? GROUP BY status", (folder,)
        )
        return {r[0]: int(r[1]) for r in rows}


def _word(status: PendingStatus | str) -> str:
    """The plain string stored (sqlite3 binds an exact str faster than a str subclass)."""
    return status.value if isinstance(status, PendingStatus) else status


def _pending(row: tuple[Any, ...]) -> Pending:
    status: PendingStatus | str = row[1]
    with contextlib.suppress(ValueError):  # a word a newer version wrote is shown as it is
        status = PendingStatus(row[1])
    return Pending(row[0], status, *row[2:])


def _prefix_range(path: str) -> tuple[str, str]:
    """Bounds of every path strictly below ``path`` for a range scan (``/`` + 1 is ``0``)."""
    return path + "/", path + "0"


RESET_HINT = (
    "run `syncapp state --reset` to move it aside (the next run adopts what is on the remote)"
)


def open_state(path: Path, *, readonly: bool = False, in_memory_copy: bool = False) -> StateDB:
    """The state database, checked before anything is synced: any trouble (a read-only file or
    folder, a damaged file) is one ``StateError`` naming the file and what to do.
    ``in_memory_copy`` (the dry run): a copy in memory, written freely, never saved."""
    db: StateDB | None = None
    try:
        db = StateDB(path, readonly=readonly, in_memory_copy=in_memory_copy)
        db._db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the first page
        if not readonly and not in_memory_copy:
            # A write now, not mid-sync: WAL needs the file and its folder (-wal, -shm) writable.
            db.set_meta("opened", str(time.time()))
            db.flush()
        return db
    except (sqlite3.Error, OSError) as e:
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db._db.close()
        raise state_error(path, e) from None


def state_error(path: Path, e: BaseException) -> StateError:
    text = str(e).lower()
    folder = path.parent
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        problem, todo = "is damaged (not a readable SQLite database)", RESET_HINT
    elif folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        problem, todo = (
            f"cannot be written: its folder {folder} is read-only",
            ("make the folder writable"),
        )
    elif path.exists() and not os.access(path, os.W_OK):
        problem, todo = "is a read-only file", f"make it writable (chmod u+w), or {RESET_HINT}"
    elif "readonly" in text or "read-only" in text or "unable to open" in text:
        problem = "cannot be written"
        todo = f"check that it and its folder {folder} are writable, or {RESET_HINT}"
    else:
        problem, todo = f"cannot be used ({e})", RESET_HINT
    return StateError(str(path), f"state database {path} {problem}: {todo}")


def reset_state(path: Path, now: float | None = None) -> Path | None:
    """Move the database (and its -wal/-shm) aside as ``state.db.broken-YYYYMMDD-HHMMSS``;
    returns the new name, or None when there was nothing to move."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.broken-{stamp}-{n}")
    moved = False
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.replace(src, aside.with_name(aside.name + suffix))
            moved = True
    return aside if moved else None
