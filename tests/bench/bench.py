"""syncapp against ``rclone copy`` at its fastest, in one run, on one WebDAV server on loopback
(``rclone serve webdav`` by default; ``--server nginx`` or ``apache`` from Debian's packages).

    .venv/bin/python -m tests.bench.bench [--quick] [--only 1,3] [--server nginx]
                                          [--profile DIR | --py-spy DIR]

Cases (issue 6): (1) first sync of 10,000 x 4 KiB files in 100 folders; (2) its no-change re-run;
(3) one 1 GiB file, throughput and peak RSS; (4) no-change start of a 100,000-file tree, time and
peak RSS; (5) live save-to-remote latency over single saves (p50/p90/p99) and a burst of 1,000
saves, the burst against a cold ``rclone copy`` of the same files. ``--quick`` scales all down.

Cases (1)-(3) and the burst run ``--repeat`` times (default 3, ``--quick`` 1), syncapp and
rclone interleaved, and the table shows medians: the machine may be shared, and load drifts.

Method, in short: every timed run is a fresh child process (syncapp ``run --once`` with its own
``XDG_STATE_HOME``; ``rclone copy --transfers 8 --checkers 8 --webdav-pacer-min-sleep 0``) timed
from spawn to exit, with peak RSS from ``wait4()``. The server is restarted before every timed
run (and serves with ``--dir-cache-time 100ms``), so neither tool inherits the other's warm
server caches; ``sync(2)`` runs first, so neither pays for the other's dirty pages. syncapp and
rclone write to separate remote folders (``syncapp/…``, ``rclone/…``), and each result is
checked on the server's disk. Progress goes to stderr, the report (markdown) to stdout.

Case (4) first syncs its tree through the WebDAV server when case (1)'s rates project both first
syncs within a budget (600 s; ``--quick`` 120 s), else into a ``type = "local"`` remote (rclone:
a local directory); ``--tree-remote`` fixes the choice, and the report says which was used.
``--profile DIR`` (cProfile) and ``--py-spy DIR`` (collapsed stacks) profile every syncapp run.

Exit status 0 also when targets are missed (that is the report's news); 1 when a run failed or a
remote did not end up with the expected files.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil  # type: ignore[import-untyped]

from tests.bench.measure import LiveProcess, Run, kill_all, machine_info, run_measured
from tests.servers.webdav import ServerProcess, rclone_binary, rclone_webdav_process

REPO = Path(__file__).resolve().parents[2]
STAGING = ".syncapp-tmp-"
MiB = 1 << 20
MB = 1_000_000
TIMES = "\u00d7"  # the multiplication sign, spelled out for the linter
RCLONE_FLAGS = ["--transfers", "8", "--checkers", "8", "--webdav-pacer-min-sleep", "0"]


@dataclass(frozen=True)
class Scale:
    files: int
    folders: int
    file_size: int
    big: int
    tree_files: int
    tree_folders: int
    saves: int
    burst: int
    timeout: float
    #: Case (4) syncs the tree through WebDAV when both first syncs are projected to fit in this.
    tree_webdav_budget: float


FULL = Scale(10_000, 100, 4096, 1 << 30, 100_000, 1_000, 100, 1_000, 1800.0, 600.0)
QUICK = Scale(1_000, 10, 4096, 100 * MiB, 10_000, 100, 20, 200, 600.0, 120.0)


@dataclass
class Row:
    case: str
    what: str
    syncapp: str
    rclone: str = "—"
    ratio: str = "—"
    target: str = "—"
    ok: bool | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    info: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- formatting -----------------------------------------------------------------------------------


def fmt_s(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s" if s < 100 else f"{s:.0f} s"


def fmt_ms(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s * 1000:.0f} ms"


def fmt_mb(n: int) -> str:
    return f"{n / MB:.0f} MB"


def fmt_cpu(run: Run) -> str:
    """CPU seconds and their share of the wall time: near 100 % means CPU-bound."""
    return f"{run.cpu:.2f} s CPU ({run.cpu / run.seconds:.0%})"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}{TIMES}"


def mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓" if ok else "✗")


def n(x: int) -> str:
    return f"{x:,}"


# -- trees on disk --------------------------------------------------------------------------------


def make_tree(root: Path, files: int, folders: int, size: int, *, random: bool = True) -> None:
    """``files`` files of ``size`` bytes spread evenly over ``folders`` folders."""
    per = -(-files // folders)
    filler = b"x" * size
    made = 0
    for d in range(folders):
        sub = root / f"d{d:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(min(per, files - made)):
            data = os.urandom(size) if random else filler
            (sub / f"f{i:05d}.bin").write_bytes(data)
            made += 1


def make_big(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = 8 * MiB
    with open(path, "wb") as f:
        left = size
        while left:
            step = min(chunk, left)
            f.write(os.urandom(step))
            left -= step


def count_files(root: Path) -> tuple[int, int]:
    """(files, bytes) below ``root``, leaving out syncapp's staging names."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.startswith(STAGING):
                continue
            files += 1
            size += os.stat(os.path.join(dirpath, name)).st_size
    return files, size


