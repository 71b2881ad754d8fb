"""S3-compatible object stores (AWS S3, MinIO, Ceph RGW, SeaweedFS, rclone serve s3).

Objects have no directories: a "directory" exists while some key starts with ``dir/``, ``mkdir``
writes nothing, and deleting a directory deletes every key under its prefix.

Signing is SigV4 from ``httpx_auth.AWS4Auth``. That class makes httpx read the whole request body
to hash it, which would hold every upload in memory, so ``_s3sign.SigV4`` turns the buffering
off and signs the payload hash we put in ``x-amz-content-sha256`` ourselves: the SHA-256 of bodies
we hold in memory anyway (small files, multipart parts, XML), ``UNSIGNED-PAYLOAD`` for the one body
we stream (a single PUT above the in-memory limit). Multipart uploads are in ``_s3multipart``,
XML and error codes in ``_s3xml``.

The file's mtime travels as ``x-amz-meta-mtime`` in rclone's format (seconds with nine decimals),
so buckets written by rclone and by syncapp read the same. A listing cannot report it
(ListObjectsV2 carries no user metadata), so ``server_mtime`` is False and ``stat``/``list`` both
report the server's own Last-Modified time (when the object was written; rclone serve s3 happens
to answer the kept mtime there).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import NoReturn
from urllib.parse import unquote_plus, urlsplit
from xml.etree import ElementTree as ET

import httpx

from syncapp.config import S3RemoteConfig, parse_size
from syncapp.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
)
from syncapp.remotes import _s3multipart
from syncapp.remotes._http import (
    CountingBody,
    guarded,
    if_match_header,
    make_client,
    normalize_etag,
    parse_http_date,
    redact,
    streamed_get,
)
from syncapp.remotes._s3sign import (
    EMPTY_SHA256,
    UNSIGNED,
    SigV4,
    b64md5,
    encode,
    hash_body,
    query_string,
)
from syncapp.remotes._s3xml import (
    Listing,
    NoSuchBucketError,
    children,
    error_for,
    escape,
    local,
    parse_iso,
    text,
)
from syncapp.remotes.base import Capabilities, PutResult, Remote, RemoteEntry, clean_path

__all__ = ["NoSuchBucketError", "S3Remote"]

#: Bodies up to this size are read into memory for a single PUT, so they carry Content-MD5 and a
#: signed SHA-256; bigger single PUTs (a raised multipart_threshold) are streamed unsigned.
MEMORY_PUT_LIMIT = 8 * 1024 * 1024
#: DeleteObjects takes at most 1,000 keys per request.
DELETE_BATCH = 1000
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Kept importable from here (tests sign a known answer with it).
_SigV4 = SigV4


def _mtime_header(mtime_ns: int) -> str:
    # rclone's format: float seconds with nanosecond digits; exact both ways.
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    return f"{sec}.{ns:09d}"


class S3Remote(Remote):
    kind = "s3"
    # S3 PUTs and CompleteMultipartUpload are atomic: readers see the old or the new object.
    capabilities = Capabilities(
        atomic_put=True,
        server_move=False,
        server_copy=True,
        server_mtime=False,
        conditional_put=False,
        distinct_stamps=True,  # the ETag is the content's MD5 (of its parts' MD5s if multipart)
        directories=False,
    )

    def __init__(self, cfg: S3RemoteConfig, env: Mapping[str, str]) -> None:
        super().__init__()
        self._cfg = cfg
        self._bucket = cfg.bucket
        self._prefix = clean_path(cfg.prefix)
        # As a WebDAV password: the variable when it is set, else the key kept in the config.
        self._access_key = (
            env.get(cfg.access_key_id_env, "") if cfg.access_key_id_env else ""
        ) or cfg.access_key_id
        self._secret_key = (
            env.get(cfg.secret_access_key_env, "") if cfg.secret_access_key_env else ""
        ) or cfg.secret_access_key
        self._session_token = env.get(cfg.session_token_env, "") if cfg.session_token_env else ""
        self._part_size = parse_size(cfg.part_size)
        self._threshold = parse_size(cfg.multipart_threshold)
        self._part_concurrency = max(1, cfg.part_concurrency)
        self._checksums = cfg.checksums
        #: ListObjectsV2 / ListMultipartUploads page size; tests lower it to exercise pagination.
        self._page_size = 1000
        endpoint = cfg.endpoint.rstrip("/") or f"https://s3.{cfg.region}.amazonaws.com"
        parts = urlsplit(endpoint)
        # AWS without an explicit endpoint: virtual-hosted when the bucket name allows it (AWS is
        # retiring path-style); custom endpoints: path-style unless asked, since self-hosted
        # servers rarely have wildcard DNS.
        virtual = cfg.virtual_hosted or (not cfg.endpoint and bool(_DNS_BUCKET.match(cfg.bucket)))
        if virtual:
            netloc = f"{cfg.bucket}.{parts.netloc}"
            self._bucket_url = f"{parts.scheme}://{netloc}{parts.path}"
        else:
            self._bucket_url = f"{parts.scheme}://{parts.netloc}{parts.path}/{encode(cfg.bucket)}"
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        base = redact(self._bucket_url)
        return f"{base}/{self._prefix}" if self._prefix else base

    async def _open(self) -> None:
        if not self._access_key or not self._secret_key:
            missing = [
                name
                for name, value in (
                    (self._cfg.access_key_id_env, self._access_key),
                    (self._cfg.secret_access_key_env, self._secret_key),
                )
                if not value
            ]
            raise RemoteAuthError(
                f"S3 remote {self._cfg.name!r}: credentials missing; set the environment "
                f"variable(s) {', '.join(missing) or '(unnamed)'}"
            )
        auth = SigV4(
            self._access_key,
            self._secret_key,
            self._cfg.region,
            "s3",
            security_token=self._session_token or None,
        )
        self._client = make_client(
            connections=self._cfg.connections,
            timeout=self._cfg.timeout,
            verify_tls=self._cfg.verify_tls,
            auth=auth,
            url=self._cfg.endpoint or "https://",
        )

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- addressing ------------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        path = clean_path(path)
        if self._prefix:
            return f"{self._prefix}/{path}" if path else self._prefix
        return path

    def _dir_prefix(self, path: str) -> str:
        """The key prefix of everything below ``path`` ("" for the whole bucket)."""
        key = self._key(path)
        return f"{key}/" if key else ""

    def _path(self, key: str) -> str:
        """The remote path of a key (inverse of ``_key``)."""
        if self._prefix:
            return key[len(self._prefix) + 1 :]
        return key

    def _url(self, key: str, query: Mapping[str, str | None] | None = None) -> str:
        return f"{self._bucket_url}/{encode(key, keep_slash=True)}{query_string(query or {})}"

    def _bucket_query_url(self, query: Mapping[str, str | None]) -> str:
        return f"{self._bucket_url}{query_string(query)}"

    # -- requests and errors ---------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        self._check_open()
        assert self._client is not None
        return self._client

    async def _send(
        self,
        method: str,
        url: str,
        *,
        path: str | None,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One request; its body is read; any status outside ``ok`` raises our error type."""
        client = self._http()
        hdrs = dict(headers or {})
        if content is None:
            hdrs.setdefault("x-amz-content-sha256", EMPTY_SHA256)
        async with guarded(method, url, path):
            response = await client.request(method, url, content=content, headers=hdrs)
        if response.status_code not in ok:
            self._raise(response, path)
        return response

    def _raise(self, response: httpx.Response, path: str | None) -> NoReturn:
        raise self._error(response, path)

    def _scrub(self, text: str) -> str:
        for secret in (self._secret_key, self._session_token, self._access_key):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _error(self, response: httpx.Response, path: str | None) -> RemoteError:
        """Map an S3 error response (XML ``<Error><Code>``, or just a status for HEAD)."""
        code, message = "", ""
        try:
            root = ET.fromstring(response.content) if response.content else None
        except ET.ParseError:
            root = None
        if root is not None and local(root.tag) == "Error":
            code = text(root, "Code")
            message = text(root, "Message")
        return error_for(
            self,
            response.status_code,
            code,
            message,
            response=response,
            path=path,
        )

    # -- listing ---------------------------------------------------------------------------------

    async def _list_page(
        self,
        prefix: str,
        *,
        delimiter: bool,
        token: str | None,
        max_keys: int | None = None,
        path: str | None = None,
    ) -> Listing:
        q: dict[str, str | None] = {"list-type": "2", "prefix": prefix}
        if delimiter:
            q["delimiter"] = "/"
        # Ask for URL-encoded keys (XML 1.0 cannot carry every character a key may hold); we
        # only decode when the answer says it honoured the request.
        q["encoding-type"] = "url"
        q["max-keys"] = str(max_keys or self._page_size)
        if token:
            q["continuation-token"] = token
        url = self._bucket_query_url(dict(sorted(q.items())))
        response = await self._send("GET", url, path=path)
        root = self._xml(response, "ListBucketResult", path)
        encoded = text(root, "EncodingType").lower() == "url"

        def dec(s: str) -> str:
            return unquote_plus(s) if encoded else s

        files = []
        for c in children(root, "Contents"):
            files.append(
                (
                    dec(text(c, "Key")),
                    int(text(c, "Size", "0") or 0),
                    normalize_etag(text(c, "ETag")),
                    parse_iso(text(c, "LastModified")),
                )
            )
        prefixes = [dec(text(p, "Prefix")) for p in children(root, "CommonPrefixes")]
        truncated = text(root, "IsTruncated").lower() == "true"
        next_token = text(root, "NextContinuationToken") or None
        if truncated and not next_token:
            raise RemoteProtocolError(
                f"GET {redact(url)}: listing truncated without a continuation token", path=path
            )
        return Listing(files, prefixes, next_token if truncated else None)

    def _xml(
        self, response: httpx.Response, expect: str | tuple[str, ...], path: str | None
    ) -> ET.Element:
        """Parse an XML answer whose root is one of ``expect``; an ``<Error>`` root raises."""
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as e:
            raise RemoteProtocolError(
                f"{response.request.method} {redact(response.request.url)}: malformed XML ({e})",
                path=path,
            ) from None
        if local(root.tag) == "Error":
            # Some operations (CopyObject, CompleteMultipartUpload) report errors with a 200.
            raise error_for(
                self,
                500 if response.status_code == 200 else response.status_code,
                text(root, "Code"),
                text(root, "Message"),
                response=response,
                path=path,
            )
        names = (expect,) if isinstance(expect, str) else expect
        if local(root.tag) not in names:
            raise RemoteProtocolError(
                f"{response.request.method} {redact(response.request.url)}: expected"
                f" <{names[0]}>, got <{local(root.tag)}>",
                path=path,
            )
        return root

    # -- required operations -----------------------------------------------------------------

    async def _stat(self, path: str) -> RemoteEntry | None:
        if not path and not self._prefix:
            await self._send("HEAD", self._bucket_url, path=None)
            return RemoteEntry(path="", is_dir=True)
        if path:
            url = self._url(self._key(path))
            response = await self._send("HEAD", url, path=path, ok=(200, 404))
            if response.status_code == 200:
                return RemoteEntry(
                    path=path,
                    is_dir=False,
                    size=int(response.headers.get("Content-Length", "0")),
                    mtime_ns=parse_http_date(response.headers.get("Last-Modified")),
                    etag=normalize_etag(response.headers.get("ETag")),
                )
        if await self._has_keys(self._dir_prefix(path), path):
            return RemoteEntry(path=path, is_dir=True)
        if not path:
            # An empty prefix root still "exists" as long as the bucket does.
            return RemoteEntry(path="", is_dir=True)
        return None

    async def _has_keys(self, prefix: str, path: str) -> bool:
        """Whether any key starts with ``prefix``: a "directory" exists exactly then.

        Asked without a delimiter: SeaweedFS keeps the emptied folder after its last key is
        deleted and still answers it as a CommonPrefix.
        """
        page = await self._list_page(
            prefix, delimiter=False, token=None, max_keys=1, path=path or None
        )
        return bool(page.files)

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        prefix = self._dir_prefix(path)
        seen_dirs: set[str] = set()
        token: str | None = None
        while True:
            page = await self._list_page(
                prefix, delimiter=not recursive, token=token, path=path or None
            )
            for key, size, etag, modified in page.files:
                rel = key[len(prefix) :]
                if not rel:
                    continue  # a "directory marker" object for ``path`` itself
                if recursive:
                    # Keys imply their parent directories; report each once, before its files.
                    parts = rel.split("/")
                    for i in range(1, len(parts)):
                        d = "/".join(parts[:i])
                        if d and d not in seen_dirs:
                            seen_dirs.add(d)
                            yield RemoteEntry(path=self._path(prefix + d), is_dir=True)
                if rel.endswith("/"):
                    continue  # a directory marker, already reported as its directory
                if not recursive and "/" in rel:
                    continue
                yield RemoteEntry(
                    path=self._path(key), is_dir=False, size=size, etag=etag, mtime_ns=modified
                )
            # Check each CommonPrefix still holds a key (SeaweedFS reports emptied folders).
            candidates = [
                d
                for d in (p[len(prefix) :].rstrip("/") for p in page.prefixes)
                if d and d not in seen_dirs
            ]
            alive = await asyncio.gather(
                *(self._has_keys(f"{prefix}{d}/", path) for d in candidates)
            )
            for d, ok in zip(candidates, alive, strict=True):
                if ok:
                    seen_dirs.add(d)
                    yield RemoteEntry(path=self._path(prefix + d), is_dir=True)
            token = page.token
            if token is None:
                return

    async def _put(
        self,
        path: str,
        body: AsyncIterable[bytes],
        *,
        size: int,
        mtime_ns: int | None,
        if_match: str | None,
        upload_id: str | None,
    ) -> PutResult:
        key = self._key(path)
        # A guessed Content-Type (as rclone sets it) so a bucket served to browsers just works.
        headers = {"Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream"}
        if mtime_ns is not None:
            headers["x-amz-meta-mtime"] = _mtime_header(mtime_ns)
        if if_match is not None:
            headers["If-Match"] = if_match_header(if_match)
        if size >= self._threshold and size > 0:
            return await _s3multipart.put(self, path, key, body, size, headers)
        url = self._url(key)
        if size <= MEMORY_PUT_LIMIT:
            data = await self._read_all(body, size, url, path)
            sha, md5 = await hash_body(data, self._checksums)
            headers["x-amz-content-sha256"] = sha
            headers["Content-Length"] = str(size)
            if md5:
                headers["Content-MD5"] = md5
            response = await self._send(
                "PUT", url, path=path, content=_s3multipart.pieces(data), headers=headers
            )
        else:
            headers["x-amz-content-sha256"] = UNSIGNED
            headers["Content-Length"] = str(size)
            response = await self._send(
                "PUT", url, path=path, content=CountingBody(body, size), headers=headers
            )
        return PutResult(etag=normalize_etag(response.headers.get("ETag")))

    async def _read_all(
        self, body: AsyncIterable[bytes], size: int, url: str, path: str
    ) -> bytearray:
        data = bytearray(size)
        filled = 0
        async with guarded("PUT", url, path):
            async for chunk in CountingBody(body, size):  # refuses more than ``size`` bytes
                data[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        return data

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        url = self._url(self._key(path))

        async def failure(response: httpx.Response) -> RemoteError:
            if response.status_code == 404 and not response.content:
                return RemoteNotFound(f"GET {redact(url)}: HTTP 404", status=404, path=path)
            return self._error(response, path)

        headers = {"x-amz-content-sha256": EMPTY_SHA256}
        async with streamed_get(self._http(), url, path, failure, headers=headers) as chunks:
            yield chunks

    async def _mkdir(self, path: str) -> None:
        # Directories are implied by keys; an empty one cannot exist, so there is nothing to do.
        pass

    async def _delete(self, path: str) -> None:
        prefix = self._dir_prefix(path)
        # Keys under the prefix first, then the key itself: rclone answers 500 to a DELETE of a
        # name that is still a non-empty directory on its disk. Each round lists from the start,
        # since servers differ in what a continuation token means after its keys are deleted.
        last_first: str | None = None
        while True:
            page = await self._list_page(prefix, delimiter=False, token=None, path=path or None)
            keys = [k for k, *_ in page.files]
            if not keys:
                break
            if keys[0] == last_first:
                raise RemoteProtocolError(
                    f"delete {path!r}: the server keeps listing {keys[0]!r} after deleting it",
                    path=path,
                )
            last_first = keys[0]
            for i in range(0, len(keys), DELETE_BATCH):
                await self._delete_keys(keys[i : i + DELETE_BATCH], path)
        await self._send("DELETE", self._url(self._key(path)), path=path, ok=(200, 204, 404))

    async def _delete_keys(self, keys: builtins.list[str], path: str) -> None:
        objects = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys)
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>{objects}</Delete>'
        ).encode()
        # DeleteObjects must carry Content-MD5 (AWS demands it), so with checksums off (a server
        # that rejects checksum headers) or without DeleteObjects (501) keys go one by one.
        response: httpx.Response | None = None
        if self._checksums:
            headers = {"Content-MD5": b64md5(body), "Content-Type": "application/xml"}
            url = self._bucket_query_url({"delete": ""})
            response = await self._send(
                "POST", url, path=path, content=body, headers=headers, ok=(200, 501)
            )
        if response is None or response.status_code == 501:
            # Servers without DeleteObjects: one DELETE per key, a few at a time.
            sem = asyncio.Semaphore(self._cfg.connections)

            async def one(k: str) -> None:
                async with sem:
                    await self._send("DELETE", self._url(k), path=path, ok=(200, 204, 404))

            await asyncio.gather(*(one(k) for k in keys))
            return
        root = self._xml(response, "DeleteResult", path)
        errors = children(root, "Error")
        if errors:
            first = errors[0]
            raise error_for(
                self,
                500,
                text(first, "Code"),
                f"{len(errors)} key(s) not deleted, e.g. {text(first, 'Key')!r}: "
                + text(first, "Message"),
                response=response,
                path=path,
            )

    # -- optional operations --------------------------------------------------------------------

    async def _copy(self, src: str, dst: str) -> None:
        source = f"/{self._bucket}/{encode(self._key(src), keep_slash=True)}"
        url = self._url(self._key(dst))
        response = await self._send("PUT", url, path=src, headers={"x-amz-copy-source": source})
        self._xml(response, "CopyObjectResult", src)

    async def _discard_upload(self, path: str, upload_id: str) -> None:
        """Abort the multipart uploads left for ``path``; idempotent.

        S3 names multipart uploads itself and lists no metadata for them, so every in-progress
        upload of exactly this key is ours to abort: the engine calls this for a path it owns.
        """
        key = self._key(path)
        with contextlib.suppress(RemoteNotFound):
            await _s3multipart.abort_uploads(self, key, lambda k: k == key)
        # A staging object under the conventional name (S3 itself never writes one).
        await super()._discard_upload(path, upload_id)

    async def _cleanup_stale_uploads(self, prefix: str) -> int:
        """Abort every in-progress multipart upload under ``prefix``; how many were aborted.

        Called when the engine starts: uploads of a killed run hold their parts (and cost
        storage) until aborted. Not safe while another client uploads under the same prefix.
        """
        key_prefix = self._key(prefix) if prefix else self._dir_prefix("")
        return await _s3multipart.abort_uploads(self, key_prefix, lambda k: True)
