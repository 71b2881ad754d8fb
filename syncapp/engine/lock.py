"""One engine per state directory: an exclusive ``flock`` on ``state.db.lock`` for the engine's
whole life.

The kernel drops the lock when the process ends however it ends (``kill -9`` included), so a
lock left behind by a dead engine never blocks a new one: there is no stale state to detect. The
file holds the owner's pid for the messages of a refused second engine and for ``syncapp stop``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from syncapp.engine.state import state_error
from syncapp.errors import EngineRunning


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


class EngineLock:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.path = lock_path(state_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Hold the lock, or ``EngineRunning`` naming the pid that holds it (``StateError``
        when the state folder cannot be written)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise state_error(self.state_path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise EngineRunning(pid, str(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock


def running_pid(state_path: Path) -> int | None:
    """The pid of the engine holding ``state_path``'s lock; None when no engine runs (0 when
    one runs but its pid is unreadable)."""
    path = lock_path(state_path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
