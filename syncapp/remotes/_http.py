"""Shared plumbing for HTTP-based backends: one ``httpx.AsyncClient`` per endpoint and the
mapping of httpx failures onto our ``RemoteError`` types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from syncapp.errors import RemoteError, RemoteUnavailable, error_for_status


def make_client(
    *,
    connections: int,
    timeout: float,
    verify_tls: bool,
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
    url: str = "https://",
) -> httpx.AsyncClient:
    """The client for one endpoint; ``url`` (its base) says whether TLS is needed at all."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
    )
    client = httpx.AsyncClient(
        auth=auth,
        headers=headers,
        # httpx's own pool costs ~1.3 ms of CPU per request here (encode/httpx#3215); aiohttp's
        # pool under the same httpx API costs about half, which decides small-file throughput.
        # Loading the CA bundle costs ~0.2 s at start; a plain-http endpoint never needs it.
        transport=_transport(limits, verify_tls and not url.startswith("http://")),
        # Connecting times out fast so an unreachable server is "offline" quickly; waiting for a
        # pooled connection is bounded too, so a leak shows as an error instead of a hang.
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        # Never follow redirects: a redirect could send our body or credentials elsewhere.
        follow_redirects=False,
        trust_env=False,
    )
    # Sync endpoints authenticate per request; parsing Set-Cookie on every answer was 7 % of a
    # small-file sync's CPU, and a session cookie must not outlive the run anyway.
    client._cookies = _NoCookies()  # httpx has no switch for this
    return client


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


def _transport(limits: httpx.Limits, verify_tls: bool) -> httpx.AsyncBaseTransport:
    return _LazyAiohttpTransport(limits, verify_tls)


class _LazyAiohttpTransport(httpx.AsyncBaseTransport):
    """Imports aiohttp (~0.3 s) on the first request, not at start: a run with nothing to
    send never pays for it."""

    def __init__(self, limits: httpx.Limits, verify_tls: bool) -> None:
        self._limits = limits
        self._verify = verify_tls
        self._inner: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            import aiohttp
            from httpx_aiohttp import AiohttpTransport

            limits = self._limits

            def session() -> aiohttp.ClientSession:
                connector = aiohttp.TCPConnector(
                    limit=limits.max_connections or 0,
                    keepalive_timeout=limits.keepalive_expiry,
                    ssl=transport.ssl_context,
                )
                s = aiohttp.ClientSession(connector=connector)
                # aiohttp silently resends an idempotent request (PUT) once when a kept-alive
                # connection breaks. The first attempt may still be running on the server and
                # finish later, overwriting the resent upload's staging file with what it got:
                # the engine retries instead, always under a fresh staging name.
                s._retry_connection = False
                return s

            transport = AiohttpTransport(
                verify=self._verify, limits=limits, trust_env=False, client=session
            )
            self._inner = transport
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def normalize_etag(value: str | None) -> str | None:
    """``W/"abc"`` / ``"abc"`` / ``abc`` → ``abc``; None for empty. Servers quote ETags in
    headers and sometimes not in listings (WsgiDAV): compare only normalized ones."""
    if not value:
        return None
    v = value.strip()
    if is_weak_etag(v):
        v = v[2:]
    return v.strip('"') or None


def if_match_header(etag: str) -> str:
    """The ``If-Match`` header value for an ETag as we keep it (normalized): quoted, strong."""
    return f'"{normalize_etag(etag) or etag}"'


def is_weak_etag(value: str | None) -> bool:
    """``W/"abc"``: a weak ETag, which ``If-Match`` (a strong comparison) never matches."""
    return value is not None and value.lstrip()[:2] in ("W/", "w/")


