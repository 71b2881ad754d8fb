"""A user's own upload API: one request per upload to a URL template.

``url`` (and the optional ``get_url``, ``delete_url``, ``list_url``) contain ``{path}``, which is
replaced by the remote path percent-encoded with ``/`` kept. Uploads send the file either as the
raw request body or as one multipart/form-data field; both are streamed with a Content-Length, so
a file is never held in memory (httpx's own multipart encoder reads files synchronously, so the
multipart framing is built here around the async body).

What a generic API offers beyond uploads is up to its owner: ``stat`` is HEAD and ``get`` is GET
on ``get_url`` (default: ``url``), and ``list`` yields nothing unless ``list_url`` answers a JSON
array of ``{"path", "size", "etag"?, "mtime_ns"?}`` objects. There are no directories.
"""

from __future__ import annotations

import builtins
import json
import mimetypes
import posixpath
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from syncapp.config import HTTPRemoteConfig
from syncapp.errors import RemoteAuthError, RemoteError, RemoteNotFound, RemoteProtocolError
from syncapp.remotes._http import (
    CountingBody,
    guarded,
    if_match_header,
    make_client,
    normalize_etag,
    parse_http_date,
    redact,
    status_error,
    streamed_get,
)
from syncapp.remotes.base import Capabilities, PutResult, Remote, RemoteEntry, clean_path

__all__ = ["HTTPRemote"]


def _fill(template: str, path: str) -> str:
    return template.replace("{path}", quote(path, safe="/"))


