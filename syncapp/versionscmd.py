"""``syncapp versions`` and ``syncapp restore``: what the remote keeps of a file (its current
copy and the versions under ``.syncapp-versions/``), and one of them brought back; asked of
the running engine when there is one, else straight from the remote."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from syncapp.config import check_secrets, load_config
from syncapp.engine import default_state_path
from syncapp.errors import ConfigError, SyncappError

EXIT_OK = 0


def parse_when(text: str) -> float:
    """A local ISO time (``2026-11-26T17:30``, ``2026-11-26 17:30:05``) or a version stamp."""
    from datetime import datetime

    from syncapp.engine.versions import parse_stamp

    stamp = parse_stamp(text)
    if stamp is not None:
        return stamp
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise SyncappError(f"--at: not a time: {text!r} (use e.g. 2026-11-26T17:30)") from None


async def cmd_versions(args: argparse.Namespace) -> int:
    """versions / restore: asked of the running engine when there is one (its open remote,
    and it sees the restored file arrive), else straight from the remote."""
    from syncapp.engine.client import running_engine
    from syncapp.engine.versions import Version, Versions, pick
    from syncapp.remotes import open_remote
    from syncapp.why import relative_path

    config = load_config(args.config)
    if args.folder not in config.folders:
        raise ConfigError(str(config.path), f"folders.{args.folder}", "no such folder")
    fc = config.folders[args.folder]
    try:
        rel = relative_path(fc, args.path)
    except ValueError as e:
        raise SyncappError(str(e)) from None
    at = parse_when(args.at) if getattr(args, "at", None) else None
    dest = getattr(args, "to", None) or os.path.join(fc.path, rel)

    def choose(found: list[Version]) -> Version:
        # The live remote copy is what a restore after an accidental local delete wants first.
        choice = pick(found, at)
        if choice is None:
            raise SyncappError(
                f"no version of {rel} kept" + (" at or before that time" if at else "")
            )
        return choice

    client = running_engine(default_state_path())
    if client is not None:
        async with client:
            found = await client.list_versions(fc.name, rel)
            if args.command == "versions":
                return _print_versions(rel, found, args.json)
            choice = choose(found)
            await client.restore_version(fc.name, choice, getattr(args, "to", None))
            return _restored(rel, choice, choice.size, dest)
    check_secrets(config, os.environ, only=[fc.remote])
    async with open_remote(config.remotes[fc.remote]) as remote:
        versions = Versions(remote, fc.remote_path)
        found = await versions.list(rel)
        if args.command == "versions":
            return _print_versions(rel, found, args.json)
        choice = choose(found)
        n = await versions.download(choice.remote_path, dest, mtime=choice.at)
        return _restored(rel, choice, n, dest)


def _print_versions(rel: str, found: list[Any], as_json: bool) -> int:
    if as_json:
        rows = [
            {"time": v.at, "size": v.size, "current": v.current, "remote_path": v.remote_path}
            for v in found
        ]
        print(json.dumps(rows))
        return EXIT_OK
    if not found:
        print(f"{rel}: no versions kept")
    for v in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.at))
        label = "current remote copy, written" if v.current else "kept version, replaced"
        print(f"{label} {when}  {v.size:>12} bytes")
    return EXIT_OK


def _restored(rel: str, choice: Any, n: int, dest: str) -> int:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(choice.at))
    what = f"current remote copy of {when}" if choice.current else f"version replaced {when}"
    print(f"restored {rel} ({n} bytes, {what}) to {dest}")
    return EXIT_OK
