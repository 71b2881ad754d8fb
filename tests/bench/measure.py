"""Measuring child processes for the benchmark: wall time, exact peak RSS, live event streams.

Peak memory comes from ``wait4()``: the kernel's high-water mark of the child's resident set
(``ru_maxrss``), which also covers any descendants the child waited for. It is exact and costs
nothing while the child runs, unlike sampling (which on a 2-core machine would steal CPU from the
process being timed).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]

#: Children still running; ``kill_all()`` ends them on the way out (Ctrl-C, an exception).
_CHILDREN: set[subprocess.Popen[bytes]] = set()
_CHILDREN_LOCK = threading.Lock()


def _track(proc: subprocess.Popen[bytes]) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.discard(proc)


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    # Each child leads its own session (start_new_session), so its group is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def kill_all() -> None:
    """SIGKILL every child this module started that has not been reaped yet."""
    with _CHILDREN_LOCK:
        procs = list(_CHILDREN)
        _CHILDREN.clear()
    for proc in procs:
        _kill_group(proc)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, float]:
    """Wait for ``proc`` (SIGKILL after ``timeout`` s); (exit code, peak RSS in bytes, CPU s)."""
    timer = threading.Timer(timeout, _kill_group, (proc,))
    timer.daemon = True
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Whatever the child left behind in its group (a profiler's target, say) goes with it.
    _kill_group(proc)
    _untrack(proc)
    return proc.returncode, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    """One finished child process."""

    argv: Sequence[str]
    seconds: float
    peak_rss: int
    #: User + system CPU seconds of the child (and the descendants it waited for).
    cpu: float
    returncode: int
    stdout: Path
    stderr_tail: str

    def check(self) -> Run:
        if self.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.argv[:6])}… exited {self.returncode}:\n{self.stderr_tail}"
            )
        return self


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: Path,
    timeout: float,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv`` to completion; wall time from spawn to exit, peak RSS, stdout into a file."""
    with open(stdout, "wb") as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # our Ctrl-C reaches us, and we end the child ourselves
        )
        _track(proc)
        code, peak, cpu = _reap(proc, timeout)
        seconds = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-4000:].decode(errors="replace")
    return Run(argv, seconds, peak, cpu, code, stdout, tail)


class LiveProcess:
    """A long-running child that prints one JSON object per line (``syncapp run --json``).

    Every parsed line goes to ``on_event`` from a reader thread; lines that are not JSON are kept
    in ``noise``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: Callable[[dict[str, Any]], None],
        wrapped: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.wrapped = wrapped
        self.env = dict(env)
        self.on_event = on_event
        self.noise: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._err: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._alive()

    def _alive(self) -> bool:
        assert self._proc is not None
        try:
            return bool(psutil.Process(self._proc.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def start(self) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=self.env,
            start_new_session=True,
        )
        _track(self._proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                self.noise.append(line)
                continue
            if isinstance(ev, dict):
                self.on_event(ev)

    def stderr_tail(self) -> str:
        if self._err is None:
            return ""
        self._err.seek(0)
        return self._err.read()[-4000:].decode(errors="replace")

    def stop(self, timeout: float = 20.0) -> tuple[int, int, float, str]:
        """SIGTERM (a clean stop), SIGKILL after ``timeout``; (exit code, peak RSS, CPU s, stderr).

        Under a wrapper (``wrapped``: a profiler that runs the real process as its child), the
        SIGTERM goes to the wrapper's children, so the wrapper sees its target end and writes
        its output, as it would not if it were terminated itself.
        """
        assert self._proc is not None
        targets: list[int] = [self._proc.pid]
        if self.wrapped:
            with contextlib.suppress(psutil.Error):
                kids = psutil.Process(self._proc.pid).children(recursive=True)
                targets = [k.pid for k in kids] or targets
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        code, peak, cpu = _reap(self._proc, timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        tail = self.stderr_tail()
        if self._proc.stdout is not None and not (self._reader and self._reader.is_alive()):
            self._proc.stdout.close()
        if self._err is not None:
            self._err.close()
            self._err = None
        return code, peak, cpu, tail


# -- the machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _first_line(argv: Sequence[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=20, cwd=cwd, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else "unknown"


def machine_info(rclone: str, repo: Path) -> dict[str, str]:
    """CPU, cores, RAM, OS, Python, rclone, syncapp revision: what a reader needs to compare."""
    from syncapp import __version__

    logical = os.cpu_count() or 0
    physical = psutil.cpu_count(logical=False)
    mem = psutil.virtual_memory().total
    # Read-only git: --no-optional-locks keeps even `diff` from refreshing the index file.
    git = ["git", "--no-optional-locks"]
    rev = _first_line([*git, "rev-parse", "--short", "HEAD"], cwd=repo)
    dirty = subprocess.run(
        [*git, "diff", "--quiet", "HEAD"], cwd=repo, capture_output=True, check=False
    ).returncode
    return {
        "cpu": _cpu_model(),
        "cores": f"{logical} logical" + (f", {physical} physical" if physical else ""),
        "ram": f"{mem / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "rclone": _first_line([rclone, "version"]).removeprefix("rclone "),
        "syncapp": f"{__version__} @ {rev}" + (" + uncommitted changes" if dirty else ""),
    }
