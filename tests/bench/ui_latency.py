"""Key → repaint latency of the terminal UI during a 20,000 x 2 KiB first sync, and idle (issue 14).

    .venv/bin/python -m tests.bench.ui_latency [--files 20000] [--modes attached,inprocess]
                                              [--rounds 1] [--idle-samples 80] [--profile DIR]
                                              [--json-out F] [--report-from F [F ...]]

What runs: one ``rclone serve webdav`` on a free port (``tests.servers.webdav``, as the other
benches start it) and a folder of ``--files`` random 2 KiB files in 100 subfolders. Each mode
gets a throwaway HOME with its XDG dirs under the temp dir (``XDG_RUNTIME_DIR`` short enough
for the control socket) and its own remote folder, so each does a whole first sync:

- ``attached`` (what ``syncapp`` does now): ``syncapp --config C start`` in a child process, as a
  user would start it, then a ``SyncApp`` in this process attaches to it over the control socket
  (``EngineClient``), under Pilot (``app.run_test(size=(120, 36))``). ``syncapp stop`` ends it.
- ``inprocess`` (the old way, for comparison): ``SyncApp(config, state_path=…)``, whose default
  engine runs on the UI's own event loop.

While the first sync runs, and again once it is up to date (idle), the bench presses keys that
change the screen, in a cycle: ``l`` (the full log), ``escape`` (back to the dashboard),
``enter`` (the folder's details), ``escape``; 0.1 to 0.3 s apart (random, so presses do not lock
onto the UI's 10 Hz event batches). Each key goes in the way a terminal's keys do: a
``Key`` event through ``driver.send_message`` (what the input thread of Textual's Linux driver
calls), never ``pilot.press``, whose waits force a repaint (``pilot.pause`` calls
``screen._on_timer_update()``) and would flatter the figures.

**"Painted"** is measured at ``App._display(screen, update)``, the one place in Textual 8 where
a screen's compositor update (``Screen._compositor_refresh``: after ``_refresh_layout`` or the
60 Hz ``_on_timer_update``) becomes the frame the driver writes. Under Pilot the app is headless
and ``_display`` skips turning the update into terminal bytes, so the bench's wrapper does that
part too (``update.render_segments`` on a truecolor console, the same call a real terminal's
frame goes through) and takes the time after it. A sample is the time from just before the key
is sent to the first frame of the new screen (the one the key leads to, as ``app.screen``) that
shows its content: the full log's lines (a frame of the log screen before its view has
indexed them would not count), the folder list for the dashboard, and for the details the
first frame after the list of pending paths came back from the engine (``list filled``,
reported apart; the key's figure is the details screen's first frame). Only writing the bytes
to a terminal and the terminal drawing them are left out. A key whose screen is not painted
within 15 s counts as a miss, and so does a details list not filled ``--list-wait`` s (3) after
its screen showed (then escape goes back all the same).

Busy sampling runs from the moment the UI is up (the engine is scanning or uploading) for
``--max-busy`` s (120) or until the folder is up to date; the UI then waits on the dashboard for
the sync to end, and after 3 quiet seconds samples ``--idle-samples`` keys.

Also reported: the sync's progress as the UI showed it when sampling began and ended, the
engine's and the UI process's CPU during the busy sampling, the event loop's lag (how late a
10 ms sleep wakes up) and the UI process's full garbage collections (how many, the longest, in
all) as hints of where the time goes. ``--profile DIR`` runs cProfile over
the UI process during each sampling (``DIR/MODE-ROUND-busy.prof``, ``…-idle.prof``).
``--rounds N`` repeats each mode's first sync (a fresh HOME and remote folder each time) and
pools the samples; ``--report-from`` prints the report of earlier ``--json-out`` files, pooled.

The report (markdown) goes to stdout, progress to stderr. Exit status 1 when a run failed or a
remote did not end up with every file; missed targets are findings, not failures.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import cProfile
import dataclasses
import gc
import io
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil  # type: ignore[import-untyped]
from rich.console import Console
from textual import events
from textual.screen import Screen

from syncapp.config import load_config
from syncapp.engine import FolderState
from syncapp.engine.client import EngineClient
from syncapp.engine.lock import running_pid
from syncapp.tui.activity import LogScreen
from syncapp.tui.app import SyncApp
from syncapp.tui.dashboard import DashboardScreen
from syncapp.tui.detail import FolderDetailScreen
from tests.bench.bench import count_files, make_tree
from tests.bench.measure import machine_info
from tests.servers.webdav import ServerProcess, rclone_binary, rclone_webdav_process

REPO = Path(__file__).resolve().parents[2]
FOLDER = "bench"
SIZE = (120, 36)
KEY_TIMEOUT = 15.0
TARGET_P50 = 0.050
TARGET_P95 = 0.150
#: The keys pressed in turn, and the screen each leads to.
CYCLE: tuple[tuple[str, str], ...] = (
    ("l", "log"),
    ("escape", "dashboard"),
    ("enter", "details"),
    ("escape", "dashboard"),
)


#: The characters a terminal sends for the keys pressed (as ``App._press_keys`` fills them in).
KEY_CHARS = {"escape": "\x1b", "enter": "\r"}


def log(msg: str) -> None:
    print(f"[ui-latency {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- measuring one key ----------------------------------------------------------------------------


@dataclass
class Sample:
    key: str
    screen: str
    #: Seconds from the key to the new screen's first frame, and to its first frame with content.
    first: float | None
    full: float | None
    #: When the key was sent, seconds since the sampling began; what the folder showed then.
    at: float
    state: str
    in_sync: int
    files_done: int
    files_total: int

    @property
    def shown(self) -> float | None:
        """The screen the key leads to is on the terminal (the details: before its list)."""
        return self.first if self.screen == "details" else self.full


@dataclass
class Expectation:
    t0: float
    is_new: Callable[[Screen[Any]], bool]
    has_content: Callable[[Screen[Any]], bool]
    first: float | None = None
    full: float | None = None
    shown: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class PaintProbe:
    """Wraps ``app._display``: every frame becomes terminal bytes (as on a real terminal) and
    is timed; a pending expectation is met by the first frame of its screen."""

    def __init__(self, app: SyncApp) -> None:
        self.app = app
        self.console = Console(
            color_system="truecolor",
            force_terminal=True,
            file=io.StringIO(),
            width=SIZE[0],
            height=SIZE[1],
            legacy_windows=False,
            safe_box=False,
        )
        self.frames = 0
        self.frame_chars = 0
        self.expect: Expectation | None = None
        original = app._display

        def display(screen: Screen[Any], renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return  # nothing drawn (the same early returns as _display's own)
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                self.frame_chars += len(render(self.console))
            self.frames += 1
            self._painted(screen)

        app._display = display  # type: ignore[method-assign]

    def _painted(self, screen: Screen[Any]) -> None:
        exp = self.expect
        if exp is None or exp.done.is_set():
            return
        if screen is not self.app.screen or not exp.is_new(screen):
            return
        now = time.monotonic()
        if exp.first is None:
            exp.first = now - exp.t0
            exp.shown.set()
        if exp.has_content(screen):
            exp.full = now - exp.t0
            exp.done.set()

    async def press(
        self, key: str, target: str, content_wait: float
    ) -> tuple[float | None, float | None]:
        """Send ``key``; (seconds to the new screen's first frame, to its first frame with
        content), None for what did not come: the first frame within ``KEY_TIMEOUT``, the
        content within ``content_wait`` after it."""
        app = self.app
        before = app.screen
        history = app.history

        def is_new(screen: Screen[Any]) -> bool:
            if target == "dashboard":
                return isinstance(screen, DashboardScreen)
            kind = LogScreen if target == "log" else FolderDetailScreen
            return isinstance(screen, kind) and screen is not before

        def has_content(screen: Screen[Any]) -> bool:
            if isinstance(screen, LogScreen):
                return bool(screen.view.line_count) or not len(history)
            if isinstance(screen, FolderDetailScreen):
                return screen._loaded_at >= exp.t0
            return True

        exp = Expectation(time.monotonic(), is_new, has_content)
        self.expect = exp
        event = events.Key(key, KEY_CHARS.get(key, key))
        event.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(event)  # what the terminal driver's input thread does
        with suppress(TimeoutError):
            await asyncio.wait_for(exp.shown.wait(), KEY_TIMEOUT)
        if exp.first is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(exp.done.wait(), content_wait)
        self.expect = None
        return exp.first, exp.full


class GcPauses:
    """How long the garbage collector's full (generation 2) collections held the process."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._t0)

    def start(self) -> None:
        self.pauses = []
        gc.callbacks.append(self._callback)

    def stop(self) -> list[float]:
        with suppress(ValueError):
            gc.callbacks.remove(self._callback)
        return self.pauses


