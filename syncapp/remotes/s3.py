"""S3-compatible object stores (AWS S3, MinIO, Ceph RGW, SeaweedFS, rclone serve s3).

Objects have no directories: a "directory" exists while some key starts with ``dir/``, ``mkdir``
writes nothing, and deleting a directory deletes every key under its prefix.

Signing is SigV4 from ``httpx_auth.AWS4Auth``. That class makes httpx read the whole request body
to hash it, which would hold every upload in memory, so ``_SigV4`` turns the buffering off and
signs the payload hash we put in ``x-amz-content-sha256`` ourselves: the SHA-256 of bodies we hold
in memory anyway (small files, multipart parts, XML), ``UNSIGNED-PAYLOAD`` for the one body we
stream (a single PUT above the in-memory limit).

The file's mtime travels as ``x-amz-meta-mtime`` in rclone's format (seconds with nine decimals),
so buckets written by rclone and by syncapp read the same. A listing cannot report it
(ListObjectsV2 carries no user metadata), so ``server_mtime`` is False and ``stat``/``list`` both
report the server's own Last-Modified time (when the object was written; rclone serve s3 happens
to answer the kept mtime there).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import hmac
import mimetypes
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree as ET

import httpx
from httpx_auth import AWS4Auth
from httpx_auth._aws import (
    _signing_key,
    _string_to_sign,
    canonical_and_signed_headers,
)

from syncapp.config import S3RemoteConfig, parse_size
from syncapp.errors import (
    RemoteAuthError,
    RemoteBusy,
    RemoteError,
    RemoteFull,
    RemoteNotFound,
    RemotePreconditionFailed,
    RemoteProtocolError,
    RemoteTooLarge,
    RemoteUnavailable,
    parse_retry_after,
)
from syncapp.remotes._http import (
    CountingBody,
    guarded,
    make_client,
    normalize_etag,
    parse_http_date,
    redact,
    status_error,
    streamed_get,
)
from syncapp.remotes.base import Capabilities, PutResult, Remote, RemoteEntry, clean_path

__all__ = ["NoSuchBucketError", "S3Remote"]

#: Bodies up to this size are read into memory for a single PUT, so they carry Content-MD5 and a
#: signed SHA-256; bigger single PUTs (a raised multipart_threshold) are streamed unsigned.
MEMORY_PUT_LIMIT = 8 * 1024 * 1024
#: S3 allows at most 10,000 parts per upload; bigger files get bigger parts.
MAX_PARTS = 10_000
#: DeleteObjects takes at most 1,000 keys per request.
DELETE_BATCH = 1000
_UNSIGNED = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "AccountProblem",
        "AllAccessDisabled",
        "InvalidSecurity",
    }
)
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class NoSuchBucketError(RemoteNotFound):
    """The configured bucket does not exist: retrying cannot help, the folder must stop."""

    fatal_for_folder = True


class _SigV4(AWS4Auth):
    """``AWS4Auth`` that never makes httpx buffer the body (see the module docstring).

    A request that already carries ``x-amz-content-sha256`` is signed with that value; any other
    request must have an in-memory body, which is hashed here.
    """

    requires_request_body = False

    @staticmethod
    def clock() -> datetime:
        """The signing time (a known-answer test replaces it)."""
        return datetime.now(UTC)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "x-amz-content-sha256" not in request.headers:
            # Only ever reached for bytes bodies, whose stream is readable synchronously.
            request.headers["x-amz-content-sha256"] = hashlib.sha256(request.read()).hexdigest()
        now = self.clock()
        request.headers["x-amz-date"] = now.strftime("%Y%m%dT%H%M%SZ")
        if self.security_token:
            request.headers["x-amz-security-token"] = self.security_token
        canonical_headers, signed_headers = canonical_and_signed_headers(
            request.headers, set(self.include_headers)
        )
        canonical_request = self._canonical_request(request, canonical_headers, signed_headers)
        day = now.strftime("%Y%m%d")
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        string_to_sign = _string_to_sign(request, canonical_request, scope)
        key = _signing_key(self.secret_key, self.region, self.service, day)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        yield request


def _encode(text: str, *, keep_slash: bool = False) -> str:
    """SigV4's UriEncode: everything but ``A-Za-z0-9-._~`` (and ``/`` in keys) as %XX.

    Sending exactly the canonical form means servers that sign the raw path and servers that
    re-encode the decoded path compute the same signature.
    """
    return quote(text, safe="/" if keep_slash else "")


def _query(params: Mapping[str, str | None]) -> str:
    parts = []
    for k, v in params.items():
        parts.append(_encode(k) if v is None else f"{_encode(k)}={_encode(v)}")
    return "?" + "&".join(parts) if parts else ""


def _local(tag: str) -> str:
    """An element's name without its XML namespace (servers differ in sending one)."""
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element, name: str, default: str = "") -> str:
    c = _child(el, name)
    return default if c is None or c.text is None else c.text


