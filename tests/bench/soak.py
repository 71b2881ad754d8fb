"""Soak: N minutes of ``syncapp run`` against ``rclone serve webdav`` under random local churn.

Not collected by pytest (``--ignore=tests/bench``). Run from the repository root:

    .venv/bin/python -m tests.bench.soak --minutes 30

A child ``syncapp --config C run --json`` mirrors a folder while this script creates, edits,
appends to, renames and deletes files and folders at random (seeded). Every few seconds it
samples the child's RSS and open file descriptors (psutil). At the end it stops the churn, waits
for the remote to equal the local folder (and syncapp to say "up to date"), stops syncapp with
SIGTERM and prints a summary: operations, events, time to converge, exactness, and RSS / fds at
start (right after the first sync), end and peak, plus one row per minute to show whether they
stay flat.

Exit status: 0 when the remote ended exact with no leftover temporary uploads, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import staging_leftovers, tree
from tests.servers.webdav import rclone_webdav_process

MiB = 1024 * 1024


@dataclass
class Sample:
    t: float  #: seconds since syncapp started
    rss: int
    fds: int
    ops: int


@dataclass
class Churn:
    """Random changes to a folder; keeps its own view of which files and folders exist."""

    root: Path
    rnd: random.Random
    ops: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    def _files(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file()]

    def _dirs(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_dir()]

    def _name(self, stem: str = "f") -> str:
        self.serial += 1
        odd = self.rnd.choice(["", " space", "#", "%", "ü", "&+"])
        return f"{stem}{self.serial}{odd}"

    def _size(self) -> int:
        r = self.rnd.random()
        if r < 0.1:
            return 0
        if r < 0.97:
            return self.rnd.randint(1, 64 * 1024)
        return self.rnd.randint(1, 8) * MiB  # now and then a big one

    def _place(self) -> Path:
        dirs = [self.root, *self._dirs()]
        return self.rnd.choice(dirs)

    def seed_tree(self, files: int) -> None:
        for i in range(files // 10):
            (self.root / f"dir{i}" / "sub").mkdir(parents=True, exist_ok=True)
        for _ in range(files):
            self.create()
        self.ops.clear()

    def create(self) -> None:
        p = self._place() / (self._name() + ".bin")
        p.write_bytes(self.rnd.randbytes(self._size()))
        self.ops["create"] += 1

    def step(self) -> None:
        files = self._files()
        dirs = self._dirs()
        r = self.rnd.random()
        try:
            if r < 0.30 or not files:
                self.create()
            elif r < 0.50:
                p = self.rnd.choice(files)
                p.write_bytes(self.rnd.randbytes(self._size()))
                self.ops["edit"] += 1
            elif r < 0.60:
                with self.rnd.choice(files).open("ab") as fh:
                    fh.write(self.rnd.randbytes(self.rnd.randint(1, 4096)))
                self.ops["append"] += 1
            elif r < 0.72:
                src = self.rnd.choice(files)
                src.rename(self._place() / (self._name("r") + ".bin"))
                self.ops["rename file"] += 1
            elif r < 0.85:
                self.rnd.choice(files).unlink()
                self.ops["delete file"] += 1
            elif r < 0.91:
                (self._place() / self._name("d")).mkdir()
                self.ops["mkdir"] += 1
            elif r < 0.96 and dirs:
                d = self.rnd.choice(dirs)
                d.rename(d.parent / self._name("rd"))
                self.ops["rename dir"] += 1
            elif dirs:
                # Only small folders: a big one would rightly trip the delete guard.
                small = [d for d in dirs if sum(1 for _ in d.rglob("*")) <= 5]
                if small:
                    shutil.rmtree(self.rnd.choice(small))
                    self.ops["delete dir"] += 1
        except (FileNotFoundError, OSError):
            self.ops["raced"] += 1  # the chosen path moved meanwhile; harmless


class Events(threading.Thread):
    """Reads the child's JSON events; counts them and remembers the last folder state."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.counts: Counter[str] = Counter()
        self.state = ""
        self.failures: list[str] = []

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event", "?")
            self.counts[kind] += 1
            if kind == "FolderStateChanged":
                self.state = ev.get("state", "")
            elif kind == "JobFailed" and len(self.failures) < 20:
                self.failures.append(f"{ev.get('path')}: {ev.get('error')}")


