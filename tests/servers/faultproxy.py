"""A fault-injection HTTP/1.1 proxy on loopback, between syncapp and a real server.

The proxy runs its own asyncio loop in a daemon thread, so plain and async tests drive it alike.
It understands just enough HTTP/1.1 to act per request on keep-alive connections: the request
line and headers, a ``Content-Length`` or chunked request body, and the response's status,
headers and ``Content-Length`` / chunked / close-delimited body. Bytes are forwarded as they
arrive (a large PUT is never held in memory).

Faults are rules, tried in order for every request; the first that matches the method and path,
still has uses left (``count``) and wins its seeded draw (``share``) decides what happens:

- ``answer``: reply ``status`` (503, 429, 507, …) with ``Retry-After`` when given, without
  bothering the server;
- ``reset_request``: forward the head and part of the body to the server, then reset both
  connections (the server sees a truncated upload, the client a reset);
- ``reset_response``: forward the whole request, then only part of the response and reset (the
  server did the work, the client never learns it);
- ``stall``: read the request, answer nothing for ``stall`` seconds, then reset;
- ``junk``: reply ``status`` (e.g. 207) with ``body`` (a broken multistatus, say), as a server
  with a bug would, without bothering the server;
- ``throttle``: forward the request and response bodies at ``rate`` bytes/s (a slow line), so
  an upload stays in flight long enough to be looked at.

Every request is recorded (monotonic time of arrival, method, path, ``Destination``, what the proxy
did) so tests can count requests per method and measure the spacing of retries.

The requests of syncapp's one-time server probe (``Remote.learn``, staging names ending in
``-probe…``) pass untouched and unrecorded: a test names the fault it puts on the files it syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from syncapp.remotes.base import STAGING_PREFIX

Action = Literal["answer", "reset_request", "reset_response", "stall", "junk", "throttle"]
PIECE = 64 * 1024
_REASONS = {
    423: "Locked",
    429: "Too Many Requests",
    503: "Service Unavailable",
    507: "Insufficient Storage",
    401: "Unauthorized",
    409: "Conflict",
    207: "Multi-Status",
}


@dataclass
class Fault:
    """One rule. ``count`` None means unlimited; ``methods``/``path_contains`` None match all."""

    action: Action
    share: float = 1.0
    count: int | None = None
    methods: frozenset[str] | None = None
    path_contains: str | None = None
    status: int = 503
    retry_after: float | None = None
    stall: float = 5.0
    hits: int = 0
    body: bytes = b""
    rate: float = 0.0  #: throttle: bytes per second

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass(frozen=True, slots=True)
class Record:
    at: float  #: time.monotonic() when the request head arrived
    method: str
    path: str  #: decoded URL path
    destination: str | None  #: decoded path of a MOVE/COPY ``Destination``
    #: "pass", "answer 503", "reset_request", "reset_response", "stall" or "upstream down"
    action: str


@dataclass
class _Head:
    first: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    @property
    def length(self) -> int | None:
        v = self.get("content-length")
        return int(v) if v is not None and v.strip().isdigit() else None

    def closes(self) -> bool:
        return (self.get("connection") or "").lower() == "close"


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """A request or response head; None on a clean EOF before any byte."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ConnectionResetError("connection closed inside a head") from None
    lines = raw.decode("latin-1").split("\r\n")
    head = _Head(lines[0], raw=raw)
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            head.headers.append((k.strip(), v.strip()))
    return head


