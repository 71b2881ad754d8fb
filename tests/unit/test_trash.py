"""engine/trash.py: a file the remote deleted goes to a trash, never to unlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import send2trash
from send2trash import plat_other  # type: ignore[attr-defined]

from syncapp.engine import trash as trash_mod
from syncapp.engine.download import UnsafePath
from syncapp.engine.trash import TRASH_DIR, trash
from syncapp.ignore import IgnoreRules


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and XDG_DATA_HOME under tmp (send2trash reads XDG_DATA_HOME once, at import)."""
    home = tmp_path / "home"
    data = home / ".local" / "share"
    data.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    return home


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("alpha")
    (root / "b.txt").write_text("beta")
    return root


def test_goes_to_the_freedesktop_trash_with_its_origin(home: Path, folder: Path) -> None:
    done = trash(str(folder), "sub/a.txt")
    files = home / ".local/share/Trash/files"
    assert done.how == "freedesktop" and done.where == str(files / "a.txt")
    assert (files / "a.txt").read_text() == "alpha"
    assert not (folder / "sub" / "a.txt").exists()
    info = (home / ".local/share/Trash/info/a.txt.trashinfo").read_text()
    assert f"Path={folder}/sub/a.txt" in info


def test_same_name_twice_is_kept_twice(home: Path, folder: Path) -> None:
    first = trash(str(folder), "sub/a.txt")
    (folder / "sub" / "a.txt").write_text("alpha 2")
    second = trash(str(folder), "sub/a.txt")
    assert first.where != second.where
    assert Path(second.where).read_text() == "alpha 2"
    assert Path(first.where).read_text() == "alpha"


def test_a_folder_goes_whole(home: Path, folder: Path) -> None:
    done = trash(str(folder), "sub")
    assert (Path(done.where) / "a.txt").read_text() == "alpha"
    assert not (folder / "sub").exists()


def test_folder_trash_when_no_system_trash(folder: Path) -> None:
    done = trash(str(folder), "sub/a.txt", now=1_800_000_000, system=False)
    assert done.how == "folder"
    where = Path(done.where)
    assert where.read_text() == "alpha"
    assert where.relative_to(folder).parts[0] == TRASH_DIR
    assert where.relative_to(folder).parts[2:] == ("sub", "a.txt")
    # The same path again within the same second: kept beside, not over it.
    (folder / "sub" / "a.txt").write_text("again")
    again = trash(str(folder), "sub/a.txt", now=1_800_000_000, system=False)
    assert Path(again.where).read_text() == "again" and where.read_text() == "alpha"


def test_system_trash_on_another_device_is_not_used(
    home: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = trash_mod._device_of
    monkeypatch.setattr(trash_mod, "_device_of", lambda p: -1 if "Trash" in p else real(p))
    done = trash(str(folder), "b.txt")
    assert done.how == "folder" and Path(done.where).read_text() == "beta"
    assert not (home / ".local/share/Trash/files/b.txt").exists()


def test_send2trash_failure_falls_back(
    home: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(send2trash, "send2trash", refuse)
    done = trash(str(folder), "b.txt")
    assert done.how == "folder" and Path(done.where).read_text() == "beta"


@pytest.mark.parametrize("rel", ["../outside", "/etc/passwd", "a/../../x", "nul\0byte", ""])
def test_refuses_paths_outside_the_folder(folder: Path, rel: str) -> None:
    with pytest.raises(UnsafePath):
        trash(str(folder), rel, system=False)


def test_gone_already(folder: Path) -> None:
    with pytest.raises(FileNotFoundError):
        trash(str(folder), "nope.txt", system=False)


def test_the_folder_trash_is_never_synced() -> None:
    rules = IgnoreRules(["!.syncapp-trash"])  # a user's re-include cannot bring it back
    assert rules.ignored(".syncapp-trash", is_dir=True)
    assert rules.ignored(".syncapp-trash/20260101-000000/a.txt")
    m = rules.match(".syncapp-trash", is_dir=True)
    assert m is not None and m.source == "syncapp"


def test_on_this_machine_without_overrides_the_trash_is_the_home_trash() -> None:
    """Where a trashed file goes here (root, HOME=/root): reported, not written."""
    where = trash_mod.system_trash_dir()
    assert where is not None and where.endswith("/Trash")
