"""The engine without the UI: ``run`` (live or ``--once``) with its events as log lines or
JSON lines, and the exit status of a ``--once`` run.

The command line and ``syncapp demo --headless`` run the engine through here; neither this
module nor the engine imports the command line or the UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from syncapp.config import Config
from syncapp.engine import (
    ConfigChanged,
    ConflictKept,
    Event,
    FileDownloaded,
    FileTrashed,
    FolderState,
    FolderStateChanged,
    GuardTripped,
    JobFailed,
    JobFinished,
    Op,
    PathSkipped,
    RemoteOffline,
    RemoteOnline,
    RenamedLocally,
    ScanFinished,
    SyncEngine,
)
from syncapp.engine.api import EngineAPI, LocalEngine

EXIT_OK = 0
EXIT_FAILED = 1


def _human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def format_event(ev: Event) -> str | None:
    """One readable log line for an event, or None for events too chatty to log."""
    ts = time.strftime("%H:%M:%S", time.localtime(ev.at))
    f = ev.folder
    if isinstance(ev, JobFinished):
        ms = ev.seconds * 1000
        if ev.op is Op.UPLOAD:
            return f"{ts} {f}: uploaded {ev.path} ({_human_size(ev.size)}, {ms:.0f} ms)"
        if ev.op is Op.DELETE:
            return f"{ts} {f}: deleted {ev.path}"
        if ev.op is Op.MOVE:
            return f"{ts} {f}: moved {ev.path} -> {ev.dest}"
        if ev.op is Op.MKDIR:
            return f"{ts} {f}: created folder {ev.path}"
        # A download's line is FileDownloaded's (or ConflictKept's, for a conflict copy).
    if isinstance(ev, JobFailed):
        tail = ""
        if ev.retry_at is not None:
            tail = f"; retrying in {max(0.0, ev.retry_at - time.time()):.1f} s"
        return f"{ts} {f}: {ev.op.value} {ev.path} failed: {ev.error}{tail}"
    if isinstance(ev, FolderStateChanged):
        return f"{ts} {f}: {ev.state.value}" + (f" ({ev.reason})" if ev.reason else "")
    if isinstance(ev, ScanFinished):
        return (
            f"{ts} {f}: scanned {ev.files} files in {ev.dirs} folders in {ev.seconds:.2f} s,"
            f" {ev.changes} to sync"
        )
    if isinstance(ev, PathSkipped):
        return f"{ts} {f}: skipped {ev.path}: {ev.reason}"
    if isinstance(ev, ConflictKept):
        return f"{ts} {f}: conflict: {ev.path} changed remotely too; remote copy kept as {ev.copy}"
    if isinstance(ev, FileDownloaded):
        ms = ev.seconds * 1000
        return f"{ts} {f}: downloaded {ev.path} ({_human_size(ev.size)}, {ms:.0f} ms)"
    if isinstance(ev, FileTrashed):
        return f"{ts} {f}: deleted on the remote: {ev.path} moved to the trash ({ev.where})"
    if isinstance(ev, RenamedLocally):
        return f"{ts} {f}: renamed on the remote: {ev.path} -> {ev.dest}"
    if isinstance(ev, RemoteOffline):
        return f"{ts} {f}: remote offline: {ev.error}"
    if isinstance(ev, RemoteOnline):
        return f"{ts} {f}: remote back online"
    if isinstance(ev, GuardTripped):
        sample = ", ".join(ev.sample[:5])
        return f"{ts} {f}: delete guard: {ev.reason} (e.g. {sample})"
    if isinstance(ev, ConfigChanged):
        return f"{ts} config changed: {ev.summary()}"
    return None


# A tab or newline in a file name must not break (or forge) a log line.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {9: "\\t", 10: "\\n", 13: "\\r"}


class EventPrinter:
    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def __call__(self, ev: Event) -> None:
        if self.as_json:
            self.out.write(json.dumps(ev.to_dict(), ensure_ascii=False) + "\n")
        else:
            line = format_event(ev)
            if line is None:
                return
            self.out.write(line.translate(_CONTROLS) + "\n")
        self.out.flush()


async def run_engine(
    config: Config,
    *,
    once: bool,
    as_json: bool = False,
    allow_mass_delete: bool = False,
    bwlimit: str = "",
    state_path: Path | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    engine = SyncEngine(
        config,
        state_path,
        live=not once,
        allow_mass_delete=allow_mass_delete,
        bwlimit=bwlimit,
        control=not once,
    )
    engine.subscribe(EventPrinter(out, as_json))
    api = LocalEngine(engine)  # what the control API serves
    async with api:
        if once:
            idle = asyncio.create_task(engine.wait_idle())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({idle, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for t in (idle, stopper):
                t.cancel()
            if stop.is_set():
                return 130
            return await summarize(api, out=sys.stderr)
        stopper = asyncio.create_task(stop.wait())
        # Serving runs the control API's folder changes in this task (it ends on `stop`).
        serving = asyncio.create_task(api.serve())
        await asyncio.wait({stopper, serving}, return_when=asyncio.FIRST_COMPLETED)
        api.close()
        stopper.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        if not as_json:
            out.write("syncapp: stopping…\n")
            out.flush()
    return EXIT_OK


async def summarize(api: EngineAPI, out: TextIO) -> int:
    code = EXIT_OK
    for name, info in (await api.folders()).items():
        st = info.status
        if st is None:
            code = EXIT_FAILED
            out.write(f"syncapp: folder {name}: cannot open: {info.open_error}\n")
            continue
        if st.state is FolderState.UP_TO_DATE and not st.failed:
            continue
        code = EXIT_FAILED
        why = st.reason or st.state.value
        extra = f"; {st.failed} failed" if st.failed and "failed" not in why else ""
        if info.guard_deletes:
            extra += "; run with --allow-mass-delete to let them through"
        out.write(f"syncapp: folder {name}: {st.state.value}: {why}{extra}\n")
    return code
