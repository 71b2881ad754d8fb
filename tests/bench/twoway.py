"""Two-way sync benchmarks (issue 15): how soon a remote change reaches the local file, and
what a poll that finds nothing changed costs on a 10,000-file remote, per backend.

    .venv/bin/python -m tests.bench.twoway [--only latency,rescan,poll,upload] [--samples 40]
                                           [--remote-poll 5] [--backends rclone-webdav,local]
                                           [--files 10000] [--polls 5] [--upload-files 1000]
                                           [--upload-runs 3] [--upload-poll 30]
                                           [--upload-servers rclone-webdav,apache]
                                           [--json-out F] [--report-from F [F ...]]

**latency** — remote change → local file. One ``rclone serve webdav`` on loopback
(``tests.servers.webdav``, as the other benches start it) and a real engine in its own process:
``syncapp --config C run --json`` with throwaway HOME and XDG dirs, one folder with
``direction = "both"`` and ``remote_poll = 5``, talking to the server through the counting
proxy of the test suite (``tests.servers.faultproxy``), so every request the engine sends is
seen, with its time. The folder starts from a remote of ``--tree`` small files (100 in 10
folders), which the first look brings down. A second writer (this process, with httpx, as
another machine or a web page would) then makes ``--samples`` changes straight on the server,
in turn: an edit of an existing file, a new file in an existing folder, a new file in a new
folder (MKCOL + PUT). Before each change it waits a random 0 to ``remote_poll`` seconds, so
the changes fall on random phases of the poll cycle. A sample is the time from the end of the
writer's PUT to the moment the local file holds the new content, read every 10 ms. It is split
at the engine's next PROPFIND (as the proxy saw it arrive): the wait for the poll, then the
look and the download. Expected: about ``remote_poll``/2 plus the look.

**rescan** — the same, but ``remote_poll = 300`` and each change is followed at once by
``syncapp --config C rescan FOLDER`` (a separate CLI process, as a user or script runs it: the
UI's rescan key asks the engine the same over its control socket), so every sample measures the
rescan path.

**poll** — a no-change poll of ``--files`` files (10,000 of 1 KiB in 100 folders) on each
backend: ``rclone serve webdav``, WsgiDAV, Apache ``mod_dav``, nginx dav, ``rclone serve s3``,
SeaweedFS, ``local``; the servers are started by ``tests.integration.backends`` (their
session helpers), the tree is written on the server's disk (SeaweedFS: uploaded). The poll is
the engine's own code: ``RemotePoller.poll()`` as ``RemoteSide`` builds it (the folder's ignore
rules, ``tree_etags`` off, as the engine runs it today). After a first (cold) poll, ``--polls``
no-change polls are timed straight to the server (wall and this process's CPU), and two more are
sent through the counting proxy for the request count (the proxy runs in a thread of this
process, so it would add its own CPU to the timed ones). "Look" adds what the rest of
``RemoteSide.look`` does on a no-change poll: the local scan of the same 10,000 files
(``scan_tree``) and ``plan_twoway`` (which must plan nothing). The ``tree ETags`` column is
``probe_tree_etags`` on that server (a subtree whose collection ETag is unchanged could be
skipped).

**upload** — what two-way costs an upload: the read-back of each upload when it settles, on
servers whose stamps cannot tell two same-size writes within a second apart (``ownwrites``).
A real engine as above (``syncapp run --json``, own HOME, through the counting proxy),
``direction = "upload"`` and ``direction = "both"`` in turn on the same server, each on an
empty folder and an empty remote folder (a fresh one a run). Once the engine is up to date
(two-way: after its first look, then a random 0 to ``--upload-poll`` s, a random phase of its
poll cycle), the bench writes ``--upload-files`` files (1,000 of 4 KiB in 10 folders) into the
folder. From the end of those writes: the last upload's ``JobFinished`` ("on the server"), the
first ``up to date`` after it, and, two-way, "settled": the last request of the first look
that began once every upload was due to settle (``ownwrites.Upload.finished``: 2 s, or twice
its duration, after it finished), as the proxy saw it (on rclone that look ends with the
read-back GETs). The bench then waits until the engine sent nothing for 3 s; the requests
from the start of the writes until then are counted by method, and the engine's CPU seconds
taken from its process. At the end the server's disk must hold the folder's files byte for
byte. Servers: ``rclone serve webdav`` (no distinct stamps: read-backs) and Apache
``mod_dav`` (distinct stamps: no read-back; the control), ``--upload-runs`` rounds each,
alternating which direction goes first.

Each run prints markdown tables to stdout (progress to stderr) with the machine, load, commit
and date. ``--json-out`` keeps the samples; ``--report-from`` pools earlier runs' JSON into one
report. Exit status 1 when a sample never arrived or a poll saw the wrong tree.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import dataclasses
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import httpx
import psutil  # type: ignore[import-untyped]

from syncapp.config import LocalRemoteConfig, RemoteConfig, S3RemoteConfig, WebDAVRemoteConfig
from syncapp.engine.remotepoll import RemotePoller, Snapshot, probe_tree_etags
from syncapp.engine.scanner import scan_tree
from syncapp.engine.state import Entry
from syncapp.engine.twoway import plan_twoway
from syncapp.ignore import IgnoreRules
from syncapp.remotes import open_remote
from syncapp.remotes.base import join
from tests.bench.bench import make_tree
from tests.bench.measure import LiveProcess, kill_all, machine_info
from tests.integration.backends import BackendContext
from tests.servers.dav_httpd import apache_dav_server, nginx_dav_server
from tests.servers.faultproxy import FaultProxy
from tests.servers.s3 import S3Server, rclone_s3_server, seaweedfs_server
from tests.servers.webdav import ServerProcess, rclone_binary, rclone_webdav_server, wsgidav_server

REPO = Path(__file__).resolve().parents[2]
FOLDER = "bench"
CASES = ("latency", "rescan", "poll", "upload")
BACKENDS = ("rclone-webdav", "wsgidav", "apache", "nginx", "rclone-s3", "seaweedfs", "local")
#: How often the local file is read while waiting for the change.
READ_EVERY = 0.010
KINDS = ("edit", "new file", "new folder")
POLL_TARGET = 1.0  # seconds, on loopback, for servers without tree ETags (issue 15)
# Spelled out for the linter: an en dash for ranges, the multiplication sign.
DASH = "\u2013"
TIMES = "\u00d7"


def log(msg: str) -> None:
    print(f"[twoway {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, nearest rank (as the other benches report them)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms"


def secs(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


# == latency: a remote change → the local file ====================================================


@dataclass
class Sample:
    kind: str
    #: Seconds from the end of the writer's PUT to the local file holding the new content.
    latency: float | None
    #: From the end of the PUT to the engine's next PROPFIND (None: none seen before it arrived).
    to_poll: float | None = None
    #: From the end of the PUT to the engine's FileDownloaded event reaching this process.
    event: float | None = None
    #: The writer's PUT (and MKCOL) itself.
    put: float = 0.0
    #: ``syncapp rescan`` from spawn to exit (rescan series only).
    cli: float | None = None
    load: str = ""


@dataclass
class Series:
    mode: str
    remote_poll: float
    tree: int
    samples: list[Sample] = field(default_factory=list)
    #: Requests the engine sent during the samples, per method (through the proxy).
    requests: dict[str, int] = field(default_factory=dict)
    #: PROPFINDs the engine sent during the samples, and the seconds they spanned.
    looks: int = 0
    span: float = 0.0
    first_sync: float = 0.0
    load_start: str = ""
    load_end: str = ""
    error: str = ""


def engine_env(home: Path, runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCAPP_CONFIG",)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
        SYNCAPP_LOGLEVEL="WARNING",
    )
    return env


def write_remote_tree(root: Path, count: int) -> dict[str, bytes]:
    """``count`` small files in 10 folders, on the server's disk, before the engine starts."""
    files: dict[str, bytes] = {}
    for i in range(count):
        rel = f"d{i % 10:02d}/f{i:04d}.txt"
        files[rel] = f"first {rel}\n".encode() * 20
        p = root.joinpath(*rel.split("/"))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])
    return files


