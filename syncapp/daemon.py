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
from typing import Any, TextIO

from syncapp.engine.lock import running_pid
from syncapp.errors import SyncappError

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


# -- a systemd user service ------------------------------------------------------------------------

UNIT_NAME = "syncapp.service"


def unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def unit_text(config_path: Path, env_file: Path, python: str = sys.executable) -> str:
    """A user unit that runs the engine and restarts it when it fails. Secrets named by the
    config's ``*_env`` keys come from ``env_file`` (NAME=value lines), never from the unit."""
    return (
        "[Unit]\n"
        "Description=syncapp: live folder sync\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={_quote(python)} -m syncapp.cli --config {_quote(str(config_path))} run\n"
        # A path setting, not a command line: taken whole, spaces and all, never quoted.
        f"EnvironmentFile=-{str(env_file).replace('%', '%%')}\n"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def install_service(config_path: Path, secrets: list[str], out: TextIO) -> int:
    path = unit_path()
    env_file = config_path.parent / "service.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit_text(config_path, env_file), encoding="utf-8")
    out.write(f"wrote {path}\n")
    if secrets:
        out.write(
            f"the engine reads {', '.join(secrets)} from {env_file} (NAME=value lines; "
            "chmod 600 it)\n"
        )
    out.write(
        "enable and start it with:\n"
        "  systemctl --user daemon-reload\n"
        f"  systemctl --user enable --now {UNIT_NAME}\n"
    )
    return 0


def uninstall_service(out: TextIO) -> int:
    path = unit_path()
    if not path.exists():
        out.write(f"no service installed ({path} does not exist)\n")
        return 0
    # What `systemctl --user enable` made: a link that would dangle once the unit is gone.
    wants = path.parent / "default.target.wants" / UNIT_NAME
    for p in (wants, path):
        if p.is_symlink() or p.exists():
            p.unlink()
            out.write(f"removed {p}\n")
    out.write(
        "then: systemctl --user daemon-reload (a running engine goes on until `syncapp stop`)\n"
    )
    return 0


def _quote(arg: str) -> str:
    """A systemd command-line word: quoted when it holds spaces or quotes (systemd.syntax)."""
    arg = arg.replace("%", "%%")  # systemd specifiers
    if arg and not any(c in arg for c in " \t\"'\\"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- asking the running engine ---------------------------------------------------------------------


def ask_engine(state_path: Path, method: str, path: str, timeout: float = 10.0) -> Any:
    """One call to the control API of the engine running on ``state_path``; None when no engine
    runs there. ``SyncappError`` with the engine's own words when it refuses."""
    if running_pid(state_path) is None:
        return None
    import httpx

    from syncapp.engine.client import answer
    from syncapp.engine.control import socket_path

    sock = socket_path(state_path)
    if not sock.exists():
        return None  # a `run --once`, which serves no API
    transport = httpx.HTTPTransport(uds=str(sock))
    try:
        with httpx.Client(transport=transport, base_url="http://syncapp", timeout=timeout) as c:
            resp = c.request(method, path)
    except httpx.TransportError as e:
        raise SyncappError(f"the running engine did not answer ({e})") from None
    return answer(resp)
