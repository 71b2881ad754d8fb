"""One engine per state directory: a second ``run`` refuses, a killed engine's lock is taken
over, and ``start``/``stop`` run the engine in the background (issue: two engines on one folder
made conflict copies of each other's uploads)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from syncapp.engine.lock import running_pid
from tests.helpers import config_text, syncapp, wait_for, write_tree


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder, remote = tmp_path / "docs", tmp_path / "remote"
    write_tree(folder, {"a.txt": "first"})
    remote.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(f'[remotes.r]\ntype = "local"\npath = "{remote}"\n', {"docs": folder})
    )
    return folder, remote / "docs", cfg


def _state() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"


def _run(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_second_run_refuses_naming_the_pid_and_the_first_keeps_syncing(tmp_path: Path) -> None:
    folder, remote, cfg = _setup(tmp_path)
    first = _run(cfg)
    try:
        assert wait_for(lambda: (remote / "a.txt").exists())
        assert running_pid(_state()) == first.pid
        started = time.monotonic()
        second = syncapp("--config", str(cfg), "run", "--once", timeout=30)
        assert time.monotonic() - started < 10  # refused at once, not after a sync
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0], second.stderr
        assert "already running" in lines[0] and "syncapp stop" in lines[0]
        (folder / "b.txt").write_text("after the refusal")
        assert wait_for(lambda: (remote / "b.txt").exists())
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=30)
    assert running_pid(_state()) is None


def test_lock_of_a_killed_engine_is_taken_over(tmp_path: Path) -> None:
    folder, remote, cfg = _setup(tmp_path)
    first = _run(cfg)
    assert wait_for(lambda: running_pid(_state()) == first.pid)
    first.kill()
    first.wait(timeout=10)
    # The lock file is still there, naming a dead pid; the kernel released the lock itself.
    assert (_state().parent / "state.db.lock").exists()
    (folder / "c.txt").write_text("written while nothing ran")
    res = syncapp("--config", str(cfg), "run", "--once")
    assert res.returncode == 0, res.stderr
    assert (remote / "c.txt").read_text() == "written while nothing ran"


def test_start_runs_in_the_background_and_stop_ends_it(tmp_path: Path) -> None:
    folder, remote, cfg = _setup(tmp_path)
    res = syncapp("--config", str(cfg), "start", timeout=60)
    assert res.returncode == 0, res.stderr
    pid = running_pid(_state())
    assert pid and f"pid {pid}" in res.stdout
    try:
        again = syncapp("--config", str(cfg), "start")
        assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout
        (folder / "d.txt").write_text("synced by the background engine")
        assert wait_for(lambda: (remote / "d.txt").exists())
    finally:
        stopped = syncapp("--config", str(cfg), "stop", timeout=90)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped (pid {pid})" in stopped.stdout
    assert running_pid(_state()) is None  # the lock goes last, after the state is flushed
    assert wait_for(lambda: _gone(pid), timeout=20)
    assert "not running" in syncapp("--config", str(cfg), "stop").stdout


def _gone(pid: int) -> bool:
    """Ended (a zombie waiting for a parent that does not reap counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_service_install_writes_a_unit_systemd_accepts(tmp_path: Path) -> None:
    _, _, cfg = _setup(tmp_path)
    res = syncapp("--config", str(cfg), "service", "install")
    assert res.returncode == 0, res.stderr
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "syncapp.service"
    text = unit.read_text()
    assert f"--config {cfg.resolve()} run" in text and "Restart=on-failure" in text
    assert "systemctl --user enable --now syncapp.service" in res.stdout
    verify = shutil.which("systemd-analyze")
    if verify is not None:
        checked = subprocess.run([verify, "verify", str(unit)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        assert "syncapp.service" not in checked.stderr, checked.stderr  # no warning about it
    gone = syncapp("service", "uninstall")
    assert gone.returncode == 0 and not unit.exists()
