"""The two-way keys of a folder: ``direction`` and ``remote_poll``."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncapp.config import parse_config
from syncapp.errors import ConfigError
from tests.helpers import syncapp
from tests.unit.test_config import GOOD_REMOTE, folder_toml

HTTP_REMOTE = '[remotes.nas]\ntype = "http"\nurl = "https://api.example/up/{path}"\n'


def test_defaults_keep_todays_upload_mirror(tmp_path: Path) -> None:
    f = parse_config(GOOD_REMOTE + folder_toml(tmp_path), tmp_path / "c.toml").folders["docs"]
    assert f.direction == "upload" and f.remote_poll == 30.0


def test_both_with_a_poll_interval(tmp_path: Path) -> None:
    body = GOOD_REMOTE + folder_toml(tmp_path, direction='"both"', remote_poll="5")
    f = parse_config(body, tmp_path / "c.toml").folders["docs"]
    assert f.direction == "both" and f.remote_poll == 5.0


@pytest.mark.parametrize(
    ("remote", "extra", "key", "words"),
    [
        (GOOD_REMOTE, {"direction": '"down"'}, "folders.docs.direction", "'upload' or 'both'"),
        (GOOD_REMOTE, {"direction": "true"}, "folders.docs.direction", "'upload' or 'both'"),
        (GOOD_REMOTE, {"remote_poll": "0"}, "folders.docs.remote_poll", "positive"),
        (GOOD_REMOTE, {"remote_poll": "-5"}, "folders.docs.remote_poll", "positive"),
        (GOOD_REMOTE, {"remote_poll": '"30s"'}, "folders.docs.remote_poll", "number"),
        (HTTP_REMOTE, {"direction": '"both"'}, "folders.docs.direction", "list_url"),
    ],
)
def test_wrong_values_name_the_key(
    tmp_path: Path, remote: str, extra: dict[str, str], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(remote + folder_toml(tmp_path, **extra), tmp_path / "c.toml")
    text = str(info.value)
    assert key in text and words in text, text
    assert "\n" not in text


def test_http_remote_that_lists_may_go_both_ways(tmp_path: Path) -> None:
    remote = HTTP_REMOTE + 'list_url = "https://api.example/list/{path}"\n'
    body = remote + folder_toml(tmp_path, direction='"both"')
    assert parse_config(body, tmp_path / "c.toml").folders["docs"].direction == "both"


def test_cli_says_it_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(GOOD_REMOTE + folder_toml(tmp_path, direction='"sideways"'))
    res = syncapp("--config", str(cfg), "status")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "folders.docs.direction" in lines[0], res.stderr
