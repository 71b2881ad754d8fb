"""``SyncEngine``: every folder and remote of a config, held open in one ``AsyncExitStack``.

Folders that share a remote share its open connection pool. Adding or removing a folder at run
time opens or closes just that folder's context (and its remote when it was the last user).

``dry_run=True`` is the dry run: the same engine with every folder's operations held back,
on an in-memory copy of the state (no engine lock: it writes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Self

from syncapp.config import Config, FolderConfig, RemoteConfig, default_state_dir, parse_rate
from syncapp.engine.events import ConfigChanged, Event, EventBus
from syncapp.engine.folder import FolderStatus, FolderSync
from syncapp.engine.learned import learn_remote
from syncapp.engine.lock import EngineLock
from syncapp.engine.ratelimit import RateLimit
from syncapp.engine.state import StateDB, open_state
from syncapp.errors import SyncappError, UnknownName
from syncapp.remotes import Remote, open_remote

log = logging.getLogger(__name__)


def default_state_path() -> Path:
    return default_state_dir() / "state.db"


class _OpenRemote:
    """An open remote plus how many folders use it."""

    def __init__(self, remote: Remote, stack: AsyncExitStack, limit: RateLimit | None) -> None:
        self.remote = remote
        self.stack = stack
        self.users = 0
        self.limit = limit


class SyncEngine:
    def __init__(
        self,
        config: Config,
        state_path: Path | None = None,
        *,
        live: bool = True,
        allow_mass_delete: bool = False,
        bwlimit: str = "",
        env: Mapping[str, str] | None = None,
        delete_hold: float = 1.0,
        control: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.state_path = state_path or default_state_path()
        self.live = live
        self.allow_mass_delete = allow_mass_delete
        self.env = env
        self.delete_hold = delete_hold
        self.bus = EventBus()
        self.folders: dict[str, FolderSync] = {}
        #: Configured folders that could not open, with why (``rescan`` tries again).
        self.open_errors: dict[str, str] = {}
        self._folder_stacks: dict[str, AsyncExitStack] = {}
        self._remotes: dict[str, _OpenRemote] = {}
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()
        rate = parse_rate(bwlimit or config.bwlimit)
        self._global_limit = RateLimit(rate) if rate else None
        self.state: StateDB | None = None
        #: Serve the control API on a Unix socket (syncapp.engine.control) while open.
        self.control = control
        self.stop_requested = asyncio.Event()
        self.dry_run = dry_run
        #: The ``LocalEngine`` facade wrapping this engine, if any (the control API serves it).
        self.api: object | None = None

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            if self.dry_run:
                self.state = open_state(self.state_path, in_memory_copy=True)
            else:
                # Before the database: a second engine on the same state would fight this one
                # over every file (each sees the other's uploads as remote edits).
                lock = EngineLock(self.state_path)
                lock.acquire()
                self._stack.callback(lock.release)
                self.state = open_state(self.state_path)
            self._stack.callback(self.state.close)
            if self.control and not self.dry_run:
                from syncapp.engine.api import LocalEngine
                from syncapp.engine.control import ControlServer, socket_path

                # The facade that serves this engine (its owner's, when it has one).
                api = self.api if isinstance(self.api, LocalEngine) else LocalEngine(self)
                server = ControlServer(api, socket_path(self.state_path))
                await server.start()
                self._stack.push_async_callback(server.close)
            for folder in self.config.folders.values():
                await self.add_folder(folder)
        except BaseException:
            await self._stack.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for name in list(self.folders):
            with contextlib.suppress(Exception):
                await self.remove_folder(name)
        await self._stack.__aexit__(exc_type, exc, tb)

    # -- events -----------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self.bus.subscribe(callback)

    # -- folders ----------------------------------------------------------------------------------

    async def _acquire_remote(self, name: str) -> _OpenRemote:
        if name in self._remotes:
            entry = self._remotes[name]
        else:
            cfg: RemoteConfig = self.config.remotes[name]
            stack = AsyncExitStack()
            remote = await stack.enter_async_context(open_remote(cfg, env=self.env))
            rate = parse_rate(cfg.bwlimit)
            entry = _OpenRemote(remote, stack, RateLimit(rate) if rate else None)
            self._remotes[name] = entry
        entry.users += 1
        return entry

    async def _release_remote(self, name: str) -> None:
        entry = self._remotes.get(name)
        if entry is None:
            return
        entry.users -= 1
        if entry.users <= 0:
            del self._remotes[name]
            await entry.stack.aclose()

    async def add_folder(
        self, cfg: FolderConfig, remote_cfg: RemoteConfig | None = None
    ) -> FolderSync:
        """Open one folder's context and start syncing it."""
        async with self._lock:
            if cfg.name in self.folders:
                raise SyncappError(f"folder {cfg.name!r} is already open")
            if remote_cfg is not None:
                self.config.remotes[remote_cfg.name] = remote_cfg
            self.config.folders[cfg.name] = cfg
            assert self.state is not None
            remote = await self._acquire_remote(cfg.remote)
            limits = [lim for lim in (remote.limit, self._global_limit) if lim is not None]
            folder = FolderSync(
                cfg,
                remote.remote,
                self.state,
                self.bus,
                live=self.live,
                concurrency=self.config.remotes[cfg.remote].connections,
                limits=limits,
                allow_mass_delete=self.allow_mass_delete,
                delete_hold=self.delete_hold,
                dry_run=self.dry_run,
            )
            stack = AsyncExitStack()
            try:
                await stack.enter_async_context(folder)
            except BaseException:
                await stack.aclose()
                await self._release_remote(cfg.remote)
                raise
            self.folders[cfg.name] = folder
            self._folder_stacks[cfg.name] = stack
            return folder

    async def remove_folder(self, name: str) -> None:
        """Stop syncing one folder; nothing is deleted locally or remotely."""
        async with self._lock:
            folder = self.folders.pop(name, None)
            stack = self._folder_stacks.pop(name, None)
            if folder is None or stack is None:
                return
            await stack.aclose()
            await self._release_remote(folder.cfg.remote)

    async def apply_config(self, config: Config) -> dict[str, str]:
        """Make the open folders those of ``config``: close removed ones, reopen changed ones
        (or those on a changed remote), open new ones. One folder that cannot open never
        keeps the others down; returns those that could not, with why. When the config differs
        from the one the engine ran on, every view is told (``ConfigChanged``)."""
        old = self.config
        news = _config_news(old, config)
        changed_remotes = {name for name, r in config.remotes.items() if old.remotes.get(name) != r}
        for name in list(self.folders):
            new = config.folders.get(name)
            if new is None or new != old.folders.get(name) or new.remote in changed_remotes:
                await self.remove_folder(name)
        self.config = dataclasses.replace(
            config, folders=dict(config.folders), remotes=dict(config.remotes)
        )
        self.open_errors = {n: e for n, e in self.open_errors.items() if n in config.folders}
        for cfg in config.folders.values():
            if cfg.name not in self.folders:
                await self._open_logged(cfg)
        if news is not None:
            # Once the folders are open: a view that asks for them now sees the new ones.
            self.bus.publish(news)
        return dict(self.open_errors)

    async def reopen_folder(self, name: str) -> None:
        """Open a configured folder again (after it could not open); its error when it still
        cannot."""
        cfg = self.config.folders.get(name)
        if cfg is None:
            raise UnknownName(f"no folder named {name!r}")
        if name in self.folders:
            await self.remove_folder(name)
        await self._open_logged(cfg)
        if name in self.open_errors:
            raise SyncappError(f"{name}: cannot open: {self.open_errors[name]}")

    async def _open_logged(self, cfg: FolderConfig) -> None:
        try:
            await self.add_folder(cfg)
        except Exception as e:
            log.warning("cannot open folder %s: %s", cfg.name, e)
            self.open_errors[cfg.name] = str(e) or type(e).__name__
        else:
            self.open_errors.pop(cfg.name, None)

    def folder(self, name: str) -> FolderSync:
        try:
            return self.folders[name]
        except KeyError:
            raise UnknownName(f"no folder named {name!r}") from None

    def pause(self, name: str) -> None:
        self.folder(name).pause()

    def resume(self, name: str) -> None:
        self.folder(name).resume()

    def rescan(self, name: str) -> None:
        self.folder(name).rescan()

    async def describe_remote(self, name: str) -> list[str]:
        """What remote ``name``'s server does, in words: from the open remote, else from what
        the state database kept (nothing is sent)."""
        entry = self._remotes.get(name)
        if entry is not None:
            return entry.remote.describe()
        cfg = self.config.remotes.get(name)
        if cfg is None:
            raise UnknownName(f"no remote named {name!r}")
        remote = open_remote(cfg, env=self.env)
        if self.state is not None:
            await learn_remote(remote, self.state, "", probe=False)
        return remote.describe()

    def request_stop(self) -> None:
        """Ask whoever runs the engine to stop it (the control API's stop)."""
        self.stop_requested.set()

    def status(self) -> dict[str, FolderStatus]:
        return {name: f.status() for name, f in self.folders.items()}

    async def wait_idle(self) -> None:
        await asyncio.gather(*(f.wait_idle() for f in self.folders.values()))


def _config_news(old: Config, new: Config) -> ConfigChanged | None:
    """What changed from ``old`` to ``new`` as views are told it; None when nothing did."""
    if old == new:  # the parsed document is not compared: what it says is
        return None
    changed_remotes = {n for n, r in new.remotes.items() if old.remotes.get(n) != r}
    return ConfigChanged(
        "",
        folders=tuple(new.folders),
        remotes=tuple(new.remotes),
        added=tuple(n for n in new.folders if n not in old.folders),
        removed=tuple(n for n in old.folders if n not in new.folders),
        changed=tuple(
            n
            for n, cfg in new.folders.items()
            if n in old.folders and (cfg != old.folders[n] or cfg.remote in changed_remotes)
        ),
        file=str(new.path),
    )
