"""`restore --at TIME` writes back the content that was current at TIME: with several kept
versions, each moment between two replacements gives a different one (not simply the newest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import syncapp


def stamp(ts: float) -> str:
    """A time as ``--at`` accepts it, to the microsecond (a version stamp)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def test_restore_at_picks_the_version_current_then(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    remote = tmp_path / "remote"
    remote.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.r]\ntype = "local"\npath = "{remote}"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
    )
    contents = ["version one", "version two, longer", "v3", "version four (live)"]
    for text in contents:
        (folder / "f.txt").write_text(text)
        res = syncapp("--config", str(cfg), "run", "--once")
        assert res.returncode == 0, res.stderr

    listing = syncapp("--config", str(cfg), "versions", "docs", "f.txt", "--json")
    assert listing.returncode == 0, listing.stderr
    found = json.loads(listing.stdout)
    replaced = sorted(v["time"] for v in found if not v["current"])
    assert len(replaced) == 3, found  # v1, v2 and v3 were each replaced once

    def restore_at(ts: float) -> str:
        dest = tmp_path / "restored.txt"
        res = syncapp(
            "--config", str(cfg), "restore", "docs", "f.txt", "--at", stamp(ts), "--to", str(dest)
        )
        assert res.returncode == 0, res.stderr
        return dest.read_text()

    # Before the first replacement v1 stood; between two replacements, the one in between.
    assert restore_at(replaced[0] - 0.000_5) == contents[0]
    assert restore_at((replaced[0] + replaced[1]) / 2) == contents[1]
    assert restore_at((replaced[1] + replaced[2]) / 2) == contents[2]
    assert restore_at(replaced[2] + 0.5) == contents[3]
    assert (folder / "f.txt").read_text() == contents[3]  # --to leaves the live file alone
