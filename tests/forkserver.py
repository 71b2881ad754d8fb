"""Run ``python -m syncapp.cli ARGS`` in a child process without paying for Python's start-up
and syncapp's imports every time.

A test session makes a few hundred command-line runs; each spent about half a second (more on
a busy machine) starting Python and importing syncapp, textual-free as it is, before doing
anything. Here one server process per test process imports ``syncapp.cli`` once and forks for
every run. The forked child is still a separate process with its own pid: it gets the caller's
argv, environment, working directory and stdin, writes to the caller's pipes, runs the module
the way ``python -m`` does (``runpy`` as ``__main__``) and ends with a normal interpreter exit
(atexit handlers run, non-daemon threads are waited for, as in a fresh process). The exit status
comes back as ``subprocess`` gives it (negative for a signal).

What a fork cannot give, this does not pretend to: environment variables that Python reads at
start-up (``PYTHON*``, the locale) would be ignored, so a run whose environment differs from the
server's in one of those goes through a fresh ``subprocess.run`` instead.
``SYNCAPP_TEST_FRESH_CLI=1`` sends every run that way (to compare, or to rule this out).
"""

from __future__ import annotations

import array
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

#: Read by Python (or libc) when a process starts: a fork would not honour a change of these.
_STARTUP_ENV = ("PYTHON", "LANG", "LC_", "LD_")

_SERVER = r"""
import array, json, os, runpy, select, signal, socket, sys
import syncapp.cli  # noqa: F401  what every run imports, done once here

# `python -m syncapp.cli` runs the module as __main__ only: keep its imports, not itself.
del sys.modules["syncapp.cli"]
del sys.modules["syncapp"].cli

listener = socket.socket(fileno=int(sys.argv[1]))
parent_gone = sys.stdin.fileno()


def recv(conn):
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(1 << 20, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    while msg and not msg.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            break
        msg += more
    return json.loads(msg), list(fds)


def waiter(conn):
    # Forked from the server for one run: forks the run itself (returned to in that child
    # only), tells the caller the run's pid, waits for it and tells its exit status.
    try:
        req, fds = recv(conn)
        run = os.fork()
        if run == 0:
            conn.close()
            return req, fds
        for fd in fds:
            os.close(fd)
        conn.sendall(b"%d\n" % run)
        _, status = os.waitpid(run, 0)
        conn.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
    except BaseException:
        os._exit(1)
    os._exit(0)


job = None
while job is None:
    ready, _, _ = select.select([listener, parent_gone], [], [], 1.0)
    while True:  # reap finished waiters
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    if parent_gone in ready:
        sys.exit(0)  # the test process ended (or closed our stdin): so do we
    if listener in ready:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            job = waiter(conn)  # only the run's process gets here
        else:
            conn.close()

# The run: as `python -m syncapp.cli ARGS` in the caller's environment, directory and pipes.
# Nothing catches what it raises: SystemExit and exceptions end the interpreter as usual.
req, fds = job
for target, fd in enumerate(fds):
    os.dup2(fd, target)
for fd in fds:
    if fd > 2:
        os.close(fd)
os.environ.clear()
os.environ.update(req["env"])
os.chdir(req["cwd"])
sys.argv = [req["argv0"], *req["args"]]
del job, req, fds, listener, parent_gone
runpy.run_module("syncapp.cli", run_name="__main__", alter_sys=True)
"""


class ForkServer:
    """One per test process, started on first use (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._path = ""
        self._log = ""
        self._env: dict[str, str] = {}

    def _start(self) -> None:
        sockdir = tempfile.mkdtemp(prefix="syncapp-forkserver-")
        self._path = os.path.join(sockdir, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self._path)
        listener.listen(64)
        self._env = dict(os.environ)
        self._log = os.path.join(sockdir, "log")
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(listener.fileno())],
                stdin=subprocess.PIPE,  # closed when we exit: the server's cue to go
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=[listener.fileno()],
                env=self._env,
            )
        listener.close()
        atexit.register(self._close, sockdir)

    def _close(self, sockdir: str) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()  # the server sees EOF and exits
        shutil.rmtree(sockdir, ignore_errors=True)

    def usable_for(self, env: Mapping[str, str]) -> bool:
        if os.environ.get("SYNCAPP_TEST_FRESH_CLI"):
            return False
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
        keys = set(env) | set(self._env)
        return not any(k.startswith(_STARTUP_ENV) and env.get(k) != self._env.get(k) for k in keys)

    def run(
        self, args: list[str], env: Mapping[str, str], timeout: float, cwd: Path | None
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "syncapp.cli", *args]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = os.dup(0) if _fd_open(0) else os.open(os.devnull, os.O_RDONLY)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self._path)
            req = {
                "args": args,
                "env": dict(env),
                "cwd": str(cwd) if cwd is not None else os.getcwd(),
                "argv0": _cli_path(),
            }
            msg = json.dumps(req).encode() + b"\n"
            fds = array.array("i", [stdin, out_w, err_w])
            conn.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        finally:
            for fd in (stdin, out_w, err_w):
                os.close(fd)
        reader = _Reader(conn, self._log)
        outs = [_Drain(out_r), _Drain(err_r)]
        deadline = time.monotonic() + timeout
        try:
            pid = reader.line(deadline)
            try:
                code = reader.line(deadline)
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                code = reader.line(time.monotonic() + 10)
                stdout, stderr = (t.result(10) for t in outs)
                raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr) from None
            stdout, stderr = (t.result(timeout=max(1.0, deadline - time.monotonic())) for t in outs)
        finally:
            conn.close()
        return subprocess.CompletedProcess(argv, code, stdout, stderr)


class _Reader:
    def __init__(self, conn: socket.socket, log: str) -> None:
        self.conn = conn
        self.buf = b""
        self._log = log

    def log(self) -> str:
        try:
            return Path(self._log).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def line(self, deadline: float) -> int:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.conn.settimeout(left)
            try:
                more = self.conn.recv(64)
            except TimeoutError:
                raise TimeoutError from None
            if not more:
                raise RuntimeError(f"the syncapp fork server went away mid-run: {self.log()}")
            self.buf += more
        line, self.buf = self.buf.split(b"\n", 1)
        return int(line)


class _Drain(threading.Thread):
    """Reads a pipe to its end in the background (as ``communicate`` does), as text."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.data = b""
        self.start()

    def run(self) -> None:
        with open(self.fd, "rb") as fh:
            self.data = fh.read()

    def result(self, timeout: float) -> str:
        self.join(timeout)
        if self.is_alive():
            raise subprocess.TimeoutExpired("syncapp", timeout)
        # As subprocess.run(text=True): the locale's encoding, universal newlines.
        text = self.data.decode(_encoding())
        return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoding() -> str:
    import locale

    return "utf-8" if sys.flags.utf8_mode else locale.getencoding()


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _cli_path() -> str:
    import syncapp.cli

    return str(syncapp.cli.__file__)


FORK_SERVER = ForkServer()
