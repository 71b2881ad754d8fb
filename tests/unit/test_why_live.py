"""``syncapp why``: the running engine's word on a path joins the state database's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncapp.config import FolderConfig
from syncapp.engine.live import PathNow
from syncapp.engine.notes import note
from syncapp.engine.state import open_state
from syncapp.livestatus import live_lines
from syncapp.why import explain, with_live

KEYS = {"path", "status", "answer", "source", "live", "rules_changed"}


def _db(status: str, answer: str, **more: Any) -> dict[str, Any]:
    return {"path": "a.txt", "status": status, "answer": answer, **more}


def test_without_an_engine_the_database_answers_with_the_same_keys() -> None:
    out = with_live(_db("in sync", "in sync since then"), None)
    assert set(out) >= KEYS
    assert out["source"] == "database" and out["live"] is None and not out["rules_changed"]
    assert out["answer"] == "in sync since then"


def test_a_retry_the_engine_waits_for_replaces_a_stale_queued_row() -> None:
    now = PathNow("a.txt", "retrying", "waiting to retry at 10:00:05 (attempt 3)", at=5.0,
                  attempts=2, reason="waiting to retry after: 503")  # fmt: skip
    out = with_live(_db("queued", "queued: queued for upload"), now, pid=42)
    assert out["status"] == "retrying" and out["retry_at"] == 5.0 and out["attempts"] == 2
    assert out["answer"] == "waiting to retry at 10:00:05 (attempt 3)"
    assert out["source"] == "engine" and out["live"]["pid"] == 42


def test_idle_in_the_engine_leaves_the_database_answer() -> None:
    out = with_live(_db("in sync", "in sync since then"), PathNow("a.txt", "idle", ""))
    assert out["status"] == "in sync" and out["answer"] == "in sync since then"
    assert out["live"]["state"] == "idle"


def test_rules_changed_since_the_engine_started_are_said_both_ways() -> None:
    added = with_live(
        _db("ignored", "ignored by pattern '*.bin'", pattern="*.bin"),
        PathNow("a.txt", "in flight", "uploading now: 1.0 MiB of 2.0 MiB sent", "upload", 1, 2),
    )
    assert added["rules_changed"] and added["status"] == "ignored"
    assert "started without that rule: uploading now" in added["answer"]
    assert "syncapp reload" in added["answer"]
    dropped = with_live(
        _db("pending", "not synced yet"),
        PathNow("a.txt", "ignored", "the running engine ignores it: …", pattern="*.log"),
    )
    assert dropped["rules_changed"] and dropped["status"] == "ignored"
    assert dropped["pattern"] == "*.log" and "no longer has" in dropped["answer"]


def test_status_lines_name_rates_progress_and_files_in_flight() -> None:
    live = {
        "state": "syncing", "reason": "", "queued": 3, "in_flight": 2, "failed": 0,
        "up_rate": 2 * 1024 * 1024, "up_files_rate": 0.5, "down_rate": 0.0, "eta": 75.0,
        "progress": {"files_done": 1, "files_total": 6, "bytes_done": 1024, "bytes_total": 4096},
        "transfers": [
            {"path": "big.bin", "op": "upload", "done": 512, "size": 2048},
            {"path": "old.txt", "op": "delete", "done": 0, "size": 0},
            {"path": "new.txt", "op": "download", "done": 1024, "size": 4096},
        ],
    }  # fmt: skip
    lines = live_lines(live)
    assert lines[0] == "  now: syncing; 2 in flight, 3 queued"
    assert lines[1] == (
        "  speed: up 2.0 MiB/s (0.5 files/s); down 0 B/s; 1 of 6 files, 1.0 KiB of 4.0 KiB done;"
        " about 1 min 15 s left"
    )
    assert lines[2] == (
        "  in flight: big.bin (512 B of 2.0 KiB), old.txt (delete),"
        " new.txt (down 1.0 KiB of 4.0 KiB)"
    )
    idle = {**live, "state": "up to date", "in_flight": 0, "queued": 0, "up_rate": 0.0,
            "down_rate": None, "eta": None, "transfers": [],
            "progress": dict.fromkeys(live["progress"], 0)}  # fmt: skip
    assert live_lines(idle) == ["  now: up to date; 0 in flight, 0 queued"]


def test_a_file_gone_with_its_trashed_folder_says_where_it_went(tmp_path: Path) -> None:
    folder = FolderConfig(name="docs", path=tmp_path / "docs", remote="r")
    folder.path.mkdir()
    db = open_state(tmp_path / "state.db")
    try:
        note(db, "docs", "sub/a.txt", "downloaded from the remote", 100.0)
        where = "/home/u/.local/share/Trash/files/sub"
        note(db, "docs", "sub", f"deleted on the remote; moved to the trash: {where}", 200.0)
        out = explain(folder, "sub/a.txt", db)
        assert out["status"] == "unknown"
        assert out["answer"].startswith("not here; last from the remote: its folder sub: ")
        assert where in out["answer"] and "(with a.txt in it)" in out["answer"]
        # Never synced and nothing noted: that is what it says.
        assert explain(folder, "other.txt", db)["answer"].startswith("not known")
    finally:
        db.close()
