"""Where the S3 and HTTP remotes send requests (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncapp.config import HTTPRemoteConfig, S3RemoteConfig
from syncapp.errors import RemoteAuthError, RemoteError
from syncapp.remotes.http import HTTPRemote, _fill, _MultipartBody
from syncapp.remotes.s3 import S3Remote

ENV = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}


def s3(**kw: object) -> S3Remote:
    cfg = S3RemoteConfig(name="t", type="s3", bucket=str(kw.pop("bucket", "my-bucket")), **kw)  # type: ignore[arg-type]
    return S3Remote(cfg, ENV)


def test_path_style_for_custom_endpoints() -> None:
    r = s3(endpoint="http://127.0.0.1:9000/", prefix="/backups/")
    assert r._url(r._key("a b/c#?%+ü.txt")) == (
        "http://127.0.0.1:9000/my-bucket/backups/a%20b/c%23%3F%25%2B%C3%BC.txt"
    )
    assert r.display_url == "http://127.0.0.1:9000/my-bucket/backups"


def test_endpoint_path_prefix_is_kept() -> None:
    r = s3(endpoint="https://proxy.example/s3")
    assert r._url("k") == "https://proxy.example/s3/my-bucket/k"


def test_virtual_hosted() -> None:
    r = s3(endpoint="https://minio.example:9000", virtual_hosted=True)
    assert r._url("k") == "https://my-bucket.minio.example:9000/k"


def test_aws_default_endpoint() -> None:
    assert s3(region="eu-west-1")._url("k") == "https://my-bucket.s3.eu-west-1.amazonaws.com/k"
    # dotted names break TLS wildcard certificates in virtual-hosted style
    dotted = s3(bucket="my.bucket", region="eu-west-1")
    assert dotted._url("k") == "https://s3.eu-west-1.amazonaws.com/my.bucket/k"


def test_query_is_canonically_encoded() -> None:
    r = s3(endpoint="http://h")
    url = r._bucket_query_url({"continuation-token": "a+b/c=", "prefix": "x y/"})
    assert url == "http://h/my-bucket?continuation-token=a%2Bb%2Fc%3D&prefix=x%20y%2F"


async def test_missing_credentials_named() -> None:
    cfg = S3RemoteConfig(name="t", type="s3", bucket="b", access_key_id_env="MY_KEY")
    with pytest.raises(RemoteAuthError, match="MY_KEY"):
        async with S3Remote(cfg, {}):
            pass


async def test_invalid_paths_refused() -> None:
    async with s3(endpoint="http://127.0.0.1:1") as r:
        for bad in ("..", "a/../b", "a/./b", "nul\0"):
            with pytest.raises(RemoteError):
                await r.stat(bad)


def test_http_template_encoding() -> None:
    assert _fill("https://api.example/up/{path}", "a b/c?#%.txt") == (
        "https://api.example/up/a%20b/c%3F%23%25.txt"
    )
    assert _fill("https://api.example/up?name={path}", "d/ü") == (
        "https://api.example/up?name=d/%C3%BC"
    )
    cfg = HTTPRemoteConfig(name="a", type="http", url="https://user:pw@api.example/{path}?t=1")
    assert HTTPRemote(cfg, {}).display_url == "https://api.example/"


async def test_multipart_framing_length() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"12345"
        yield b"678"

    form = _MultipartBody("file", 'naïve "quote".txt', body(), 8)
    data = b"".join([c async for c in form])
    assert len(data) == form.content_length
    assert b"\r\n\r\n12345678\r\n--" + form.boundary.encode() + b"--\r\n" in data
    assert b'filename="na\xc3\xafve %22quote%22.txt"' in data
    assert b"filename*=UTF-8''na%C3%AFve%20%22quote%22.txt" in data


def test_sigv4_known_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's documented GetObject example (sig-v4-header-based-auth), signed by our flow."""
    from datetime import UTC, datetime

    import httpx

    from syncapp.remotes.s3 import _SigV4

    auth = _SigV4(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "us-east-1",
        "s3",
        include_headers={"range"},
    )
    monkeypatch.setattr(auth, "clock", lambda: datetime(2013, 5, 24, tzinfo=UTC))
    request = httpx.Request(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        headers={
            "Range": "bytes=0-9",
            "x-amz-content-sha256": (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
        },
    )
    signed = next(auth.auth_flow(request))
    assert signed.headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
