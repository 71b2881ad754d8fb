"""The desk where deletes wait for the guard, on a real folder and fake hooks: no server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from syncapp.config import FolderConfig, parse_config
from syncapp.engine.deletes import DeleteDesk, Hooks
from syncapp.engine.entries import EntryMap
from syncapp.engine.events import Event, EventBus, GuardTripped
from syncapp.engine.guard import DeleteGuard
from syncapp.engine.heldback import HeldBack
from syncapp.engine.jobqueue import Job, JobKind
from syncapp.engine.reasons import Reasons
from syncapp.engine.state import Entry, PendingStatus, StateDB
from syncapp.ignore import IgnoreRules


def folder_cfg(tmp_path: Path, extra: str = "") -> FolderConfig:
    (tmp_path / "docs").mkdir(exist_ok=True)
    text = (
        f'[remotes.r]\ntype = "local"\npath = "{tmp_path / "remote"}"\n\n'
        f'[folders.docs]\npath = "{tmp_path / "docs"}"\nremote = "r"\n{extra}'
    )
    return parse_config(text, tmp_path / "c.toml").folders["docs"]


class Folder:
    def __init__(self, entries: EntryMap) -> None:
        self.entries = entries
        self.jobs: list[Job] = []
        self.forgotten: list[tuple[str, bool]] = []
        self.paused = ""

    def forget_ignored(self, paths: Iterable[tuple[str, bool]]) -> None:
        self.forgotten += list(paths)

    def hooks(self) -> Hooks:
        return Hooks(
            entries=lambda: self.entries,
            enqueue=self.jobs.append,
            forget=lambda p, d: self.forgotten.append((p, d)),
            forget_ignored=self.forget_ignored,
            pause=lambda reason: setattr(self, "paused", reason),
            check_idle=lambda: None,
            update=lambda: None,
        )


def synced(n: int) -> EntryMap:
    return EntryMap({f"f{i}": Entry(f"f{i}", False, 1, 1, i) for i in range(n)})


def desk(
    tmp_path: Path, folder: Folder, extra: str = "", held_back: HeldBack | None = None
) -> tuple[DeleteDesk, StateDB, list[Event]]:
    cfg = folder_cfg(tmp_path, extra)
    state = StateDB(tmp_path / "state.db")
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    d = DeleteDesk(
        cfg,
        DeleteGuard(),
        Reasons("docs", state, bus),
        bus,
        folder.hooks(),
        rules=IgnoreRules(cfg.ignore),
        delete_hold=0.0,
        held_back=held_back,
    )
    return d, state, seen


async def test_few_deletes_go_after_the_hold_and_a_file_back_is_synced(tmp_path: Path) -> None:
    f = Folder(synced(20))
    d, state, _ = desk(tmp_path, f)
    (tmp_path / "docs" / "f1").write_text("saved again by rename-over")
    d.hold([("f0", False), ("f1", False)])
    assert state.pending_for("docs", "f0").status is PendingStatus.QUEUED  # type: ignore[union-attr]
    await asyncio.sleep(0.01)
    assert [(j.kind, j.path) for j in f.jobs] == [(JobKind.SYNC, "f1"), (JobKind.DELETE, "f0")]
    assert not d.guard.held and f.paused == ""
    state.close()


async def test_a_wipe_trips_pauses_and_waits_for_the_user(tmp_path: Path) -> None:
    f = Folder(synced(20))
    held = HeldBack()
    d, state, seen = desk(tmp_path, f, held_back=held)
    d.hold([(f"f{i}", False) for i in range(15)])
    await asyncio.sleep(0.01)
    assert f.jobs == [] and f.paused.startswith("15 of 20 files were deleted locally")
    assert [type(e) for e in seen] == [GuardTripped]
    assert held.trip is not None and len(held.deletes) == 15
    assert state.pending_for("docs", "f3").status is PendingStatus.GUARD  # type: ignore[union-attr]
    d.confirm()  # "Delete on remote"
    assert len([j for j in f.jobs if j.kind is JobKind.DELETE]) == 15
    state.close()


async def test_unmirrored_deletes_are_forgotten_not_held(tmp_path: Path) -> None:
    f = Folder(synced(3))
    d, state, _ = desk(tmp_path, f, "mirror_deletes = false\n")
    d.hold([("f0", False)])
    assert f.forgotten == [("f0", False)] and not d.guard.held
    state.close()
