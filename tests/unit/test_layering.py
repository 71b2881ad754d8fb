"""Headless modules never import the UI (harlequin-style), checked two ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_headless_modules_do_not_load_textual() -> None:
    code = (
        "import sys\n"
        "import syncapp.engine, syncapp.remotes, syncapp.config, syncapp.configedit,"
        " syncapp.configfile, syncapp.cli\n"
        "import syncapp.remotes.local, syncapp.remotes.webdav, syncapp.remotes.s3,"
        " syncapp.remotes.http\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')"
        " or m.startswith('syncapp.tui'))\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
