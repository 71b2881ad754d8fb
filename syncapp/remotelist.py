"""``syncapp remotes``: each configured remote, which folders use it, and what its server was
seen to do, in words (from the state database; ``--probe`` asks the servers again)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import TextIO

from syncapp.config import Config, check_secrets
from syncapp.engine import default_state_path
from syncapp.engine.learned import (
    facts_key,
    kept_facts,
    kept_tree_etags,
    learn_remote,
    learn_tree_etags,
    tree_etags_key,
)
from syncapp.engine.state import StateDB, open_state
from syncapp.remotes import Remote, open_remote


async def list_remotes(config: Config, *, probe: bool, as_json: bool, out: TextIO) -> int:
    path = default_state_path()
    db: StateDB | None = None
    if probe:
        check_secrets(config, os.environ, only=list(config.remotes))
        db = open_state(path)
    elif path.exists():
        db = open_state(path, readonly=True)
    report: list[RemoteReport] = []
    try:
        for name, cfg in config.remotes.items():
            users = [f.name for f in config.folders.values() if f.remote == name]
            # The first folder's remote_path: the place syncapp writes to, so it may probe there.
            where = next(
                (f.remote_path.strip("/") for f in config.folders.values() if f.remote == name),
                "",
            )
            remote = open_remote(cfg)
            tree: bool | None = None
            if probe:
                assert db is not None
                db.set_meta(facts_key(remote), "")  # asked again, not read back
                db.set_meta(tree_etags_key(remote), "")
                async with remote:
                    await _make_dirs(remote, where)
                    await learn_remote(remote, db, where)
                    if remote.kind == "webdav":
                        tree = await learn_tree_etags(remote, db, where)
            elif db is not None:
                await remote.learn(where, kept=kept_facts(db, remote), probe=False)
                tree = kept_tree_etags(db, remote, time.time())
            facts = remote.describe()
            if tree is not None:
                facts.append(
                    "folder ETags follow their contents: yes; a two-way poll that finds nothing "
                    "changed is one request"
                    if tree
                    else "folder ETags follow their contents: no; a two-way poll lists the folder"
                )
            report.append(RemoteReport(name, cfg.type, remote.display_url, users, facts))
    finally:
        if db is not None:
            db.close()
    for item in report:
        if as_json:
            out.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
            continue
        used = ", ".join(item.folders) or "no folder"
        out.write(f"{item.remote} ({item.type}) {item.url} — used by {used}\n")
        for line in item.facts:
            out.write(f"  {line}\n")
    return 0


@dataclass(frozen=True, slots=True)
class RemoteReport:
    remote: str
    type: str
    url: str
    folders: list[str]
    facts: list[str]


async def _make_dirs(remote: Remote, where: str) -> None:
    if not where or not remote.capabilities.directories:
        return
    parts = where.split("/")
    for i in range(1, len(parts) + 1):
        await remote.mkdir("/".join(parts[:i]))