class LoopLag:
    """How late a 10 ms sleep wakes up: the event loop's responsiveness, sampled all along."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append(time.monotonic() - t - 0.01)

    def start(self) -> None:
        self.lags = []
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
        return self.lags


# -- one mode -------------------------------------------------------------------------------------


@dataclass
class Phase:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    ui_cpu: float = 0.0
    engine_cpu: float | None = None
    lags: list[float] = field(default_factory=list)
    #: Full garbage collections in the UI process: seconds each.
    gc_pauses: list[float] = field(default_factory=list)
    load_start: str = ""
    load_end: str = ""


@dataclass
class ModeResult:
    mode: str
    round: int = 1
    busy: Phase = field(default_factory=Phase)
    idle: Phase = field(default_factory=Phase)
    sync_seconds: float | None = None
    on_server: int = 0
    error: str = ""


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def engine_cpu(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def mode_env(home: Path, runtime: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "SYNCAPP_LOGLEVEL": "WARNING",
    }


def syncapp_cli(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncapp.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Mode:
    def __init__(
        self,
        name: str,
        work: Path,
        server: ServerProcess,
        source: Path,
        files: int,
        idle_samples: int,
        max_busy: float,
        list_wait: float,
        max_sync: float,
        profile: Path | None,
        round_: int = 1,
    ) -> None:
        self.name = name
        self.round = round_
        self.tag = f"{name}-{round_}"  # its own HOME, state and remote folder
        self.server = server
        self.source = source
        self.files = files
        self.idle_samples = idle_samples
        self.max_busy = max_busy
        self.list_wait = list_wait
        self.max_sync = max_sync
        self.profile = profile
        self.home = work / self.tag / "home"
        # A Unix socket path has ~107 bytes: $XDG_RUNTIME_DIR/syncapp/engine-<12 hex>.sock.
        runtime = work / self.tag / "run"
        if len(str(runtime)) > 60:
            runtime = Path(tempfile.mkdtemp(prefix="lat-run-"))
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        self.runtime = runtime
        self.env = {**os.environ, **mode_env(self.home, runtime)}
        self.env.pop("SYNCAPP_CONFIG", None)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.cfg = self.home / ".config/syncapp/config.toml"
        self.state = self.home / ".local/state/syncapp/state.db"
        self.result = ModeResult(name, round_)
        self.engine_pid: int | None = None

    def write_config(self) -> None:
        self.cfg.parent.mkdir(parents=True, exist_ok=True)
        self.cfg.write_text(
            f'[remotes.nas]\ntype = "webdav"\nurl = "{self.server.url}"\n\n'
            f'[folders.{FOLDER}]\npath = "{self.source}"\nremote = "nas"\n'
            f'remote_path = "{self.tag}"\n'
        )

    def run(self) -> ModeResult:
        self.write_config()
        saved = dict(os.environ)
        os.environ.update(mode_env(self.home, self.runtime))  # this process's UI uses them too
        t0 = time.monotonic()
        try:
            if self.name == "attached":
                res = syncapp_cli(["--config", str(self.cfg), "start"], self.env)
                log(f"syncapp start: {res.stdout.strip() or res.stderr.strip()}")
                if res.returncode != 0:
                    raise RuntimeError(f"syncapp start failed: {res.stdout}{res.stderr}")
                self.engine_pid = running_pid(self.state)
            asyncio.run(self._ui(t0))
        finally:
            if self.name == "attached":
                res = syncapp_cli(["stop"], self.env)
                log(f"syncapp stop: {res.stdout.strip() or res.stderr.strip()}")
            os.environ.clear()
            os.environ.update(saved)
            if self.runtime.parent != self.home.parent:
                shutil.rmtree(self.runtime, ignore_errors=True)
        self.result.on_server = count_files(self.server.root / self.tag)[0]
        return self.result

    def _app(self) -> SyncApp:
        config = load_config(self.cfg)
        if self.name == "inprocess":
            return SyncApp(config, config_path=self.cfg, state_path=self.state)

        def start() -> str | None:  # the engine runs already; this is what `syncapp` passes
            res = syncapp_cli(["--config", str(self.cfg), "start"], self.env)
            return None if res.returncode == 0 else res.stdout + res.stderr

        return SyncApp(
            config,
            config_path=self.cfg,
            engine_factory=lambda _c: EngineClient(self.state, start),
        )

    async def _ui(self, t0: float) -> None:
        app = self._app()
        async with app.run_test(size=SIZE) as pilot:
            probe = PaintProbe(app)
            deadline = time.monotonic() + 60
            while app.engine is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if app.engine is None:
                raise RuntimeError(f"the UI did not get an engine: {app.engine_error}")
            if self.name == "inprocess":
                self.engine_pid = None
            view = app.dashboard.folders.views[FOLDER]
            log(f"{self.name}: UI up, folder {view.state_text()}; busy sampling")
            await self._phase(app, probe, view, self.result.busy, busy=True, t0=t0)
            # The sync ends: wait for it, then a few quiet seconds.
            deadline = time.monotonic() + self.max_sync
            while not self._done(view) and time.monotonic() < deadline:
                check_stop()
                await asyncio.sleep(0.2)
            if not self._done(view):
                raise RuntimeError(f"the first sync did not finish within {self.max_sync:.0f} s")
            if self.result.sync_seconds is None:
                self.result.sync_seconds = time.monotonic() - t0
            await asyncio.sleep(3)
            log(f"{self.name}: up to date after {self.result.sync_seconds:.1f} s; idle sampling")
            await self._phase(app, probe, view, self.result.idle, busy=False, t0=t0)
            await self._home(app)
            await pilot.press("q")

    def _done(self, view: Any) -> bool:
        return view.shown_state is FolderState.UP_TO_DATE and view.in_sync >= self.files

    async def _home(self, app: SyncApp) -> None:
        while len(app.screen_stack) > 1:
            app.pop_screen()
            await asyncio.sleep(0.2)

    async def _phase(
        self, app: SyncApp, probe: PaintProbe, view: Any, phase: Phase, *, busy: bool, t0: float
    ) -> None:
        profiler = cProfile.Profile() if self.profile is not None else None
        lag = LoopLag()
        lag.start()
        gcs = GcPauses()
        gcs.start()
        phase.load_start = load()
        cpu0, eng0, start = cpu_self(), engine_cpu(self.engine_pid), time.monotonic()
        if profiler is not None:
            profiler.enable()
        i = 0
        try:
            while True:
                check_stop()
                if busy and (self._done(view) or time.monotonic() - start > self.max_busy):
                    break
                if not busy and len(phase.samples) >= self.idle_samples:
                    break
                key, target = CYCLE[i % len(CYCLE)]
                i += 1
                if target != "dashboard" and not isinstance(app.screen, DashboardScreen):
                    await self._home(app)  # a missed key left another screen up
                    continue
                totals = view.progress.totals
                at = time.monotonic() - start
                sample = Sample(
                    key,
                    target,
                    None,
                    None,
                    at,
                    view.state_text(),
                    view.in_sync,
                    totals.files_done,
                    totals.files_total,
                )
                wait = self.list_wait if target == "details" else KEY_TIMEOUT
                sample.first, sample.full = await probe.press(key, target, wait)
                phase.samples.append(sample)
                if sample.first is None:
                    log(f"{self.name}: {key} → {target}: no frame within {KEY_TIMEOUT:.0f} s")
                elif sample.full is None:
                    log(
                        f"{self.name}: {key} → {target}: shown in {sample.first * 1000:.0f} ms,"
                        f" its content not within {wait:.0f} s more"
                    )
                if busy and self._done(view) and self.result.sync_seconds is None:
                    self.result.sync_seconds = time.monotonic() - t0
                await asyncio.sleep(random.uniform(0.1, 0.3))
        finally:
            if profiler is not None:
                profiler.disable()
                assert self.profile is not None
                self.profile.mkdir(parents=True, exist_ok=True)
                what = "busy" if busy else "idle"
                profiler.dump_stats(self.profile / f"{self.tag}-{what}.prof")
            phase.seconds = time.monotonic() - start
            phase.ui_cpu = cpu_self() - cpu0
            eng1 = engine_cpu(self.engine_pid)
            phase.engine_cpu = eng1 - eng0 if eng0 is not None and eng1 is not None else None
            phase.lags = lag.stop()
            phase.gc_pauses = gcs.stop()
            phase.load_end = load()
        done = [s for s in phase.samples if s.full is not None]
        if done:
            p50 = statistics.median(s.full for s in done if s.full is not None)
            what = "busy" if busy else "idle"
            log(f"{self.name} {what}: {len(done)} keys, p50 {p50 * 1000:.0f} ms")


def result_from_dict(d: dict[str, Any]) -> ModeResult:
    def phase(p: dict[str, Any]) -> Phase:
        return Phase(**{**p, "samples": [Sample(**x) for x in p["samples"]]})

    return ModeResult(**{**d, "busy": phase(d["busy"]), "idle": phase(d["idle"])})


# -- report ---------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ms(x: float) -> str:
    return f"{x * 1000:.1f}" if x < 0.1 else f"{x * 1000:.0f}"


def figures(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{ms(pct(values, 50))} / {ms(pct(values, 95))} / {ms(max(values))} ms"


def gc_words(pauses: Sequence[float]) -> str:
    if not pauses:
        return "0"
    return f"{len(pauses)}, {ms(max(pauses))} ms, {ms(sum(pauses))} ms"


def progress_words(phase: Phase, files: int) -> str:
    if not phase.samples:
        return "—"
    a, b = phase.samples[0], phase.samples[-1]
    return (
        f"{a.in_sync:,} → {b.in_sync:,} of {files:,} in sync"
        f" ({a.state} → {b.state}) over {phase.seconds:.1f} s"
    )


def render(results: list[ModeResult], machine: dict[str, str], args: argparse.Namespace) -> str:
    lines = [
        "## UI latency: key → repaint during a first sync and idle",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        f"- {args.files:,} x 2 KiB files in 100 folders → `rclone serve webdav` on loopback;"
        f" Pilot, {SIZE[0]}x{SIZE[1]}; keys l / escape / enter / escape in turn,"
        " 0.1 to 0.3 s apart",
        "",
        "Latency = key sent → the first frame, rendered to terminal bytes, that shows the new"
        " screen (the full log: with its lines; the details: the screen, its list reported"
        " apart as *list filled*, the engine's answer to a call over the socket). p50 / p95 /"
        f" max; misses: no such frame within {KEY_TIMEOUT:.0f} s (a details list: within"
        f" {args.list_wait:g} s after its screen). Target: p50 ≤"
        f" {TARGET_P50 * 1000:.0f} ms, p95 ≤ {TARGET_P95 * 1000:.0f} ms.",
        "",
        "| mode | phase | keys (misses) | key → screen shown | met | l → log |"
        " esc → dashboard | enter → details | details list filled (misses) |",
        "|---|---|--:|--:|:-:|--:|--:|--:|--:|",
    ]
    notes = [f"{r.mode} #{r.round}: failed: {r.error}" for r in results if r.error]
    pooled: dict[str, ModeResult] = {}
    for r in results:  # rounds of one mode together
        into = pooled.setdefault(r.mode, ModeResult(r.mode))
        into.busy.samples += r.busy.samples
        into.idle.samples += r.idle.samples
    for r in pooled.values():
        for name, phase in (("busy", r.busy), ("idle", r.idle)):
            if not phase.samples:
                continue
            shown = [s.shown for s in phase.samples if s.shown is not None]
            misses = len(phase.samples) - len(shown)
            met = (
                bool(shown)
                and not misses
                and pct(shown, 50) <= TARGET_P50
                and pct(shown, 95) <= TARGET_P95
            )

            def of(target: str, attr: str = "shown", ph: Phase = phase) -> str:
                mine = [s for s in ph.samples if s.screen == target]
                vals = [getattr(s, attr) for s in mine if getattr(s, attr) is not None]
                missed = len(mine) - len(vals)
                return figures(vals) + (f" ({missed})" if attr == "full" else "")

            lines.append(
                f"| {r.mode} | {name} | {len(phase.samples)} ({misses}) | {figures(shown)} |"
                f" {'✓' if met else '✗'} | {of('log')} | {of('dashboard')} |"
                f" {of('details')} | {of('details', 'full')} |"
            )
    lines += [
        "",
        "| mode | phase | the sync while sampling | UI CPU | engine CPU |"
        " loop lag p50 / p95 / max | full GCs: n, max, total | load start → end |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for r in results:
        for name, phase in (("busy", r.busy), ("idle", r.idle)):
            if not phase.samples:
                continue
            eng = (
                f"{phase.engine_cpu:.1f} s ({phase.engine_cpu / phase.seconds:.0%})"
                if phase.engine_cpu is not None
                else "(in the UI's process)"
            )
            lines.append(
                f"| {r.mode} #{r.round} | {name} | {progress_words(phase, args.files)} |"
                f" {phase.ui_cpu:.1f} s ({phase.ui_cpu / phase.seconds:.0%}) | {eng} |"
                f" {figures(phase.lags)} | {gc_words(phase.gc_pauses)} |"
                f" {phase.load_start} → {phase.load_end} |"
            )
    lines.append("")
    for r in results:
        sync = f"{r.sync_seconds:.1f} s" if r.sync_seconds is not None else "—"
        lines.append(
            f"- {r.mode} #{r.round}: first sync of {args.files:,} files up to date {sync}"
            " after start"
            f" (the UI up all along, pressing keys for the first {r.busy.seconds:.0f} s);"
            f" on the server afterwards: {r.on_server:,}."
        )
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    lines += ["", f"Load average at the end: {load()}."]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.ui_latency",
        description="Key → repaint latency of the UI during a first sync and idle (Pilot).",
    )
    p.add_argument("--files", type=int, default=20_000, help="2 KiB files to sync (20000)")
    p.add_argument(
        "--modes",
        default="attached,inprocess",
        help="attached (syncapp start + the UI attached), inprocess (the engine in the UI's"
        " process), or both, comma-separated (default: both)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="first syncs per mode (modes interleaved), samples pooled (1)",
    )
    p.add_argument("--idle-samples", type=int, default=80, metavar="N", help="keys idle (80)")
    p.add_argument(
        "--max-busy",
        type=float,
        default=120.0,
        metavar="S",
        help="busy sampling stops after S seconds; the sync then ends unwatched (120)",
    )
    p.add_argument(
        "--max-sync",
        type=float,
        default=1200.0,
        metavar="S",
        help="give up on a mode whose first sync is not up to date after S seconds (1200)",
    )
    p.add_argument(
        "--list-wait",
        type=float,
        default=3.0,
        metavar="S",
        help="how long the details screen may take to fill its list before escape (3)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="cProfile the UI process while sampling, into DIR/MODE-busy.prof and MODE-idle.prof",
    )
    p.add_argument("--json-out", type=Path, default=None, help="also write every sample here")
    p.add_argument(
        "--report-from",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="print the report of earlier runs' --json-out (pooled), running nothing",
    )
    p.add_argument("--seed", type=int, default=14, help="for the pauses between keys")
    p.add_argument("--workdir", type=Path, default=None, help="where the temp dir goes")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    return p


def write_json(
    args: argparse.Namespace, machine: dict[str, str], results: list[ModeResult]
) -> None:
    if args.json_out is None:
        return
    raw = {
        "machine": machine,
        "files": args.files,
        "results": [dataclasses.asdict(r) for r in results],
    }
    args.json_out.write_text(json.dumps(raw, indent=1))


@contextmanager
def workspace(args: argparse.Namespace) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="ui-lat-", dir=args.workdir))
    try:
        yield work
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


#: Set by SIGTERM: Textual may swallow the SystemExit raised in its loop, so the waits check it.
STOPPING: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    STOPPING.append(signum)
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the engine


def check_stop() -> None:
    if STOPPING:
        raise SystemExit(128 + STOPPING[0])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or not set(modes) <= {"attached", "inprocess"}:
        raise SystemExit("--modes takes attached, inprocess or both")
    if args.report_from is not None:
        runs = [json.loads(p.read_text()) for p in args.report_from]
        args.files = runs[0].get("files", args.files)
        pooled = [result_from_dict(d) for raw in runs for d in raw["results"]]
        print(render(pooled, runs[0]["machine"], args))
        return 0
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, _terminate)
    machine = machine_info(rclone_binary(), REPO)
    compileall.compile_dir(REPO / "syncapp", quiet=1)
    results: list[ModeResult] = []
    with workspace(args) as work:
        source = work / "source"
        log(f"writing {args.files:,} x 2 KiB files")
        make_tree(source, args.files, 100, 2048)
        server = rclone_webdav_process(work / "served")
        try:
            for round_, name in [(r, m) for r in range(1, args.rounds + 1) for m in modes]:
                server.stop()
                server.start()  # a fresh server for each mode, as the other benches do
                mode = Mode(
                    name,
                    work,
                    server,
                    source,
                    args.files,
                    args.idle_samples,
                    args.max_busy,
                    args.list_wait,
                    args.max_sync,
                    args.profile,
                    round_,
                )
                try:
                    results.append(mode.run())
                except (RuntimeError, OSError) as e:
                    log(f"{name} failed: {e}")
                    mode.result.error = str(e)
                    results.append(mode.result)
                write_json(args, machine, results)  # what is done survives an interrupt
        finally:
            server.close()
    print(render(results, machine, args), flush=True)
    write_json(args, machine, results)
    bad = any(r.error or r.on_server != args.files for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
