"""S3's XML: element lookups, listing pages, and ``<Error>`` answers mapped onto our errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

import httpx

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
)
from syncapp.remotes._http import parse_retry_after, redact, status_error

if TYPE_CHECKING:
    from syncapp.remotes.s3 import S3Remote

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


class NoSuchBucketError(RemoteNotFound):
    """The configured bucket does not exist: retrying cannot help, the folder must stop."""

    fatal_for_folder = True


def local(tag: str) -> str:
    """An element's name without its XML namespace (servers differ in sending one)."""
    return tag.rsplit("}", 1)[-1]


def child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]


def text(el: ET.Element, name: str, default: str = "") -> str:
    c = child(el, name)
    return default if c is None or c.text is None else c.text


@dataclass(frozen=True, slots=True)
class Listing:
    files: list[tuple[str, int, str | None, int | None]]  # key, size, etag, last-modified ns
    prefixes: list[str]
    token: str | None


def error_for(
    r: S3Remote,
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
    detail = r._scrub(detail)
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
        if region and region != r._cfg.region:
            what += f" (the bucket is in region {region!r}, config says {r._cfg.region!r})"
        return RemoteAuthError(
            f"{where}: S3 rejected the request: {what}"
            f" [{detail or status}]; check {r._cfg.access_key_id_env} and "
            f"{r._cfg.secret_access_key_env}",
            status=status,
            path=path,
        )
    if code == "NoSuchBucket" or (code == "" and status == 404 and path is None):
        return NoSuchBucketError(
            f"{where}: bucket {r._bucket!r} does not exist at {redact(r._bucket_url)}",
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
    if code in ("InvalidDigest", "XAmzContentSHA256Mismatch", "NotImplemented") and (r._checksums):
        return RemoteProtocolError(
            msg + "; if this server rejects checksum headers, set checksums = false",
            status=status,
            path=path,
        )
    err = status_error(response, path=path, detail=detail)
    return err


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def parse_iso(text: str) -> int | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000) * 1000