async def _body(
    reader: asyncio.StreamReader, head: _Head, *, to_eof: bool = False
) -> AsyncIterator[bytes]:
    """The raw bytes of a message body as framed on the wire (chunk framing included)."""
    if head.chunked:
        while True:
            line = await reader.readuntil(b"\r\n")
            yield line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    yield trailer
                    if trailer == b"\r\n":
                        return
            left = size + 2  # data and its CRLF
            while left:
                piece = await reader.readexactly(min(PIECE, left))
                left -= len(piece)
                yield piece
    elif head.length is not None:
        left = head.length
        while left:
            piece = await reader.readexactly(min(PIECE, left))
            left -= len(piece)
            yield piece
    elif to_eof:
        while piece := await reader.read(PIECE):
            yield piece


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a polite FIN."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """``with FaultProxy(server_port, seed=1) as proxy:`` then point syncapp at ``proxy.url``."""

    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1", seed: int = 0) -> None:
        self.upstream = (host, upstream_port)
        self.port = 0
        self._rnd = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._records: list[Record] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # -- control (any thread) ----------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def answer(
        self,
        status: int = 503,
        *,
        share: float = 1.0,
        count: int | None = None,
        retry_after: float | None = None,
        methods: Iterable[str] | None = None,
        path_contains: str | None = None,
    ) -> Fault:
        return self.add(
            Fault("answer", share, count, _methods(methods), path_contains, status, retry_after)
        )

    def reset_request(
        self, *, share: float = 1.0, count: int | None = None, methods: Iterable[str] | None = None
    ) -> Fault:
        return self.add(Fault("reset_request", share, count, _methods(methods)))

    def reset_response(
        self, *, share: float = 1.0, count: int | None = None, methods: Iterable[str] | None = None
    ) -> Fault:
        return self.add(Fault("reset_response", share, count, _methods(methods)))

    def stall(
        self,
        seconds: float,
        *,
        share: float = 1.0,
        count: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> Fault:
        return self.add(Fault("stall", share, count, _methods(methods), stall=seconds))

    def junk(
        self,
        body: bytes,
        *,
        status: int = 207,
        count: int | None = 1,
        methods: Iterable[str] | None = None,
        path_contains: str | None = None,
    ) -> Fault:
        """Answer ``status`` with ``body`` (application/xml), as a buggy server would."""
        return self.add(
            Fault("junk", 1.0, count, _methods(methods), path_contains, status, body=body)
        )

    def throttle(
        self,
        bytes_per_second: float,
        *,
        count: int | None = None,
        methods: Iterable[str] | None = None,
        path_contains: str | None = None,
    ) -> Fault:
        """Pass the matching requests at ``bytes_per_second`` (bodies both ways)."""
        return self.add(
            Fault("throttle", 1.0, count, _methods(methods), path_contains, rate=bytes_per_second)
        )

    def clear(self) -> None:
        """Back to plain pass-through."""
        with self._lock:
            self._faults.clear()

    def records(self, method: str | None = None) -> list[Record]:
        with self._lock:
            return [r for r in self._records if method is None or r.method == method]

    def counts(self) -> Counter[str]:
        """Requests per method, whatever the proxy did with them."""
        return Counter(r.method for r in self.records())

    def actions(self) -> Counter[str]:
        return Counter(r.action for r in self.records())

    def reset_records(self) -> None:
        with self._lock:
            self._records.clear()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, "127.0.0.1", 0)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for t in list(self._conns):
                t.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the proxy loop ----------------------------------------------------------------------------

    def _choose(self, method: str, path: str) -> Fault | None:
        if _is_probe(path):
            return None
        with self._lock:
            for f in self._faults:
                if f.matches(method, path) and (f.share >= 1.0 or self._rnd.random() < f.share):
                    f.hits += 1
                    return f
        return None

    def _record(self, at: float, head: _Head, action: str) -> None:
        parts = head.first.split(" ")
        method, target = parts[0], parts[1] if len(parts) > 1 else ""
        dest = head.get("destination")
        if _is_probe(unquote(target)) or (dest and _is_probe(unquote(dest))):
            return
        rec = Record(
            at,
            method,
            unquote(urlsplit(target).path),
            unquote(urlsplit(dest).path) if dest else None,
            action,
        )
        with self._lock:
            self._records.append(rec)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        if any(f.action == "throttle" for f in self._faults):
            # A slow line holds little: without this the kernel buffers megabytes of an upload
            # on loopback, and the client sees it "sent" long before the server has it.
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIECE)
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    break
                at = time.monotonic()
                method = head.first.split(" ", 1)[0]
                target = head.first.split(" ")[1] if " " in head.first else "/"
                fault = self._choose(method, unquote(urlsplit(target).path))
                if fault is not None and fault.action in ("answer", "stall", "junk"):
                    said = "stall" if fault.action == "stall" else f"answer {fault.status}"
                    self._record(at, head, said if fault.action != "junk" else "junk")
                    async for _ in _body(reader, head):
                        pass
                    if fault.action == "stall":
                        await asyncio.sleep(fault.stall)
                        _abort(writer)
                        return
                    if fault.action == "junk":
                        writer.write(_response(fault.status, None, fault.body))
                    else:
                        writer.write(_response(fault.status, fault.retry_after))
                    await writer.drain()
                    continue
                if up is None or up[0].at_eof():
                    if up is not None:
                        up[1].close()
                    try:
                        up = await asyncio.open_connection(*self.upstream)
                    except OSError:
                        self._record(at, head, "upstream down")
                        _abort(writer)
                        return
                action = fault.action if fault is not None else "pass"
                self._record(at, head, action)
                rate = fault.rate if fault is not None and action == "throttle" else 0.0
                outcome = await self._exchange(head, method, reader, writer, up, action, rate)
                if outcome == "cut":
                    _abort(up[1])
                    _abort(writer)
                    return
                if outcome == "close" or head.closes():
                    break
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            _abort(writer)
        except asyncio.CancelledError:
            # Only close() cancels: end quietly (3.11's stream callback chokes on a cancelled
            # connection task).
            _abort(writer)
        finally:
            if up is not None:
                up[1].close()
            writer.close()
            self._conns.discard(task)

    async def _exchange(
        self,
        head: _Head,
        method: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        action: str,
        rate: float = 0.0,
    ) -> Literal["keep", "close", "cut"]:
        """Forward one request and its response; say whether the client connection goes on."""
        up_reader, up_writer = up
        has_body = head.chunked or bool(head.length)
        if action == "reset_request" and not has_body:
            up_writer.write(head.raw[: len(head.raw) // 2])  # cut inside the head
            await up_writer.drain()
            return "cut"
        up_writer.write(head.raw)
        budget = (head.length or 0) // 2 if action == "reset_request" else None
        sent = 0
        async for piece in _body(reader, head):
            if budget is not None and sent + len(piece) > budget:
                up_writer.write(piece[: budget - sent])
                await up_writer.drain()
                return "cut"
            up_writer.write(piece)
            sent += len(piece)
            await up_writer.drain()
            if rate > 0:
                await asyncio.sleep(len(piece) / rate)
        while True:
            resp = await _read_head(up_reader)
            if resp is None:
                return "cut"
            code = int(resp.first.split(" ")[1])
            if code >= 200 or code == 101:
                break
            writer.write(resp.raw)  # 1xx: forward and read on
        no_body = method == "HEAD" or code in (204, 304)
        body_size = 0 if no_body else resp.length
        if action == "reset_response" and body_size == 0:
            writer.write(resp.raw[: len(resp.raw) // 2])
            await writer.drain()
            return "cut"
        writer.write(resp.raw)
        limit = (body_size or PIECE) // 2 if action == "reset_response" else None
        sent = 0
        if not no_body:
            close_delimited = not resp.chunked and resp.length is None
            async for piece in _body(up_reader, resp, to_eof=close_delimited):
                if limit is not None and sent + len(piece) > limit:
                    writer.write(piece[: max(1, limit - sent)])
                    await writer.drain()
                    return "cut"
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
                if rate > 0:
                    await asyncio.sleep(len(piece) / rate)
            if close_delimited:
                await writer.drain()
                return "close"  # the body ended with the connection
        await writer.drain()
        if limit is not None:
            return "cut"
        return "close" if resp.closes() else "keep"


def _is_probe(path: str) -> bool:
    return STAGING_PREFIX in path and "-probe" in path


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.upper() for m in methods)


def _response(status: int, retry_after: float | None, body: bytes | None = None) -> bytes:
    kind = "text/plain" if body is None else "application/xml; charset=utf-8"
    if body is None:
        body = f"{status} injected by faultproxy\n".encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {kind}",
        f"Content-Length: {len(body)}",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {round(retry_after)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
