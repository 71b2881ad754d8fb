"""syncapp against real WebDAV servers behind a fault-injection proxy (tests/servers/faultproxy.py).

What must hold on a bad day: after 503/429 answers, resets mid-request and mid-response and
stalls, the remote ends exactly equal to the local folder within three ``run --once`` runs, and no
reader ever sees a torn file under its real name; retries are bounded (requests are counted in the
proxy) and spaced (``Retry-After`` honoured, measured between request arrivals); a server that is
down at start or dies mid-run turns the folder ``offline`` and it catches up by itself; 401 and 507
stop the folder with a clear error and no retry storm; 423 is retried; 409 (parent gone) recreates.

Timing: only lower bounds are asserted (retry spacing). Catch-up times are measured and printed
(``pytest -s``) and recorded as test properties, never asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.engine import FolderState, SyncEngine
from tests.helpers import TornWatch, staging_leftovers, syncapp, tree, wait_for, write_tree
from tests.servers import free_port
from tests.servers.faultproxy import FaultProxy, Record
from tests.servers.webdav import ServerProcess, rclone_webdav_process, wsgidav_process

SERVERS: dict[str, Callable[..., ServerProcess]] = {
    "rclone": rclone_webdav_process,
    "wsgidav": wsgidav_process,
}
STAGING = ".syncapp-tmp-"


def write_config(
    tmp_path: Path, url: str, folder: Path, *, remote_extra: str = "", folder_extra: str = ""
) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "webdav"\nurl = "{url}"\n{remote_extra}\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n{folder_extra}',
        encoding="utf-8",
    )
    return cfg


def content(root: Path) -> dict[str, str]:
    """``tree(root)`` without staging names (see test_failed_cleanup_leaves_no_staging_file)."""
    return {k: v for k, v in tree(root).items() if STAGING not in k}


def random_tree(folder: Path, rnd: random.Random, files: int) -> dict[str, str]:
    """Files of 0 to 200 KiB in a few folders plus one of 3 MiB; returns their digests."""
    data: dict[str, bytes | str] = {
        f"d{i % 4}/sub {i % 3}/f #{i}.bin": rnd.randbytes(rnd.choice([0, 1, 100, 5000, 200_000]))
        for i in range(files)
    }
    data["big/three MiB.bin"] = rnd.randbytes(3 * 1024 * 1024)
    write_tree(folder, data)
    return {
        k: hashlib.sha256(v if isinstance(v, bytes) else v.encode()).hexdigest()
        for k, v in data.items()
    }


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with SERVERS[request.param](tmp_path / "storage") as srv:
        yield srv


def gaps(records: list[Record]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(records)]


# -- a fault mix, three runs at most --------------------------------------------------------------


@pytest.mark.parametrize("seed", [7])
def test_fault_mix_converges_within_three_runs_never_torn(
    tmp_path: Path, server: ServerProcess, seed: int, record_property: Callable[[str, object], None]
) -> None:
    folder = tmp_path / "docs"
    files = 30
    expected = random_tree(folder, random.Random(seed), files)
    remote = server.root / "Docs"
    with FaultProxy(server.port, seed=seed) as proxy:
        # About one request in six goes wrong, in every way the proxy knows.
        proxy.answer(503, share=0.06, retry_after=1)
        proxy.answer(429, share=0.03, retry_after=1)
        proxy.reset_request(share=0.03)
        proxy.reset_response(share=0.03)
        # One stall for sure (a 1 % share was drawn in some runs and not in others).
        proxy.stall(3.0, count=1, methods=["PUT"])
        cfg = write_config(tmp_path, proxy.url, folder, remote_extra="timeout = 1.5\n")
        watch = TornWatch(remote, expected)
        watch.start()
        runs: list[int] = []
        try:
            for _ in range(3):
                res = syncapp("--config", str(cfg), "run", "--once", timeout=120)
                runs.append(res.returncode)
                if res.returncode == 0:
                    break
        finally:
            watch.stop.set()
            watch.join()
        counts, actions = proxy.counts(), proxy.actions()
    record_property("runs", runs)
    record_property("requests", dict(counts))
    record_property("faults", dict(actions))
    print(f"\n{server.name}: runs {runs}; requests {dict(counts)}; proxy did {dict(actions)}")
    assert runs[-1] == 0, res.stderr[-3000:]
    assert content(remote) == tree(folder)
    assert watch.torn == []
    assert sum(actions[a] for a in actions if a != "pass") > 0  # faults did happen
    # Every kind of fault in the mix was served at least once (the proxy's draws are seeded).
    kinds = ("answer 503", "answer 429", "reset_request", "reset_response", "stall")
    assert all(actions[k] > 0 for k in kinds), dict(actions)
    # Bounded: a file costs about three requests (PUT, MOVE, PROPFIND); even with one request
    # in six failing, and each failure retried at most a few times, the total stays a small
    # multiple of the number of files, never a storm.
    uploads = files + 1
    assert counts["PUT"] <= 4 * uploads, dict(counts)
    assert sum(counts.values()) <= 14 * uploads, dict(counts)


def test_failed_cleanup_leaves_no_staging_file(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        # The MOVE of the finished upload fails, and so does the DELETE of the staging file.
        proxy.answer(503, count=1, methods=["MOVE"])
        proxy.answer(503, count=1, methods=["DELETE"])
        cfg = write_config(tmp_path, proxy.url, folder)
        for _ in range(3):
            res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(srv.root / "Docs") == tree(folder)
        assert staging_leftovers(srv.root) == []
        # Both faults were served: the MOVE of the upload, then the DELETE of its staging name.
        served = [(r.method, r.path) for r in proxy.records() if r.action == "answer 503"]
        assert [m for m, _ in served] == ["MOVE", "DELETE"], served
        assert os.path.basename(served[1][1]).startswith(".syncapp-tmp-"), served


def test_one_503_on_the_first_listing_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a", "b/c.txt": "c"})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.answer(503, count=1, retry_after=1, methods=["PROPFIND"])
        cfg = write_config(tmp_path, proxy.url, folder)
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(srv.root / "Docs") == tree(folder)
        propfinds = proxy.records("PROPFIND")
        assert propfinds[0].action == "answer 503", propfinds  # the first listing got the 503
        assert proxy.actions()["answer 503"] == 1


# -- spacing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(429, 1.0), (503, None)])
def test_retries_are_spaced(tmp_path: Path, status: int, retry_after: float | None) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"only.txt": "the one file"})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.answer(status, count=3, retry_after=retry_after, methods=["PUT"])
        cfg = write_config(tmp_path, proxy.url, folder)
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(srv.root / "Docs") == tree(folder)
        puts = proxy.records("PUT")
    assert len(puts) == 4  # three refused, one accepted
    assert [r.action for r in puts] == [f"answer {status}"] * 3 + ["pass"], puts
    spacing = gaps(puts)
    shown = [round(g, 2) for g in spacing]
    print(f"\n{status} Retry-After {retry_after}: gaps between PUTs {shown}")
    if retry_after is not None:
        # The server's Retry-After is a floor for every retry.
        assert all(g >= retry_after - 0.05 for g in spacing), spacing
    else:
        # Exponential backoff with jitter: 0.5·2^(n-1) s, at least half of it.
        assert all(g >= 0.25 * 2**i - 0.05 for i, g in enumerate(spacing)), spacing


# -- status codes ---------------------------------------------------------------------------------


def test_423_locked_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(5)})
    with wsgidav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.answer(423, count=4, methods=["PUT", "MOVE"])
        cfg = write_config(tmp_path, proxy.url, folder)
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(srv.root / "Docs") == tree(folder)
        assert proxy.actions()["answer 423"] == 4
        assert proxy.counts()["PUT"] <= 5 + 4


def test_507_stops_the_folder_without_a_retry_storm(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    files = 40
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(files)})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.answer(507, methods=["PUT"])
        cfg = write_config(tmp_path, proxy.url, folder, remote_extra="connections = 4\n")
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 1
        assert "507" in res.stderr and "folder docs" in res.stderr, res.stderr
        # The uploads already running when the first 507 came back, and nothing more.
        assert proxy.counts()["PUT"] <= 4, proxy.counts()
        assert proxy.actions()["answer 507"] == proxy.counts()["PUT"] >= 1, proxy.actions()

        # Live: the folder shows the error and stays quiet.
        async def live() -> int:
            proxy.reset_records()
            config = parse_config(cfg.read_text(), cfg)
            async with SyncEngine(config, tmp_path / "live.db", live=True) as engine:
                await _wait_state(engine, FolderState.ERROR)
                assert "507" in engine.status()["docs"].reason
                assert proxy.actions()["answer 507"] >= 1
                settled = proxy.counts()["PUT"]
                await asyncio.sleep(3.0)
                assert engine.status()["docs"].state is FolderState.ERROR
                return proxy.counts()["PUT"] - settled

        more = asyncio.run(live())
        assert proxy.counts()["PUT"] <= 4
        assert more == 0


def test_wrong_credentials_are_one_clear_error_and_few_requests(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(30)})
    storage = tmp_path / "storage"
    with wsgidav_process(storage, auth=("alice", "right")) as srv, FaultProxy(srv.port) as proxy:
        cfg = write_config(
            tmp_path,
            proxy.url,
            folder,
            remote_extra='username = "alice"\npassword_env = "DAV_PW"\n',
        )
        res = syncapp("--config", str(cfg), "run", "--once", env={"DAV_PW": "wrong-secret"})
        counts = proxy.counts()
    assert res.returncode == 1
    assert "401" in res.stderr and "folder docs" in res.stderr, res.stderr
    assert "wrong-secret" not in res.stdout + res.stderr
    assert sum(counts.values()) <= 3, counts


def test_409_parent_deleted_remotely_is_recreated(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"keep/a.txt": "a", "gone/deep/b.txt": "b", "gone/c.txt": "c"})
    with rclone_webdav_process(tmp_path / "storage") as srv:
        cfg = write_config(tmp_path, srv.url, folder)
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        remote = srv.root / "Docs"
        shutil.rmtree(remote / "gone")  # someone removes the remote folder
        # Every file in it changes locally: each PUT meets a missing parent (409).
        write_tree(folder, {"gone/deep/b.txt": "b2", "gone/c.txt": "c2", "gone/new.txt": "n"})
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(remote) == tree(folder)


@pytest.mark.parametrize("server", list(SERVERS))
def test_file_replaced_by_folder_waits_for_its_parent_job(tmp_path: Path, server: str) -> None:
    """The job that swaps a remote file for a folder fails once; the file inside the new folder
    must wait for it (it was failing with "a file is in the way") instead of giving up."""
    folder = tmp_path / "docs"
    write_tree(folder, {"what?.txt": "a file", "other.txt": "o"})
    with SERVERS[server](tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        cfg = write_config(tmp_path, proxy.url, folder)
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        (folder / "what?.txt").unlink()
        (folder / "what?.txt").mkdir()
        inside = {f"what?.txt/in {i}.txt": f"now a folder {i}" for i in range(120)}
        write_tree(folder, inside)
        # Everything the swap sends first (keeping the old file as a version) fails once.
        proxy.answer(500, count=2, methods=["MOVE", "MKCOL", "DELETE"])
        proxy.reset_records()
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr + res.stdout
        assert proxy.actions()["answer 500"] == 2
        assert content(srv.root / "Docs") == tree(folder)
        # The files inside waited for the swap (parked), not by polling the server.
        puts = [r for r in proxy.records("PUT") if "/in " in r.path]
        assert len(puts) <= len(inside) + 5, len(puts)


def test_409_restores_unchanged_files_below_a_deleted_remote_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"gone/a.txt": "a", "gone/b.txt": "b"})
    with rclone_webdav_process(tmp_path / "storage") as srv:
        cfg = write_config(tmp_path, srv.url, folder)
        assert syncapp("--config", str(cfg), "run", "--once").returncode == 0
        remote = srv.root / "Docs"
        shutil.rmtree(remote / "gone")
        write_tree(folder, {"gone/a.txt": "a2"})  # b.txt is unchanged
        for _ in range(2):
            res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(remote) == tree(folder)


def test_stalls_time_out_and_are_retried(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(6)})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.stall(5.0, count=2, methods=["PUT"])
        cfg = write_config(tmp_path, proxy.url, folder, remote_extra="timeout = 1\n")
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr
        assert content(srv.root / "Docs") == tree(folder)
        assert staging_leftovers(srv.root) == []
        assert proxy.actions()["stall"] == 2


# -- offline and back -----------------------------------------------------------------------------


class JsonRun:
    """``syncapp run --json`` in a child process; its events collected by a reader thread."""

    def __init__(self, cfg: Path) -> None:
        self.events: list[dict[str, object]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncapp.cli", "--config", str(cfg), "run", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def states(self) -> list[object]:
        return [e["state"] for e in list(self.events) if e["event"] == "FolderStateChanged"]

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self._reader.join(5)
        return err


def test_server_down_at_start_goes_offline_and_catches_up(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"d{i % 3}/f{i}.txt": f"file {i}" for i in range(30)})
    srv = rclone_webdav_process(tmp_path / "storage")
    srv.port = free_port()  # not started yet: connection refused
    cfg = write_config(tmp_path, srv.url, folder)
    run = JsonRun(cfg)
    try:
        assert wait_for(lambda: "offline" in run.states(), timeout=30), run.events[-5:]
        time.sleep(1.0)  # stay down a while: the folder must keep probing, not give up
        srv.start()
        back = time.monotonic()
        remote = srv.root / "Docs"
        assert wait_for(lambda: content(remote) == tree(folder), timeout=60, interval=0.1)
        took = time.monotonic() - back
        assert wait_for(lambda: run.states()[-1:] == ["up to date"], timeout=30), run.states()
        # Still live: a new file goes up too.
        write_tree(folder, {"after.txt": "after"})
        assert wait_for(lambda: content(remote) == tree(folder), timeout=30, interval=0.1)
    finally:
        err = run.stop()
        srv.close()
    assert run.proc.returncode == 0, err[-2000:]
    assert staging_leftovers(srv.root) == []
    record_property("catch_up_seconds", round(took, 2))
    print(f"\ncaught up {took:.2f} s after the server came back")


async def _wait_state(engine: SyncEngine, state: FolderState, within: float = 30.0) -> None:
    async def poll() -> None:
        while engine.status()["docs"].state is not state:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), within)


async def _wait_exact(local: Path, remote: Path, within: float = 60.0) -> None:
    async def poll() -> None:
        while content(remote) != tree(local):
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), within)
    except TimeoutError:
        assert content(remote) == tree(local)


async def test_server_dies_mid_run_goes_offline_and_catches_up(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(10)})
    with wsgidav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        config = parse_config(write_config(tmp_path, proxy.url, folder).read_text(), tmp_path)
        remote = srv.root / "Docs"
        async with SyncEngine(config, tmp_path / "state.db", live=True) as engine:
            await engine.wait_idle()
            await _wait_exact(folder, remote)
            srv.stop()  # the proxy stays; behind it, nothing answers
            write_tree(folder, {f"while down/g{i}.txt": f"new {i}" for i in range(20)})
            (folder / "f0.txt").write_text("edited while down")
            await _wait_state(engine, FolderState.OFFLINE)
            proxy.reset_records()
            down_for = 3.0
            await asyncio.sleep(down_for)
            during = proxy.records()
            assert engine.status()["docs"].state is FolderState.OFFLINE
            await asyncio.to_thread(srv.start)
            back = time.monotonic()
            await _wait_exact(folder, remote)
            took = time.monotonic() - back
            await _wait_state(engine, FolderState.UP_TO_DATE)
    assert staging_leftovers(srv.root) == []
    # While offline the folder probes (about one request per backoff step), it does not hammer
    # the server with its 21 queued uploads.
    assert len(during) <= 10, [(r.method, r.path, r.action) for r in during]
    record_property("catch_up_seconds", round(took, 2))
    record_property("requests_while_down", len(during))
    print(f"\n{len(during)} requests in {down_for:.0f} s down; caught up {took:.2f} s after return")


async def test_server_wide_503_is_no_retry_storm(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    files = 100
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(files)})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.answer(503, retry_after=None, methods=["PUT", "MOVE", "DELETE"])
        config = parse_config(write_config(tmp_path, proxy.url, folder).read_text(), tmp_path)
        async with SyncEngine(config, tmp_path / "state.db", live=True) as engine:
            await asyncio.sleep(3.0)
            during = sum(proxy.counts().values())
            print(f"\n{during} requests in 3 s of server-wide 503 for {files} files")
            assert proxy.actions()["answer 503"] >= 1, proxy.actions()
            # One probe at a time while the server refuses everything: fewer requests than files.
            assert during <= files, during
            proxy.clear()
            cleared = time.monotonic()
            await _wait_exact(folder, srv.root / "Docs", within=90)
            print(f"caught up {time.monotonic() - cleared:.1f} s after the 503s stopped")
            assert engine.status()["docs"].state is not FolderState.ERROR


JUNK_MULTISTATUS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
    b"<D:response><D:href>/Docs/</D:href></D:response></D:multistatus>\n<junk after the end"
)


async def test_junk_listing_answer_is_named_and_the_folder_recovers(tmp_path: Path) -> None:
    """Issue 12, bug 2: one PROPFIND answered with a broken body put a live folder into `error`
    ("remote unreachable") for good. It must say what happened and recover by itself."""
    from syncapp.engine import Event, FolderStateChanged

    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    with rclone_webdav_process(tmp_path / "storage") as srv, FaultProxy(srv.port) as proxy:
        proxy.junk(JUNK_MULTISTATUS, methods=["PROPFIND"], count=1)
        config = parse_config(write_config(tmp_path, proxy.url, folder).read_text(), tmp_path)
        remote = srv.root / "Docs"
        states: list[FolderStateChanged] = []

        def seen(ev: Event) -> None:
            if isinstance(ev, FolderStateChanged):
                states.append(ev)

        engine = SyncEngine(config, tmp_path / "state.db", live=True)
        engine.subscribe(seen)
        async with engine:
            await _wait_exact(folder, remote, within=30)
            write_tree(folder, {"written later.txt": "after the junk"})
            await _wait_exact(folder, remote, within=30)
            await _wait_state(engine, FolderState.UP_TO_DATE)
    assert proxy.actions()["junk"] == 1
    errors = [ev.reason for ev in states if ev.state is FolderState.ERROR]
    assert errors, [(ev.state, ev.reason) for ev in states]
    assert all("unreachable" not in r and "malformed" in r for r in errors), errors
    assert "retrying" in errors[0], errors