def _mtime_header(mtime_ns: int) -> str:
    # rclone's format: float seconds with nanosecond digits; exact both ways.
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    return f"{sec}.{ns:09d}"


def _b64md5(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _hashes(data: bytearray, md5: bool) -> tuple[str, str | None]:
    """SHA-256 (hex) and, if asked, Content-MD5 (base64); hashlib drops the GIL in threads."""
    return hashlib.sha256(data).hexdigest(), (_b64md5(data) if md5 else None)


async def _pieces(data: bytearray, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    """An in-memory body sent in slices: h11 joins whatever one send gets into a new buffer, so
    handing it a whole part would briefly hold every part twice."""
    view = memoryview(data)
    for i in range(0, len(view), piece):
        yield view[i : i + piece]  # type: ignore[misc]


def _first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
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


@dataclass(frozen=True, slots=True)
class _Listing:
    files: list[tuple[str, int, str | None, int | None]]  # key, size, etag, last-modified ns
    prefixes: list[str]
    token: str | None


class S3Remote(Remote):
    kind = "s3"
    # S3 PUTs and CompleteMultipartUpload are atomic: readers see the old or the new object.
    capabilities = Capabilities(
        atomic_put=True,
        server_move=False,
        server_copy=True,
        server_mtime=False,
        conditional_put=False,
        directories=False,
    )

    def __init__(self, cfg: S3RemoteConfig, env: Mapping[str, str]) -> None:
        super().__init__()
        self._cfg = cfg
        self._bucket = cfg.bucket
        self._prefix = clean_path(cfg.prefix)
        self._access_key = env.get(cfg.access_key_id_env, "") if cfg.access_key_id_env else ""
        self._secret_key = (
            env.get(cfg.secret_access_key_env, "") if cfg.secret_access_key_env else ""
        )
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
        virtual = cfg.virtual_hosted or (
            not cfg.endpoint and bool(_DNS_BUCKET.match(cfg.bucket))
        )
        if virtual:
            netloc = f"{cfg.bucket}.{parts.netloc}"
            self._bucket_url = f"{parts.scheme}://{netloc}{parts.path}"
        else:
            self._bucket_url = f"{parts.scheme}://{parts.netloc}{parts.path}/{_encode(cfg.bucket)}"
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
        auth = _SigV4(
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
        return f"{self._bucket_url}/{_encode(key, keep_slash=True)}{_query(query or {})}"

    def _bucket_query_url(self, query: Mapping[str, str | None]) -> str:
        return f"{self._bucket_url}{_query(query)}"

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
            hdrs.setdefault("x-amz-content-sha256", _EMPTY_SHA256)
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
        if root is not None and _local(root.tag) == "Error":
            code = _text(root, "Code")
            message = _text(root, "Message")
        return self._error_for(
            response.status_code,
            code,
            message,
            response=response,
            path=path,
        )

    def _error_for(
        self,
        status: int,
        code: str,
        message: str,
        *,
        response: httpx.Response,
        path: str | None,
    ) -> RemoteError:
        req = response.request
        where = f"{req.method} {redact(req.url)}"
        detail = f"{code}: {message}" if code and message else code or message
        detail = self._scrub(detail)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if code in _AUTH_CODES or (not code and status in (401, 403)):
            what = {
                "InvalidAccessKeyId": "the access key id is unknown to the server",
                "SignatureDoesNotMatch": "the secret access key does not match the access key id",
                "ExpiredToken": "the session token has expired",
                "InvalidToken": "the session token is invalid",
                "AuthorizationHeaderMalformed": "the request was signed for the wrong region",
            }.get(code, "access denied")
            region = response.headers.get("x-amz-bucket-region")
            if region and region != self._cfg.region:
                what += f" (the bucket is in region {region!r}, config says {self._cfg.region!r})"
            return RemoteAuthError(
                f"{where}: S3 rejected the request: {what}"
                f" [{detail or status}]; check {self._cfg.access_key_id_env} and "
                f"{self._cfg.secret_access_key_env}",
                status=status,
                path=path,
            )
        if code == "NoSuchBucket" or (code == "" and status == 404 and path is None):
            return NoSuchBucketError(
                f"{where}: bucket {self._bucket!r} does not exist at {redact(self._bucket_url)}",
                status=status,
                path=path,
            )
        msg = f"{where}: HTTP {status}" + (f" ({detail})" if detail else "")
        if code in ("SlowDown", "TooManyRequests", "RequestLimitExceeded") or status == 429:
            return RemoteBusy(msg, status=status, retry_after=retry_after, path=path)
        if code in ("RequestTimeout", "InternalError", "ServiceUnavailable", "BadDigest"):
            # BadDigest: the bytes changed in transit; sending them again can succeed.
            return RemoteUnavailable(msg, status=status, retry_after=retry_after, path=path)
        if code in ("NoSuchKey", "NoSuchUpload"):
            return RemoteNotFound(msg, status=status, path=path)
        if code in ("PreconditionFailed",):
            return RemotePreconditionFailed(msg, status=status, path=path)
        if code == "EntityTooLarge":
            return RemoteTooLarge(msg, status=status, path=path)
        if code in ("QuotaExceeded", "XMinioStorageFull", "StorageFull"):
            return RemoteFull(msg, status=status, path=path)
        if code in ("InvalidDigest", "XAmzContentSHA256Mismatch", "NotImplemented") and (
            self._checksums
        ):
            return RemoteProtocolError(
                msg + "; if this server rejects checksum headers, set checksums = false",
                status=status,
                path=path,
            )
        err = status_error(response, path=path, detail=detail)
        return err

    # -- listing ---------------------------------------------------------------------------------

    async def _list_page(
        self,
        prefix: str,
        *,
        delimiter: bool,
        token: str | None,
        max_keys: int | None = None,
        path: str | None = None,
    ) -> _Listing:
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
        encoded = _text(root, "EncodingType").lower() == "url"

        def dec(s: str) -> str:
            return unquote_plus(s) if encoded else s

        files = []
        for c in _children(root, "Contents"):
            files.append(
                (
                    dec(_text(c, "Key")),
                    int(_text(c, "Size", "0") or 0),
                    normalize_etag(_text(c, "ETag")),
                    _parse_iso(_text(c, "LastModified")),
                )
            )
        prefixes = [dec(_text(p, "Prefix")) for p in _children(root, "CommonPrefixes")]
        truncated = _text(root, "IsTruncated").lower() == "true"
        next_token = _text(root, "NextContinuationToken") or None
        if truncated and not next_token:
            raise RemoteProtocolError(
                f"GET {redact(url)}: listing truncated without a continuation token", path=path
            )
        return _Listing(files, prefixes, next_token if truncated else None)

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
        if _local(root.tag) == "Error":
            # Some operations (CopyObject, CompleteMultipartUpload) report errors with a 200.
            raise self._error_for(
                500 if response.status_code == 200 else response.status_code,
                _text(root, "Code"),
                _text(root, "Message"),
                response=response,
                path=path,
            )
        names = (expect,) if isinstance(expect, str) else expect
        if _local(root.tag) not in names:
            raise RemoteProtocolError(
                f"{response.request.method} {redact(response.request.url)}: expected"
                f" <{names[0]}>, got <{_local(root.tag)}>",
                path=path,
            )
        return root

    # -- required operations -----------------------------------------------------------------

    async def stat(self, path: str) -> RemoteEntry | None:
        path = clean_path(path)
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

    async def list(self, path: str = "", *, recursive: bool = True) -> AsyncIterator[RemoteEntry]:
        path = clean_path(path)
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

    async def put(
        self,
        path: str,
        body: AsyncIterable[bytes],
        *,
        size: int,
        mtime_ns: int | None = None,
        if_match: str | None = None,
        upload_id: str | None = None,
    ) -> PutResult:
        path = clean_path(path)
        if not path:
            raise RemoteError("cannot put to the remote root", path=path)
        key = self._key(path)
        # A guessed Content-Type (as rclone sets it) so a bucket served to browsers just works.
        headers = {
            "Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream"
        }
        if mtime_ns is not None:
            headers["x-amz-meta-mtime"] = _mtime_header(mtime_ns)
        if if_match is not None:
            headers["If-Match"] = f'"{normalize_etag(if_match) or if_match}"'
        if size >= self._threshold and size > 0:
            return await self._put_multipart(path, key, body, size, headers)
        url = self._url(key)
        if size <= MEMORY_PUT_LIMIT:
            data = await self._read_all(body, size, url, path)
            sha, md5 = await self._hash(data, self._checksums)
            headers["x-amz-content-sha256"] = sha
            headers["Content-Length"] = str(size)
            if md5:
                headers["Content-MD5"] = md5
            response = await self._send(
                "PUT", url, path=path, content=_pieces(data), headers=headers
            )
        else:
            headers["x-amz-content-sha256"] = _UNSIGNED
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

    @staticmethod
    async def _hash(data: bytearray, md5: bool) -> tuple[str, str | None]:
        if len(data) < 256 * 1024:
            return _hashes(data, md5)
        return await asyncio.to_thread(_hashes, data, md5)

    def get(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._get(clean_path(path))

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        url = self._url(self._key(path))

        async def failure(response: httpx.Response) -> RemoteError:
            if response.status_code == 404 and not response.content:
                return RemoteNotFound(f"GET {redact(url)}: HTTP 404", status=404, path=path)
            return self._error(response, path)

        headers = {"x-amz-content-sha256": _EMPTY_SHA256}
        async with streamed_get(self._http(), url, path, failure, headers=headers) as chunks:
            yield chunks

    async def mkdir(self, path: str) -> None:
        # Directories are implied by keys; an empty one cannot exist, so there is nothing to do.
        self._check_open()

    async def delete(self, path: str) -> None:
        path = clean_path(path)
        if not path:
            # Never the whole bucket (or prefix): no sync decision should ever mean that.
            raise RemoteError("refusing to delete the remote root", path=path)
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
        objects = "".join(
            f"<Object><Key>{_xml_escape(k)}</Key></Object>" for k in keys
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Delete><Quiet>true</Quiet>{objects}</Delete>"
        ).encode()
        # DeleteObjects must carry Content-MD5 (AWS demands it), so with checksums off (a server
        # that rejects checksum headers) or without DeleteObjects (501) keys go one by one.
        response: httpx.Response | None = None
        if self._checksums:
            headers = {"Content-MD5": _b64md5(body), "Content-Type": "application/xml"}
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
        errors = _children(root, "Error")
        if errors:
            first = errors[0]
            raise self._error_for(
                500,
                _text(first, "Code"),
                f"{len(errors)} key(s) not deleted, e.g. {_text(first, 'Key')!r}: "
                + _text(first, "Message"),
                response=response,
                path=path,
            )

    # -- optional operations --------------------------------------------------------------------

    async def copy(self, src: str, dst: str) -> None:
        src, dst = clean_path(src), clean_path(dst)
        source = f"/{self._bucket}/{_encode(self._key(src), keep_slash=True)}"
        url = self._url(self._key(dst))
        response = await self._send(
            "PUT", url, path=src, headers={"x-amz-copy-source": source}
        )
        self._xml(response, "CopyObjectResult", src)

    async def discard_upload(self, path: str, upload_id: str) -> None:
        """Abort the multipart uploads left for ``path``; idempotent.

        S3 names multipart uploads itself and lists no metadata for them, so every in-progress
        upload of exactly this key is ours to abort: the engine calls this for a path it owns.
        """
        key = self._key(clean_path(path))
        with contextlib.suppress(RemoteNotFound):
            await self._abort_uploads(key, lambda k: k == key)
        # A staging object under the conventional name (S3 itself never writes one).
        await super().discard_upload(path, upload_id)

    async def cleanup_stale_uploads(self, prefix: str = "") -> int:
        """Abort every in-progress multipart upload under ``prefix``; how many were aborted.

        Called when the engine starts: uploads of a killed run hold their parts (and cost
        storage) until aborted. Not safe while another client uploads under the same prefix.
        """
        prefix = clean_path(prefix)
        key_prefix = self._key(prefix) if prefix else self._dir_prefix("")
        return await self._abort_uploads(key_prefix, lambda k: True)

    async def _abort_uploads(self, prefix: str, match: Callable[[str], bool]) -> int:
        # Each round lists from the start: SeaweedFS orders uploads by id and sends no
        # NextKeyMarker, so marker-based paging skips uploads there.
        attempted: set[str] = set()
        count = 0
        while True:
            uploads, truncated = await self._list_uploads(prefix)
            todo = [(k, u) for k, u in uploads if match(k) and u not in attempted]
            for k, u in todo:
                attempted.add(u)
                await self._abort(k, u, self._path(k))
                count += 1
            if not truncated or not todo:
                return count

    async def _list_uploads(self, prefix: str) -> tuple[builtins.list[tuple[str, str]], bool]:
        """One page of in-progress multipart uploads: (key, upload id) pairs, truncated?"""
        q: dict[str, str | None] = {
            "max-uploads": str(self._page_size),
            "prefix": prefix,
            "uploads": "",
        }
        url = self._bucket_query_url(q)
        response = await self._send("GET", url, path=prefix or None)
        root = self._xml(response, "ListMultipartUploadsResult", prefix)
        encoded = _text(root, "EncodingType").lower() == "url"
        uploads = [
            (unquote_plus(_text(u, "Key")) if encoded else _text(u, "Key"), _text(u, "UploadId"))
            for u in _children(root, "Upload")
        ]
        return uploads, _text(root, "IsTruncated").lower() == "true"

    # -- multipart -------------------------------------------------------------------------------

    async def _put_multipart(
        self,
        path: str,
        key: str,
        body: AsyncIterable[bytes],
        size: int,
        headers: dict[str, str],
    ) -> PutResult:
        part_size = max(self._part_size, -(-size // MAX_PARTS))
        create_headers = {k: v for k, v in headers.items() if k != "If-Match"}
        response = await self._send(
            "POST", self._url(key, {"uploads": ""}), path=path, content=b"", headers=create_headers
        )
        # rclone (gofakes3) names the root InitiateMultipartUpload, without "Result".
        root = self._xml(
            response, ("InitiateMultipartUploadResult", "InitiateMultipartUpload"), path
        )
        s3_upload_id = _text(root, "UploadId")
        if not s3_upload_id:
            raise RemoteProtocolError(f"CreateMultipartUpload for {path!r}: no UploadId", path=path)
        try:
            etags = await self._upload_parts(path, key, s3_upload_id, body, size, part_size)
            parts_xml = "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{_xml_escape(e)}&quot;</ETag></Part>"
                for n, e in sorted(etags.items())
            )
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<CompleteMultipartUpload>{parts_xml}</CompleteMultipartUpload>"
            ).encode()
            complete_headers = {"Content-Type": "application/xml"}
            if "If-Match" in headers:
                complete_headers["If-Match"] = headers["If-Match"]
            response = await self._send(
                "POST",
                self._url(key, {"uploadId": s3_upload_id}),
                path=path,
                content=xml,
                headers=complete_headers,
            )
            done = self._xml(response, "CompleteMultipartUploadResult", path)
            etag = normalize_etag(_text(done, "ETag") or response.headers.get("ETag"))
        except BaseException:
            # Parts cost storage until aborted; shield so a cancelled upload still cleans up.
            await asyncio.shield(self._abort_quietly(key, s3_upload_id, path))
            raise
        # The ETag Complete reports is not always the one HEAD and listings report later (rclone
        # recomputes a plain MD5), so ask once: the engine compares against listings.
        head = await self._send("HEAD", self._url(key), path=path, ok=(200, 404))
        return PutResult(etag=normalize_etag(head.headers.get("ETag")) or etag)

    async def _upload_parts(
        self,
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
        permits = asyncio.Semaphore(self._part_concurrency)
        url = self._url(key)

        async def upload(number: int, data: bytearray) -> None:
            try:
                sha, md5 = await self._hash(data, self._checksums)
                headers = {"x-amz-content-sha256": sha}
                if md5:
                    headers["Content-MD5"] = md5
                part_url = self._url(key, {"partNumber": str(number), "uploadId": s3_upload_id})
                headers["Content-Length"] = str(len(data))
                response = await self._send(
                    "PUT", part_url, path=path, content=_pieces(data), headers=headers
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
            raise _first_error(eg) from None
        return etags

    async def _abort(self, key: str, s3_upload_id: str, path: str) -> None:
        await self._send(
            "DELETE",
            self._url(key, {"uploadId": s3_upload_id}),
            path=path,
            ok=(200, 204, 404),
        )

    async def _abort_quietly(self, key: str, s3_upload_id: str, path: str) -> None:
        # Best effort: cleanup_stale_uploads catches what is left.
        with contextlib.suppress(Exception):
            await self._abort(key, s3_upload_id, path)


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _parse_iso(text: str) -> int | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000) * 1000
