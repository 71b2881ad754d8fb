"""The running engine's control API: HTTP on a Unix socket, for the CLI (and, next, the UI).

The socket lives in the user's runtime dir (``$XDG_RUNTIME_DIR/syncapp/``, folder 0700, socket
0600), one per state database (its name is a hash of the database's path). There is no TCP
port, and a connection from another user is refused by its peer credentials (``SO_PEERCRED``)
even where the file modes would let it in. Only the engine holding the state lock serves it,
so a socket found at start is a dead engine's and is replaced.

Calls (JSON in and out)::

    GET  /v1/status                       pid, state database, every folder's status
    GET  /v1/folders/NAME/pending         the folder's paths not in sync, with their reasons
    POST /v1/folders/NAME/pause|resume|rescan|retry
    POST /v1/stop                         the engine stops cleanly (202)
    GET  /v1/events                       JSON lines: each folder's state now, then every event
                                          as ``run --json`` prints it
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from syncapp.engine.events import Event, FolderStateChanged
from syncapp.errors import SyncappError

if TYPE_CHECKING:
    from aiohttp import web

    from syncapp.engine.core import SyncEngine

API = "/v1"


def socket_path(state_path: Path) -> Path:
    """Where the engine of ``state_path`` listens (short: a Unix socket path has ~100 bytes)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "syncapp" if runtime else _fallback_runtime_dir()
    digest = hashlib.sha256(str(state_path.resolve()).encode()).hexdigest()[:12]
    return base / f"engine-{digest}.sock"


def _fallback_runtime_dir() -> Path:
    with contextlib.suppress(Exception):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "XDG_RUNTIME_DIR is not set": we know
            return Path(platformdirs.user_runtime_dir("syncapp"))
    return Path(f"/tmp/syncapp-{os.getuid()}")


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket; None when unknown."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def may_connect(uid: int | None, own: int | None = None) -> bool:
    """Only the engine's own user (root excepted: it can read the state database anyway)."""
    own = os.getuid() if own is None else own
    return uid is not None and uid in (own, 0)


class ControlServer:
    def __init__(self, engine: SyncEngine, path: Path) -> None:
        self.engine = engine
        self.path = path
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        from aiohttp import web

        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead engine's: we hold the state lock
        @web.middleware
        async def only_our_user(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            return await self._only_our_user(request, handler)

        app = web.Application(middlewares=[only_our_user])
        app.add_routes(
            [
                web.get(f"{API}/status", self._status),
                web.get(f"{API}/folders/{{name}}/pending", self._pending),
                web.post(f"{API}/folders/{{name}}/{{action}}", self._folder_action),
                web.post(f"{API}/stop", self._stop),
                web.get(f"{API}/events", self._events),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        old = os.umask(0o177)  # the socket is born 0600, never briefly open to others
        try:
            await web.UnixSite(self._runner, str(self.path)).start()
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._unsubscribe = self.engine.subscribe(self._publish)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for queue in self._streams:
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- plumbing ---------------------------------------------------------------------------------

    @staticmethod
    def _json(data: object, status: int = 200) -> web.Response:
        from aiohttp import web

        return web.json_response(data, status=status, dumps=_dumps)

    async def _only_our_user(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if not may_connect(peer_uid(sock) if sock is not None else None):
            return self._json({"error": "this engine belongs to another user"}, 403)
        try:
            return await handler(request)
        except SyncappError as e:
            return self._json({"error": str(e)}, 404)

    def _publish(self, ev: Event) -> None:
        for queue in self._streams:
            queue.put_nowait(ev.to_dict())

    # -- calls --------------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        folders = [dataclasses.asdict(st) for st in self.engine.status().values()]
        return self._json(
            {"pid": os.getpid(), "state": str(self.engine.state_path), "folders": folders}
        )

    async def _pending(self, request: web.Request) -> web.Response:
        folder = self.engine.folder(request.match_info["name"])
        return self._json([dataclasses.asdict(p) for p in folder.pending()])

    async def _folder_action(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        folder = self.engine.folder(name)
        actions: dict[str, Callable[[], None]] = {
            "pause": folder.pause,
            "resume": folder.resume,
            "rescan": folder.rescan,
            "retry": folder.retry_failed,
        }
        if action not in actions:
            return self._json({"error": f"no such action {action!r}"}, 404)
        actions[action]()
        return self._json(dataclasses.asdict(folder.status()))

    async def _stop(self, request: web.Request) -> web.Response:
        self.engine.request_stop()
        return self._json({"stopping": os.getpid()}, 202)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        for st in self.engine.status().values():
            queue.put_nowait(FolderStateChanged(st.name, st.state, st.reason).to_dict())
        self._streams.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        try:
            await response.prepare(request)
            while (item := await queue.get()) is not None:
                await response.write((_dumps(item) + "\n").encode())
        except ConnectionError:
            pass  # the client went away
        finally:
            self._streams.discard(queue)
        return response


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