# -- the bench ------------------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        work: Path,
        server: ServerProcess,
        scale: Scale,
        report: Report,
        syncapp_cmd: Callable[[str], list[str]],
        *,
        repeat: int = 1,
        wrapped: bool = False,
    ) -> None:
        self.repeat = repeat  # timed pairs per case in (1)-(3) and bursts in (5)
        self.wrapped = wrapped  # syncapp runs as the child of a profiler
        self.work = work
        self.server = server
        self.served = server.root
        self.scale = scale
        self.report = report
        self.syncapp_cmd = syncapp_cmd
        self.rclone = rclone_binary()
        #: Case (1)'s median rates in files/s, (syncapp, rclone), to plan case (4).
        self.small_rates: tuple[float, float] | None = None

    # environment and configs

    def syncapp_env(self, state: Path) -> dict[str, str]:
        env = dict(os.environ)
        env |= {
            "XDG_STATE_HOME": str(state),
            "XDG_DATA_HOME": str(state / "data"),
            "XDG_CACHE_HOME": str(state / "cache"),
            "XDG_CONFIG_HOME": str(state / "config"),
            "SYNCAPP_LOGLEVEL": "WARNING",
        }
        env.pop("SYNCAPP_CONFIG", None)
        # An installed syncapp runs from cached bytecode (main() compiles it first); a machine
        # with PYTHONDONTWRITEBYTECODE would otherwise time a source compile on every start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def rclone_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env |= {
            "RCLONE_CONFIG": os.devnull,
            "RCLONE_CONFIG_BENCH_TYPE": "webdav",
            "RCLONE_CONFIG_BENCH_URL": self.server.url,
        }
        return env

    def config(self, name: str, src: Path, remote_path: str, *, local: Path | None = None) -> Path:
        if local is None:
            remote = f'type = "webdav"\nurl = "{self.server.url}"\n'
        else:
            remote = f'type = "local"\npath = "{local}"\n'
        text = (
            f"[remotes.r]\n{remote}\n"
            f'[folders.bench]\npath = "{src}"\nremote = "r"\nremote_path = "{remote_path}"\n'
        )
        path = self.work / f"{name}.toml"
        path.write_text(text)
        return path

    # timed runs

    def fresh_server(self) -> None:
        """Restart the server and flush dirty pages: each timed run starts from the same place."""
        self.server.stop()
        os.sync()
        self.server.start()

    def syncapp_once(self, case: str, config: Path, state: Path, *, server: bool = True) -> Run:
        if server:
            self.fresh_server()
        else:
            os.sync()
        argv = [*self.syncapp_cmd(case), "--config", str(config), "run", "--once"]
        run = run_measured(
            argv,
            env=self.syncapp_env(state),
            stdout=self.work / f"out-{case}.txt",
            timeout=self.scale.timeout,
        )
        if run.returncode != 0:
            self.report.notes.append(
                f"({case}) ✗ syncapp exited {run.returncode}: {run.stderr_tail.strip()[-500:]}"
            )
        return run

    def rclone_copy(self, case: str, src: Path, dest: str, *, server: bool = True) -> Run:
        if server:
            self.fresh_server()
        else:
            os.sync()
        argv = [self.rclone, "copy", str(src), dest, *RCLONE_FLAGS]
        run = run_measured(
            argv,
            env=self.rclone_env(),
            stdout=self.work / f"out-{case}-rclone.txt",
            timeout=self.scale.timeout,
        )
        if run.returncode != 0:
            self.report.notes.append(
                f"({case}) ✗ rclone exited {run.returncode}: {run.stderr_tail.strip()[-500:]}"
            )
        return run

    def verify(self, case: str, who: str, where: Path, files: int, size: int) -> None:
        got_files, got_size = count_files(where)
        if (got_files, got_size) != (files, size):
            self.report.notes.append(
                f"({case}) ✗ {who}: the remote holds {n(got_files)} files / {n(got_size)} bytes,"
                f" expected {n(files)} / {n(size)}"
            )

    def uploads_in(self, run: Run) -> int:
        """Uploads that a non-JSON ``run --once`` logged."""
        return sum(": uploaded " in line for line in run.stdout.read_text().splitlines())

    # (1) and (2)

    def pairs(
        self, case: str, reps: int, syncapp: Callable[[int], Run], rclone: Callable[[int], Run]
    ) -> tuple[list[Run], list[Run]]:
        """``reps`` runs of each, interleaved, the order flipped every round (load drifts)."""
        s_runs: list[Run] = []
        r_runs: list[Run] = []
        for k in range(reps):
            steps = [("syncapp", syncapp, s_runs), ("rclone", rclone, r_runs)]
            for who, step, out in steps if k % 2 == 0 else steps[::-1]:
                run = step(k)
                out.append(run)
                log(f"({case}) {who} run {k + 1}/{reps}: {fmt_s(run.seconds)}")
        return s_runs, r_runs

    def small(self, *, rerun: bool) -> None:
        sc = self.scale
        reps = self.repeat
        src = self.work / "small"
        log(f"(1) writing {n(sc.files)} {TIMES} {sc.file_size // 1024} KiB in {sc.folders} folders")
        make_tree(src, sc.files, sc.folders, sc.file_size)
        total = sc.files * sc.file_size
        cfgs = [self.config(f"small{k}", src, f"syncapp/small{k}") for k in range(reps)]
        states = [self.work / f"state-small{k}" for k in range(reps)]

        def s1(k: int) -> Run:
            run = self.syncapp_once("1", cfgs[k], states[k])
            self.verify("1", "syncapp", self.served / f"syncapp/small{k}", sc.files, total)
            return run

        def r1(k: int) -> Run:
            run = self.rclone_copy("1", src, f"bench:rclone/small{k}")
            self.verify("1", "rclone", self.served / f"rclone/small{k}", sc.files, total)
            return run

        s_runs, r_runs = self.pairs("1", reps, s1, r1)
        s, r = median(s_runs), median(r_runs)
        ratio = s.seconds / r.seconds
        self.small_rates = (sc.files / s.seconds, sc.files / r.seconds)
        self.report.rows.append(
            Row(
                "1",
                f"first sync, {n(sc.files)} {TIMES} {sc.file_size // 1024} KiB"
                f" in {sc.folders} folders",
                fmt_s(s.seconds),
                fmt_s(r.seconds),
                fmt_ratio(ratio),
                f"≤ 1.0{TIMES} rclone",
                ratio <= 1.0,
            )
        )
        self.report.info.append(
            Row(
                "1",
                "first sync: files/s · CPU · peak RSS",
                f"{sc.files / s.seconds:,.0f}/s · {fmt_cpu(s)} · {fmt_mb(peak(s_runs))}",
                f"{sc.files / r.seconds:,.0f}/s · {fmt_cpu(r)} · {fmt_mb(peak(r_runs))}",
            )
        )
        self.add_spread("1", "first sync", s_runs, r_runs)
        self.report.results["1"] = _pair_dict(s_runs, r_runs)
        if not rerun:
            return

        def s2(k: int) -> Run:
            run = self.syncapp_once("2", cfgs[0], states[0])
            again = self.uploads_in(run)
            if again:
                self.report.notes.append(f"(2) ✗ syncapp uploaded {n(again)} files again")
            return run

        def r2(k: int) -> Run:
            return self.rclone_copy("2", src, "bench:rclone/small0")

        s_runs, r_runs = self.pairs("2", reps, s2, r2)
        s, r = median(s_runs), median(r_runs)
        ratio = s.seconds / r.seconds
        self.report.rows.append(
            Row(
                "2",
                "no-change re-run of (1)",
                fmt_s(s.seconds),
                fmt_s(r.seconds),
                fmt_ratio(ratio),
                f"≤ 0.2{TIMES} rclone",
                ratio <= 0.2,
            )
        )
        self.report.info.append(
            Row(
                "2",
                "no-change re-run: CPU · peak RSS",
                f"{fmt_cpu(s)} · {fmt_mb(peak(s_runs))}",
                f"{fmt_cpu(r)} · {fmt_mb(peak(r_runs))}",
            )
        )
        self.add_spread("2", "no-change re-run", s_runs, r_runs)
        self.report.results["2"] = _pair_dict(s_runs, r_runs)
        # The floor under any `run --once`: interpreter start and imports (cli imports the engine).
        floor = min(
            run_measured(
                [*self.syncapp_cmd("version"), "--version"],
                env=self.syncapp_env(states[0]),
                stdout=self.work / "out-version.txt",
                timeout=60,
            ).seconds
            for _ in range(3)
        )
        rfloor = min(
            run_measured(
                [self.rclone, "version"],
                env=self.rclone_env(),
                stdout=self.work / "out-version-rclone.txt",
                timeout=60,
            ).seconds
            for _ in range(3)
        )
        self.report.info.append(
            Row(
                "2",
                "start-up floor: `syncapp --version` / `rclone version`, best of 3",
                fmt_s(floor),
                fmt_s(rfloor),
            )
        )

    def add_spread(self, case: str, what: str, s_runs: list[Run], r_runs: list[Run]) -> None:
        if len(s_runs) > 1:
            self.report.info.append(
                Row(
                    case,
                    f"{what}: every run (the table shows the median)",
                    ", ".join(fmt_s(x.seconds) for x in s_runs),
                    ", ".join(fmt_s(x.seconds) for x in r_runs),
                )
            )

    # (3)

    def big(self) -> None:
        size = self.scale.big
        label = f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size // MiB} MiB"
        src = self.work / "big"
        path = src / "big.bin"
        log(f"(3) writing one {label} file")
        make_big(path, size)

        def s3(k: int) -> Run:
            cfg = self.config(f"big{k}", src, f"syncapp/big{k}")
            run = self.syncapp_once("3", cfg, self.work / f"state-big{k}")
            self.verify("3", "syncapp", self.served / f"syncapp/big{k}", 1, size)
            shutil.rmtree(self.served / f"syncapp/big{k}", ignore_errors=True)
            return run

        def r3(k: int) -> Run:
            run = self.rclone_copy("3", src, f"bench:rclone/big{k}")
            self.verify("3", "rclone", self.served / f"rclone/big{k}", 1, size)
            shutil.rmtree(self.served / f"rclone/big{k}", ignore_errors=True)
            return run

        try:
            s_runs, r_runs = self.pairs("3", self.repeat, s3, r3)
        finally:
            shutil.rmtree(src, ignore_errors=True)
        s, r = median(s_runs), median(r_runs)
        s_rate, r_rate = size / MiB / s.seconds, size / MiB / r.seconds
        ratio = s_rate / r_rate
        s_peak, r_peak = peak(s_runs), peak(r_runs)
        self.report.rows.append(
            Row(
                "3",
                f"one {label} file: throughput",
                f"{s_rate:.0f} MiB/s",
                f"{r_rate:.0f} MiB/s",
                fmt_ratio(ratio),
                f"≥ 0.9{TIMES} rclone",
                ratio >= 0.9,
            )
        )
        self.report.rows.append(
            Row(
                "3",
                f"one {label} file: peak RSS" + (" (highest run)" if self.repeat > 1 else ""),
                fmt_mb(s_peak),
                fmt_mb(r_peak),
                fmt_ratio(s_peak / r_peak),
                "≤ 150 MB",
                s_peak <= 150 * MB,
            )
        )
        self.report.info.append(
            Row(
                "3",
                f"one {label} file: wall time · CPU",
                f"{fmt_s(s.seconds)} · {fmt_cpu(s)}",
                f"{fmt_s(r.seconds)} · {fmt_cpu(r)}",
            )
        )
        self.add_spread("3", f"one {label} file", s_runs, r_runs)
        self.report.results["3"] = _pair_dict(s_runs, r_runs)

    # (4)

    def tree(self, method: str) -> None:
        sc = self.scale
        if method == "auto":
            if self.small_rates is None:
                method = "webdav"
                why = "case (1) did not run to project the time; WebDAV by default"
            else:
                projected = sum(sc.tree_files / rate for rate in self.small_rates)
                method = "webdav" if projected <= sc.tree_webdav_budget else "local"
                why = (
                    f"both first syncs projected at {fmt_s(projected)} from case (1)'s rate"
                    f" ({'within' if method == 'webdav' else 'over'} the"
                    f" {fmt_s(sc.tree_webdav_budget)} budget)"
                )
        else:
            why = "chosen with --tree-remote"
        src = self.work / "tree"
        log(f"(4) writing a {n(sc.tree_files)}-file tree in {n(sc.tree_folders)} folders")
        make_tree(src, sc.tree_files, sc.tree_folders, 256, random=False)
        state = self.work / "state-tree"
        if method == "webdav":
            cfg = self.config("tree", src, "syncapp/tree")
            s_dest, r_dest = self.served / "syncapp/tree", self.served / "rclone/tree"
            r_target = "bench:rclone/tree"
            where = "the WebDAV server"
        else:
            local = self.work / "tree-remote"
            s_dest, r_dest = local / "syncapp/tree", local / "rclone/tree"
            s_dest.mkdir(parents=True)
            cfg = self.config("tree", src, "", local=s_dest)
            r_target = str(r_dest)
            where = 'a `type = "local"` remote (rclone: a local destination directory)'
        self.report.notes.append(
            f"(4) first sync into {where}: {why}. The timed run is the second `run --once`,"
            " with the state DB of the first; rclone's no-change `copy` of the same tree to the"
            " same kind of destination is shown for reference (no target)."
        )
        over_dav = method == "webdav"
        log(f"(4) syncapp first sync into {method}")
        s1 = self.syncapp_once("4-first", cfg, state, server=over_dav)
        self.verify("4", "syncapp", s_dest, sc.tree_files, sc.tree_files * 256)
        log(f"(4) syncapp first sync {fmt_s(s1.seconds)}; rclone first copy")
        r1 = self.rclone_copy("4-first", src, r_target, server=over_dav)
        self.verify("4", "rclone", r_dest, sc.tree_files, sc.tree_files * 256)
        log(f"(4) rclone first copy {fmt_s(r1.seconds)}; syncapp no-change start")
        s2 = self.syncapp_once("4", cfg, state, server=over_dav)
        again = self.uploads_in(s2)
        if again:
            self.report.notes.append(f"(4) ✗ syncapp uploaded {n(again)} files again")
        log(f"(4) syncapp no-change {fmt_s(s2.seconds)}; rclone no-change copy")
        r2 = self.rclone_copy("4", src, r_target, server=over_dav)
        log(f"(4) rclone no-change {fmt_s(r2.seconds)}")
        what = f"no-change start, {n(sc.tree_files)} files ({method})"
        self.report.rows.append(
            Row(
                "4",
                f"{what}: time",
                fmt_s(s2.seconds),
                fmt_s(r2.seconds),
                "—",
                "≤ 3 s",
                s2.seconds <= 3.0,
            )
        )
        self.report.rows.append(
            Row(
                "4",
                f"{what}: peak RSS",
                fmt_mb(s2.peak_rss),
                fmt_mb(r2.peak_rss),
                "—",
                "≤ 300 MB",
                s2.peak_rss <= 300 * MB,
            )
        )
        self.report.info.append(
            Row(
                "4",
                f"first sync of the {n(sc.tree_files)}-file tree ({method}): time · peak RSS",
                f"{fmt_s(s1.seconds)} · {fmt_mb(s1.peak_rss)}",
                f"{fmt_s(r1.seconds)} · {fmt_mb(r1.peak_rss)}",
            )
        )
        self.report.info.append(Row("4", "no-change start: CPU", fmt_cpu(s2), fmt_cpu(r2)))
        self.report.results["4"] = {
            "method": method,
            "first": {"syncapp": _run_dict(s1), "rclone": _run_dict(r1)},
            "syncapp": _run_dict(s2),
            "rclone": _run_dict(r2),
        }

    # (5)

    def live(self) -> None:
        sc = self.scale
        src = self.work / "live"
        src.mkdir()
        (src / "seed.txt").write_text("seed\n")
        dest = self.served / "syncapp/live"
        cfg = self.config("live", src, "syncapp/live")
        self.fresh_server()

        states: list[str] = []
        failures: list[dict[str, Any]] = []
        up_to_date = threading.Event()

        def on_event(ev: dict[str, Any]) -> None:
            kind = ev.get("event")
            if kind == "FolderStateChanged":
                states.append(str(ev.get("state")))
                if ev.get("state") == "up to date":
                    up_to_date.set()
            elif kind == "JobFailed":
                failures.append(ev)

        argv = [*self.syncapp_cmd("5"), "--config", str(cfg), "run", "--json"]
        proc = LiveProcess(
            argv,
            env=self.syncapp_env(self.work / "state-live"),
            on_event=on_event,
            wrapped=self.wrapped,
        )
        log("(5) starting syncapp run --json")
        proc.start()
        try:
            if not up_to_date.wait(60):
                raise RuntimeError(f"syncapp never got up to date:\n{proc.stderr_tail()}")
            time.sleep(1.0)  # the watcher may start after the first "up to date"
            data = os.urandom(4096)
            warm = self._save(src / "warmup.txt", dest / "warmup.txt", data)
            log(f"(5) warm-up save {fmt_ms(warm)}; {sc.saves} single saves")
            lat: list[float] = []
            lost = 0
            for i in range(sc.saves):
                t = self._save(src / f"save-{i:04d}.txt", dest / f"save-{i:04d}.txt", data)
                if t < 0:
                    lost += 1
                else:
                    lat.append(t)
                time.sleep(0.05)  # a pause between saves, as between a person's saves
            if lost:
                self.report.notes.append(f"(5) ✗ {lost} saves never reached the remote in 30 s")
            bursts: list[tuple[float, float, float]] = []  # (seconds, write seconds, CPU)
            for k in range(self.repeat):
                time.sleep(1.0)
                cpu0 = _cpu_of(proc.pid)
                b_s, w_s = self._burst(src / f"burst{k}", dest / f"burst{k}", sc.burst, data)
                bursts.append((b_s, w_s, _cpu_of(proc.pid) - cpu0))
                log(f"(5) burst of {n(sc.burst)} saves, {k + 1}/{self.repeat}: {fmt_s(b_s)}")
        finally:
            code, live_rss, live_cpu, err = proc.stop()
        if code not in (0, -signal.SIGTERM):
            self.report.notes.append(f"(5) ✗ syncapp run exited {code}: {err.strip()[-500:]}")
        if failures:
            self.report.notes.append(
                f"(5) {len(failures)} JobFailed events, e.g. {failures[0].get('error')}"
            )
        r_runs: list[Run] = []
        for k in range(self.repeat):
            run = self.rclone_copy("5", src / f"burst{k}", f"bench:rclone/burst{k}")
            where = self.served / f"rclone/burst{k}"
            self.verify("5", "rclone", where, sc.burst, sc.burst * len(data))
            log(f"(5) rclone copy of burst {k + 1}/{self.repeat} (cold): {fmt_s(run.seconds)}")
            r_runs.append(run)
        burst_s, write_s, burst_cpu = sorted(bursts)[len(bursts) // 2]
        r = median(r_runs)

        if not lat:
            raise RuntimeError("no single save reached the remote")
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        p50, p90, p99 = q[49], q[89], q[98]
        what = f"save → on the server's disk, {len(lat)} single saves"
        self.report.rows += [
            Row("5", f"{what}: p50", fmt_ms(p50), target="≤ 100 ms", ok=p50 <= 0.1),
            Row("5", f"{what}: p90", fmt_ms(p90)),
            Row("5", f"{what}: p99", fmt_ms(p99), target="≤ 300 ms", ok=p99 <= 0.3),
        ]
        ratio = burst_s / r.seconds
        self.report.rows.append(
            Row(
                "5",
                f"burst of {n(sc.burst)} saves → all on the remote (rclone: cold `copy` of them)",
                fmt_s(burst_s),
                fmt_s(r.seconds),
                fmt_ratio(ratio),
                f"≤ 1.0{TIMES} rclone",
                ratio <= 1.0,
            )
        )
        self.report.info += [
            Row(
                "5",
                "single saves: min · mean · max",
                " · ".join(fmt_ms(x) for x in (min(lat), statistics.fmean(lat), max(lat))),
            ),
            Row("5", f"burst: writing the {n(sc.burst)} files locally took", fmt_s(write_s)),
            *(
                [
                    Row(
                        "5",
                        "burst: every run (the table shows the median)",
                        ", ".join(fmt_s(b[0]) for b in bursts),
                        ", ".join(fmt_s(x.seconds) for x in r_runs),
                    )
                ]
                if self.repeat > 1
                else []
            ),
            Row(
                "5",
                "burst: CPU spent (syncapp: its process during the burst)",
                "—" if self.wrapped else f"{burst_cpu:.2f} s ({burst_cpu / burst_s:.0%})",
                fmt_cpu(r),
            ),
            Row(
                "5",
                "whole live run (start, saves, bursts): CPU · peak RSS",
                f"{live_cpu:.2f} s · {fmt_mb(live_rss)}",
                f"{fmt_cpu(r)} · {fmt_mb(r.peak_rss)}",
            ),
        ]
        self.report.results["5"] = {
            "latencies": lat,
            "warmup": warm,
            "bursts": [{"seconds": b, "write_seconds": w, "cpu": c} for b, w, c in bursts],
            "live_peak_rss": live_rss,
            "live_cpu": live_cpu,
            "states": states[-5:],
            "rclone": [_run_dict(x) for x in r_runs],
        }

    @staticmethod
    def _save(local: Path, remote: Path, data: bytes, timeout: float = 30.0) -> float:
        """Write ``local``; seconds until ``remote`` has all of it (-1: not within timeout)."""
        t0 = time.perf_counter()
        with open(local, "wb") as f:
            f.write(data)
        deadline = t0 + timeout
        want = len(data)
        while True:
            try:
                if os.stat(remote).st_size == want:
                    return time.perf_counter() - t0
            except FileNotFoundError:
                pass
            if time.perf_counter() > deadline:
                return -1.0
            time.sleep(0.001)

    @staticmethod
    def _burst(local: Path, remote: Path, count: int, data: bytes) -> tuple[float, float]:
        """Write ``count`` files as fast as possible; (seconds until all remote, write seconds)."""
        names = [f"b{i:05d}.txt" for i in range(count)]
        t0 = time.perf_counter()
        local.mkdir()
        for name in names:
            with open(local / name, "wb") as f:
                f.write(data)
        wrote = time.perf_counter() - t0
        pending = set(names)
        deadline = t0 + 300
        while pending:
            try:
                present = set(os.listdir(remote))
            except FileNotFoundError:
                present = set()
            # Final names appear only once complete (syncapp renames over them); check sizes
            # anyway, so a server that writes in place cannot fool the clock.
            for name in pending & present:
                try:
                    if os.stat(remote / name).st_size == len(data):
                        pending.discard(name)
                except FileNotFoundError:
                    pass
            if not pending:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"burst: {len(pending)} files not on the remote after 300 s")
            time.sleep(0.002)
        return time.perf_counter() - t0, wrote


