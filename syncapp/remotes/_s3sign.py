"""SigV4 signing that never makes httpx buffer a body, with the hashes and URI encoding it needs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Generator, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from httpx_auth import AWS4Auth
from httpx_auth._aws import (
    _signing_key,
    _string_to_sign,
    canonical_and_signed_headers,
)

UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class SigV4(AWS4Auth):
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


def encode(text: str, *, keep_slash: bool = False) -> str:
    """SigV4's UriEncode: everything but ``A-Za-z0-9-._~`` (and ``/`` in keys) as %XX.

    Sending exactly the canonical form means servers that sign the raw path and servers that
    re-encode the decoded path compute the same signature.
    """
    return quote(text, safe="/" if keep_slash else "")


def query_string(params: Mapping[str, str | None]) -> str:
    parts = []
    for k, v in params.items():
        parts.append(encode(k) if v is None else f"{encode(k)}={encode(v)}")
    return "?" + "&".join(parts) if parts else ""


def b64md5(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def hashes(data: bytearray, md5: bool) -> tuple[str, str | None]:
    """SHA-256 (hex) and, if asked, Content-MD5 (base64); hashlib drops the GIL in threads."""
    return hashlib.sha256(data).hexdigest(), (b64md5(data) if md5 else None)


async def hash_body(data: bytearray, md5: bool) -> tuple[str, str | None]:
    if len(data) < 256 * 1024:
        return hashes(data, md5)
    return await asyncio.to_thread(hashes, data, md5)
