"""Meeting the remote on a ``local`` remote (a folder on this machine): no server."""

from __future__ import annotations

import os
from pathlib import Path

from syncapp.config import RemoteConfig, parse_config
from syncapp.engine.entries import EntryMap
from syncapp.engine.localroot import root_problem
from syncapp.engine.reconcile import Reconciler
from syncapp.engine.scanner import scan_tree
from syncapp.engine.state import StateDB
from syncapp.ignore import IgnoreRules
from syncapp.remotes import open_remote


def remote_cfg(tmp_path: Path) -> RemoteConfig:
    text = f'[remotes.r]\ntype = "local"\npath = "{tmp_path / "remote"}"\n'
    return parse_config(text, tmp_path / "config.toml").remotes["r"]


def setup(tmp_path: Path) -> Path:
    local = tmp_path / "docs"
    (local / "sub").mkdir(parents=True)
    (local / "same.txt").write_text("same")
    (local / "differs.txt").write_text("local")
    (local / "sub" / "new.txt").write_text("new")
    served = tmp_path / "remote" / "docs"
    (served / "sub").mkdir(parents=True)
    (served / "same.txt").write_text("same")
    os.utime(served / "same.txt", ns=(0, (local / "same.txt").stat().st_mtime_ns))
    (served / "differs.txt").write_text("remote, longer")
    (served / "extra.txt").write_text("a lost upload")
    (served / ".syncapp-tmp-0123abcd-x.txt").write_text("interrupted")
    return local


async def test_a_crash_reconcile_adopts_notes_and_marks_extras(tmp_path: Path) -> None:
    local = setup(tmp_path)
    state = StateDB(tmp_path / "state.db")
    async with open_remote(remote_cfg(tmp_path)) as remote:
        r = Reconciler(remote, state, "docs", IgnoreRules([]), live=False)
        await r.ensure_root()
        assert r.ready
        scan = scan_tree(str(local), IgnoreRules([]))
        found = await r.reconcile(
            scan.entries, str(local), EntryMap(), after_crash=True, mirror_deletes=True
        )
    assert sorted(e.path for e in found.adopted) == ["same.txt", "sub"]
    assert found.unrecorded == {"differs.txt"}
    assert [e.path for e in found.extras] == ["extra.txt"]
    assert not (tmp_path / "remote" / "docs" / ".syncapp-tmp-0123abcd-x.txt").exists()
    state.close()


async def test_a_dry_run_reconcile_changes_nothing_remotely(tmp_path: Path) -> None:
    local = setup(tmp_path)
    (tmp_path / "remote" / "docs").rename(tmp_path / "remote" / "elsewhere")
    before = sorted(p.name for p in (tmp_path / "remote").rglob("*"))
    state = StateDB(tmp_path / "state.db")
    async with open_remote(remote_cfg(tmp_path)) as remote:
        r = Reconciler(remote, state, "elsewhere/docs", IgnoreRules([]), live=False, dry_run=True)
        assert await r.ensure_root()  # nothing is made...
        assert not (tmp_path / "remote" / "elsewhere" / "docs").exists()
        r.remote_root = "elsewhere"
        scan = scan_tree(str(local), IgnoreRules([]))
        found = await r.reconcile(
            scan.entries, str(local), EntryMap(), after_crash=True, mirror_deletes=True
        )
    assert "same.txt" in {e.path for e in found.adopted}  # ...but the rules still apply
    assert sorted(p.name for p in (tmp_path / "remote").rglob("*")) == before  # staging kept
    state.close()


def test_root_problems_are_said_in_words(tmp_path: Path) -> None:
    problem, found = root_problem(str(tmp_path), None)
    assert problem == "" and found is not None
    assert "is missing" in root_problem(str(tmp_path / "gone"), None)[0]
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in root_problem(str(tmp_path / "file"), None)[0]
    other_device = (found[0] + 1, found[1])
    assert "another device" in root_problem(str(tmp_path), other_device)[0]