def sample(proc: psutil.Process, t0: float, ops: int) -> Sample:
    with proc.oneshot():
        return Sample(time.monotonic() - t0, proc.memory_info().rss, proc.num_fds(), ops)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def mib(n: int) -> str:
    return f"{n / MiB:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", type=int, default=300, help="files in the starting tree")
    ap.add_argument("--rate", type=float, default=5.0, help="changes per second (average)")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS/fd samples")
    ap.add_argument("--settle-timeout", type=float, default=300.0)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="syncapp-soak-"))
    folder, storage = work / "docs", work / "storage"
    folder.mkdir()
    env = {
        **os.environ,
        **{
            v: str(work / "xdg" / v.lower())
            for v in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
        },
    }
    churn = Churn(folder, random.Random(args.seed))
    churn.seed_tree(args.files)
    samples: list[Sample] = []
    exact = False
    converge = float("nan")
    initial = float("nan")
    stop_seconds = float("nan")
    code = 0
    with rclone_webdav_process(storage) as server:
        cfg = work / "config.toml"
        cfg.write_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{server.url}"\n\n'
            f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
        )
        remote = storage / "Docs"
        stderr = (work / "syncapp.stderr").open("w")
        child = subprocess.Popen(
            [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run", "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        events = Events(child)
        events.start()
        ps = psutil.Process(child.pid)
        t0 = time.monotonic()
        print(f"soak: {args.minutes:g} min, seed {args.seed}, work dir {work}", flush=True)
        try:
            # The first sync of the starting tree, then the churn from a synced state.
            while events.state != "up to date" and child.poll() is None:
                if time.monotonic() - t0 > args.settle_timeout:
                    raise SystemExit("soak: the first sync never finished")
                time.sleep(0.1)
            initial = time.monotonic() - t0
            t0 = time.monotonic()
            samples.append(sample(ps, t0, 0))
            print(
                f"  first sync of {args.files} files: {initial:.1f} s, RSS "
                f"{mib(samples[0].rss)} MiB, {samples[0].fds} fds",
                flush=True,
            )
            end = t0 + args.minutes * 60
            next_sample = t0 + args.sample
            next_report = t0 + 60
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    samples.append(sample(ps, t0, churn.ops.total()))
                    next_sample += args.sample
                if now >= next_report:
                    s = samples[-1]
                    print(
                        f"  {s.t / 60:5.1f} min: {s.ops} changes, RSS {mib(s.rss)} MiB, "
                        f"{s.fds} fds, state {events.state!r}",
                        flush=True,
                    )
                    next_report += 60
                if child.poll() is not None:
                    print("soak: syncapp exited early!", file=sys.stderr)
                    break
                churn.step()
                time.sleep(churn.rnd.expovariate(args.rate))
            # Quiet now: wait for the remote to catch up.
            quiet = time.monotonic()
            deadline = quiet + args.settle_timeout
            local_view = tree(folder, synced_only=True)
            while time.monotonic() < deadline and child.poll() is None:
                if (
                    events.state == "up to date"
                    and tree(remote) == local_view
                    and not staging_leftovers(storage)
                ):
                    exact = True
                    converge = time.monotonic() - quiet
                    break
                time.sleep(0.5)
            samples.append(sample(ps, t0, churn.ops.total()))
        finally:
            stopping = time.monotonic()
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            stop_seconds = time.monotonic() - stopping
            events.join(5)
            stderr.close()

    if not exact:
        code = 1
        local_view = tree(folder, synced_only=True)
        remote_view = tree(storage / "Docs")
        missing = sorted(set(local_view) - set(remote_view))[:10]
        extra = sorted(set(remote_view) - set(local_view))[:10]
        differ = sorted(
            k for k in set(local_view) & set(remote_view) if local_view[k] != remote_view[k]
        )[:10]
        print(f"NOT EXACT: missing {missing} extra {extra} differ {differ}")
        print(f"leftovers: {staging_leftovers(storage)[:10]}; last state {events.state!r}")
        for f in events.failures[-10:]:
            print(f"  failed: {f}")

    warm = [s for s in samples if s.t >= 60] or samples  # t counts from the end of the 1st sync
    first, last = samples[0], samples[-1]
    print()
    # One row per minute (the first sample past each minute mark), plus the first and last.
    rows = [
        s
        for s in samples
        if s is first or s is last or int(s.t // 60) != int((s.t - args.sample) // 60)
    ]
    print(
        table(
            [[f"{s.t / 60:.1f}", str(s.ops), mib(s.rss), str(s.fds)] for s in rows],
            ["minute", "changes", "RSS MiB", "fds"],
        )
    )
    print()
    kinds = ", ".join(f"{k} {v}" for k, v in churn.ops.most_common())
    summary = [
        ["duration", f"{args.minutes:g} min"],
        ["local changes", f"{churn.ops.total()} ({kinds})"],
        ["files at end", str(sum(1 for v in tree(folder).values() if v != "<dir>"))],
        ["syncapp events", ", ".join(f"{k} {v}" for k, v in events.counts.most_common(6))],
        ["converged after churn", f"{converge:.1f} s" if exact else "NO"],
        ["remote exact", "yes" if exact else "NO"],
        ["stop on SIGTERM", f"{stop_seconds:.1f} s, exit {child.returncode}"],
        ["first sync", f"{initial:.1f} s"],
        [
            "RSS start / end / max MiB",
            f"{mib(first.rss)} / {mib(last.rss)} / {mib(max(s.rss for s in samples))}",
        ],
        [
            "RSS after 1st minute: min / max MiB",
            f"{mib(min(s.rss for s in warm))} / {mib(max(s.rss for s in warm))}",
        ],
        ["fds start / end / max", f"{first.fds} / {last.fds} / {max(s.fds for s in samples)}"],
    ]
    width = max(len(k) for k, _ in summary)
    for k, v in summary:
        print(f"{k:<{width}}  {v}")
    if args.keep or code:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