def median(runs: Sequence[Run]) -> Run:
    """The median run by wall time (the upper one of two middles)."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def peak(runs: Sequence[Run]) -> int:
    return max(r.peak_rss for r in runs)


def _pair_dict(s_runs: Sequence[Run], r_runs: Sequence[Run]) -> dict[str, Any]:
    return {"syncapp": [_run_dict(r) for r in s_runs], "rclone": [_run_dict(r) for r in r_runs]}


def _run_dict(run: Run) -> dict[str, Any]:
    return {
        "seconds": run.seconds,
        "cpu": run.cpu,
        "peak_rss": run.peak_rss,
        "returncode": run.returncode,
    }


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process so far (0 when it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


# -- output ---------------------------------------------------------------------------------------


def table(rows: Sequence[Row], *, targets: bool) -> list[str]:
    if targets:
        head = "| # | measurement | syncapp | rclone | syncapp / rclone | target | met |"
        sep = "|---|---|--:|--:|--:|---|:-:|"
    else:
        head = "| # | measurement | syncapp | rclone |"
        sep = "|---|---|--:|--:|"
    out = [head, sep]
    for r in rows:
        cells = [r.case, r.what, r.syncapp, r.rclone]
        if targets:
            cells += [r.ratio, r.target, mark(r.ok)]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render(
    report: Report, machine: dict[str, str], args: argparse.Namespace, repeat: int, secs: float
) -> str:
    lines = [
        f"## syncapp vs rclone copy{' (--quick)' if args.quick else ''}",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        "rclone: `rclone copy " + " ".join(RCLONE_FLAGS) + f"`; server: {SERVER_WORDS[args.server]}"
        " on loopback, restarted before each timed run. syncapp: `run --once` (atomic uploads:"
        " one PUT where the server was seen to stage uploads, else PUT to a temporary name then"
        " MOVE; the server is learned once per fresh state dir, in the timed run), fresh state"
        " dir per case. Times are wall-clock from process spawn to exit; peak RSS is the kernel's"
        " high-water mark (`wait4` ru_maxrss); CPU is user + system time. MB = 10^6 bytes."
        " syncapp's bytecode is compiled before the first run, as an installed package's is."
        f" Cases (1)-(3) and the burst in (5): median of {repeat} run(s) of each tool"
        + (", interleaved, the order flipped every round." if repeat > 1 else "."),
        "",
        *table(report.rows, targets=True),
        "",
    ]
    if report.info:
        lines += ["Other measurements (no target):", "", *table(report.info, targets=False), ""]
    lines += [
        "(5) method: `syncapp run --json` against the same server; each save writes a new 4 KiB"
        " file and polls the server's directory with `os.stat` every 1 ms until it is there"
        " whole (save → visible), one save at a time with 50 ms between saves, after one"
        " uncounted warm-up save. The burst writes all files into a new folder as fast as"
        " possible and times first write → last file on the server's disk.",
    ]
    if args.profile or args.py_spy:
        lines += ["", "**syncapp ran under a profiler: its times and memory mean little.**"]
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report.notes]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines += ["", f"Benchmark wall time: {fmt_s(secs)}; load average at the end: {load}."]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------


def parse_only(text: str) -> set[int]:
    try:
        picked = {int(x) for x in text.split(",") if x.strip()}
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--only: {text!r} is not a list like 1,3") from e
    if not picked or not picked <= {1, 2, 3, 4, 5}:
        raise argparse.ArgumentTypeError("--only takes case numbers 1 to 5")
    return picked


def _nginx(root: Path) -> ServerProcess:
    from tests.servers.dav_httpd import nginx_dav_process

    return nginx_dav_process(root)


def _apache(root: Path) -> ServerProcess:
    from tests.servers.dav_httpd import apache_dav_process

    return apache_dav_process(root)


SERVER_WORDS = {
    "rclone": "`rclone serve webdav` (`--dir-cache-time 100ms`)",
    "nginx": "nginx (dav + dav-ext, Debian's packages) as www-data",
    "apache": "Apache httpd (mod_dav_fs, Debian's packages) as www-data",
}

#: The servers the bench can run on; each is restarted before every timed run.
SERVERS: dict[str, Callable[[Path], ServerProcess]] = {
    "rclone": lambda root: rclone_webdav_process(root),
    "nginx": _nginx,
    "apache": _apache,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench",
        description="syncapp vs rclone copy on one WebDAV server on loopback.",
    )
    p.add_argument("--quick", action="store_true", help="scaled-down smoke run")
    p.add_argument(
        "--server",
        choices=tuple(SERVERS),
        default="rclone",
        help="the WebDAV server both tools write to (default: rclone serve webdav)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=0,
        metavar="N",
        help="timed pairs in (1)-(3) and bursts in (5), median shown (default 3; --quick: 1)",
    )
    p.add_argument(
        "--only",
        type=parse_only,
        default={1, 2, 3, 4, 5},
        metavar="N,M",
        help="cases to run (2 runs 1 as its setup)",
    )
    p.add_argument(
        "--tree-remote",
        choices=("auto", "webdav", "local"),
        default="auto",
        help="remote for the first sync of case 4's tree (default: auto)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the temp dir goes (default: the system temp dir)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--json-out", type=Path, default=None, help="also write raw results here")
    prof = p.add_mutually_exclusive_group()
    prof.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run syncapp under cProfile, one CASE.prof per run in DIR",
    )
    prof.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="run syncapp under `py-spy record` (collapsed stacks) into DIR",
    )
    return p


def syncapp_command(args: argparse.Namespace) -> Callable[[str], list[str]]:
    py = sys.executable
    if args.profile is not None:
        out: Path = args.profile.resolve()
        out.mkdir(parents=True, exist_ok=True)
        return lambda case: [
            py,
            "-m",
            "cProfile",
            "-o",
            str(out / f"{case}.prof"),
            "-m",
            "syncapp.cli",
        ]
    if args.py_spy is not None:
        spy_dir: Path = args.py_spy.resolve()
        spy_dir.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or str(Path(py).with_name("py-spy"))
        return lambda case: [
            spy,
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--subprocesses",
            "-o",
            str(spy_dir / f"{case}.txt"),
            "--",
            py,
            "-m",
            "syncapp.cli",
        ]
    return lambda case: [py, "-m", "syncapp.cli"]


@contextmanager
def workspace(args: argparse.Namespace) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="syncapp-bench-", dir=args.workdir))
    try:
        yield work
    finally:
        kill_all()
        if args.keep:
            log(f"kept {work}")
        else:
            log(f"removing {work}")
            shutil.rmtree(work, ignore_errors=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that clean up


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scale = QUICK if args.quick else FULL
    repeat: int = args.repeat or (1 if args.quick else 3)
    only: set[int] = args.only
    signal.signal(signal.SIGTERM, _terminate)
    machine = machine_info(rclone_binary(), REPO)
    compileall.compile_dir(REPO / "syncapp", quiet=1)
    report = Report()
    t0 = time.perf_counter()
    with workspace(args) as work:
        server = SERVERS[args.server](work / "served")
        try:
            server.start()
            bench = Bench(
                work,
                server,
                scale,
                report,
                syncapp_command(args),
                repeat=repeat,
                wrapped=args.py_spy is not None,
            )
            cases: list[tuple[str, Callable[[], None]]] = []
            if only & {1, 2}:
                name = "1+2" if 2 in only else "1"
                cases.append((name, lambda: bench.small(rerun=2 in only)))
            if 3 in only:
                cases.append(("3", bench.big))
            if 4 in only:
                cases.append(("4", lambda: bench.tree(args.tree_remote)))
            if 5 in only:
                cases.append(("5", bench.live))
            for name, case in cases:
                try:
                    case()
                except (RuntimeError, OSError) as e:
                    kill_all()
                    log(f"({name}) failed: {e}")
                    report.notes.append(f"({name}) failed: {e}")
        finally:
            server.close()
    text = render(report, machine, args, repeat, time.perf_counter() - t0)
    print(text, flush=True)
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps({"machine": machine, "results": report.results}, indent=2)
        )
    # Missed targets are findings, not failures; a wrong result on the remote or a crash is.
    return 1 if any("✗" in note or "failed:" in note for note in report.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
