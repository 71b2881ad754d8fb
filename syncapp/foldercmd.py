"""``syncapp folder add|remove``: asked of the running engine when there is one (it writes the
config file and opens or closes the folder); without one the config file is edited here, read
again first and validated the same way (``syncapp.configfile``)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from pathlib import Path
from typing import TextIO

from syncapp import configfile
from syncapp.config import Config, load_config
from syncapp.configedit import FolderDraft, default_remote_path, empty_config
from syncapp.engine.api import EngineAPI
from syncapp.engine.client import running_engine
from syncapp.engine.configcalls import absolute
from syncapp.errors import SyncappError

EXIT_OK, EXIT_FAILED = 0, 1


async def cmd_folder(
    args: argparse.Namespace, config_path: Path, state_path: Path, out: TextIO
) -> int:
    name: str = args.name
    adding = args.action == "add"
    if adding:
        path = absolute(args.path)
        remote_path = args.remote_path
        draft = FolderDraft(
            name,
            path,
            args.remote,
            default_remote_path(path) if remote_path is None else remote_path,
        )

    def here(config: Config) -> Config:
        if adding:
            return configfile.folder_saved(config, draft)
        return configfile.folder_removed(config, name)

    def through(api: EngineAPI) -> Awaitable[Config]:
        return api.save_folder(draft) if adding else api.remove_folder(name)

    done = f"folder {name} added to" if adding else f"folder {name} removed from"
    client = running_engine(state_path)
    if client is None:
        known = load_config(config_path) if config_path.exists() else empty_config(config_path)
        config = configfile.edit_file(known, here)
        after = "`syncapp start` syncs it" if adding else "no file deleted"
        out.write(f"{done} {config.path} (no engine is running: {after})\n")
        return EXIT_OK
    async with client:
        engine_path = client.config_path
        if (
            args.config is not None
            and engine_path is not None
            and engine_path.resolve() != config_path.resolve()
        ):
            raise SyncappError(
                f"the running engine (pid {client.pid}) uses {engine_path}, not {config_path};"
                " `syncapp stop` stops it"
            )
        config = await through(client)
        if not adding:
            out.write(f"{done} {config.path}; the engine stopped syncing it (no file deleted)\n")
            return EXIT_OK
        info = (await client.folders()).get(name)
    if info is not None and info.open_error:
        out.write(f"{done} {config.path}, but the engine cannot open it: {info.open_error}\n")
        return EXIT_FAILED
    out.write(f"{done} {config.path}; the engine (pid {client.pid}) syncs it\n")
    return EXIT_OK