def wait_content(path: Path, data: bytes, deadline: float) -> float | None:
    """Read ``path`` every 10 ms until it holds ``data``; the monotonic time it did, or None."""
    while True:
        try:
            if path.read_bytes() == data:
                return time.monotonic()
        except OSError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(READ_EVERY)


class Writer:
    """The other machine: changes files on the server directly, with plain WebDAV."""

    def __init__(self, base_url: str, rng: random.Random) -> None:
        self.base = base_url
        self.rng = rng
        self.http = httpx.Client(timeout=30)
        self.new_dirs = 0

    def close(self) -> None:
        self.http.close()

    def url(self, rel: str) -> str:
        return self.base + quote(f"{FOLDER}/{rel}")

    def change(self, i: int, kind: str, existing: list[str]) -> tuple[str, bytes]:
        if kind == "edit":
            rel = self.rng.choice(existing)
        elif kind == "new file":
            rel = f"d{self.rng.randrange(10):02d}/new{i:04d}.txt"
        else:
            self.new_dirs += 1
            folder = f"n{self.new_dirs:03d}"
            self.http.request("MKCOL", self.url(folder) + "/").raise_for_status()
            rel = f"{folder}/new{i:04d}.txt"
        data = f"sample {i} {kind} {self.rng.getrandbits(64):x}\n".encode()
        data *= self.rng.randint(2, 60)
        self.http.put(self.url(rel), content=data).raise_for_status()
        return rel, data


class Engine:
    """``syncapp run --json`` in its own process, with its own HOME; its events timed here."""

    def __init__(
        self,
        work: Path,
        url: str,
        remote_poll: float,
        *,
        direction: str = "both",
        remote_path: str = FOLDER,
    ) -> None:
        self.home = work / "home"
        self.local = work / "local"
        self.local.mkdir(parents=True)
        runtime = Path(tempfile.mkdtemp(prefix="tw-run-"))  # short: the control socket's path
        runtime.chmod(0o700)
        self.runtime = runtime
        self.env = engine_env(self.home, runtime)
        self.cfg = self.home / ".config/syncapp/config.toml"
        self.cfg.parent.mkdir(parents=True)
        self.cfg.write_text(
            f'[remotes.nas]\ntype = "webdav"\nurl = "{url}"\n\n'
            f'[folders.{FOLDER}]\npath = "{self.local}"\nremote = "nas"\n'
            f'remote_path = "{remote_path}"\ndirection = "{direction}"\n'
            f"remote_poll = {remote_poll}\n"
        )
        self.downloaded: dict[str, float] = {}
        #: Uploads finished (path → monotonic time here, and the job's own seconds).
        self.uploaded: dict[str, tuple[float, float]] = {}
        #: Every folder state the engine said, with the monotonic time it reached this process.
        self.states: list[tuple[float, str]] = []
        argv = [sys.executable, "-m", "syncapp.cli", "--config", str(self.cfg), "run", "--json"]
        self.proc = LiveProcess(argv, env=self.env, on_event=self._on_event)

    def _on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "FileDownloaded":
            self.downloaded[str(ev.get("path"))] = time.monotonic()
        elif kind == "JobFinished" and ev.get("op") == "upload":
            self.uploaded[str(ev.get("path"))] = (time.monotonic(), float(ev.get("seconds", 0)))
        elif kind == "FolderStateChanged":
            self.states.append((time.monotonic(), str(ev.get("state"))))

    def start(self) -> None:
        self.proc.start()

    def rescan(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "syncapp.cli", "--config", str(self.cfg), "rescan", FOLDER]
        return subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def stop(self) -> None:
        code, _, _, err = self.proc.stop()
        shutil.rmtree(self.runtime, ignore_errors=True)
        if code not in (0, -signal.SIGTERM):
            log(f"engine exited {code}: {err[-800:]}")


