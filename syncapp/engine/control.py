"""The running engine's control API: HTTP on a Unix socket, for the CLI (and, next, the UI).

The socket lives in the user's runtime dir (``$XDG_RUNTIME_DIR/syncapp/``, folder 0700, socket
0600), one per state database (its name is a hash of the database's path). There is no TCP
port, and a connection from another user is refused by its peer credentials (``SO_PEERCRED``)
even where the file modes would let it in. Only the engine holding the state lock serves it,
so a socket found at start is a dead engine's and is replaced.

It serves an ``EngineAPI`` (``syncapp.engine.api``), call for call; ``EngineClient`` is its other
end. Calls (JSON in and out)::

    GET  /v1/status                       pid, state database, every open folder's status
    GET  /v1/folders                      every configured folder: status, limit, open error
    GET  /v1/folders/NAME/pending         paths not in sync with their reasons, and how many of
                                          each status: {"rows", "counts", "matching"}
                                          (?everything=1: synced files too; ?filter=TEXT,
                                          ?offset=N, ?limit=N: the rows a view shows)
    POST /v1/folders/NAME/pause|resume|rescan|retry
    POST /v1/folders/NAME/guard           {"choice": "delete"|"restore"|"keep"}: held deletes
    GET  /v1/folders/NAME/versions?path=P a file's remote copy and kept versions
    GET  /v1/folders/NAME/why?path=P      where the path stands right now (``PathNow``)
    POST /v1/folders/NAME/restore         {"version": {...}, "dest": null}
    GET  /v1/remotes/NAME/describe        what the remote's server does, in words
    POST /v1/config/reload                read the config file again; open/close/reopen folders
    POST /v1/folders, PUT|DELETE /v1/folders/NAME, the same for /v1/remotes: add, change,
                                          remove (``syncapp.engine.configcalls``)
    POST /v1/stop                         the engine stops cleanly (202)
    GET  /v1/events                       JSON lines: each folder's state now and its newest
                                          progress/offline/guard events, then every event as
                                          ``run --json`` prints it
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

from syncapp.engine.api import GuardChoice, LocalEngine, info_to_dict
from syncapp.engine.configcalls import ConfigRoutes, json_body
from syncapp.engine.events import Event, FolderState, FolderStateChanged, RemoteOnline
from syncapp.engine.pathpage import PathQuery, page_to_dict
from syncapp.engine.versions import Version
from syncapp.errors import ConfigConflict, ConfigError, SyncappError, UnknownName

if TYPE_CHECKING:
    from aiohttp import web

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


#: Events a view attaching late must see to show the folder as it is now (the newest of each
#: kind per folder is replayed on connect).
STICKY = (
    "CountsChanged",
    "SyncProgress",
    "ScanProgressed",
    "RemoteOffline",
    "RemoteStillOffline",
    "GuardTripped",
)


class Replay:
    """The newest sticky event of each kind per folder, for a view that connects late."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], Event] = {}

    def add(self, ev: Event) -> None:
        kind = type(ev).__name__
        if isinstance(ev, RemoteOnline):
            self._drop(ev.folder, "RemoteOffline", "RemoteStillOffline")
        elif isinstance(ev, FolderStateChanged):
            if ev.state is not FolderState.PAUSED:
                self._drop(ev.folder, "GuardTripped")
            if ev.state is not FolderState.OFFLINE:
                self._drop(ev.folder, "RemoteOffline", "RemoteStillOffline")
        elif kind in STICKY:
            self._latest[(ev.folder, kind)] = ev

    def _drop(self, folder: str, *kinds: str) -> None:
        for kind in kinds:
            self._latest.pop((folder, kind), None)

    def events(self, folders: set[str]) -> list[Event]:
        return sorted(
            (ev for (folder, _), ev in self._latest.items() if folder in folders),
            key=lambda ev: ev.at,
        )


