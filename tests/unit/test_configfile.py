"""Edits of the config file as the engine (and, without one, the UI and CLI) make them: the file
read again first, refusals keyed by the draft's field, and the control API's bodies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from syncapp import configfile
from syncapp.configedit import FolderDraft, RemoteDraft, empty_config
from syncapp.engine.configcalls import folder_body, folder_draft, remote_body, remote_draft
from syncapp.errors import ConfigConflict, ConfigError, UnknownName
from tests.helpers import Setup, make_setup


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


def test_an_edit_reads_the_file_again_and_writes_it_0600(setup: Setup) -> None:
    loaded = setup.config()
    setup.config_path.write_text(setup.config_path.read_text() + "# by hand, since\n")
    new = setup.folder("new")
    draft = FolderDraft("new", str(new), "box", "new")
    written = configfile.edit_file(loaded, lambda c: configfile.folder_saved(c, draft))
    text = setup.config_path.read_text()
    assert "# by hand, since" in text and "[folders.new]" in text
    assert list(written.folders) == ["docs", "new"]
    assert setup.config_path.stat().st_mode & 0o777 == 0o600


def test_a_first_edit_without_a_file_starts_from_what_is_known(tmp_path: Path) -> None:
    known = empty_config(tmp_path / "c.toml")
    draft = RemoteDraft("r", "local", {"path": str(tmp_path / "r")})
    configfile.edit_file(known, lambda c: configfile.remote_saved(c, draft))
    assert "[remotes.r]" in (tmp_path / "c.toml").read_text()


def test_refusals_name_the_field(setup: Setup) -> None:
    config = setup.config()
    docs = FolderDraft.from_config(config.folders["docs"])
    other = FolderDraft("d2", str(setup.folder("d2")), "box", "d2")
    assert configfile.folder_saved(config, other).folders["d2"].remote_path == "d2"
    cases = {
        "name": dataclasses.replace(docs, name="docs"),  # added again: a clash
        "settle": dataclasses.replace(other, settle="-1"),
        "path": dataclasses.replace(other, path=str(setup.root / "gone")),
        # Only the re-parse knows a malformed pattern; its key comes back as the field.
        "ignore": dataclasses.replace(docs, ignore=("!",)),
    }
    for key, draft in cases.items():
        editing = "docs" if draft.name == "docs" and key != "name" else None
        with pytest.raises(ConfigError) as refused:
            configfile.folder_saved(config, draft, editing)
        assert refused.value.key == key, refused.value
    with pytest.raises(UnknownName):
        configfile.folder_saved(config, docs, "nope")
    with pytest.raises(UnknownName):
        configfile.folder_removed(config, "nope")


def test_a_remote_in_use_is_a_conflict(setup: Setup) -> None:
    config = setup.config()
    with pytest.raises(ConfigConflict) as refused:
        configfile.remote_removed(config, "box")
    assert refused.value.key == "folders.docs.remote"
    renamed = RemoteDraft("box2", "local", {"path": str(setup.remote_dir)})
    with pytest.raises(ConfigConflict) as refused:
        configfile.remote_saved(config, renamed, "box")
    assert refused.value.key == "name"
    with pytest.raises(UnknownName):
        configfile.remote_removed(config, "nope")
    freed = configfile.folder_removed(config, "docs")
    assert "box" not in configfile.remote_removed(freed, "box").remotes


def test_bodies_both_ways(setup: Setup, tmp_path: Path) -> None:
    file = setup.config_path
    base = FolderDraft.from_config(setup.config().folders["docs"])
    # Fields left out keep the folder's values; a new folder's remote path is its base name.
    edited = folder_draft({"settle": 2, "ignore": ["*.tmp"]}, "docs", base, file)
    assert edited == dataclasses.replace(base, settle="2", ignore=("*.tmp",))
    new = folder_draft({"path": str(tmp_path / "Pics"), "remote": "box"}, "pics", None, file)
    assert (new.remote_path, new.versions) == ("Pics", True)
    assert folder_draft(folder_body(base), "docs", None, file) == base
    for body, key in (
        ({"paused": "yes"}, "paused"),
        ({"ignore": "*.tmp"}, "ignore"),
        ({"colour": "red"}, "colour"),
        ({"path": "relative/dir"}, "path"),
    ):
        with pytest.raises(ConfigError) as refused:
            folder_draft(body, "docs", base, file)
        assert refused.value.key == key
    dav = RemoteDraft("dav", "webdav", {"url": "https://x.example/", "password": "s"}, True)
    assert remote_draft(remote_body(dav), "dav", None, file) == dav
    # An edit that leaves the password out keeps it; another type starts afresh.
    assert remote_draft({"username": "u"}, "dav", dav, file).values["password"] == "s"
    local = remote_draft({"type": "local", "path": "/srv/r"}, "dav", dav, file)
    assert (local.values, local.store_password) == ({"path": "/srv/r"}, False)
    with pytest.raises(ConfigError) as refused:
        remote_draft({"type": "local", "bucket": "b"}, "r", None, file)
    assert refused.value.key == "bucket"
