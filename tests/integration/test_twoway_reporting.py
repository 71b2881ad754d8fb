"""What two-way sync tells its views: downloads reported as jobs (so they can be shown in
flight and rated) and a guard tripped by deletes made on the remote, said in those words by the
event, ``status`` and ``why``. One engine on a ``local`` remote (and once on rclone serve
webdav behind a fault proxy)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

from syncapp.config import parse_config
from syncapp.engine import (
    Event,
    FileDownloaded,
    FolderState,
    GuardTripped,
    JobFailed,
    JobFinished,
    JobProgressed,
    JobStarted,
    Op,
    SyncEngine,
)
from syncapp.headless import format_event
from tests.helpers import syncapp, write_tree
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import rclone_webdav_server


def two_way_config(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(config file, local folder, the remote's copy of it) for one two-way folder."""
    folder, store = tmp_path / "docs", tmp_path / "store"
    folder.mkdir()
    (store / "Docs").mkdir(parents=True)
    text = (
        f'[remotes.r]\ntype = "local"\npath = "{store}"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
        'direction = "both"\nremote_poll = 0.3\n'
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, folder, store / "Docs"


async def until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_a_download_is_reported_as_a_job_then_as_downloaded(tmp_path: Path) -> None:
    conf, folder, remote = two_way_config(tmp_path)
    events: list[Event] = []
    async with SyncEngine(parse_config(conf.read_text(), conf), tmp_path / "state.db") as engine:
        engine.subscribe(events.append)
        data = os.urandom(3 << 20)
        (remote / "big.bin").write_bytes(data)
        await until(lambda: any(isinstance(e, FileDownloaded) for e in events))
    assert (folder / "big.bin").read_bytes() == data
    mine = [e for e in events if getattr(e, "path", None) == "big.bin"]
    kinds = [type(e) for e in mine if not isinstance(e, JobProgressed)]
    assert kinds == [JobStarted, JobFinished, FileDownloaded], kinds
    started, finished = mine[0], mine[-2]
    assert isinstance(started, JobStarted) and isinstance(finished, JobFinished)
    assert (started.op, started.size) == (Op.DOWNLOAD, len(data))
    assert (finished.op, finished.size) == (Op.DOWNLOAD, len(data))
    for e in mine:
        if isinstance(e, JobProgressed):
            assert e.op is Op.DOWNLOAD and 0 < e.done <= len(data) and e.size == len(data)
    # One log line per download (FileDownloaded's); JSON says which way the job went.
    lines = [line for e in mine if (line := format_event(e)) is not None]
    assert len(lines) == 1 and "downloaded big.bin (3.0 MiB" in lines[0]
    assert finished.to_dict()["op"] == "download"
    assert not any(isinstance(e, JobStarted) and e.op is Op.UPLOAD for e in events)


async def test_a_remote_wipe_trips_the_guard_downward(tmp_path: Path) -> None:
    conf, folder, remote = two_way_config(tmp_path)
    write_tree(folder, {f"f{i:02}.txt": f"file {i}\n" for i in range(12)})
    events: list[Event] = []
    config = parse_config(conf.read_text(), conf)
    async with SyncEngine(config, tmp_path / "state.db") as engine:
        engine.subscribe(events.append)
        await until(lambda: len(list(remote.iterdir())) == 12)
        for p in remote.iterdir():
            p.unlink()
        await until(lambda: engine.status()["docs"].state is FolderState.PAUSED)
    trips = [e for e in events if isinstance(e, GuardTripped)]
    assert trips and trips[-1].direction == "down"
    assert trips[-1].reason == (
        "12 of 12 files were deleted on the remote; "
        "nothing is moved to the trash here until you decide"
    )
    assert json.loads(json.dumps(trips[-1].to_dict()))["direction"] == "down"
    assert len(list(folder.iterdir())) == 12


def test_status_and_why_say_the_deletes_came_from_the_remote(tmp_path: Path) -> None:
    conf, folder, remote = two_way_config(tmp_path)
    write_tree(folder, {f"f{i:02}.txt": f"file {i}\n" for i in range(12)})
    first = syncapp("--config", str(conf), "run", "--once")
    assert first.returncode == 0, first.stderr + first.stdout
    assert len(list(remote.iterdir())) == 12
    for p in remote.iterdir():
        p.unlink()
    held = syncapp("--config", str(conf), "run", "--once")
    assert held.returncode == 1, held.stdout + held.stderr
    assert "12 of 12 files were deleted on the remote" in held.stdout + held.stderr
    assert len(list(folder.iterdir())) == 12

    status = syncapp("--config", str(conf), "status").stdout
    assert (
        "paused by the delete guard: 12 file(s) deleted on the remote wait: in the UI, move "
        "them to the trash here or restore them to the remote" in status
    ), status
    why = syncapp("--config", str(conf), "why", "docs", "f03.txt").stdout
    assert "guard: 12 of 12 files were deleted on the remote; nothing is moved to the trash" in why


async def test_a_download_keeps_to_the_bandwidth_limit_and_reports_progress(
    tmp_path: Path,
) -> None:
    conf, folder, remote = two_way_config(tmp_path)
    data = os.urandom(2 << 20)
    text = conf.read_text().replace('type = "local"\n', 'type = "local"\nbwlimit = "512KiB/s"\n')
    conf.write_text(text)
    events: list[Event] = []
    async with SyncEngine(parse_config(text, conf), tmp_path / "state.db") as engine:
        engine.subscribe(events.append)
        (remote / "slow.bin").write_bytes(data)
        await until(lambda: any(isinstance(e, FileDownloaded) for e in events))
    assert (folder / "slow.bin").read_bytes() == data
    finished = next(e for e in events if isinstance(e, JobFinished) and e.op is Op.DOWNLOAD)
    # 2 MiB at 512 KiB/s, the first second's worth at once: at least ~3 s.
    assert finished.seconds >= 2.5
    progress = [e for e in events if isinstance(e, JobProgressed) and e.op is Op.DOWNLOAD]
    assert len(progress) >= 2
    # (The rate so far starts above the limit: the first second's worth goes at once.)
    assert 0 < progress[-1].rate < 1024 * 1024
    assert [e.done for e in progress] == sorted(e.done for e in progress)


async def test_a_failed_download_is_a_failed_job_tried_again_at_the_next_look(
    tmp_path: Path,
) -> None:
    """Through a proxy that answers 503 to every GET, then lets them through: the download
    fails as a job (said with its retry), and the next look brings the file down."""
    with rclone_webdav_server(tmp_path / "rclone") as server, FaultProxy(server.port) as proxy:
        url = proxy.url.rstrip("/") + "/" + server.url.split("/", 3)[3]
        folder = tmp_path / "docs"
        folder.mkdir()
        (server.root / "Docs").mkdir(parents=True)
        text = (
            f'[remotes.r]\ntype = "webdav"\nurl = "{url}"\n\n'
            f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
            'direction = "both"\nremote_poll = 0.3\n'
        )
        conf = tmp_path / "config.toml"
        conf.write_text(text)
        events: list[Event] = []
        async with SyncEngine(parse_config(text, conf), tmp_path / "state.db") as engine:
            engine.subscribe(events.append)
            proxy.answer(503, methods=["GET"])
            (server.root / "Docs" / "x.txt").write_text("from the remote\n")
            await until(lambda: any(isinstance(e, JobFailed) for e in events))
            proxy.clear()
            await until(lambda: any(isinstance(e, FileDownloaded) for e in events))
    assert (folder / "x.txt").read_text() == "from the remote\n"
    jobs = [e for e in events if isinstance(e, JobStarted | JobFailed | JobFinished)]
    assert all(e.op is Op.DOWNLOAD and e.path == "x.txt" for e in jobs), jobs
    kinds = [type(e) for e in jobs]
    assert kinds[:2] == [JobStarted, JobFailed] and kinds[-2:] == [JobStarted, JobFinished]
    failed = next(e for e in jobs if isinstance(e, JobFailed))
    assert "503" in failed.error and failed.retry_at is not None
    line = format_event(failed)
    assert line is not None and "download x.txt failed" in line and "retrying in" in line
