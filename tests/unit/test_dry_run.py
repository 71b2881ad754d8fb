"""The dry run is the real run with the operations held back: on a ``local`` remote (a folder
on this machine), no server. Nothing on the remote or in the state database changes."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from syncapp.config import Config, parse_config
from syncapp.dryrun import dry_run
from syncapp.engine import SyncEngine


def config(tmp_path: Path, extra: str = "") -> Config:
    (tmp_path / "docs").mkdir(exist_ok=True)
    text = (
        f'[remotes.r]\ntype = "local"\npath = "{tmp_path / "remote"}"\n\n'
        f'[folders.docs]\npath = "{tmp_path / "docs"}"\nremote = "r"\nremote_path = "docs"\n'
        + extra
    )
    return parse_config(text, tmp_path / "config.toml")


def tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = "<dir>" if p.is_dir() else p.read_text()
    return out


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


async def real_run(cfg: Config, state: Path) -> None:
    async with SyncEngine(cfg, state, live=False) as engine:
        await engine.wait_idle()


async def dry(cfg: Config, state: Path, *, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state.parent.parent)  # default_state_path()
    try:
        code = await dry_run(cfg, as_json=as_json, out=out, err=out)
    finally:
        if old is None:
            del os.environ["XDG_STATE_HOME"]
        else:
            os.environ["XDG_STATE_HOME"] = old
    return code, out.getvalue()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_dry_run_plans_like_a_real_run_and_changes_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    state = tmp_path / "xdg" / "syncapp" / "state.db"
    write(tmp_path / "docs", {f"d{i}/f{i}.txt": f"file {i}" for i in range(12)})
    await real_run(cfg, state)
    docs = tmp_path / "docs"
    (docs / "d0" / "f0.txt").write_text("edited, longer")
    (docs / "d1" / "f1.txt").unlink()
    (docs / "d2" / "f2.txt").rename(docs / "d2" / "renamed.txt")
    write(docs, {"brand new/x.txt": "x"})
    remote_before, state_before = tree(tmp_path / "remote"), digest(state)
    code, text = await dry(cfg, state)
    assert code == 0, text
    assert "would upload 2, create 1 folders, move 1, delete 1" in text, text
    assert "d1/f1.txt" in text and "d2/f2.txt -> d2/renamed.txt" in text
    code, js = await dry(cfg, state, as_json=True)
    assert js.count('"action"') == 5, js
    assert tree(tmp_path / "remote") == remote_before and digest(state) == state_before
    await real_run(cfg, state)  # what the dry run said is what a real run does
    synced = tree(tmp_path / "remote" / "docs")
    assert {k: v for k, v in synced.items() if not k.startswith(".syncapp")} == tree(docs)


async def test_the_guard_speaks_in_a_dry_run_through_the_same_rule(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    state = tmp_path / "xdg" / "syncapp" / "state.db"
    write(tmp_path / "docs", {f"d{i % 5}/f{i}.txt": "x" for i in range(40)})
    await real_run(cfg, state)
    for i in range(30):
        (tmp_path / "docs" / f"d{i % 5}" / f"f{i}.txt").unlink()
    code, text = await dry(cfg, state)
    assert code == 0
    assert "delete guard: 30 of 40 files were deleted locally" in text, text
    assert "delete 30" in text
    out = io.StringIO()
    os.environ["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    try:
        await dry_run(cfg, as_json=False, out=out, allow_mass_delete=True)
    finally:
        del os.environ["XDG_STATE_HOME"]
    assert "delete guard" not in out.getvalue()
    assert len(list((tmp_path / "remote" / "docs").rglob("*.txt"))) == 40


async def test_a_first_dry_run_adopts_what_the_remote_has_and_creates_no_state(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path)
    state = tmp_path / "xdg" / "syncapp" / "state.db"
    files = {"a.txt": "same", "sub/b.txt": "same too"}
    write(tmp_path / "docs", files)
    write(tmp_path / "remote" / "docs", files)
    for rel in files:
        st = (tmp_path / "docs" / rel).stat()
        os.utime(tmp_path / "remote" / "docs" / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
    write(tmp_path / "docs", {"new.txt": "new"})
    write(tmp_path / "remote" / "docs", {".syncapp-tmp-0123456789abcdef-x": "interrupted"})
    remote_before = tree(tmp_path / "remote")
    code, text = await dry(cfg, state)
    assert code == 0, text
    assert "would upload 1, create 0 folders, move 0, delete 0" in text, text
    assert "new.txt" in text and not state.exists()
    assert tree(tmp_path / "remote") == remote_before


async def test_a_folder_that_cannot_be_planned_says_why(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "docs").rmdir()  # gone since the config was read
    code, text = await dry(cfg, tmp_path / "xdg" / "syncapp" / "state.db")
    assert code == 1 and "folder docs" in text and "is missing" in text
