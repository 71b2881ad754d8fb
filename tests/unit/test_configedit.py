"""Config edits from the forms: validation, comments and order kept, secrets only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from syncapp.config import Config, WebDAVRemoteConfig, load_config
from syncapp.configedit import (
    FolderDraft,
    RemoteDraft,
    empty_config,
    folder_problems,
    remote_config,
    remote_problems,
    save,
    suggest_name,
    with_folder,
    with_remote,
    without_folder,
    without_remote,
)
from syncapp.errors import ConfigError
from tests.helpers import Setup, make_setup


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


def dumps(config: Config) -> str:
    assert config.document is not None
    return tomlkit.dumps(config.document)


def test_add_folder_keeps_comments_and_order(setup: Setup) -> None:
    new = setup.folder("new")
    config = with_folder(setup.config(), FolderDraft("new", str(new), "box", "new"))
    save(config)
    text = setup.config_path.read_text()
    assert text.startswith("# syncapp test config")
    assert text.index("[remotes.box]") < text.index("# the documents") < text.index("[folders.new]")
    assert "# a local folder as the remote" in text
    assert list(load_config(setup.config_path).folders) == ["docs", "new"]


def test_add_remote_keeps_the_comment_above_folders(setup: Setup) -> None:
    draft = RemoteDraft("dav", "webdav", {"url": "https://x.example/", "password_env": "P"})
    text = dumps(with_remote(setup.config(), draft))
    assert text.index("[remotes.dav]") < text.index("# the documents") < text.index("[folders")


def test_edit_keeps_unknown_keys_and_removal_keeps_the_rest(setup: Setup) -> None:
    setup.config_path.write_text(
        setup.config_path.read_text() + 'settle = 2.0  # slow disk\nmax_delete = "10"\n'
    )
    config = setup.config()
    draft = FolderDraft.from_config(config.folders["docs"])
    edited = with_folder(config, FolderDraft(**{**draft.__dict__, "remote_path": "d2"}), "docs")
    text = dumps(edited)
    assert "settle = 2.0  # slow disk" in text and 'remote_path = "d2"' in text
    removed = without_folder(edited, "docs")
    assert removed.folders == {}
    assert "# a local folder as the remote" in dumps(removed)


def test_first_config_from_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    config = empty_config(tmp_path / "c.toml")
    config = with_remote(config, RemoteDraft("r", "local", {"path": str(tmp_path / "r")}))
    config = with_folder(config, FolderDraft("f", str(folder), "r", "f"))
    save(config)
    assert (tmp_path / "c.toml").stat().st_mode & 0o777 == 0o600
    loaded = load_config(tmp_path / "c.toml")
    assert list(loaded.remotes) == ["r"] and list(loaded.folders) == ["f"]


def test_home_paths_stay_portable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Docs").mkdir()
    remote = RemoteDraft("r", "local", {"path": "~/R"})
    config = with_remote(empty_config(tmp_path / "c.toml"), remote)
    config = with_folder(config, FolderDraft("d", "~/Docs", "r", "Docs"))
    text = dumps(config)
    assert 'path = "~/Docs"' in text and 'path = "~/R"' in text
    assert config.folders["d"].path == tmp_path / "Docs"


def test_folder_problems(setup: Setup) -> None:
    config = setup.config()
    ok = setup.folder("ok")
    assert folder_problems(config, FolderDraft("ok", str(ok), "box", "ok"), None) == {}
    assert "remote" in folder_problems(config, FolderDraft("ok", str(ok), "", "ok"), None)
    assert "remote" in folder_problems(config, FolderDraft("ok", str(ok), "zz", "ok"), None)
    # The same local folder to another remote is fine (a second copy elsewhere).
    config = with_remote(config, RemoteDraft("other", "local", {"path": str(setup.root / "o")}))
    assert folder_problems(config, FolderDraft("d2", str(setup.docs), "other", "d"), None) == {}
    # Editing a folder does not clash with itself.
    same = FolderDraft("docs", str(setup.docs), "box", "docs")
    assert folder_problems(config, same, "docs") == {}
    # An empty remote path overlaps everything on that remote.
    problems = folder_problems(config, FolderDraft("ok", str(ok), "box", ""), None)
    assert "overlaps" in problems["remote_path"]


def test_remote_problems_and_rename_rules(setup: Setup) -> None:
    config = setup.config()
    draft = RemoteDraft("box2", "local", {"path": "/x"})
    assert remote_problems(config, draft, "box")["name"].startswith("used by folder(s) docs")
    assert remote_problems(config, RemoteDraft("n", "nope"), None)["type"] == "choose a type"


def test_changing_a_remote_type_drops_the_old_keys(setup: Setup) -> None:
    config = with_remote(
        setup.config(), RemoteDraft("box", "webdav", {"url": "https://dav.example/"}), "box"
    )
    text = dumps(config)
    assert 'type = "webdav"' in text and "path =" not in text.split("[folders")[0]


def test_remove_remote_in_use_is_refused(setup: Setup) -> None:
    with pytest.raises(ConfigError, match="used by folder"):
        without_remote(setup.config(), "box")


def test_remote_config_for_testing_keeps_the_typed_password(tmp_path: Path) -> None:
    draft = RemoteDraft("t", "webdav", {"url": "https://x.example/", "password": "pw"})
    cfg = remote_config(draft, tmp_path / "c.toml")
    assert isinstance(cfg, WebDAVRemoteConfig) and cfg.password == "pw"
    with pytest.raises(ConfigError):
        remote_config(RemoteDraft("t", "webdav", {"url": "nope"}), tmp_path / "c.toml")


def test_suggest_name() -> None:
    assert suggest_name("/home/a/My Photos", {}) == "My-Photos"
    assert suggest_name("/home/a/docs", {"docs": 1, "docs-2": 1}) == "docs-3"
    assert suggest_name("/home/a/.hidden", {}) == "hidden"
    assert suggest_name("/home/a/_x", {}) == "x"
