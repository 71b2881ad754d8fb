"""Two machines for the two-way tests: engines with state directories of their own, each
syncing one local folder into the same remote path (``shared``: a fresh place on one of the
session's real servers), and waits on conditions."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from send2trash import plat_other  # type: ignore[attr-defined]

from syncapp.config import Config, parse_config
from syncapp.engine import Event, FolderState, JobStarted, Op, SyncEngine
from tests.helpers import tree
from tests.integration.backends import BackendContext
from tests.servers.dav_httpd import apache_dav_server, nginx_dav_server
from tests.servers.s3 import seaweedfs_server
from tests.servers.webdav import rclone_webdav_server, wsgidav_server

POLL = 0.5


@pytest.fixture(autouse=True)
def own_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own freedesktop trash (send2trash reads XDG_DATA_HOME once, at import)."""
    data = tmp_path / "xdg-data"
    data.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    return data / "Trash"


@dataclass
class Shared:
    """One remote both machines sync into."""

    name: str
    remote_toml: str


#: Server key in the session's ``BackendContext`` → how to start it.
WEBDAV = {
    "rclone": ("rclone-webdav", rclone_webdav_server),
    "apache": ("apache-dav", apache_dav_server),
    "nginx": ("nginx-dav", nginx_dav_server),
    "wsgidav": ("wsgidav", wsgidav_server),
}


@pytest.fixture(params=["local", "rclone", "apache", "nginx", "wsgidav", "seaweedfs"])
def shared(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend_context: BackendContext,
) -> Iterator[Shared]:
    """A fresh place on one of the session's servers (started once: a fresh collection or key
    prefix per test is as good as a fresh server and much cheaper)."""
    if request.param == "seaweedfs":
        s3 = backend_context.server("seaweedfs", seaweedfs_server)
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        prefix = backend_context.fresh_name("tw")
        yield Shared(
            "seaweedfs",
            f'[remotes.r]\ntype = "s3"\nendpoint = "{s3.endpoint}"\nbucket = "{s3.bucket}"\n'
            f'prefix = "{prefix}"\n',
        )
    elif request.param == "local":
        store = tmp_path / "store"
        store.mkdir()
        yield Shared("local", f'[remotes.r]\ntype = "local"\npath = "{store}"\n')
    else:
        key, start = WEBDAV[request.param]
        server = backend_context.server(key, start)
        coll = backend_context.fresh_name("tw")
        httpx.request("MKCOL", server.url + coll + "/", auth=server.auth, timeout=10)
        auth = ""
        if server.auth is not None:
            auth = f'username = "{server.auth[0]}"\npassword = "{server.auth[1]}"\n'
        url = f"{server.url}{coll}/"
        yield Shared(request.param, f'[remotes.r]\ntype = "webdav"\nurl = "{url}"\n{auth}')


def config(
    tmp_path: Path, shared: Shared, machine: str, extra: str = "", *, poll: float = POLL
) -> Config:
    folder = tmp_path / machine / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    text = shared.remote_toml + (
        f'\n[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "Docs"\n'
        f'direction = "both"\nremote_poll = {poll}\n{extra}'
    )
    path = tmp_path / machine / "config.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


class Machine:
    def __init__(self, engine: SyncEngine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder
        self.events: list[Event] = []
        engine.subscribe(self.events.append)

    def count(self, kind: type[Event], cond: Callable[[Event], bool] = lambda e: True) -> int:
        return sum(1 for e in self.events if isinstance(e, kind) and cond(e))

    def uploads(self) -> int:
        return self.count(JobStarted, lambda e: isinstance(e, JobStarted) and e.op is Op.UPLOAD)

    def files(self) -> dict[str, str]:
        return {p: h for p, h in tree(self.folder, synced_only=True).items() if h != "<dir>"}

    def state(self) -> FolderState:
        return self.engine.status()["docs"].state


@asynccontextmanager
async def machines(
    tmp_path: Path, shared: Shared, *names: str, extra: str = "", poll: float = POLL
) -> AsyncIterator[list[Machine]]:
    async with AsyncExitStack() as stack:
        out = []
        for name in names:
            cfg = config(tmp_path, shared, name, extra, poll=poll)
            engine = await stack.enter_async_context(
                SyncEngine(cfg, tmp_path / name / "state" / "state.db", live=True)
            )
            out.append(Machine(engine, cfg.folders["docs"].path))
        yield out


async def until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
