"""S3 multipart uploads: parts sent in parallel within a memory bound, completed or aborted."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from syncapp.errors import RemoteNotFound, RemoteProtocolError
from syncapp.remotes._http import CountingBody, guarded, normalize_etag
from syncapp.remotes._s3sign import hash_body
from syncapp.remotes._s3xml import NoSuchBucketError, children, escape, text
from syncapp.remotes.base import PutResult

if TYPE_CHECKING:
    from syncapp.remotes.s3 import S3Remote

#: S3 allows at most 10,000 parts per upload; bigger files get bigger parts.
MAX_PARTS = 10_000


async def pieces(data: bytearray, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    """An in-memory body sent in slices: h11 joins whatever one send gets into a new buffer, so
    handing it a whole part would briefly hold every part twice."""
    view = memoryview(data)
    for i in range(0, len(view), piece):
        yield view[i : i + piece]  # type: ignore[misc]


def first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to re-raise from a TaskGroup failure: ours before cancellations."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            flat.append(e)

    walk(eg)
    for e in flat:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return flat[0] if flat else eg


async def put(
    r: S3Remote,
    path: str,
    key: str,
    body: AsyncIterable[bytes],
    size: int,
    headers: dict[str, str],
) -> PutResult:
    """Create a multipart upload of ``key``, send its parts, complete it; abort on any failure
    (also on cancellation) so no parts are left costing storage."""
    part_size = max(r._part_size, -(-size // MAX_PARTS))
    create_headers = {k: v for k, v in headers.items() if k != "If-Match"}
    response = await r._send(
        "POST", r._url(key, {"uploads": ""}), path=path, content=b"", headers=create_headers
    )
    # rclone (gofakes3) names the root InitiateMultipartUpload, without "Result".
    root = r._xml(response, ("InitiateMultipartUploadResult", "InitiateMultipartUpload"), path)
    s3_upload_id = text(root, "UploadId")
    if not s3_upload_id:
        raise RemoteProtocolError(f"CreateMultipartUpload for {path!r}: no UploadId", path=path)
    try:
        etags = await _upload_parts(r, path, key, s3_upload_id, body, size, part_size)
        parts_xml = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{escape(e)}&quot;</ETag></Part>"
            for n, e in sorted(etags.items())
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<CompleteMultipartUpload>{parts_xml}</CompleteMultipartUpload>"
        ).encode()
        complete_headers = {"Content-Type": "application/xml"}
        if "If-Match" in headers:
            complete_headers["If-Match"] = headers["If-Match"]
        response = await r._send(
            "POST",
            r._url(key, {"uploadId": s3_upload_id}),
            path=path,
            content=xml,
            headers=complete_headers,
        )
        done = r._xml(response, "CompleteMultipartUploadResult", path)
        etag = normalize_etag(text(done, "ETag") or response.headers.get("ETag"))
    except BaseException:
        # Parts cost storage until aborted; shield so a cancelled upload still cleans up.
        await asyncio.shield(_abort_quietly(r, key, s3_upload_id, path))
        raise
    # The ETag Complete reports is not always the one HEAD and listings report later (rclone
    # recomputes a plain MD5), so ask once: the engine compares against listings.
    head = await r._send("HEAD", r._url(key), path=path, ok=(200, 404))
    return PutResult(etag=normalize_etag(head.headers.get("ETag")) or etag)


async def _upload_parts(
    r: S3Remote,
    path: str,
    key: str,
    s3_upload_id: str,
    body: AsyncIterable[bytes],
    size: int,
    part_size: int,
) -> dict[int, str]:
    etags: dict[int, str] = {}
    # One permit per part in memory: taken before a part starts filling, released when its
    # upload ends, so at most part_concurrency parts are held at once.
    permits = asyncio.Semaphore(r._part_concurrency)
    url = r._url(key)

    async def upload(number: int, data: bytearray) -> None:
        try:
            sha, md5 = await hash_body(data, r._checksums)
            headers = {"x-amz-content-sha256": sha}
            if md5:
                headers["Content-MD5"] = md5
            part_url = r._url(key, {"partNumber": str(number), "uploadId": s3_upload_id})
            headers["Content-Length"] = str(len(data))
            response = await r._send(
                "PUT", part_url, path=path, content=pieces(data), headers=headers
            )
            etag = normalize_etag(response.headers.get("ETag"))
            if not etag:
                raise RemoteProtocolError(
                    f"UploadPart {number} of {path!r}: no ETag in the answer", path=path
                )
            etags[number] = etag
        finally:
            permits.release()

    try:
        async with asyncio.TaskGroup() as tg:
            number = 0
            consumed = 0  # bytes of the body taken so far
            part: bytearray | None = None
            filled = 0
            await permits.acquire()
            async with guarded("PUT", url, path):
                async for chunk in CountingBody(body, size):
                    view = memoryview(chunk)
                    while view:
                        if part is None:
                            # Exactly sized, filled in place: no joins, no second copy.
                            part = bytearray(min(part_size, size - consumed))
                        take = min(len(view), len(part) - filled)
                        part[filled : filled + take] = view[:take]
                        view = view[take:]
                        filled += take
                        consumed += take
                        if filled == len(part):
                            number += 1
                            tg.create_task(upload(number, part))
                            part, filled = None, 0
                            if consumed < size:
                                await permits.acquire()
    except BaseExceptionGroup as eg:
        raise first_error(eg) from None
    return etags


async def abort(r: S3Remote, key: str, s3_upload_id: str, path: str) -> None:
    await r._send(
        "DELETE",
        r._url(key, {"uploadId": s3_upload_id}),
        path=path,
        ok=(200, 204, 404),
    )


async def _abort_quietly(r: S3Remote, key: str, s3_upload_id: str, path: str) -> None:
    # Best effort: cleanup_stale_uploads catches what is left.
    with contextlib.suppress(Exception):
        await abort(r, key, s3_upload_id, path)


async def abort_uploads(r: S3Remote, prefix: str, match: Callable[[str], bool]) -> int:
    # Each round lists from the start: SeaweedFS orders uploads by id and sends no
    # NextKeyMarker, so marker-based paging skips uploads there.
    attempted: set[str] = set()
    count = 0
    while True:
        uploads, truncated = await _list_uploads(r, prefix)
        todo = [(k, u) for k, u in uploads if match(k) and u not in attempted]
        for k, u in todo:
            attempted.add(u)
            await abort(r, k, u, r._path(k))
            count += 1
        if not truncated or not todo:
            return count


async def _list_uploads(r: S3Remote, prefix: str) -> tuple[builtins.list[tuple[str, str]], bool]:
    """One page of in-progress multipart uploads: (key, upload id) pairs, truncated?"""
    q: dict[str, str | None] = {
        "max-uploads": str(r._page_size),
        "prefix": prefix,
        "uploads": "",
    }
    url = r._bucket_query_url(q)
    try:
        response = await r._send("GET", url, path=prefix or None)
    except NoSuchBucketError:
        raise
    except RemoteNotFound:
        # rclone serve s3 answers NoSuchUpload (404) when nothing is in progress there.
        return [], False
    root = r._xml(response, "ListMultipartUploadsResult", prefix)
    encoded = text(root, "EncodingType").lower() == "url"
    uploads = [
        (unquote_plus(text(u, "Key")) if encoded else text(u, "Key"), text(u, "UploadId"))
        for u in children(root, "Upload")
    ]
    return uploads, text(root, "IsTruncated").lower() == "true"
