"""``EngineAPI``: the one narrow door into a running engine, for the UI, CLI and control API.

Nothing outside the engine reads ``FolderSync`` attributes; it asks an ``EngineAPI``. Two kinds
answer the same calls:

- ``LocalEngine`` runs a ``SyncEngine`` in this process (``run``, the demo, the UI's tests). Its
  ``serve()`` is run by the task that entered it; calls that open or close folder contexts are
  handed to that task, so every managed context is entered and left in one task.
- ``syncapp.engine.client.EngineClient`` talks to an engine in another process over the control
  API's Unix socket (``syncapp.engine.control``, which serves a ``LocalEngine``).

Answers are plain dataclasses (``FolderInfo``, ``PathPage`` of ``Pending``, ``Version``) that
travel as JSON.

Folders and remotes are added, changed and removed by the engine itself: it reads the config
file again (a hand edit since is kept), applies the form's draft with the round-trip editor,
writes the file and opens, closes or reopens the folders concerned (``syncapp.configfile``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from syncapp import configfile
from syncapp.config import Config
from syncapp.configedit import FolderDraft, RemoteDraft
from syncapp.engine.core import SyncEngine
from syncapp.engine.events import Event
from syncapp.engine.folder import FolderStatus
from syncapp.engine.live import Figures, LiveMeters, PathNow, figures_from_dict, path_now
from syncapp.engine.pathpage import PathPage, PathQuery
from syncapp.engine.pathpage import select as select_page
from syncapp.engine.state import Pending
from syncapp.engine.versions import Version
from syncapp.errors import SyncappError

T = TypeVar("T")

__all__ = [
    "EngineAPI",
    "FolderInfo",
    "GuardChoice",
    "LocalEngine",
    "PathPage",
    "PathQuery",
    "Pending",
    "Version",
]


class GuardChoice(enum.StrEnum):
    """What the user decided about deletes the guard held back."""

    DELETE = "delete"  # let them through on the remote
    RESTORE = "restore"  # download the files back; nothing is deleted
    KEEP = "keep"  # stay paused, decide later


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """One configured folder as the engine sees it now."""

    name: str
    #: None while the folder is not open (``open_error`` says why).
    status: FolderStatus | None
    #: The tightest bandwidth limit on its transfers in bytes/s (0: none).
    bwlimit: int = 0
    open_error: str = ""
    #: Deletes the guard holds back (the folder is paused until the user decides).
    guard_deletes: int = 0
    #: Live numbers (rates, ETA, files in flight); None while the folder is not open.
    figures: Figures | None = None


class EngineAPI(ABC):
    """The calls every view of the engine makes; an async context manager like ``Remote``."""

    #: The engine's process id when it runs in another process; None in this one.
    pid: int | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @property
    def remote_engine(self) -> bool:
        """The engine runs in another process and goes on when this view goes."""
        return self.pid is not None

    @abstractmethod
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Every event from now on; returns the unsubscribe function."""

    @abstractmethod
    async def serve(self) -> str:
        """Run until the engine stops or ``close`` is called; returns why it ended ("" when
        asked to)."""

    @abstractmethod
    def close(self) -> None:
        """Make ``serve`` return (this view goes; a remote engine goes on)."""

    @abstractmethod
    async def folders(self) -> dict[str, FolderInfo]: ...

    @abstractmethod
    async def apply_config(self, config: Config) -> dict[str, str]:
        """Make the engine's folders those of ``config`` (open new ones, close removed ones,
        reopen changed ones); returns the folders that could not open, with why."""

    @abstractmethod
    async def current_config(self) -> Config:
        """The config the engine runs on now: what a view shows after ``ConfigChanged`` (the
        change may have come from another view or the CLI)."""

    @abstractmethod
    async def save_folder(self, draft: FolderDraft, editing: str | None = None) -> Config:
        """Add a folder (``editing`` None) or change folder ``editing`` (renamed when the
        draft's name differs); the engine writes the config file and (re)opens the folder.
        Returns the config as written. ``ConfigError`` keyed by the draft's field when refused,
        ``UnknownName`` when ``editing`` is not configured."""

    @abstractmethod
    async def remove_folder(self, name: str) -> Config:
        """Stop syncing ``name`` and drop it from the config file; no file is deleted."""

    @abstractmethod
    async def save_remote(self, draft: RemoteDraft, editing: str | None = None) -> Config:
        """As ``save_folder``; the folders on a changed remote reopen with it."""

    @abstractmethod
    async def remove_remote(self, name: str) -> Config:
        """Drop remote ``name`` from the config file; ``ConfigConflict`` while a folder uses
        it."""

    @abstractmethod
    async def pause(self, name: str) -> None: ...

    @abstractmethod
    async def resume(self, name: str) -> None: ...

    @abstractmethod
    async def rescan(self, name: str) -> None:
        """Scan again now; a folder that could not open is tried again."""

    @abstractmethod
    async def retry(self, name: str) -> int:
        """Try the failed paths again now; returns how many."""

    @abstractmethod
    async def decide_guard(self, name: str, choice: GuardChoice) -> int:
        """Act on held deletes; for ``RESTORE`` returns the files downloaded back."""

    @abstractmethod
    async def path_page(self, name: str, query: PathQuery) -> PathPage:
        """The folder's paths not in sync with their reasons (with ``query.everything``
        synced files too), the rows the query asks for and the counts of all."""

    async def paths(self, name: str, everything: bool = False) -> list[Pending]:
        """Every path not in sync with its reason; with ``everything`` synced files too."""
        return (await self.path_page(name, PathQuery(everything))).rows

    @abstractmethod
    async def path_now(self, name: str, rel: str) -> PathNow:
        """Where one path stands right now (in flight, queued, held, retrying, ignored by the
        engine's rules); ``syncapp why`` adds it to the state database's answer."""

    @abstractmethod
    async def list_versions(self, name: str, rel: str) -> list[Version]: ...

    @abstractmethod
    async def restore_version(self, name: str, version: Version, dest: str | None) -> None: ...

    @abstractmethod
    async def describe_remote(self, name: str) -> list[str]: ...

    @abstractmethod
    async def stop_engine(self) -> None:
        """Stop syncing: the engine itself ends, not only this view."""


