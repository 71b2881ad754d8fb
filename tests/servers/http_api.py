"""A small upload API (plain ASGI, run by uvicorn in a subprocess) for the ``http`` remote's tests.

Every route starts with a *space*, one path segment that is a separate root directory, so tests
can share one server process without seeing each other's files::

    PUT|POST  /SPACE/files/PATH     store the raw body, or the multipart/form-data field "file"
    GET|HEAD  /SPACE/files/PATH     download / stat (ETag = MD5 of the content)
    DELETE    /SPACE/files/PATH     delete a file or a directory tree (404 when missing)
    POST      /SPACE/remove/PATH    the same delete, for a custom delete_method/delete_url
    GET       /SPACE/list/PATH      JSON array of {path, size, etag, mtime_ns} below PATH
    ANY       /SPACE/status/CODE    answer CODE (with Retry-After: 7) after reading the body
    GET       /_stats               {"requests": N}: requests served so far (never authenticated)

With ``--token`` every route but /_stats demands ``Authorization: Bearer TOKEN`` (401 otherwise);
``--require-header NAME=VALUE`` demands one more header (403 otherwise). Uploads are written to a
temporary name and renamed, so they are atomic.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.servers import free_port, wait_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HTTPError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class UploadAPI:
    def __init__(
        self,
        root: Path,
        *,
        token: str | None = None,
        require_header: tuple[str, str] | None = None,
        field_name: str = "file",
    ) -> None:
        self.root = root
        self.token = token
        self.require_header = (
            (require_header[0].lower().encode(), require_header[1].encode())
            if require_header
            else None
        )
        self.field_name = field_name
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            await self.handle(scope, receive, send)
        except ClientGone:
            return  # the upload was cut off: nothing is stored, nobody to answer
        except HTTPError as e:
            await self.respond(send, e.status, e.text.encode(), e.headers, ctype="text/plain")

    async def respond(
        self,
        send: Send,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        ctype: str | None = None,
        head: bool = False,
        length: int | None = None,
    ) -> None:
        hdrs = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if ctype:
            hdrs.append((b"content-type", ctype.encode()))
        hdrs.append((b"content-length", str(len(body) if length is None else length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": b"" if head else body})

    # -- routing ---------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        raw = scope.get("raw_path") or scope["path"].encode()
        segments = raw.decode("latin-1").split("?", 1)[0].split("/")[1:]
        if segments == ["_stats"]:
            body = json.dumps({"requests": self.requests}).encode()
            await self.respond(send, 200, body, ctype="application/json")
            return
        self.requests += 1
        headers = dict(scope["headers"])
        self.check_auth(headers)
        if len(segments) < 2:
            raise HTTPError(404, "no such route")
        space, route = unquote(segments[0]), segments[1]
        rel = unquote("/".join(segments[2:]), encoding="utf-8", errors="strict")
        base = self.safe_path(self.root, space)
        if route == "status":
            await self.read_body(receive)
            code = int(rel or "500")
            raise HTTPError(code, f"forced status {code}", {"Retry-After": "7"})
        if route == "list" and method == "GET":
            await self.list(send, base, rel)
            return
        if route == "remove" and method == "POST":
            await self.read_body(receive)
            await self.delete(send, base, rel)
            return
        if route != "files":
            raise HTTPError(404, "no such route")
        target = self.safe_path(base, rel)
        if method in ("PUT", "POST"):
            await self.upload(receive, send, target, headers)
        elif method in ("GET", "HEAD"):
            await self.download(send, target, head=method == "HEAD")
        elif method == "DELETE":
            await self.delete(send, base, rel)
        else:
            raise HTTPError(405, "method not allowed", {"Allow": "GET, HEAD, PUT, POST, DELETE"})

    def check_auth(self, headers: dict[bytes, bytes]) -> None:
        expected = f"Bearer {self.token}".encode()
        if self.token is not None and headers.get(b"authorization") != expected:
            raise HTTPError(401, "bad or missing token", {"WWW-Authenticate": "Bearer"})
        if self.require_header is not None:
            name, value = self.require_header
            if headers.get(name) != value:
                raise HTTPError(403, f"header {name.decode()} missing or wrong")

    @staticmethod
    def safe_path(base: Path, rel: str) -> Path:
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") or "\x00" in p for p in parts) or not parts:
            raise HTTPError(400, f"bad path {rel!r}")
        return base.joinpath(*parts)

    # -- handlers --------------------------------------------------------------------------------

    @staticmethod
    async def read_body(receive: Receive) -> bytes:
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise ClientGone()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                return b"".join(chunks)

    async def upload(
        self, receive: Receive, send: Send, target: Path, headers: dict[bytes, bytes]
    ) -> None:
        if target.is_dir():
            raise HTTPError(409, "a directory has that name")
        ctype = headers.get(b"content-type", b"").decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        md5 = hashlib.md5()
        try:
            with os.fdopen(fd, "wb") as fh:
                if ctype.startswith("multipart/form-data"):
                    data = self.form_field(await self.read_body(receive), ctype)
                    fh.write(data)
                    md5.update(data)
                else:
                    # Raw bodies stream to disk, so big uploads cost the server no memory.
                    received = 0
                    while True:
                        msg = await receive()
                        if msg["type"] == "http.disconnect":
                            raise ClientGone()
                        chunk = msg.get("body", b"")
                        fh.write(chunk)
                        md5.update(chunk)
                        received += len(chunk)
                        if not msg.get("more_body"):
                            break
                    expected = headers.get(b"content-length")
                    if expected is not None and int(expected) != received:
                        raise HTTPError(400, f"got {received} of {int(expected)} bytes")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        await self.respond(send, 201, b"", {"ETag": f'"{md5.hexdigest()}"'})

    def form_field(self, body: bytes, ctype: str) -> bytes:
        boundary = ""
        for param in ctype.split(";")[1:]:
            k, _, v = param.strip().partition("=")
            if k.lower() == "boundary":
                boundary = v.strip('"')
        if not boundary:
            raise HTTPError(400, "multipart without boundary")
        delim = b"--" + boundary.encode()
        for part in body.split(delim)[1:]:
            if part.startswith(b"--"):
                break
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                raise HTTPError(400, "malformed multipart part")
            if f'name="{self.field_name}"'.encode() in head:
                if not content.endswith(b"\r\n"):
                    raise HTTPError(400, "malformed multipart part end")
                return content[:-2]
        raise HTTPError(400, f"no form field {self.field_name!r}")

    async def download(self, send: Send, target: Path, *, head: bool) -> None:
        if not target.is_file():
            raise HTTPError(404, "not found")
        data = target.read_bytes()
        headers = {
            "ETag": f'"{hashlib.md5(data).hexdigest()}"',
            "Last-Modified": formatdate(target.stat().st_mtime, usegmt=True),
        }
        await self.respond(
            send, 200, data, headers, ctype="application/octet-stream", head=head
        )

    async def delete(self, send: Send, base: Path, rel: str) -> None:
        target = self.safe_path(base, rel)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            raise HTTPError(404, "not found")
        await self.respond(send, 204)

    async def list(self, send: Send, base: Path, rel: str) -> None:
        top = self.safe_path(base, rel) if rel.strip("/") else base
        items = []
        if top.is_dir():
            for p in sorted(top.rglob("*")):
                if p.is_file() and not p.name.startswith(".upload-"):
                    st = p.stat()
                    items.append(
                        {
                            "path": p.relative_to(base).as_posix(),
                            "size": st.st_size,
                            "mtime_ns": st.st_mtime_ns,
                            "etag": hashlib.md5(p.read_bytes()).hexdigest(),
                        }
                    )
        await self.respond(send, 200, json.dumps(items).encode(), ctype="application/json")


# -- running it ------------------------------------------------------------------------------------


@dataclass
class HTTPAPIServer:
    base_url: str
    root: Path
    port: int
    cmd: list[str]
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, space: str, route: str = "files") -> str:
        """A URL template for one space and route, e.g. ``http://…/t1/files/{path}``."""
        return f"{self.base_url}/{space}/{route}/{{path}}"

    def requests(self) -> int:
        import httpx

        return int(httpx.get(f"{self.base_url}/_stats", trust_env=False).json()["requests"])

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        repo = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(self.cmd, cwd=repo, stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, timeout=20)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def http_api_server(
    root: Path,
    *,
    token: str | None = None,
    require_header: tuple[str, str] | None = None,
    field_name: str = "file",
) -> Iterator[HTTPAPIServer]:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "tests.servers.http_api", str(root), "--port", str(port)]
    if token is not None:
        cmd += ["--token", token]
    if require_header is not None:
        cmd += ["--require-header", f"{require_header[0]}={require_header[1]}"]
    cmd += ["--field", field_name]
    server = HTTPAPIServer(
        base_url=f"http://127.0.0.1:{port}", root=root, port=port, cmd=cmd, token=token
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("root", type=Path)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token")
    ap.add_argument("--require-header")
    ap.add_argument("--field", default="file")
    args = ap.parse_args()
    require = None
    if args.require_header:
        name, _, value = args.require_header.partition("=")
        require = (name, value)
    app = UploadAPI(args.root, token=args.token, require_header=require, field_name=args.field)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