def _quote_header_value(text: str) -> str:
    """A quoted-string for Content-Disposition (the HTML form encoding: escape ``"``, CR, LF)."""
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class _MultipartBody:
    """One file field as multipart/form-data, streamed: framing + the file's own chunks."""

    def __init__(self, field: str, filename: str, body: AsyncIterable[bytes], size: int) -> None:
        self.boundary = secrets.token_hex(16)
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        disposition = f'form-data; name="{_quote_header_value(field)}"; ' + (
            f'filename="{_quote_header_value(filename)}"'
            if filename.isascii()
            # RFC 7578 allows raw UTF-8 in the quoted filename; filename* is for old parsers.
            else f"filename=\"{_quote_header_value(filename)}\"; filename*=UTF-8''"
            + quote(filename, safe="")
        )
        self._head = (
            f"--{self.boundary}\r\n"
            f"Content-Disposition: {disposition}\r\n"
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._body = CountingBody(body, size)
        self.content_length = len(self._head) + size + len(self._tail)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._head
        async for chunk in self._body:
            yield chunk
        yield self._tail


class HTTPRemote(Remote):
    kind = "http"

    def __init__(self, cfg: HTTPRemoteConfig, env: Mapping[str, str]) -> None:
        super().__init__()
        self._cfg = cfg
        self._token = env.get(cfg.token_env, "") if cfg.token_env else ""
        # Capabilities follow the config: only the API's owner knows whether uploads are atomic.
        self.capabilities = Capabilities(
            atomic_put=cfg.atomic,
            server_move=False,
            server_copy=False,
            server_mtime=False,
            conditional_put=False,
            directories=False,
        )
        self._client: httpx.AsyncClient | None = None

    @property
    def display_url(self) -> str:
        return redact(self._cfg.url.replace("{path}", ""))

    async def _open(self) -> None:
        if self._cfg.token_env and not self._token:
            raise RemoteAuthError(
                f"HTTP remote {self._cfg.name!r}: the environment variable "
                f"{self._cfg.token_env} (token_env) is not set"
            )
        headers = dict(self._cfg.headers)
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._client = make_client(
            connections=self._cfg.connections,
            timeout=self._cfg.timeout,
            verify_tls=self._cfg.verify_tls,
            headers=headers,
            url=self._cfg.url,
        )

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        self._check_open()
        assert self._client is not None
        return self._client

    def _error(self, response: httpx.Response, path: str | None) -> RemoteError:
        """``status_error`` plus the start of the API's own explanation, when it sent text."""
        detail = ""
        ctype = response.headers.get("Content-Type", "")
        if response.content and ("text" in ctype or "json" in ctype or "xml" in ctype):
            detail = " ".join(response.text.split())[:200]
            secret_values = [self._token, *self._cfg.headers.values()]
            for secret in secret_values:
                if secret and len(secret) >= 4:
                    detail = detail.replace(secret, "***")
        return status_error(response, path=path, detail=detail)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        path: str | None,
        ok_missing: bool = False,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request; 2xx returns the response, 404/410 None when ``ok_missing``."""
        client = self._http()
        async with guarded(method, url, path):
            response = await client.request(method, url, **kwargs)
        if response.is_success:
            return response
        if ok_missing and response.status_code in (404, 410):
            return None
        raise self._error(response, path)

    # -- required operations -----------------------------------------------------------------

    async def _stat(self, path: str) -> RemoteEntry | None:
        if not path:
            return RemoteEntry(path="", is_dir=True)
        url = _fill(self._cfg.get_url or self._cfg.url, path)
        response = await self._request("HEAD", url, path=path, ok_missing=True)
        if response is not None:
            return RemoteEntry(
                path=path,
                is_dir=False,
                size=int(response.headers.get("Content-Length", "0") or 0),
                mtime_ns=parse_http_date(response.headers.get("Last-Modified")),
                etag=normalize_etag(response.headers.get("ETag")),
            )
        if self._cfg.list_url and await self._files_below(path):
            return RemoteEntry(path=path, is_dir=True)
        return None

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        prefix = f"{path}/" if path else ""
        seen_dirs: set[str] = set()
        for entry in await self._files_below(path):
            parts = entry.path[len(prefix) :].split("/")
            # Directories are implied by file paths; each is reported once, before its files.
            for i in range(1, len(parts) if recursive else min(2, len(parts))):
                d = "/".join(parts[:i])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    yield RemoteEntry(path=prefix + d, is_dir=True)
            if recursive or len(parts) == 1:
                yield entry

    async def _files_below(self, path: str) -> builtins.list[RemoteEntry]:
        """The files ``list_url`` reports below ``path``, sorted; [] when there is no listing."""
        if not self._cfg.list_url:
            self._check_open()
            return []
        url = _fill(self._cfg.list_url, path)
        response = await self._request("GET", url, path=path or None, ok_missing=True)
        if response is None:
            return []
        try:
            items = json.loads(response.content)
            if not isinstance(items, builtins.list):
                raise ValueError("not a JSON array")
            files = [self._entry(item) for item in items]
        except (ValueError, TypeError, KeyError) as e:
            raise RemoteProtocolError(
                f"GET {redact(url)}: listing is not a JSON array of {{path, size}} objects ({e})",
                path=path or None,
            ) from None
        prefix = f"{path}/" if path else ""
        # The API may answer with more than was asked for; keep what is strictly below path.
        return sorted(
            (f for f in files if f.path.startswith(prefix) and f.path != path),
            key=lambda f: f.path,
        )

    @staticmethod
    def _entry(item: Any) -> RemoteEntry:
        if not isinstance(item, dict):
            raise ValueError(f"not an object: {item!r}")
        p = item["path"]
        if not isinstance(p, str) or not p.strip("/"):
            raise ValueError(f"bad path: {p!r}")
        p = clean_path(p)
        size = item.get("size", 0)
        mtime = item.get("mtime_ns")
        etag = item.get("etag")
        if not isinstance(size, int) or (mtime is not None and not isinstance(mtime, int)):
            raise ValueError(f"bad size or mtime_ns for {p!r}")
        return RemoteEntry(
            path=p,
            is_dir=False,
            size=size,
            mtime_ns=mtime,
            etag=normalize_etag(etag) if isinstance(etag, str) else None,
        )

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
        url = _fill(self._cfg.url, path)
        headers: dict[str, str] = {}
        content: AsyncIterable[bytes]
        if self._cfg.body == "multipart":
            form = _MultipartBody(self._cfg.field_name, posixpath.basename(path), body, size)
            content = form
            headers["Content-Type"] = form.content_type
            headers["Content-Length"] = str(form.content_length)
        else:
            content = CountingBody(body, size)
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Length"] = str(size)
        if if_match is not None:
            headers["If-Match"] = if_match_header(if_match)
        response = await self._request(
            self._cfg.method, url, path=path, content=content, headers=headers
        )
        assert response is not None
        return PutResult(etag=normalize_etag(response.headers.get("ETag")))

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        url = _fill(self._cfg.get_url or self._cfg.url, path)

        async def failure(response: httpx.Response) -> RemoteError:
            err = self._error(response, path)
            if response.status_code == 410:
                err = RemoteNotFound(err.message, status=410, path=path)
            return err

        async with streamed_get(self._http(), url, path, failure) as chunks:
            yield chunks

    async def _mkdir(self, path: str) -> None:
        # No directories: an upload API creates whatever a path needs.
        pass

    async def _delete(self, path: str) -> None:
        if self._cfg.list_url:
            # A "directory" is its files: delete each one the listing knows of.
            async for entry in self.list(path):
                if not entry.is_dir:
                    await self._delete_one(entry.path)
        await self._delete_one(path)

    async def _delete_one(self, path: str) -> None:
        url = _fill(self._cfg.delete_url or self._cfg.url, path)
        await self._request(self._cfg.delete_method.upper(), url, path=path, ok_missing=True)