# -- in this process ------------------------------------------------------------------------------

Call = Callable[[], Awaitable[Any]]


class LocalEngine(EngineAPI):
    """A ``SyncEngine`` in this process, behind the facade."""

    def __init__(self, engine: SyncEngine) -> None:
        self.sync = engine
        engine.api = self
        self._inbox: asyncio.Queue[tuple[Call, asyncio.Future[Any], bool] | None] = asyncio.Queue()
        self._serving = False
        self._closed = False
        self._config_edit = asyncio.Lock()
        self.meters = LiveMeters()
        engine.subscribe(self.meters.add)

    async def __aenter__(self) -> Self:
        await self.sync.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self._fail_waiting()
        await self.sync.__aexit__(exc_type, exc, tb)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self.sync.subscribe(callback)

    # -- the owner task ---------------------------------------------------------------------------

    async def serve(self) -> str:
        """Run calls handed over by ``in_engine_task`` until ``close`` or a stop request.

        Exclusive calls (opening or closing folders) wait for the ones running alongside (a
        reopen must not pull a remote from under a listing); the others run side by side."""
        self._serving = True
        alongside: set[asyncio.Task[None]] = set()
        stop = asyncio.ensure_future(self.sync.stop_requested.wait())
        try:
            while True:
                got = asyncio.ensure_future(self._inbox.get())
                await asyncio.wait({got, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not got.done():
                    got.cancel()
                    return ""
                item = got.result()
                if item is None:
                    return ""
                call, future, exclusive = item
                if exclusive:
                    await asyncio.gather(*alongside, return_exceptions=True)
                    await _answer(call, future)
                else:
                    task = asyncio.create_task(_answer(call, future))
                    alongside.add(task)
                    task.add_done_callback(alongside.discard)
                    # Cancelled before it started, it never reached its own answer.
                    task.add_done_callback(functools.partial(_when_done, future))
        finally:
            stop.cancel()
            self._serving = False
            for task in alongside:
                task.cancel()
            await asyncio.gather(*alongside, return_exceptions=True)
            self._fail_waiting()

    def close(self) -> None:
        self._closed = True
        self._inbox.put_nowait(None)

    async def in_engine_task(self, call: Call, *, exclusive: bool = True) -> Any:
        """Run ``call`` in the task that serves this engine (directly when none serves)."""
        if self._closed:
            raise SyncappError("the engine stopped")
        if not self._serving:
            return await call()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((call, future, exclusive))
        return await future

    def _fail_waiting(self) -> None:
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item is not None:
                _stopped(item[1])

    # -- calls ------------------------------------------------------------------------------------

    async def folders(self) -> dict[str, FolderInfo]:
        out: dict[str, FolderInfo] = {}
        for name in self.sync.config.folders:
            folder = self.sync.folders.get(name)
            if folder is None:
                error = self.sync.open_errors.get(name, "not open")
                out[name] = FolderInfo(name, None, open_error=error)
            else:
                out[name] = FolderInfo(
                    name,
                    folder.status(),
                    folder.bwlimit,
                    "",
                    len(folder.guard_deletes),
                    self.meters.figures(folder),
                )
        return out

    async def apply_config(self, config: Config) -> dict[str, str]:
        async def apply() -> dict[str, str]:
            return await self.sync.apply_config(config)

        result: dict[str, str] = await self.in_engine_task(apply)
        return result

    async def current_config(self) -> Config:
        # A copy: the engine's own dicts change as folders open.
        config = self.sync.config
        return dataclasses.replace(
            config, folders=dict(config.folders), remotes=dict(config.remotes)
        )

    async def save_folder(self, draft: FolderDraft, editing: str | None = None) -> Config:
        return await self._edit_config(lambda c: configfile.folder_saved(c, draft, editing))

    async def remove_folder(self, name: str) -> Config:
        return await self._edit_config(lambda c: configfile.folder_removed(c, name))

    async def save_remote(self, draft: RemoteDraft, editing: str | None = None) -> Config:
        return await self._edit_config(lambda c: configfile.remote_saved(c, draft, editing))

    async def remove_remote(self, name: str) -> Config:
        return await self._edit_config(lambda c: configfile.remote_removed(c, name))

    async def _edit_config(self, change: Callable[[Config], Config]) -> Config:
        # Read, change, write and apply are one step: two views saving at once cannot lose
        # each other's edit.
        async def edit() -> Config:
            async with self._config_edit:
                new = await asyncio.to_thread(configfile.edit_file, self.sync.config, change)
                await self.sync.apply_config(new)
                return new

        result: Config = await self.in_engine_task(edit)
        return result

    async def pause(self, name: str) -> None:
        self.sync.folder(name).pause()

    async def resume(self, name: str) -> None:
        self.sync.folder(name).resume()

    async def rescan(self, name: str) -> None:
        if name in self.sync.folders:
            self.sync.folder(name).rescan()
            return

        async def reopen() -> None:
            await self.sync.reopen_folder(name)

        await self.in_engine_task(reopen)

    async def retry(self, name: str) -> int:
        folder = self.sync.folder(name)
        failed = folder.status().failed
        folder.retry_failed()
        return failed

    async def decide_guard(self, name: str, choice: GuardChoice) -> int:
        folder = self.sync.folder(name)
        if choice is GuardChoice.DELETE:
            folder.release_guard()
            return 0
        if choice is GuardChoice.RESTORE:

            async def restore() -> int:
                return await folder.restore_held()

            restored: int = await self.in_engine_task(restore, exclusive=False)
            return restored
        return 0

    async def path_page(self, name: str, query: PathQuery) -> PathPage:
        folder = self.sync.folder(name)
        return select_page(folder.state, folder.name, folder.entries, query)

    async def path_now(self, name: str, rel: str) -> PathNow:
        return path_now(self.sync.folder(name), rel, self.meters)

    async def list_versions(self, name: str, rel: str) -> list[Version]:
        folder = self.sync.folder(name)

        async def listing() -> list[Version]:
            return await folder.list_versions(rel)

        found: list[Version] = await self.in_engine_task(listing, exclusive=False)
        return found

    async def restore_version(self, name: str, version: Version, dest: str | None) -> None:
        folder = self.sync.folder(name)

        async def restore() -> None:
            await folder.restore_version(version, dest=dest)

        await self.in_engine_task(restore, exclusive=False)

    async def describe_remote(self, name: str) -> list[str]:
        return await self.sync.describe_remote(name)

    async def stop_engine(self) -> None:
        self.sync.request_stop()


async def _answer(call: Call, future: asyncio.Future[Any]) -> None:
    try:
        result = await call()
    except asyncio.CancelledError:
        _stopped(future)
        raise
    except Exception as e:
        if not future.done():
            future.set_exception(e)
    else:
        if not future.done():
            future.set_result(result)


def _when_done(future: asyncio.Future[Any], _task: asyncio.Task[None]) -> None:
    _stopped(future)


def _stopped(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(SyncappError("the engine stopped"))


# -- JSON both ways (the control API) -------------------------------------------------------------


def info_to_dict(info: FolderInfo) -> dict[str, Any]:
    return dataclasses.asdict(info)


def info_from_dict(d: dict[str, Any]) -> FolderInfo:
    st = d.get("status")
    status = None
    if st is not None:
        from syncapp.engine.events import FolderState

        status = FolderStatus(**{**st, "state": FolderState(st["state"])})
    return FolderInfo(
        d["name"],
        status,
        int(d.get("bwlimit", 0)),
        str(d.get("open_error", "")),
        int(d.get("guard_deletes", 0)),
        figures_from_dict(d.get("figures")),
    )
