"""Shared fixtures: every test runs with its own XDG dirs, so nothing touches the user's."""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exclusive: changes something machine-wide (e.g. an inotify limit); under pytest-xdist"
        " no other test runs meanwhile",
    )
    # A base temp dir of this run's own: pytest keeps only the newest three numbered dirs under
    # /tmp/pytest-of-USER and deletes older ones at start, which pulled the files out from under
    # a second test run going on at the same time on the machine.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="syncapp-tests-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


_TUI = Path(__file__).with_name("tui")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The UI tests drive a Textual app by its own timers and wait for it with bounded waits: run
    # beside each other they made each other slow and flaky. Under `--dist loadgroup` they form
    # one group, run one after another on one worker while the other worker runs the rest (the
    # biggest group is handed out first, so it never becomes the tail of the run). Running each
    # alone instead (`exclusive`) left the other worker idle for a quarter of the run.
    for item in items:
        if item.path.is_relative_to(_TUI):
            item.add_marker(pytest.mark.xdist_group("ui"))


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def exclusive_if_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under pytest-xdist, a test marked ``exclusive`` runs while no other worker runs a test.

    Every test holds a shared lock on ``run`` and an ``exclusive`` one holds it alone. ``gate``
    keeps a waiting exclusive test from starving: it holds the gate while it waits, so no new
    shared holder gets in. The lock files live in the run's base temp dir, which all workers
    share (each worker's base temp is a folder in it). Without xdist this does nothing.
    """
    if not hasattr(request.config, "workerinput"):
        yield
        return
    locks = Path(str(request.config.option.basetemp)).parent
    exclusive = request.node.get_closest_marker("exclusive") is not None
    with open(locks / "xdist-gate.lock", "a") as gate, open(locks / "xdist-run.lock", "a") as run:
        t0 = time.monotonic()
        fcntl.flock(gate, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(run, fcntl.LOCK_EX)
        else:
            fcntl.flock(run, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        # How long the test waited for the others (in its report: a timeline can show it).
        request.node.user_properties.append(("lock_wait", time.monotonic() - t0))
        yield  # closing the files releases the locks


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "xdg"
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        d = home / var.lower()
        d.mkdir(parents=True)
        monkeypatch.setenv(var, str(d))
    monkeypatch.delenv("SYNCAPP_CONFIG", raising=False)
    yield home
