"""The engine says what it planned and how far it got: PlanQueued, ScanProgressed, SyncProgress."""

from __future__ import annotations

import asyncio
from pathlib import Path

from syncapp.config import parse_config
from syncapp.engine import (
    Event,
    FolderState,
    PlanQueued,
    ScanProgressed,
    SyncEngine,
    SyncProgress,
)
from syncapp.engine.events import FolderStateChanged
from tests.helpers import write_tree


async def test_a_first_sync_reports_its_plan_and_reaches_its_total(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    files = {f"d{i % 7}/f{i:03}.txt": "x" * (i + 1) for i in range(300)}
    write_tree(folder, files)
    remote = tmp_path / "remote"
    remote.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "local"\npath = "{remote}"\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
    )
    config = parse_config(cfg.read_text(), cfg)
    seen: list[Event] = []
    async with SyncEngine(config, tmp_path / "state.db", live=True) as engine:
        engine.subscribe(seen.append)
        await engine.wait_idle()
        await asyncio.sleep(0.3)  # the last rate-limited progress event
    plans = [e for e in seen if isinstance(e, PlanQueued)]
    assert plans and plans[0].uploads == 300
    assert plans[0].bytes == sum(len(v) for v in files.values())
    assert plans[0].mkdirs == 7
    progress = [e for e in seen if isinstance(e, SyncProgress)]
    assert progress, "no SyncProgress"
    assert max(e.files_total for e in progress) == 300
    done = max(progress, key=lambda e: e.files_done)
    assert (done.files_done, done.bytes_done) == (300, plans[0].bytes)
    # Collapsible: a flood keeps only the newest per folder.
    assert progress[-1].can_replace(progress[0])
    assert any(
        isinstance(e, FolderStateChanged) and e.state is FolderState.UP_TO_DATE for e in seen
    )


def test_scan_progress_is_reported_from_the_scanner(tmp_path: Path) -> None:
    from syncapp.engine.scanner import scan_tree
    from syncapp.ignore import IgnoreRules

    root = tmp_path / "tree"
    write_tree(root, {f"a{i}/b.txt": "b" for i in range(5)})
    calls: list[tuple[int, int]] = []
    scan_tree(str(root), IgnoreRules(), progress=lambda f, d: calls.append((f, d)))
    assert calls[-1] == (5, 5)
    assert ScanProgressed("x", 2, 1).can_replace(ScanProgressed("x", 1, 1))
    assert not ScanProgressed("x", 2, 1).can_replace(ScanProgressed("y", 1, 1))


