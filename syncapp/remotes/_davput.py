"""WebDAV uploads: PUT to a staging name then MOVE (or one PUT in place), and what they report."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

import httpx

from syncapp.errors import (
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemotePreconditionFailed,
    RemoteUnavailable,
    RemoteUnsupported,
)
from syncapp.remotes import _davdest
from syncapp.remotes._http import (
    CountingBody,
    if_match_header,
    normalize_etag,
    parse_http_date,
    quietly,
    redact,
)
from syncapp.remotes.base import PutResult, RemoteEntry, parent, staging_name

if TYPE_CHECKING:
    from syncapp.remotes.webdav import WebDAVRemote

#: Bodies up to this size are sent as one buffer instead of a stream.
SMALL_BODY = 256 * 1024


async def put(
    r: WebDAVRemote,
    path: str,
    body: AsyncIterable[bytes],
    *,
    size: int,
    mtime_ns: int | None,
    if_match: str | None,
    upload_id: str | None,
) -> PutResult:
    """``Remote.put`` for WebDAV (see the ``webdav`` module docstring for the modes)."""
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    sent_mtime = r._send_mtime and mtime_ns is not None and mtime_ns >= 0
    if sent_mtime:
        assert mtime_ns is not None
        # Whole seconds: WsgiDAV rejects fractions with 400 and rclone ignores them.
        headers["X-OC-Mtime"] = str(mtime_ns // 1_000_000_000)

    moved: httpx.Response | None = None
    if r._direct_put or not await _davdest.destination_ok(r, path):
        if if_match is not None:
            await check_etag(r, path, if_match)
            if not r._weak_etags:
                headers["If-Match"] = if_match_header(if_match)
        answer = await put_body(r, path, r._url(path), body, size, headers)
    else:
        staging = staging_name(path, upload_id or uuid.uuid4().hex)
        try:
            answer = await put_body(r, staging, r._url(staging), body, size, headers)
            if if_match is not None:
                await check_etag(r, path, if_match)
            moved = await r._send_move(staging, path)
        except BaseException as e:
            if isinstance(e, RemoteError) and e.path == staging:
                e.path = path  # the caller knows the file, not our temporary name
            # Also on cancellation: nothing the upload created may stay behind. Bounded, so
            # a dead server cannot hold shutdown hostage.
            await quietly(r._delete_file(staging))
            answered = isinstance(e, RemoteError) and e.status is not None
            if not answered and not isinstance(e, asyncio.CancelledError):
                # The PUT was cut off without an answer: the server may still be creating
                # the staging file when our DELETE arrives (rclone then keeps the partial
                # file). Look again a moment later. On cancellation the engine's journal
                # and discard_upload take care of it instead of delaying shutdown.
                await asyncio.sleep(0.3)
                await quietly(r._delete_file(staging))
            raise
    if if_match is None:
        return put_result(r, answer, moved, mtime_ns if sent_mtime else None)
    entry = await r.stat(path)
    return PutResult(etag=entry.etag if entry else None, mtime_ns=entry.mtime_ns if entry else None)


def put_result(
    r: WebDAVRemote,
    answer: httpx.Response,
    moved: httpx.Response | None,
    sent_mtime_ns: int | None,
) -> PutResult:
    """What the server's own answers say of the file just written, without another request.

    The modification time: the one we sent where the server keeps it, else the server's
    clock when it answered (its ``Date``), which no later write by someone else can be
    earlier than. The ETag of a PUT answer only where nothing changed the file after it
    was computed (no X-OC-Mtime applied afterwards, no MOVE).
    """
    accepted = answer.headers.get("X-OC-MTime", "").lower() == "accepted"
    if sent_mtime_ns is not None and (accepted or r.capabilities.server_mtime):
        mtime: int | None = sent_mtime_ns // 1_000_000_000 * 1_000_000_000
    else:
        mtime = parse_http_date((moved or answer).headers.get("Date"))
    etag = None
    if moved is None and sent_mtime_ns is None:
        etag = normalize_etag(answer.headers.get("ETag"))
    return PutResult(etag=etag, mtime_ns=mtime)


async def put_body(
    r: WebDAVRemote,
    path: str,
    url: str,
    body: AsyncIterable[bytes],
    size: int,
    headers: dict[str, str],
) -> httpx.Response:
    """One PUT of ``body`` to ``url``; "parent missing" told apart from an outage."""
    counting = CountingBody(body, size)
    content: bytes | CountingBody = counting
    if size <= SMALL_BODY:
        # Small files go out as one buffer: a streamed body costs separate socket writes for
        # headers, data and end, which showed up as a fifth of a small-file sync's CPU.
        try:
            content = b"".join([chunk async for chunk in counting])
        except httpx.StreamError as e:
            raise RemoteUnavailable(f"PUT {path}: {e}", path=path) from None
    try:
        return await r._request(
            "PUT", path, url=url, ok=(200, 201, 204), headers=headers, content=content
        )
    except RemoteNotFound as e:
        # Some servers answer 404 rather than 409 when the parent collection is missing.
        raise RemoteConflict(
            f"{e.message} (parent collection {parent(path) or '/'} missing?)",
            status=e.status,
            path=path,
        ) from None
    except RemoteUnavailable as e:
        # A server may answer 409 and hang up before reading a big body; we then only see
        # a broken connection. nginx answers 500 when the parent is missing. Tell "parent
        # missing" (fatal for this file) from a real outage.
        if e.status is not None and e.status != 500:
            raise
        if e.status is None and counting.sent == size:
            raise
        try:
            parent_entry = await r.stat(parent(path))
        except RemoteError:
            raise e from None
        if parent_entry is None or not parent_entry.is_dir:
            raise RemoteConflict(
                f"PUT {redact(url)}: parent collection {parent(path) or '/'} does not exist",
                path=path,
            ) from None
        raise


async def check_etag(r: WebDAVRemote, path: str, if_match: str) -> None:
    entry = await r.stat(path)
    current = entry.etag if entry else None
    if current != normalize_etag(if_match):
        raise RemotePreconditionFailed(
            f"PUT {r.display_url}{path}: remote changed (ETag {current} is not {if_match})",
            status=412,
            path=path,
        )


async def move_or_copy_by_hand(r: WebDAVRemote, method: str, src: RemoteEntry, dst: str) -> None:
    """MOVE/COPY of a file through this client, for destinations the server would mangle."""
    if src.is_dir:
        raise RemoteUnsupported(
            f"{method} {src.path} -> {dst}: this server cannot {method.lower()} directories "
            "to names containing '?' or ';'",
            path=dst,
        )
    async with r.get(src.path) as chunks:
        await put_body(r, dst, r._url(dst), chunks, src.size, {"Content-Length": str(src.size)})
    if method == "MOVE":
        await r.delete(src.path)
