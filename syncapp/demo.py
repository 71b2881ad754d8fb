"""``syncapp demo``: the embedded default. A real WebDAV server (WsgiDAV) on 127.0.0.1 serves a
folder in the user data dir; a demo folder with a few files is mirrored to it live.

This module prepares the folders, the config and the live samples; the command line
(``syncapp.cli.run_demo``) and the UI start the server and the engine. It imports neither.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import tomlkit

from syncapp.config import default_data_dir, save_document

SAMPLES: dict[str, str] = {
    "README.txt": "This folder is mirrored live by syncapp to the demo WebDAV server.\n"
    "Edit, add, rename or delete files here and watch them arrive remotely.\n",
    "notes/ideas.md": "# Ideas\n\n- sync faster than a save takes\n- never lose a file\n",
    "notes/todo list.txt": "buy milk\nwrite tests\n",
    "photos/#1 café.txt": "odd names are fine: spaces, #, %, ?, unicode\n",
}

LIVE_SAMPLES: list[tuple[str, str]] = [
    ("live/hello.txt", "written while syncapp was running\n"),
    ("live/second file.txt", "and another one, a moment later\n"),
    ("live/deeper/nested.txt", "new folders are created remotely too\n"),
]


def demo_dirs(base: Path | None = None) -> tuple[Path, Path, Path]:
    base = base or default_data_dir() / "demo"
    return base / "folder", base / "server", base / "config.toml"


def demo_state_path(base: Path | None = None) -> Path:
    """The demo's own state database: its engine never touches (or waits for) the user's."""
    return (base or default_data_dir() / "demo") / "state" / "state.db"


def write_demo_config(folder: Path, url: str, path: Path) -> None:
    doc = tomlkit.document()
    doc.add(
        tomlkit.comment("Written by `syncapp demo`: the embedded WebDAV server and demo folder.")
    )
    remotes = tomlkit.table(is_super_table=True)
    demo_remote = tomlkit.table()
    demo_remote["type"] = "webdav"
    demo_remote["url"] = url
    remotes["demo"] = demo_remote
    doc["remotes"] = remotes
    folders = tomlkit.table(is_super_table=True)
    f = tomlkit.table()
    f["path"] = str(folder)
    f["remote"] = "demo"
    f["remote_path"] = "demo"
    f["ignore"] = ["*.tmp"]
    folders["demo"] = f
    doc["folders"] = folders
    save_document(path, doc)


def prepare(folder: Path, server_root: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    server_root.mkdir(parents=True, exist_ok=True)
    for rel, text in SAMPLES.items():
        p = folder / rel
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")


async def drop_live_samples(folder: Path, delay: float = 1.5) -> None:
    """A few files appear while the engine runs, so the demo shows live sync by itself."""
    for rel, text in LIVE_SAMPLES:
        await asyncio.sleep(delay)
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
