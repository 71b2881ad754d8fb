"""``EngineClient``: the ``EngineAPI`` of an engine running in another process.

It speaks the control API (``syncapp.engine.control``) over the engine's Unix socket with httpx's
UDS transport. ``serve()`` reads the event stream and hands each event, rebuilt as the engine's
own dataclass, to the subscribers; it returns when the engine goes away, so a view can say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import typing
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from syncapp.config import Config, load_config
from syncapp.configedit import FolderDraft, RemoteDraft
from syncapp.engine import events as _events
from syncapp.engine.api import EngineAPI, FolderInfo, GuardChoice, info_from_dict
from syncapp.engine.configcalls import folder_body, remote_body
from syncapp.engine.control import socket_path
from syncapp.engine.events import Event, EventBus
from syncapp.engine.live import PathNow
from syncapp.engine.lock import running_pid
from syncapp.engine.pathpage import PathPage, PathQuery, page_from_dict
from syncapp.engine.versions import Version
from syncapp.errors import ConfigConflict, ConfigError, SyncappError, UnknownName

__all__ = ["EngineClient", "answer", "event_from_dict", "running_engine"]

#: Calls answer at once; the longest (a listing of versions, a restore) talk to the remote.
CALL_TIMEOUT = 120.0
#: How long an engine that holds the state lock may take to answer its first call.
START_GRACE = 15.0


def running_engine(state_path: Path) -> EngineClient | None:
    """A client for the engine running on ``state_path``; None when none runs (or it serves no
    control API, as ``run --once`` does)."""
    pid = running_pid(state_path)
    if pid is None or not socket_path(state_path).exists():
        return None
    return EngineClient(state_path)


def answer(resp: httpx.Response) -> Any:
    """A control API reply's JSON; when the engine refused, the error it raised, rebuilt:
    ``ConfigError`` (422) or ``ConfigConflict`` (409) with the key, ``UnknownName`` (404), else
    ``SyncappError`` with the engine's own words (every error reply is ``{"error": "…"}``)."""
    if resp.status_code >= 400:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        message = str(data.get("error", resp.text))
        if "key" in data and resp.status_code in (409, 422):
            cls = ConfigConflict if resp.status_code == 409 else ConfigError
            raise cls(str(data.get("file", "")), str(data["key"]), str(data.get("problem", "")))
        if resp.status_code == 404:
            raise UnknownName(message)
        raise SyncappError(message)
    return resp.json()