def latency_series(
    work: Path, mode: str, samples: int, remote_poll: float, tree: int, rng: random.Random
) -> Series:
    poll = remote_poll if mode == "latency" else 300.0
    series = Series(mode, poll, tree, load_start=load())
    storage = work / "served"
    files = write_remote_tree(storage / FOLDER, tree)
    with rclone_webdav_server(storage) as server, FaultProxy(server.port) as proxy:
        engine = Engine(work, proxy.url, poll)
        writer = Writer(server.url, rng)
        try:
            t0 = time.monotonic()
            engine.start()
            for rel, data in files.items():  # the first look brings the tree down
                if wait_content(engine.local / rel, data, t0 + 120) is None:
                    raise RuntimeError(f"first sync: {rel} never arrived")
            series.first_sync = time.monotonic() - t0
            log(f"{mode}: {tree} files down in {series.first_sync:.2f} s; sampling")
            time.sleep(1.0)
            proxy.reset_records()
            began = time.monotonic()
            existing = list(files)
            for i in range(samples):
                if not engine.proc.running():
                    raise RuntimeError(f"the engine died: {engine.proc.stderr_tail()[-800:]}")
                # A random phase of the poll cycle (the rescan series: just apart).
                time.sleep(rng.uniform(0, poll) if mode == "latency" else rng.uniform(0.2, 1.0))
                kind = KINDS[i % len(KINDS)]
                start = time.monotonic()
                rel, data = writer.change(i, kind, existing)
                done = time.monotonic()
                cli = engine.rescan() if mode == "rescan" else None
                arrived = wait_content(engine.local / rel, data, done + 3 * poll + 20)
                sample = Sample(kind, None if arrived is None else arrived - done, put=done - start)
                if cli is not None:
                    _, err = cli.communicate(timeout=60)
                    sample.cli = time.monotonic() - done
                    if cli.returncode != 0:
                        log(f"syncapp rescan exited {cli.returncode}: {err.decode()[-300:]}")
                seen = [r.at for r in proxy.records("PROPFIND") if r.at >= done]
                if seen and (arrived is None or seen[0] <= arrived):
                    sample.to_poll = seen[0] - done
                ev = engine.downloaded.get(rel)
                if ev is not None and ev >= done:
                    sample.event = ev - done
                sample.load = load()
                series.samples.append(sample)
                if kind == "new file" or kind == "new folder":
                    existing.append(rel)
                got = "never" if sample.latency is None else ms(sample.latency)
                log(f"{mode} {i + 1}/{samples} {kind}: {got} (load {sample.load})")
            series.span = time.monotonic() - began
            series.requests = dict(proxy.counts())
            series.looks = series.requests.get("PROPFIND", 0)
        except (RuntimeError, OSError, httpx.HTTPError) as e:
            series.error = str(e)
            log(f"{mode} failed: {e}")
        finally:
            writer.close()
            engine.stop()
    series.load_end = load()
    return series


# == upload: a burst of new local files → the server, upload-only vs two-way =======================


@dataclass
class UploadRun:
    server: str
    direction: str
    files: int
    remote_poll: float
    #: Seconds waited after the engine was up to date before writing (a random poll phase).
    phase: float = 0.0
    #: Writing the files locally (the clock below starts at the end of the writes).
    write: float = 0.0
    #: From the end of the writes to the last upload's JobFinished reaching this process.
    on_server: float | None = None
    #: … to the first "up to date" after every upload finished.
    up_to_date: float | None = None
    #: … to the last request of the look that settled the last upload (two-way only).
    settled: float | None = None
    #: … to the first look that began once every upload was due to settle (two-way only).
    settle_look: float | None = None
    #: Requests from the start of the writes until the engine went quiet, per method.
    requests: dict[str, int] = field(default_factory=dict)
    #: Of them, PROPFINDs of the folder itself (one a look) and GETs (the read-backs).
    looks: int = 0
    #: When each look and each GET arrived (seconds after the end of the writes).
    look_times: list[float] = field(default_factory=list)
    get_times: list[float] = field(default_factory=list)
    #: The engine's CPU seconds from the start of the writes until it went quiet.
    cpu: float = 0.0
    #: The slowest upload job and the latest time an upload was due to settle (after the writes).
    slowest_job: float = 0.0
    last_due: float | None = None
    #: Whether the server held every file, byte for byte, at the end.
    exact: bool = False
    load_start: str = ""
    load_end: str = ""
    error: str = ""


UPLOAD_SERVERS = ("rclone-webdav", "apache")
QUIET = 3.0  # seconds without a request after the last expected one: the engine is done


@contextmanager
def upload_server(kind: str, storage: Path) -> Iterator[tuple[ServerProcess, Path]]:
    """The server and the folder on disk it serves (Apache's belongs to www-data)."""
    if kind == "rclone-webdav":
        with rclone_webdav_server(storage) as server:
            yield server, storage
    else:
        with apache_dav_server(storage) as dav:
            yield dav, dav.storage


