"""Every config error path: one clear line naming the file and the key, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncapp.config import parse_config, parse_max_delete, parse_rate, parse_size
from syncapp.errors import ConfigError
from tests.helpers import syncapp

GOOD_REMOTE = '[remotes.nas]\ntype = "webdav"\nurl = "https://nas.example/dav/"\n'


def folder_toml(path: Path, **extra: str) -> str:
    lines = [f'[folders.docs]\npath = "{path}"\nremote = "nas"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ("bogus = 1\n", "bogus", "unknown key"),
        (GOOD_REMOTE + 'colour = "red"\n', "remotes.nas.colour", "unknown key"),
        ('[remotes.nas]\ntype = "ftp"\n', "remotes.nas.type", "must be one of"),
        ('[remotes.nas]\ntype = "webdav"\nurl = "nas.example"\n', "remotes.nas.url", "not an http"),
        (
            '[remotes.nas]\ntype = "webdav"\nurl = "https://bob:hunter2@nas/"\n',
            "remotes.nas.url",
            "must not contain credentials",
        ),
        ('[remotes.nas]\ntype = "webdav"\n', "remotes.nas.url", "is required"),
        (GOOD_REMOTE + 'connections = "many"\n', "remotes.nas.connections", "integer"),
        (
            '[remotes.nas]\ntype = "s3"\nbucket = "b"\npart_size = "1MiB"\n',
            "remotes.nas.part_size",
            "at least 5MiB",
        ),
        (
            '[remotes.nas]\ntype = "http"\nurl = "https://api.example/upload"\n',
            "remotes.nas.url",
            "{path}",
        ),
        ('[folders.docs]\nremote = "nas"\n', "folders.docs.path", "is required"),
        ("this is = not toml [", "line", "not valid TOML"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError) as info:
        parse_config(body, cfg)
    text = str(info.value)
    assert str(cfg) in text and key in text and words in text
    assert "hunter2" not in text


def test_folder_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    missing = tmp_path / "nope"
    cases = [
        (folder_toml(missing), "folders.docs.path", "does not exist"),
        (
            folder_toml(tmp_path).replace('"nas"', '"other"'),
            "folders.docs.remote",
            "unknown remote",
        ),
        (
            folder_toml(tmp_path, mirror_deletes='"yes"'),
            "folders.docs.mirror_deletes",
            "true or false",
        ),
        (folder_toml(tmp_path, max_delete='"lots"'), "folders.docs.max_delete", "percentage"),
        (folder_toml(tmp_path, remote_path='"../escape"'), "folders.docs.remote_path", ".."),
        (folder_toml(tmp_path, ignore='"*.tmp"'), "folders.docs.ignore", "list of strings"),
        (folder_toml(Path("relative/dir")), "folders.docs.path", "absolute"),
    ]
    for body, key, words in cases:
        with pytest.raises(ConfigError) as info:
            parse_config(GOOD_REMOTE + body, cfg)
        assert key in str(info.value) and words in str(info.value), str(info.value)


def test_overlapping_folders_rejected(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    body = GOOD_REMOTE + (
        f'[folders.a]\npath = "{tmp_path / "a"}"\nremote = "nas"\nremote_path = "x"\n'
        f'[folders.b]\npath = "{tmp_path / "b"}"\nremote = "nas"\nremote_path = "x/y"\n'
    )
    with pytest.raises(ConfigError, match="overlaps"):
        parse_config(body, tmp_path / "c.toml")


def test_valid_config_round_trip(tmp_path: Path) -> None:
    body = (
        "# my comment\n"
        + GOOD_REMOTE
        + 'username = "alice"\npassword_env = "NAS_PW"\n\n'
        + (folder_toml(tmp_path, ignore='["*.tmp", ".cache/"]', remote_path='"/Documents/"'))
    )
    cfg = parse_config(body, tmp_path / "c.toml")
    f = cfg.folders["docs"]
    assert f.remote_path == "Documents" and f.ignore == ("*.tmp", ".cache/")
    assert f.mirror_deletes is True and f.max_delete == "50%"
    assert cfg.document is not None and "# my comment" in cfg.document.as_string()


def test_units() -> None:
    assert parse_size("8MiB") == 8 * 1024 * 1024
    assert parse_size("1GB") == 10**9
    assert parse_rate("2MiB/s") == 2 * 1024 * 1024
    assert parse_rate("") == 0
    assert parse_max_delete("50%") == (None, 0.5)
    assert parse_max_delete(100) == (100, None)
    with pytest.raises(ValueError):
        parse_size("lots")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--once"],
        ["status"],
        ["why", "docs", "x"],
    ],
)
def test_cli_config_errors_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(GOOD_REMOTE + 'secret_thing = "x"\n')
    res = syncapp("--config", str(cfg), *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(cfg) in lines[0] and "remotes.nas.secret_thing" in lines[0]
    # Nothing was written: no state database appeared.
    state_home = Path(__import__("os").environ["XDG_STATE_HOME"])
    assert not any(state_home.rglob("*.db"))


def test_cli_missing_config_file(tmp_path: Path) -> None:
    res = syncapp("--config", str(tmp_path / "absent.toml"), "run", "--once")
    assert res.returncode == 2
    assert "not found" in res.stderr and "absent.toml" in res.stderr


def test_cli_bad_arguments_exit_2() -> None:
    res = syncapp("run", "--no-such-flag")
    assert res.returncode == 2


def test_cli_version_and_help() -> None:
    assert syncapp("--version").stdout.startswith("syncapp ")
    assert "run" in syncapp("--help").stdout


@pytest.mark.parametrize(
    ("remote", "var"),
    [
        (
            '[remotes.nas]\ntype = "webdav"\nurl = "http://127.0.0.1:9/"\nusername = "bob"\n'
            'password_env = "SYNCAPP_TEST_UNSET_PW"\n',
            "SYNCAPP_TEST_UNSET_PW",
        ),
        (
            '[remotes.nas]\ntype = "http"\nurl = "http://127.0.0.1:9/{path}"\n'
            'token_env = "SYNCAPP_TEST_UNSET_TOKEN"\n',
            "SYNCAPP_TEST_UNSET_TOKEN",
        ),
        (
            '[remotes.nas]\ntype = "s3"\nendpoint = "http://127.0.0.1:9"\nbucket = "bkt"\n'
            'access_key_id_env = "SYNCAPP_TEST_UNSET_KEY"\n',
            "SYNCAPP_TEST_UNSET_KEY",
        ),
    ],
)
@pytest.mark.parametrize("args", [["run", "--once"], ["run", "--once", "--dry-run"]])
def test_unset_secret_variable_is_one_line_before_any_request(
    tmp_path: Path, remote: str, var: str, args: list[str]
) -> None:
    (tmp_path / "docs").mkdir()
    cfg = tmp_path / "config.toml"
    # Port 9 (discard) on loopback: a request would fail with another message, not this one.
    cfg.write_text(remote + folder_toml(tmp_path / "docs"))
    res = syncapp("--config", str(cfg), *args, env={var: ""})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert var in lines[0] and "is not set" in lines[0] and "remotes.nas." in lines[0]