def _http_datetime(text: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate, or the obsolete forms) as an aware datetime."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" (and the obsolete forms) parse naive; HTTP dates are always UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_http_date(text: str | None) -> int | None:
    """An HTTP date (``Last-Modified``, ``Date``, ``getlastmodified``) in nanoseconds since the
    epoch; None when absent or unreadable."""
    when = _http_datetime(text)
    if when is None:
        return None
    # Integer arithmetic: a float timestamp times 1e9 loses nanoseconds to rounding.
    return int(when.timestamp()) * 1_000_000_000


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    when = _http_datetime(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def redact(url: str | httpx.URL) -> str:
    """A URL without userinfo or query (query strings may carry signatures or tokens)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _root_causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def describe_transport_error(exc: httpx.TransportError) -> str:
    """Words for a failure below HTTP: refused, DNS, TLS, timeout, reset."""
    import socket
    import ssl

    causes = _root_causes(exc)
    for c in causes:
        if isinstance(c, ConnectionRefusedError):
            return "connection refused"
        if isinstance(c, socket.gaierror):
            return f"DNS lookup failed ({c.strerror or c})"
        if isinstance(c, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({c.verify_message or c})"
        if isinstance(c, ssl.SSLError):
            return f"TLS handshake failed ({c.reason or c})"
        if isinstance(c, ConnectionResetError):
            return "connection reset by the server"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or exc.__class__.__name__})"
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return "timed out waiting for the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"server closed the connection ({exc or 'protocol error'})"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"connection broken ({exc or exc.__class__.__name__})"
    return f"{exc.__class__.__name__}: {exc}"


def transport_error(
    exc: httpx.TransportError, *, method: str, url: str | httpx.URL, path: str | None
) -> RemoteUnavailable:
    return RemoteUnavailable(f"{method} {redact(url)}: {describe_transport_error(exc)}", path=path)


def status_error(response: httpx.Response, *, path: str | None, detail: str = "") -> RemoteError:
    req = response.request
    reason = response.reason_phrase or ""
    msg = f"{req.method} {redact(req.url)}: HTTP {response.status_code} {reason}".rstrip()
    if detail:
        msg += f" ({detail})"
    return error_for_status(
        response.status_code,
        msg,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        path=path,
    )


@asynccontextmanager
async def guarded(method: str, url: str | httpx.URL, path: str | None) -> AsyncIterator[None]:
    """Turn httpx transport failures raised inside the block into ``RemoteUnavailable``."""
    try:
        yield
    except httpx.TransportError as e:
        raise transport_error(e, method=method, url=url, path=path) from None
    except httpx.StreamError as e:
        raise RemoteUnavailable(f"{method} {redact(url)}: stream error ({e})", path=path) from None


@asynccontextmanager
async def streamed_get(
    client: httpx.AsyncClient,
    url: str,
    path: str,
    failure: Callable[[httpx.Response], Awaitable[RemoteError]],
    *,
    headers: dict[str, str] | None = None,
    chunk_size: int = 256 * 1024,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """A GET whose body is streamed in large chunks; any non-200 answer (its small body read)
    becomes the backend's own error from ``failure``. Shared by every HTTP backend's ``get``."""
    async with guarded("GET", url, path):
        response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    try:
        if response.status_code != 200:
            async with guarded("GET", url, path):
                await response.aread()
            raise await failure(response)

        async def chunks() -> AsyncIterator[bytes]:
            async with guarded("GET", url, path):
                async for chunk in response.aiter_bytes(chunk_size):
                    yield chunk

        yield chunks()
    finally:
        await response.aclose()


class CountingBody:
    """An async byte stream that refuses to send more or fewer bytes than promised.

    A file that grows or shrinks during upload must fail the request, not silently send a
    different length than Content-Length says.
    """

    def __init__(self, body: AsyncIterable[bytes], size: int) -> None:
        self._body = body
        self.size = size
        self.sent = 0
        self._used = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._used:
            # A resend would find the file's stream exhausted and send nothing.
            raise _SizeMismatch("a streamed request body cannot be sent twice")
        self._used = True
        async for chunk in self._body:
            self.sent += len(chunk)
            if self.sent > self.size:
                raise _SizeMismatch(f"body grew past {self.size} bytes while uploading")
            yield chunk
        if self.sent != self.size:
            raise _SizeMismatch(f"body shrank to {self.sent} of {self.size} bytes while uploading")


class _SizeMismatch(httpx.StreamError):
    pass


async def quietly(aw: Awaitable[None]) -> None:
    """Best-effort cleanup: at most a few seconds, any failure swallowed."""
    with suppress(Exception):
        await asyncio.wait_for(aw, timeout=5.0)