class EngineClient(EngineAPI):
    """``start``, when given, starts an engine in the background if none runs (it returns an
    error in words, or None), so entering the client attaches either way."""

    def __init__(self, state_path: Path, start: Callable[[], str | None] | None = None) -> None:
        self.state_path = state_path
        self.sock = socket_path(state_path)
        self.pid = 0
        self._start = start
        self._bus = EventBus()
        self._http: httpx.AsyncClient | None = None
        self._closed = asyncio.Event()
        #: The config file the engine runs on.
        self.config_path: Path | None = None

    async def __aenter__(self) -> Self:
        if running_pid(self.state_path) is None:
            if self._start is None:
                raise SyncappError("no engine is running (`syncapp start` starts one)")
            error = await asyncio.to_thread(self._start)
            if error:
                raise SyncappError(error)
        transport = httpx.AsyncHTTPTransport(uds=str(self.sock))
        self._http = httpx.AsyncClient(
            transport=transport, base_url="http://syncapp", timeout=CALL_TIMEOUT
        )
        try:
            status = await self._first_answer()
        except BaseException:
            await self._http.aclose()
            raise
        self.pid = int(status.get("pid") or 0)
        config = status.get("config")
        self.config_path = Path(config) if config else None
        return self

    async def _first_answer(self) -> Any:
        """The engine's status; an engine that has just taken the lock may not serve yet."""
        deadline = asyncio.get_running_loop().time() + START_GRACE
        while True:
            try:
                return await self._call("GET", "/v1/status")
            except SyncappError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                if running_pid(self.state_path) is None:
                    raise SyncappError("the engine stopped as it started") from None
                await asyncio.sleep(0.1)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self._bus.subscribe(callback)

    async def serve(self) -> str:
        assert self._http is not None
        reader = asyncio.ensure_future(self._read_events())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({reader, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (reader, closed):
                t.cancel()
            await asyncio.gather(reader, closed, return_exceptions=True)
        if self._closed.is_set():
            return ""
        error = reader.exception() if not reader.cancelled() else None
        why = f" ({error})" if error else ""
        return f"the engine (pid {self.pid}) stopped{why}"

    async def _read_events(self) -> None:
        assert self._http is not None
        timeout = httpx.Timeout(CALL_TIMEOUT, read=None)  # events come when they come
        async with self._http.stream("GET", "/v1/events", timeout=timeout) as resp:
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                try:
                    ev = event_from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # an event kind this version does not know
                if ev is not None:
                    self._bus.publish(ev)

    def close(self) -> None:
        self._closed.set()

    async def _call(
        self, method: str, url: str, body: dict[str, Any] | None = None, **params: str
    ) -> Any:
        assert self._http is not None, "not connected"
        try:
            resp = await self._http.request(method, url, json=body, params=params or None)
        except httpx.TransportError as e:
            raise SyncappError(f"the engine did not answer ({e})") from None
        return answer(resp)

    @staticmethod
    def _folder(name: str, what: str) -> str:
        return f"/v1/folders/{quote(name, safe='')}/{what}"

    async def folders(self) -> dict[str, FolderInfo]:
        infos = [info_from_dict(d) for d in await self._call("GET", "/v1/folders")]
        return {i.name: i for i in infos}

    async def apply_config(self, config: Config) -> dict[str, str]:
        # The config file is the one truth: the engine reads the file the view just wrote.
        reply = await self._call("POST", "/v1/config/reload")
        return dict(reply.get("errors") or {})

    async def current_config(self) -> Config:
        # As for ``_written``: answers carry no secrets, so the file the engine wrote or read
        # last is read here (a hand edit not reloaded yet shows too).
        path = self.config_path
        if path is None:
            status = await self._call("GET", "/v1/status")
            path = Path(status["config"])
        return await asyncio.to_thread(load_config, path)

    async def save_folder(self, draft: FolderDraft, editing: str | None = None) -> Config:
        body = folder_body(draft)
        if editing is None:
            reply = await self._call("POST", "/v1/folders", body)
        else:
            reply = await self._call("PUT", f"/v1/folders/{quote(editing, safe='')}", body)
        return await self._written(reply)

    async def remove_folder(self, name: str) -> Config:
        reply = await self._call("DELETE", f"/v1/folders/{quote(name, safe='')}")
        return await self._written(reply)

    async def save_remote(self, draft: RemoteDraft, editing: str | None = None) -> Config:
        body = remote_body(draft)  # secrets go in (a 0600 socket of this user), never out
        if editing is None:
            reply = await self._call("POST", "/v1/remotes", body)
        else:
            reply = await self._call("PUT", f"/v1/remotes/{quote(editing, safe='')}", body)
        return await self._written(reply)

    async def remove_remote(self, name: str) -> Config:
        reply = await self._call("DELETE", f"/v1/remotes/{quote(name, safe='')}")
        return await self._written(reply)

    @staticmethod
    async def _written(reply: dict[str, Any]) -> Config:
        # Answers carry no secrets, so the config (a stored password included) is the file the
        # engine just wrote, read here: this view runs as the same user.
        return await asyncio.to_thread(load_config, reply["config"])

    async def pause(self, name: str) -> None:
        await self._call("POST", self._folder(name, "pause"))

    async def resume(self, name: str) -> None:
        await self._call("POST", self._folder(name, "resume"))

    async def rescan(self, name: str) -> None:
        await self._call("POST", self._folder(name, "rescan"))

    async def retry(self, name: str) -> int:
        reply = await self._call("POST", self._folder(name, "retry"))
        return int(reply.get("retried", 0))

    async def decide_guard(self, name: str, choice: GuardChoice) -> int:
        reply = await self._call("POST", self._folder(name, "guard"), {"choice": choice.value})
        return int(reply.get("restored", 0))

    async def path_page(self, name: str, query: PathQuery) -> PathPage:
        params = {"everything": "1" if query.everything else "0"}
        if query.needle:
            params["filter"] = query.needle
        if query.offset:
            params["offset"] = str(query.offset)
        if query.limit is not None:
            params["limit"] = str(query.limit)
        reply = await self._call("GET", self._folder(name, "pending"), None, **params)
        return page_from_dict(reply)

    async def path_now(self, name: str, rel: str) -> PathNow:
        return PathNow(**await self._call("GET", self._folder(name, "why"), path=rel))

    async def list_versions(self, name: str, rel: str) -> list[Version]:
        rows = await self._call("GET", self._folder(name, "versions"), path=rel)
        return [Version(**r) for r in rows]

    async def restore_version(self, name: str, version: Version, dest: str | None) -> None:
        body = {"version": dataclasses.asdict(version), "dest": dest}
        await self._call("POST", self._folder(name, "restore"), body)

    async def describe_remote(self, name: str) -> list[str]:
        lines = await self._call("GET", f"/v1/remotes/{quote(name, safe='')}/describe")
        return [str(x) for x in lines]

    async def stop_engine(self) -> None:
        with contextlib.suppress(SyncappError):  # it may be gone before it answers
            await self._call("POST", "/v1/stop")


# -- events back from JSON ------------------------------------------------------------------------


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    for value in vars(_events).values():
        if isinstance(value, type) and issubclass(value, Event) and value is not Event:
            found[value.__name__] = value
    return found


_TYPES = _event_types()


_Converters = tuple[tuple[str, Callable[[Any], Any] | None], ...]
_CONVERTERS: dict[type[Event], _Converters] = {}


def _converters(cls: type[Event]) -> _Converters:
    """Per field of ``cls``: how a JSON value becomes the field's type (an enum, a tuple).
    Kept per class: resolving type hints costs far more than building the event."""
    if cls in _CONVERTERS:
        return _CONVERTERS[cls]
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, Callable[[Any], Any] | None]] = []
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        convert: Callable[[Any], Any] | None = None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            convert = hint
        elif typing.get_origin(hint) is tuple:
            convert = tuple
        out.append((f.name, convert))
    _CONVERTERS[cls] = tuple(out)
    return _CONVERTERS[cls]


def event_from_dict(d: dict[str, Any]) -> Event | None:
    """The event ``Event.to_dict`` made ``d`` from; None for a kind this version lacks."""
    cls = _TYPES.get(str(d.get("event")))
    if cls is None:
        return None
    kwargs: dict[str, Any] = {}
    for name, convert in _converters(cls):
        if name in d:
            value = d[name]
            kwargs[name] = convert(value) if convert is not None and value is not None else value
    return cls(**kwargs)
