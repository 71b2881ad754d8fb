"""``syncapp start`` and ``syncapp stop``: the engine as a background process.

``start`` runs ``syncapp run`` detached (its own session, output appended to ``engine.log`` in
the state dir) and returns once that engine holds the state lock; ``stop`` sends it SIGTERM and
waits until the lock is free, so a clean shutdown (state flushed, uploads finished or abandoned
safely) is what ``stop`` reports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from syncapp.engine.lock import running_pid

START_WAIT = 15.0
STOP_WAIT = 60.0


def start(config_path: Path, state_path: Path, out: TextIO) -> int:
    pid = running_pid(state_path)
    if pid is not None:
        out.write(f"syncapp is already running (pid {pid})\n")
        return 0
    state_path.parent.mkdir(parents=True, exist_ok=True)
    log = state_path.parent / "engine.log"
    argv = [sys.executable, "-m", "syncapp.cli", "--config", str(config_path), "run"]
    with open(log, "ab") as sink:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not ended with the terminal that started it
            close_fds=True,
        )
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if running_pid(state_path) == proc.pid:
            out.write(f"syncapp started in the background (pid {proc.pid}); log: {log}\n")
            return 0
        if proc.poll() is not None:
            out.write(f"syncapp: the engine exited at once (status {proc.returncode}):\n")
            out.write(_tail(log))
            return 1
        time.sleep(0.05)
    out.write(
        f"syncapp: the engine (pid {proc.pid}) did not start within {START_WAIT:.0f} s; see {log}\n"
    )
    return 1


def stop(state_path: Path, out: TextIO) -> int:
    pid = running_pid(state_path)
    if pid is None:
        out.write("syncapp is not running\n")
        return 0
    if pid == 0:
        out.write("syncapp: an engine holds the state lock but its pid is unknown\n")
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended meanwhile
    except PermissionError:
        out.write(f"syncapp: the engine (pid {pid}) belongs to another user\n")
        return 1
    deadline = time.monotonic() + STOP_WAIT
    while running_pid(state_path) is not None:
        if time.monotonic() > deadline:
            out.write(
                f"syncapp: the engine (pid {pid}) is still stopping after {STOP_WAIT:.0f} s\n"
            )
            return 1
        time.sleep(0.05)
    out.write(f"syncapp stopped (pid {pid})\n")
    return 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "".join(f"  {line}\n" for line in text.splitlines()[-lines:])