def cpu_of(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def server_holds(root: Path, local: Path) -> bool:
    """Every file under ``local`` is at ``root``, with the same bytes, and nothing else but
    syncapp's own (``.syncapp-versions/``: a file caught half-written is uploaded again, and
    what that replaced is kept)."""
    mine = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    theirs = {
        r
        for p in root.rglob("*")
        if p.is_file() and not (r := p.relative_to(root).as_posix()).startswith(".syncapp-")
    }
    if mine != theirs:
        return False
    return all((root / r).read_bytes() == (local / r).read_bytes() for r in mine)


def upload_run(
    kind: str,
    server: ServerProcess,
    stored: Path,
    work: Path,
    direction: str,
    args: argparse.Namespace,
    rng: random.Random,
    n: int,
) -> UploadRun:
    """One engine, started on an empty folder and an empty remote folder; once it is up to
    date (two-way: after its first look, and a random phase of its poll cycle), the bench
    writes ``args.upload_files`` files into the folder and watches them go up."""
    run = UploadRun(kind, direction, args.upload_files, args.upload_poll, load_start=load())
    remote = f"{FOLDER}-{n}"
    with httpx.Client(timeout=30) as http:
        http.request("MKCOL", server.url + remote + "/").raise_for_status()
    with FaultProxy(server.port) as proxy:
        engine = Engine(work, proxy.url, args.upload_poll, direction=direction, remote_path=remote)
        root_path = f"/{remote}/"
        try:
            engine.start()
            deadline = time.monotonic() + 60
            while not any(s == "up to date" for _, s in engine.states) or (
                direction == "both" and not [r for r in proxy.records("PROPFIND")]
            ):
                if time.monotonic() > deadline or not engine.proc.running():
                    raise RuntimeError(f"never up to date: {engine.proc.stderr_tail()[-800:]}")
                time.sleep(0.05)
            time.sleep(0.5)
            if direction == "both":  # a random phase of the poll cycle, as a user's burst
                run.phase = rng.uniform(0, args.upload_poll)
                time.sleep(run.phase)
            proxy.reset_records()
            states_before = len(engine.states)
            cpu0 = cpu_of(engine.proc.pid)
            start = time.monotonic()
            make_tree(engine.local, args.upload_files, args.upload_folders, args.upload_size)
            t0 = time.monotonic()
            run.write = t0 - start
            # Every upload finished, then "up to date".
            deadline = t0 + 600
            while len(engine.uploaded) < args.upload_files:
                if time.monotonic() > deadline or not engine.proc.running():
                    raise RuntimeError(
                        f"{len(engine.uploaded)} of {args.upload_files} uploads finished: "
                        f"{engine.proc.stderr_tail()[-800:]}"
                    )
                time.sleep(0.05)
            last = max(at for at, _ in engine.uploaded.values())
            run.on_server = last - t0
            run.slowest_job = max(sec for _, sec in engine.uploaded.values())
            while True:
                after = [at for at, s in engine.states[states_before:] if s == "up to date"]
                after = [at for at in after if at >= last]
                if after:
                    run.up_to_date = after[0] - t0
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("never up to date after the uploads")
                time.sleep(0.05)
            # Then wait for the engine to go quiet: upload only, QUIET s without a request;
            # two-way, the same once a look began after every upload was due to settle
            # (``ownwrites.Upload.finished``), or two poll cycles and QUIET s at most.
            due = max(at + max(2.0, 2 * sec) for at, sec in engine.uploaded.values())
            run.last_due = due - t0 if direction == "both" else None
            give_up = t0 + run.up_to_date + 2 * args.upload_poll + QUIET + 10
            while time.monotonic() < give_up:
                recs = proxy.records()
                quiet = time.monotonic() - (recs[-1].at if recs else t0) >= QUIET
                looked = any(r.method == "PROPFIND" and r.path == root_path and r.at >= due
                             for r in recs)  # fmt: skip
                if quiet and (direction == "upload" or looked):
                    break
                time.sleep(0.1)
            else:
                run.error = "no look came after the uploads were due to settle"
            run.cpu = cpu_of(engine.proc.pid) - cpu0
            recs = proxy.records()
            run.requests = dict(proxy.counts())
            looks = [r.at for r in recs if r.method == "PROPFIND" and r.path == root_path]
            run.looks = len(looks)
            run.look_times = [x - t0 for x in looks]
            run.get_times = [r.at - t0 for r in recs if r.method == "GET"]
            if direction == "both":
                later = [x for x in looks if x >= due]
                if later:
                    run.settle_look = later[0] - t0
                    run.settled = max(r.at for r in recs if r.at >= later[0]) - t0
            run.exact = server_holds(stored / remote, engine.local)
            if not run.exact:
                run.error = run.error or "the server does not hold the folder's files"
        except (RuntimeError, OSError, httpx.HTTPError) as e:
            run.error = str(e)
        finally:
            engine.stop()
    run.load_end = load()
    gets = run.requests.get("GET", 0)
    log(
        f"upload {kind} {direction}: on server {run.on_server}, up to date {run.up_to_date}, "
        f"settled {run.settled}, {run.requests} ({run.looks} looks, {gets} GET), "
        f"cpu {run.cpu:.2f} s, exact {run.exact} (load {run.load_end}) {run.error}"
    )
    return run


def upload_series(work: Path, args: argparse.Namespace, rng: random.Random) -> list[UploadRun]:
    """``args.upload_runs`` rounds; each round runs upload-only then two-way (alternating
    which goes first) on every server, one server process per server for the whole series."""
    runs: list[UploadRun] = []
    servers = [s.strip() for s in args.upload_servers.split(",") if s.strip()]
    n = 0
    for kind in servers:
        with upload_server(kind, work / f"served-{kind}") as (server, stored):
            for i in range(args.upload_runs):
                order = ("upload", "both") if i % 2 == 0 else ("both", "upload")
                for direction in order:
                    n += 1
                    runs.append(
                        upload_run(kind, server, stored, work / f"run{n}", direction, args, rng, n)
                    )
    return runs


# == poll: a no-change poll of a 10,000-file remote, per backend ==================================


@dataclass
class PollResult:
    backend: str
    files: int = 0
    folders: int = 0
    tree_etags: bool | None = None
    cold: float = 0.0
    #: Wall and CPU seconds of each timed no-change poll (straight to the server).
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    #: CPU seconds the server's processes spent on each of them (None for ``local``).
    server_cpu: list[float] = field(default_factory=list)
    #: Requests of one no-change poll, per method (through the proxy); None for ``local``.
    requests: dict[str, int] | None = None
    proxied: list[float] = field(default_factory=list)
    #: The rest of a no-change look: local scan, plan (seconds), and how many actions planned.
    scan: float = 0.0
    plan: float = 0.0
    planned: int = 0
    fill: float = 0.0
    load_start: str = ""
    load_end: str = ""
    error: str = ""


@dataclass
class Target:
    """One backend holding the tree under ``FOLDER``: remotes straight and through the proxy."""

    direct: RemoteConfig
    counted: RemoteConfig | None
    env: dict[str, str]
    proxy: FaultProxy | None
    #: The server's process (its workers are its children); None for ``local``.
    pid: int | None = None


def tree_cpu(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` and its children (Apache's and nginx's workers)."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        top = psutil.Process(pid)
        for proc in [top, *top.children(recursive=True)]:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue  # a worker that just ended
            total += t.user + t.system
    except psutil.Error:
        return 0.0
    return float(total)


DAV: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "rclone-webdav": ("rclone-webdav", rclone_webdav_server),
    "wsgidav": ("wsgidav", wsgidav_server),
    "apache": ("apache-dav", apache_dav_server),
    "nginx": ("nginx-dav", nginx_dav_server),
}
S3: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "rclone-s3": ("rclone-s3", rclone_s3_server),
    "seaweedfs": ("seaweedfs", seaweedfs_server),
}


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def upload_tree(cfg: RemoteConfig, env: dict[str, str], source: Path) -> None:
    """The tree into an object store that has no disk to write to (SeaweedFS)."""
    paths = sorted(p for p in source.rglob("*") if p.is_file())
    limit = asyncio.Semaphore(16)
    async with open_remote(cfg, env=env) as remote:

        async def one(p: Path) -> None:
            async with limit:
                data = p.read_bytes()
                rel = p.relative_to(source).as_posix()
                await remote.put(join(FOLDER, rel), _body(data), size=len(data))

        await asyncio.gather(*map(one, paths))


@contextmanager
def poll_target(kind: str, ctx: BackendContext, source: Path) -> Iterator[Target]:
    if kind == "local":
        root = ctx.fresh_dir("local")
        shutil.copytree(source, root / FOLDER)
        yield Target(LocalRemoteConfig(name="b", type="local", path=str(root)), None, {}, None)
        return
    if kind in DAV:
        server: ServerProcess = ctx.server(*DAV[kind])
        coll = ctx.fresh_name("poll")
        shutil.copytree(source, Path(server.root) / coll / FOLDER)
        server.hand_over(Path(server.root) / coll)  # to www-data, for Apache and nginx
        time.sleep(0.3)  # rclone's directory cache (100 ms in the test servers)
        with FaultProxy(server.port) as proxy:

            def dav(base: str) -> WebDAVRemoteConfig:
                return WebDAVRemoteConfig(name="b", type="webdav", url=f"{base}{coll}/")

            pid = server._proc.pid if server._proc is not None else None
            yield Target(dav(server.url), dav(proxy.url), {}, proxy, pid)
        return
    s3: S3Server = ctx.server(*S3[kind])
    prefix = ctx.fresh_name("poll")

    def bucket(endpoint: str) -> S3RemoteConfig:
        return S3RemoteConfig(
            name="b", type="s3", endpoint=endpoint, bucket=s3.bucket, prefix=prefix
        )

    if s3.root is not None:  # rclone serve s3: a directory per bucket
        shutil.copytree(source, s3.root / s3.bucket / prefix / FOLDER)
    else:
        asyncio.run(upload_tree(bucket(s3.endpoint), s3.env(), source))
    with FaultProxy(s3.port) as proxy:
        pid = s3.proc.pid if s3.proc is not None else None
        yield Target(bucket(s3.endpoint), bucket(proxy.url.rstrip("/")), s3.env(), proxy, pid)


def cpu_now() -> float:
    return time.process_time()


async def timed_polls(target: Target, polls: int, res: PollResult, source: Path) -> Snapshot:
    rules = IgnoreRules(())  # the folder's rules: the defaults, as FolderSync builds them
    async with open_remote(target.direct, env=target.env) as remote:
        res.tree_etags = await probe_tree_etags(remote, FOLDER)
        poller = RemotePoller(remote, FOLDER, rules)  # as RemoteSide builds it
        t = time.perf_counter()
        first = await poller.poll()
        res.cold = time.perf_counter() - t
        for _ in range(polls):
            t, c, sc = time.perf_counter(), cpu_now(), tree_cpu(target.pid)
            snap = await poller.poll()
            res.times.append(time.perf_counter() - t)
            res.cpu.append(cpu_now() - c)
            if target.pid is not None:
                res.server_cpu.append(tree_cpu(target.pid) - sc)
            if snap.entries != first.entries:
                raise RuntimeError(f"{res.backend}: a no-change poll saw another tree")
        # The rest of RemoteSide.look on a no-change poll: the local scan and the plan, against
        # a state as a finished sync leaves it.
        t = time.perf_counter()
        local = (await asyncio.to_thread(scan_tree, str(source), rules)).entries
        res.scan = time.perf_counter() - t
        known = synced_state(local, first)
        t = time.perf_counter()
        plan = plan_twoway(
            known,
            local,
            first.entries,
            server_mtime=remote.capabilities.server_mtime,
            now=time.time(),
            rules=rules,
        )
        res.plan = time.perf_counter() - t
        res.planned = len(plan)
    return first


def synced_state(local: dict[str, Any], snap: Snapshot) -> dict[str, Entry]:
    """The state entries a finished sync records: local size/mtime/ino, the server's ETag and
    mtime."""
    known: dict[str, Entry] = {}
    for p, lo in local.items():
        r = snap.entries.get(p)
        if r is None:
            continue
        etag, rmtime = r.etag, r.mtime_ns
        known[p] = Entry(p, lo.is_dir, lo.size, lo.mtime_ns, lo.ino, etag, time.time(), rmtime)
    return known


async def counted_polls(target: Target, res: PollResult) -> None:
    assert target.counted is not None and target.proxy is not None
    async with open_remote(target.counted, env=target.env) as remote:
        poller = RemotePoller(remote, FOLDER, IgnoreRules(()))
        await poller.poll()
        counts: list[Counter[str]] = []
        for _ in range(2):
            target.proxy.reset_records()
            t = time.perf_counter()
            await poller.poll()
            res.proxied.append(time.perf_counter() - t)
            counts.append(target.proxy.counts())
    if counts[0] != counts[1]:
        log(f"{res.backend}: two no-change polls sent different requests: {counts}")
    res.requests = dict(counts[-1])


def poll_backend(
    kind: str, ctx: BackendContext, source: Path, files: int, folders: int, polls: int
) -> PollResult:
    res = PollResult(kind, load_start=load())
    try:
        t = time.monotonic()
        with poll_target(kind, ctx, source) as target:
            res.fill = time.monotonic() - t
            snap = asyncio.run(timed_polls(target, polls, res, source))
            res.files = sum(1 for e in snap.entries.values() if not e.is_dir)
            res.folders = sum(1 for e in snap.entries.values() if e.is_dir)
            if res.files != files:
                raise RuntimeError(f"{kind}: the poll saw {res.files} files, not {files}")
            if target.counted is not None:
                asyncio.run(counted_polls(target, res))
    except Exception as e:  # one backend's failure is its row's news, not the run's end
        res.error = f"{type(e).__name__}: {e}"
        log(f"poll {kind} failed: {res.error}")
    res.load_end = load()
    med = statistics.median(res.times) if res.times else float("nan")
    log(f"poll {kind}: {res.files} files, median {med:.3f} s, {res.requests} (load {load()})")
    return res


# == report =======================================================================================


def latency_rows(series: list[Series]) -> list[str]:
    lines = [
        "| series | samples | p50 | p95 | max | change → next poll, p50 | poll → file, p50 |"
        " engine requests during the samples | load |",
        "|---|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for mode in ("latency", "rescan"):
        group = [s for s in series if s.mode == mode]
        if not group:
            continue
        got = [x for s in group for x in s.samples]
        lat = [x.latency for x in got if x.latency is not None]
        missed = len(got) - len(lat)
        to_poll = [x.to_poll for x in got if x.to_poll is not None]
        rest = [
            x.latency - x.to_poll for x in got if x.latency is not None and x.to_poll is not None
        ]
        reqs: Counter[str] = Counter()
        for s in group:
            reqs.update(s.requests)
        looks, span = sum(s.looks for s in group), sum(s.span for s in group)
        what = ", ".join(f"{n} {m}" for m, n in sorted(reqs.items()))
        if mode == "latency" and looks:
            what += f" ({looks} looks in {span:.0f} s: one every {span / looks:.1f} s)"
        poll = group[0].remote_poll
        name = (
            f"`remote_poll = {poll:g}`"
            if mode == "latency"
            else f"`syncapp rescan` after the change (`remote_poll = {poll:g}`)"
        )
        loads = [float(x.load.split()[0]) for x in got if x.load]
        lo = f"{min(loads):.1f}{DASH}{max(loads):.1f}" if loads else "?"
        figs = [ms(pct(lat, 50)), ms(pct(lat, 95)), ms(max(lat))] if lat else ["—"] * 3
        lines.append(
            f"| {name} | {len(lat)}{f' ({missed} never)' if missed else ''} | "
            f"{' | '.join(figs)} | "
            f"{ms(statistics.median(to_poll)) if to_poll else '—'} | "
            f"{ms(statistics.median(rest)) if rest else '—'} | {what} | {lo} |"
        )
    return lines


def latency_notes(series: list[Series]) -> list[str]:
    notes: list[str] = []
    for s in series:
        if s.error:
            notes.append(f"{s.mode}: failed: {s.error}")
    for mode in ("latency", "rescan"):
        got = [x for s in series if s.mode == mode for x in s.samples]
        if not got:
            continue
        by_kind = []
        for kind in KINDS:
            lat = [x.latency for x in got if x.kind == kind and x.latency is not None]
            if lat:
                by_kind.append(f"{kind} {ms(statistics.median(lat))}")
        extra = ""
        put = [x.put for x in got]
        ev = [x.event - x.latency for x in got if x.event is not None and x.latency is not None]
        if ev:
            # Within the 10 ms of the bench's reads: the event is said as the file lands.
            lag = statistics.median(ev)
            extra = (
                f"; the FileDownloaded event reached the bench {ms(abs(lag))} "
                f"{'after' if lag >= 0 else 'before'} it read the new content"
            )
        cli = [x.cli for x in got if x.cli is not None]
        if cli:
            extra += f"; `syncapp rescan` took {ms(statistics.median(cli))} (median, spawn to exit)"
        first = [s.first_sync for s in series if s.mode == mode]
        notes.append(
            f"{mode}: p50 by kind: {', '.join(by_kind)}; the writer's PUT took "
            f"{ms(statistics.median(put))}{extra}; first look of {series[0].tree} files: "
            + ", ".join(secs(f) for f in first)
        )
    return notes


def poll_rows(results: list[PollResult], files: int, folders: int) -> list[str]:
    lines = [
        f"| backend | requests per no-change poll | poll, median (min{DASH}max) | "
        f"CPU: syncapp / server | cold poll | look (+ scan + plan) | tree ETags | "
        f"≤ {POLL_TARGET:g} s | load |",
        "|---|---|--:|--:|--:|--:|:-:|:-:|---|",
    ]
    for b in BACKENDS:
        group = [r for r in results if r.backend == b and not r.error]
        if not group:
            errs = [r.error for r in results if r.backend == b and r.error]
            if errs:
                lines.append(f"| {b} | failed: {errs[0][:120]} | | | | | | | |")
            continue
        times = [t for r in group for t in r.times]
        cpu = [c for r in group for c in r.cpu]
        server = [c for r in group for c in r.server_cpu]
        server_cell = ms(statistics.median(server)) if server else "—"
        med = statistics.median(times)
        req = group[-1].requests
        if req is None:
            what = "none (a `scandir` per folder)"
        else:
            what = " + ".join(f"{n} {m}" for m, n in sorted(req.items()))
            if any(r.requests != req for r in group):
                what += " (differs between runs)"
        look = statistics.median([statistics.median(r.times) + r.scan + r.plan for r in group])
        planned = {r.planned for r in group}
        look_cell = ms(look) + ("" if planned == {0} else f" ({planned} actions!)")
        tree = {r.tree_etags for r in group}
        tree_cell = "yes" if tree == {True} else "no" if tree == {False} else "?"
        loads = [x for r in group for x in (r.load_start, r.load_end)]
        lo = sorted(float(x.split()[0]) for x in loads)
        lines.append(
            f"| {b} | {what} | {ms(med)} ({ms(min(times))}{DASH}{ms(max(times))}) | "
            f"{ms(statistics.median(cpu))} / {server_cell} | "
            f"{ms(statistics.median(r.cold for r in group))} | {look_cell} | {tree_cell} | "
            f"{'✓' if med <= POLL_TARGET else '✗'} | {lo[0]:.1f}{DASH}{lo[-1]:.1f} |"
        )
    return lines


def poll_notes(results: list[PollResult]) -> list[str]:
    notes = []
    scans = [r.scan for r in results if not r.error]
    plans = [r.plan for r in results if not r.error]
    if scans:
        notes.append(
            f"local scan of the same tree {ms(statistics.median(scans))}, plan "
            f"{ms(statistics.median(plans))} (medians over the backends)"
        )
    proxied = per_backend(results, lambda r: r.proxied)
    if proxied:
        notes.append(
            "polls through the proxy (the counted ones), median: "
            + ", ".join(f"{b} {ms(t)}" for b, t in proxied)
        )
    fills = per_backend(results, lambda r: [r.fill] if r.fill and not r.error else [])
    if fills:
        notes.append("tree set up in: " + ", ".join(f"{b} {secs(t)}" for b, t in fills))
    return notes


def per_backend(
    results: list[PollResult], values: Callable[[PollResult], list[float]]
) -> list[tuple[str, float]]:
    """The median of ``values`` per backend, over every run, in the table's order."""
    out = []
    for b in BACKENDS:
        got = [v for r in results if r.backend == b for v in values(r)]
        if got:
            out.append((b, statistics.median(got)))
    return out


def med(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def span(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    mid = secs(statistics.median(got))
    return mid if len(got) == 1 else f"{mid} ({secs(min(got))}{DASH}{secs(max(got))})"


def upload_rows(runs: list[UploadRun]) -> list[str]:
    lines = [
        "| server | direction | runs | files | on the server | up to date | settled "
        "| requests (median a run) | engine CPU | load |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    for server in UPLOAD_SERVERS:
        for direction in ("upload", "both"):
            group = [r for r in runs if r.server == server and r.direction == direction]
            if not group:
                continue
            ok = [r for r in group if not r.error]
            bad = len(group) - len(ok)
            methods = sorted({m for r in group for m in r.requests})
            what = ", ".join(
                f"{statistics.median(r.requests.get(m, 0) for r in group):g} {m}" for m in methods
            )
            looks = statistics.median(r.looks for r in group)
            if direction == "both":
                what += f" ({looks:g} looks)"
            loads = [float(x.split()[0]) for r in group for x in (r.load_start, r.load_end)]
            lines.append(
                f"| {server} | `{direction}` | {len(group)}{f' ({bad} failed)' if bad else ''} "
                f"| {group[0].files:,} | {span([r.on_server for r in group])} "
                f"| {span([r.up_to_date for r in group])} "
                f"| {span([r.settled for r in group]) if direction == 'both' else '—'} "
                f"| {what} | {span([r.cpu for r in group])} "
                f"| {min(loads):.1f}{DASH}{max(loads):.1f} |"
            )
    return lines


def upload_notes(runs: list[UploadRun]) -> list[str]:
    notes = []
    for server in UPLOAD_SERVERS:
        up = [r for r in runs if r.server == server and r.direction == "upload"]
        both = [r for r in runs if r.server == server and r.direction == "both"]
        if not up or not both:
            continue
        parts = []
        for name, get in (
            ("up to date", lambda r: r.up_to_date),
            ("engine CPU", lambda r: r.cpu),
            ("requests", lambda r: float(sum(r.requests.values()))),
        ):
            a, b = med([get(r) for r in up]), med([get(r) for r in both])
            if a and b is not None:
                parts.append(f"{name} {b / a:.2f}{TIMES}")
        gets = [r.requests.get("GET", 0) for r in both]
        late = [
            r.settle_look - r.last_due
            for r in both
            if r.settle_look is not None and r.last_due is not None
        ]
        note = f"{server}: both/upload (medians): {', '.join(parts)}; GETs per two-way run: {gets}"
        if late:
            note += (
                f"; the settling look began {', '.join(secs(x) for x in late)} after the last "
                f"upload was due to settle (random phases {', '.join(secs(r.phase) for r in both)})"
            )
        notes.append(note)
    for r in runs:
        if r.error:
            notes.append(f"{r.server} {r.direction}: failed: {r.error}")
    return notes


def render(raw: list[dict[str, Any]]) -> str:
    first = raw[0]
    machine: dict[str, str] = first["machine"]
    series = [
        Series(**{**s, "samples": [Sample(**x) for x in s["samples"]]})
        for r in raw
        for s in r["series"]
    ]
    polls = [PollResult(**p) for r in raw for p in r["polls"]]
    uploads = [UploadRun(**u) for r in raw for u in r.get("uploads", [])]
    dates = sorted({r["date"] for r in raw})
    out = [
        f"# Two-way benchmarks ({len(raw)} run{'s' if len(raw) > 1 else ''}: {', '.join(dates)})",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        *(
            f"- run {i + 1}: load at start {r['load_start']}, at end {r['load_end']}"
            for i, r in enumerate(raw)
        ),
    ]
    if series:
        tree = series[0].tree
        out += [
            "",
            f"## Remote change → local file (rclone serve webdav, a tree of {tree} files)",
            "",
            *latency_rows(series),
            "",
            *(f"- {n}" for n in latency_notes(series)),
        ]
    if polls:
        files, folders = first["files"], first["folders"]
        out += [
            "",
            f"## A no-change poll of {files:,} files in {folders} folders "
            f"(medians of {sum(len(p.times) for p in polls) // max(1, len(polls))} polls "
            f"{TIMES} {len(raw)} run{'s' if len(raw) > 1 else ''})",
            "",
            *poll_rows(polls, files, folders),
            "",
            *(f"- {n}" for n in poll_notes(polls)),
        ]
    if uploads:
        u = uploads[0]
        out += [
            "",
            f"## {u.files:,} new local files → the server, upload-only vs two-way "
            f"(`remote_poll = {u.remote_poll:g}`)",
            "",
            *upload_rows(uploads),
            "",
            *(f"- {n}" for n in upload_notes(uploads)),
        ]
    return "\n".join(out)


# == main =========================================================================================


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.twoway",
        description="Two-way sync: remote change → local file latency, and no-change poll cost.",
    )
    p.add_argument(
        "--only",
        default=",".join(CASES),
        help=f"cases, comma-separated: {', '.join(CASES)} (default: all)",
    )
    p.add_argument("--samples", type=int, default=40, help="changes per latency series (40)")
    p.add_argument(
        "--rescan-samples", type=int, default=30, help="changes in the rescan series (30)"
    )
    p.add_argument("--remote-poll", type=float, default=5.0, help="remote_poll seconds (5)")
    p.add_argument("--tree", type=int, default=100, help="files on the remote (latency) (100)")
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"for the poll case, comma-separated: {', '.join(BACKENDS)} (default: all)",
    )
    p.add_argument("--files", type=int, default=10_000, help="files for the poll case (10000)")
    p.add_argument("--folders", type=int, default=100, help="folders they are in (100)")
    p.add_argument("--polls", type=int, default=5, help="timed no-change polls per backend (5)")
    p.add_argument("--upload-files", type=int, default=1000, help="upload case: files (1000)")
    p.add_argument("--upload-folders", type=int, default=10, help="… in folders (10)")
    p.add_argument("--upload-size", type=int, default=4096, help="… of bytes each (4096)")
    p.add_argument("--upload-runs", type=int, default=3, help="rounds per server (3)")
    p.add_argument("--upload-poll", type=float, default=30.0, help="remote_poll (the default: 30)")
    p.add_argument(
        "--upload-servers",
        default=",".join(UPLOAD_SERVERS),
        help=f"for the upload case: {', '.join(UPLOAD_SERVERS)} (default: both)",
    )
    p.add_argument("--seed", type=int, default=15, help="for phases, kinds and contents")
    p.add_argument("--json-out", type=Path, default=None, help="also write every sample here")
    p.add_argument(
        "--report-from",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="print the report of earlier runs' --json-out (pooled), running nothing",
    )
    p.add_argument("--workdir", type=Path, default=None, help="where the temp dir goes")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    return p


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.report_from is not None:
        print(render([json.loads(p.read_text()) for p in args.report_from]))
        return 0
    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(cases) <= set(CASES) or not set(backends) <= set(BACKENDS):
        raise SystemExit(f"--only takes {', '.join(CASES)}; --backends {', '.join(BACKENDS)}")
    signal.signal(signal.SIGTERM, _terminate)
    rng = random.Random(args.seed)
    machine = machine_info(rclone_binary(), REPO)
    compileall.compile_dir(REPO / "syncapp", quiet=1)  # the engine runs from bytecode
    raw: dict[str, Any] = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "load_start": load(),
        "files": args.files,
        "folders": args.folders,
        "series": [],
        "polls": [],
        "uploads": [],
    }

    def save() -> None:
        if args.json_out is not None:
            args.json_out.write_text(json.dumps(raw, indent=1))

    work = Path(tempfile.mkdtemp(prefix="twoway-", dir=args.workdir))
    series: list[Series] = []
    polls: list[PollResult] = []
    uploads: list[UploadRun] = []
    try:
        for mode in ("latency", "rescan"):
            if mode in cases:
                n = args.samples if mode == "latency" else args.rescan_samples
                series.append(
                    latency_series(work / mode, mode, n, args.remote_poll, args.tree, rng)
                )
                raw["series"] = [dataclasses.asdict(s) for s in series]
                save()
        if "poll" in cases:
            source = work / "tree"
            log(f"writing {args.files:,} files in {args.folders} folders")
            make_tree(source, args.files, args.folders, 1024)
            ctx = BackendContext(work / "servers")
            (work / "servers").mkdir()
            try:
                for b in backends:
                    polls.append(poll_backend(b, ctx, source, args.files, args.folders, args.polls))
                    raw["polls"] = [dataclasses.asdict(p) for p in polls]
                    save()
            finally:
                ctx.close()
        if "upload" in cases:
            uploads = upload_series(work / "upload", args, rng)
            raw["uploads"] = [dataclasses.asdict(u) for u in uploads]
            save()
    finally:
        kill_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    raw["load_end"] = load()
    save()
    print(render([raw]), flush=True)
    bad = any(s.error or any(x.latency is None for x in s.samples) for s in series)
    bad = bad or any(p.error for p in polls) or any(u.error for u in uploads)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