class ControlServer:
    def __init__(self, api: LocalEngine, path: Path) -> None:
        self.api = api
        self.engine = api.sync
        self.path = path
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.replay = Replay()

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
        folder_url = f"{API}/folders/{{name}}"
        app.add_routes(
            [
                web.get(f"{API}/status", self._status),
                web.get(f"{API}/folders", self._folders),
                web.get(f"{folder_url}/pending", self._pending),
                web.get(f"{folder_url}/versions", self._versions),
                web.get(f"{folder_url}/why", self._why),
                web.post(f"{folder_url}/restore", self._restore),
                web.post(f"{folder_url}/guard", self._guard),
                web.post(f"{folder_url}/{{action}}", self._folder_action),
                web.get(f"{API}/remotes/{{name}}/describe", self._describe),
                web.post(f"{API}/config/reload", self._reload),
                web.post(f"{API}/stop", self._stop),
                web.get(f"{API}/events", self._events),
                *ConfigRoutes(self.api).routes(),
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
        except ConfigError as e:
            # The key lets a form show the problem next to its field.
            reply = {"error": str(e), "key": e.key, "problem": e.problem, "file": e.file}
            return self._json(reply, 409 if isinstance(e, ConfigConflict) else 422)
        except UnknownName as e:
            return self._json({"error": str(e)}, 404)
        except (SyncappError, OSError) as e:
            return self._json({"error": str(e)}, 409)  # the engine's own words
        except (KeyError, TypeError, ValueError) as e:
            return self._json({"error": f"bad request: {e}"}, 400)

    def _publish(self, ev: Event) -> None:
        self.replay.add(ev)
        for queue in self._streams:
            queue.put_nowait(ev.to_dict())

    # -- calls --------------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        folders = [dataclasses.asdict(st) for st in self.engine.status().values()]
        return self._json(
            {
                "pid": os.getpid(),
                "state": str(self.engine.state_path),
                "config": str(self.engine.config.path),
                "folders": folders,
            }
        )

    async def _folders(self, request: web.Request) -> web.Response:
        infos = await self.api.folders()
        return self._json([info_to_dict(i) for i in infos.values()])

    async def _pending(self, request: web.Request) -> web.Response:
        q = request.query
        query = PathQuery(
            everything=q.get("everything", "") in ("1", "true", "yes"),
            needle=q.get("filter", ""),
            offset=int(q.get("offset", 0)),
            limit=int(q["limit"]) if "limit" in q else None,
        )
        page = await self.api.path_page(request.match_info["name"], query)
        return self._json(page_to_dict(page))

    async def _versions(self, request: web.Request) -> web.Response:
        rel = request.query["path"]
        found = await self.api.list_versions(request.match_info["name"], rel)
        return self._json([dataclasses.asdict(v) for v in found])

    async def _why(self, request: web.Request) -> web.Response:
        now = await self.api.path_now(request.match_info["name"], request.query["path"])
        return self._json(dataclasses.asdict(now))

    async def _restore(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        version = Version(**body["version"])
        dest = body.get("dest")
        await self.api.restore_version(request.match_info["name"], version, dest)
        return self._json({"restored": version.path, "dest": dest})

    async def _guard(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        choice = GuardChoice(body["choice"])
        restored = await self.api.decide_guard(request.match_info["name"], choice)
        return self._json({"choice": choice.value, "restored": restored})

    async def _folder_action(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        actions: dict[str, Callable[[str], Awaitable[object]]] = {
            "pause": self.api.pause,
            "resume": self.api.resume,
            "rescan": self.api.rescan,
            "retry": self.api.retry,
        }
        if action not in actions:
            return self._json({"error": f"no such action {action!r}"}, 404)
        result = await actions[action](name)
        reply: dict[str, Any] = dataclasses.asdict(self.engine.folder(name).status())
        if action == "retry":
            reply["retried"] = result
        return self._json(reply)

    async def _describe(self, request: web.Request) -> web.Response:
        return self._json(await self.api.describe_remote(request.match_info["name"]))

    async def _reload(self, request: web.Request) -> web.Response:
        """Read the config file again (the one truth) and open, close or reopen folders."""
        from syncapp.config import load_config

        config = load_config(self.engine.config.path)
        errors = await self.api.apply_config(config)
        return self._json({"errors": errors})

    async def _stop(self, request: web.Request) -> web.Response:
        await self.api.stop_engine()
        return self._json({"stopping": os.getpid()}, 202)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        status = self.engine.status()
        for st in status.values():
            queue.put_nowait(FolderStateChanged(st.name, st.state, st.reason).to_dict())
        for ev in self.replay.events(set(status)):
            queue.put_nowait(ev.to_dict())
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
