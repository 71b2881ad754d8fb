"""`syncapp why` and `syncapp status` ask the running engine (issue 14): what only it knows
(a file in flight with its bytes sent, live rates, deletes held by the guard, ignore rules
changed since it started), and the state database's answer when no engine runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config_text, syncapp, wait_for, write_tree
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import rclone_webdav_process

MiB = 1024 * 1024
#: The slow line to the server: the 16 MiB upload takes about 8 s through it (of which the
#: kernel's socket buffers take a few MiB at once: they count as sent).
LINE = 2 * MiB
BIG = 16 * MiB


@pytest.fixture
def config_path(tmp_path: Path) -> Iterator[Path]:
    """Where each test writes its config; the engine it started is stopped afterwards."""
    cfg = tmp_path / "config.toml"
    yield cfg
    if cfg.exists():
        syncapp("--config", str(cfg), "stop", timeout=90)


def _json(*args: str) -> Any:
    res = syncapp(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def test_an_upload_in_flight_through_a_slow_line(tmp_path: Path, config_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"big.bin": b"\x01" * BIG, "small.txt": "small"})
    with (
        rclone_webdav_process(tmp_path / "storage") as server,
        FaultProxy(server.port) as proxy,
    ):
        proxy.throttle(LINE, methods=["PUT"])  # uploads go to staging names: every PUT
        remote = f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}"\n'
        config_path.write_text(config_text(remote, {"docs": folder}))
        cfg = str(config_path)
        assert syncapp("--config", cfg, "start").returncode == 0

        def in_flight() -> dict[str, Any] | None:
            why = _json("--config", cfg, "why", "docs", "big.bin", "--json")
            return why if why["live"] and why["live"]["state"] == "in flight" else None

        assert wait_for(lambda: in_flight() is not None and in_flight()["done"] > 0, timeout=60)
        why = in_flight()
        assert why is not None and why["source"] == "engine" and why["status"] == "uploading"
        assert 0 < why["done"] < why["size"] == BIG
        assert why["answer"].startswith("uploading now:") and "of 16.0 MiB sent" in why["answer"]

        def rates_known() -> dict[str, Any] | None:
            live = _json("--config", cfg, "status", "docs", "--json").get("live")
            return live if live and live["up_rate"] else None

        assert wait_for(lambda: rates_known() is not None, timeout=30)
        live = rates_known()
        assert live is not None and live["state"] == "syncing" and live["in_flight"] == 1
        assert 0 < live["up_rate"] < 8 * LINE  # the line's pace, give or take the socket buffers
        assert live["down_rate"] is None  # a one-way folder downloads nothing
        [transfer] = live["transfers"]
        assert transfer["path"] == "big.bin" and transfer["op"] == "upload"
        assert 0 < transfer["done"] < transfer["size"] == BIG
        assert live["progress"]["files_total"] == 2 and live["progress"]["bytes_total"] > BIG
        text = syncapp("--config", cfg, "status").stdout
        assert "now: syncing; 1 in flight" in text, text
        assert "speed: up " in text and "in flight: big.bin (" in text, text
        # The small file went by: in sync, which the database says as well.
        small = _json("--config", cfg, "why", "docs", "small.txt", "--json")
        assert small["status"] == "in sync" and small["source"] == "engine"
        assert small["live"]["state"] == "idle"
        proxy.clear()  # the line is fast again: the rest goes by
        assert wait_for(lambda: _json("--config", cfg, "status", "docs", "--json")["live"]
                        ["state"] == "up to date", timeout=60)  # fmt: skip
        done = _json("--config", cfg, "status", "docs", "--json")["live"]
        assert done["transfers"] == [] and done["eta"] is None
        assert syncapp("--config", cfg, "stop").returncode == 0
        after = _json("--config", cfg, "why", "docs", "big.bin", "--json")
        assert after["source"] == "database" and after["live"] is None
        assert after["status"] == "in sync" and after["size"] == BIG


def test_guard_and_changed_rules_through_the_engine_and_without_it(
    tmp_path: Path, config_path: Path
) -> None:
    folder, remote = tmp_path / "docs", tmp_path / "remote"
    write_tree(folder, {f"f{i}.txt": f"file {i}" for i in range(12)} | {"x.log": "log"})
    remote.mkdir()
    extra = 'max_delete = "5"\nignore = ["*.log"]\n'
    config_path.write_text(
        config_text(
            f'[remotes.r]\ntype = "local"\npath = "{remote}"\n',
            {"docs": folder},
            extra_folder=extra,
        )
    )
    cfg = str(config_path)
    assert syncapp("--config", cfg, "start").returncode == 0
    assert wait_for(lambda: (remote / "docs" / "f11.txt").exists())
    for i in range(11):
        (folder / f"f{i}.txt").unlink()

    def held() -> dict[str, Any]:
        return _json("--config", cfg, "why", "docs", "f3.txt", "--json")

    assert wait_for(lambda: held()["status"] == "guard", timeout=30)
    why = held()
    assert why["source"] == "engine" and why["live"]["state"] == "guard"
    assert why["live"]["folder_state"] == "paused"
    assert why["answer"].startswith("held by the delete guard: 11 of 12 files were deleted")
    status = syncapp("--config", cfg, "status").stdout
    assert "now: paused (11 of 12 files were deleted locally" in status, status
    assert (remote / "docs" / "f3.txt").exists()

    # The config file changes under the running engine: it goes on with the rules it started with.
    text = config_path.read_text()
    config_path.write_text(text.replace('ignore = ["*.log"]', 'ignore = ["f11.txt"]'))
    log = _json("--config", cfg, "why", "docs", "x.log", "--json")
    assert log["status"] == "ignored" and log["rules_changed"] and log["pattern"] == "*.log"
    assert "a rule the config file no longer has" in log["answer"]
    kept = _json("--config", cfg, "why", "docs", "f11.txt", "--json")
    assert kept["status"] == "ignored" and kept["rules_changed"]
    assert "the running engine started without that rule" in kept["answer"]
    config_path.write_text(text)

    assert syncapp("--config", cfg, "stop").returncode == 0
    why = held()  # the state database's answer: the same keys, from what the engine left there
    assert why["source"] == "database" and why["live"] is None and not why["rules_changed"]
    assert why["status"] == "guard" and "11 of 12 files were deleted" in why["reason"]
    assert set(why) >= {"path", "status", "answer", "source", "live", "rules_changed"}


def test_a_retry_waiting_in_the_engine_says_until_when(tmp_path: Path, config_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    with (
        rclone_webdav_process(tmp_path / "storage") as server,
        FaultProxy(server.port) as proxy,
    ):
        # One failure whose Retry-After keeps the next try a minute away.
        proxy.answer(500, count=1, retry_after=60, methods=["PUT"])
        remote = f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}"\n'
        config_path.write_text(config_text(remote, {"docs": folder}))
        cfg = str(config_path)
        started = time.time()
        assert syncapp("--config", cfg, "start").returncode == 0

        def why() -> dict[str, Any]:
            return _json("--config", cfg, "why", "docs", "a.txt", "--json")

        assert wait_for(lambda: why()["status"] == "retrying", timeout=30)
        answer = why()
        assert answer["source"] == "engine" and answer["live"]["state"] == "retrying"
        assert answer["attempts"] == 1 and started + 50 < answer["retry_at"] < time.time() + 61
        assert (
            answer["answer"].startswith("waiting to retry at ") and "HTTP 500" in answer["answer"]
        )
        live = _json("--config", cfg, "status", "docs", "--json")["live"]
        assert live["queued"] == 1 and live["in_flight"] == 0 and live["transfers"] == []


def test_a_download_in_flight_of_a_two_way_folder(tmp_path: Path, config_path: Path) -> None:
    folder, storage = tmp_path / "docs", tmp_path / "storage"
    folder.mkdir()
    write_tree(storage / "Docs", {"big.bin": b"\x02" * (8 * MiB)})
    with rclone_webdav_process(storage) as server, FaultProxy(server.port) as proxy:
        proxy.throttle(LINE, methods=["GET"])  # about 4 s for the file to come down
        remote = f'[remotes.r]\ntype = "webdav"\nurl = "{proxy.url}"\n'
        both = 'direction = "both"\nremote_poll = 1\n'
        text = config_text(remote, {"docs": folder}, remote_path="Docs", extra_folder=both)
        config_path.write_text(text)
        cfg = str(config_path)
        assert syncapp("--config", cfg, "start").returncode == 0

        def coming() -> dict[str, Any]:
            return _json("--config", cfg, "why", "docs", "big.bin", "--json")

        assert wait_for(lambda: coming()["status"] == "downloading" and coming()["done"] > 0)
        why = coming()
        assert why["source"] == "engine" and why["live"]["op"] == "download"
        assert (
            why["answer"].startswith("downloading now:") and "of 8.0 MiB received" in why["answer"]
        )
        live = _json("--config", cfg, "status", "docs", "--json")["live"]
        assert live["down_rate"] is not None and 0 < live["down_rate"] < 8 * LINE
        assert [t["op"] for t in live["transfers"]] == ["download"]
        text = syncapp("--config", cfg, "status").stdout
        assert "down " in text and "in flight: big.bin (down " in text, text
        assert wait_for(lambda: (folder / "big.bin").exists())
