"""``webdav``: Nextcloud, ownCloud, Apache ``mod_dav``, nginx, rclone serve webdav, WsgiDAV.

One ``httpx.AsyncClient`` per endpoint, Basic auth, every path segment percent-encoded on the way
out and decoded from PROPFIND hrefs on the way back.

Uploads (``atomic_upload = "rename"``, the default): PUT the body to a staging name in the target
collection, then MOVE it onto the final name with ``Overwrite: T``; a failed upload or MOVE deletes
the staging file. With ``atomic_upload = "server"`` (servers that stage PUTs themselves) the body
goes straight to the final name.

Conditional uploads (``if_match``): ``If-Match`` on a MOVE applies to the *source* (the staging
file), and rclone ignores ``If-Match`` on PUT altogether, so the final name's ETag is checked with a
PROPFIND right before the MOVE (rename mode) or the PUT (server mode, which also sends
``If-Match`` for servers that honour it). A writer that slips in between those two requests is not
detected; the window is one round trip.

WsgiDAV and rclone both answer a PUT with an ETag computed *before* they apply ``X-OC-Mtime``,
and the MOVE answers none: ``put`` then reports no ETag (only the mtime sent, or the server's
``Date``) rather than a wrong one, without a request more; a conditional upload reads it back
with a PROPFIND. A two-way folder records what its next listing shows for the file
(engine/remoteside.py ``_confirm_uploads``).

Server quirks handled here (measured on WsgiDAV 4.4 and rclone 1.75):

- ``X-OC-Mtime`` must be whole seconds: WsgiDAV answers 400 to a fraction, rclone silently ignores
  it. ``getlastmodified`` has one-second resolution everywhere.
- rclone: MKCOL on an existing collection answers 201 (WsgiDAV 405); MOVE answers 403 (not 404/409)
  when the source or the destination's parent is missing; and a MOVE of a *missing* source with
  ``Overwrite: T`` deletes the destination first. ``move`` therefore checks that the source exists
  before it sends MOVE.
- WsgiDAV returns ETags unquoted in PROPFIND and quoted in headers; rclone quotes both.
- WsgiDAV decodes the Destination header before parsing it, so a MOVE/COPY to a name with ``?``
  or ``;`` lands on a truncated name (``what?`` replaces ``what``). A one-time probe with staging
  names detects this; such names are then uploaded in place and moved/copied by GET + PUT.
  (syncapp's own davserver patches the bug.)
- rclone keeps the partial file of a PUT the client cut off, and may create it only after our
  cleanup DELETE has run; a failed upload therefore deletes its staging file twice, 0.3 s apart.
- ``Depth: infinity`` works on both; Nextcloud and Apache refuse it, and ``list`` then walks the
  tree with concurrent ``Depth: 1`` requests.
"""

from __future__ import annotations

import asyncio
import builtins
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, replace
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx

from syncapp.config import WebDAVRemoteConfig
from syncapp.errors import (
    RemoteAuthError,
    RemoteConflict,
    RemoteError,
    RemoteNotFound,
    RemoteUnavailable,
)
from syncapp.remotes import _davdest, _davlearn, _davput
from syncapp.remotes._davlearn import DAVFacts
from syncapp.remotes._davxml import PROPFIND_BODY, PROPFIND_HEADERS, Multistatus, dav_error
from syncapp.remotes._http import (
    guarded,
    make_client,
    redact,
    status_error,
    streamed_get,
)
from syncapp.remotes.base import (
    Capabilities,
    PutResult,
    Remote,
    RemoteEntry,
    clean_path,
    parent,
    staging_name,
)

CHUNK = 256 * 1024


def _segments(path: str) -> list[str]:
    """The segments of a remote path; ``RemoteError`` for ``.``/``..`` (a server would resolve
    them and leave the root)."""
    clean = clean_path(path)
    return clean.split("/") if clean else []


class WebDAVRemote(Remote):
    """A WebDAV collection (``cfg.url``) and everything below it."""

    kind = "webdav"

    def __init__(self, cfg: WebDAVRemoteConfig, env: Mapping[str, str]) -> None:
        super().__init__()
        self._cfg = cfg
        base = cfg.url if cfg.url.endswith("/") else cfg.url + "/"
        self._base_url = base
        # Hrefs come back percent-encoded in whatever style the server likes; compare decoded.
        self._base_path = unquote(urlsplit(base).path)
        password = cfg.password
        if cfg.password_env:
            password = env.get(cfg.password_env, password)
        self._auth: httpx.Auth | None = (
            httpx.BasicAuth(cfg.username, password) if cfg.username else None
        )
        self._client: httpx.AsyncClient | None = None
        # None: not tried yet; the answer is remembered for this remote's lifetime.
        self._infinity_ok: bool | None = None
        # Whether MOVE/COPY destinations with '?' or ';' arrive intact (see _destination_ok).
        self._dest_ok: bool | None = None
        self._probe_lock = asyncio.Lock()
        #: The server gave a weak ETag (Apache, for a file just written): no If-Match header.
        self._weak_etags = False
        #: What the server was seen to do (``learn``); None until then.
        self.facts: DAVFacts | None = None
        self.capabilities = Capabilities(
            atomic_put=True,
            server_move=True,
            server_copy=True,
            server_mtime=False,
            conditional_put=True,
            directories=True,
        )
        self._apply(None)

    @property
    def display_url(self) -> str:
        return redact(self._cfg.url)

    async def _open(self) -> None:
        self._client = make_client(
            connections=self._cfg.connections,
            timeout=self._cfg.timeout,
            verify_tls=self._cfg.verify_tls,
            auth=self._auth,
            headers={"User-Agent": "syncapp"},
            url=self._cfg.url,
        )

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def _http(self) -> httpx.AsyncClient:
        self._check_open()
        assert self._client is not None
        return self._client

    def _url(self, path: str, *, collection: bool = False) -> str:
        segs = _segments(path)
        url = self._base_url + "/".join(quote(s, safe="") for s in segs)
        if collection and segs:
            url += "/"
        return url

    def _rel_path(self, href: str) -> str | None:
        """A PROPFIND href (absolute path or full URL) as a remote path; None when outside."""
        href = href.strip()
        if href.startswith("/"):
            raw = href  # the usual form; not urljoin, which would split ";params" off
        elif "://" in href:
            raw = urlsplit(href).path
        else:
            raw = urlsplit(urljoin(self._base_url, href)).path
        p = unquote(raw)
        base = self._base_path
        if not (p + "/").startswith(base):
            # A server on macOS may hand names back decomposed (NFD): compare composed.
            p = unicodedata.normalize("NFC", p)
            base = unicodedata.normalize("NFC", base)
            if not (p + "/").startswith(base):
                return None
        return p[len(base) :].strip("/")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        url: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
    ) -> httpx.Response:
        """Send one request and read its (small) body; a status outside ``ok`` raises.

        A 301/308 to the same URL plus ``/`` (a collection addressed without its slash) is
        followed once; every other redirect is an error, never followed.
        """
        client = self._http
        target = url or self._url(path)
        async with guarded(method, target, path):
            resp = await client.request(method, target, headers=headers, content=content)
        slashed = _slash_redirect(resp, target)
        if slashed is not None and (content is None or isinstance(content, bytes)):
            if headers and "Destination" in headers and not headers["Destination"].endswith("/"):
                headers = {**headers, "Destination": headers["Destination"] + "/"}
            async with guarded(method, slashed, path):
                resp = await client.request(method, slashed, headers=headers, content=content)
        if resp.status_code not in ok:
            raise status_error(resp, path=path)
        return resp

    # -- PROPFIND ------------------------------------------------------------------------------

    async def _propfind(
        self, path: str, depth: str, *, collection: bool = False
    ) -> AsyncIterator[RemoteEntry]:
        """Entries of one PROPFIND, parsed while the response streams in. 404 → nothing.

        ``collection``: ``path`` is known to be a folder, so it is addressed as one (``/``).
        """
        client = self._http
        url = self._url(path, collection=collection)
        headers = {"Depth": depth, **PROPFIND_HEADERS}
        async with guarded("PROPFIND", url, path):
            req = client.build_request("PROPFIND", url, headers=headers, content=PROPFIND_BODY)
            resp = await client.send(req, stream=True)
            slashed = _slash_redirect(resp, url)
            if slashed is not None:
                await resp.aclose()
                url = slashed
                req = client.build_request("PROPFIND", url, headers=headers, content=PROPFIND_BODY)
                resp = await client.send(req, stream=True)
        try:
            if resp.status_code == 404:
                return
            if resp.status_code != 207:
                async with guarded("PROPFIND", url, path):
                    await resp.aread()
                raise status_error(resp, path=path, detail=dav_error(resp))
            answer = Multistatus(self._rel_path, self._base_path, url, path)
            async with guarded("PROPFIND", url, path):
                async for chunk in resp.aiter_bytes():
                    for entry in answer.feed(chunk):
                        self._weak_etags |= answer.weak_etags
                        yield entry
            for entry in answer.feed(None):
                self._weak_etags |= answer.weak_etags
                yield entry
        finally:
            await resp.aclose()

    async def _stat(self, path: str) -> RemoteEntry | None:
        found: RemoteEntry | None = None
        # Read the whole (one-entry) answer: leaving the generator early would hold the
        # connection until the generator is garbage-collected.
        async for entry in self._propfind(path, "0"):
            if entry.path == path:
                found = entry
        return found

    async def _list(self, path: str, *, recursive: bool) -> AsyncGenerator[RemoteEntry, None]:
        try:
            async for entry in self._list_tree(path, recursive):
                yield entry
        except RemoteError as e:
            # A file addressed as a collection ("f/"): Apache answers 400. Below a file there
            # is nothing; anything else is a real error.
            if e.status != 400 or not path:
                raise
            found = await self.stat(path)
            if found is not None and found.is_dir:
                raise

    async def _list_tree(self, want: str, recursive: bool) -> AsyncIterator[RemoteEntry]:
        if not recursive:
            async for entry in self._children(want):
                yield entry
            return
        if self._infinity_ok is not False:
            try:
                async for entry in self._propfind(want, "infinity", collection=True):
                    self._infinity_ok = True
                    if entry.path != want:
                        yield entry
                return
            except RemoteError as e:
                # Nextcloud/ownCloud and Apache refuse infinite depth (403 with a
                # propfind-finite-depth precondition, or 400/501); walk instead, once decided.
                if self._infinity_ok or e.status not in (400, 403, 405, 412, 501, 507):
                    raise
                self._infinity_ok = False
        async for entry in self._walk(want):
            yield entry

    async def _children(self, path: str) -> AsyncIterator[RemoteEntry]:
        async for entry in self._propfind(path, "1", collection=True):
            if entry.path != path:
                yield entry

    async def _walk(self, path: str) -> AsyncIterator[RemoteEntry]:
        """Depth-1 PROPFINDs over the tree, a few collections at a time."""
        limit = max(1, min(self._cfg.connections, 8))
        queue: list[str] = [path]
        running: set[asyncio.Task[list[RemoteEntry]]] = set()

        async def one(p: str) -> list[RemoteEntry]:
            return [e async for e in self._children(p)]

        try:
            while queue or running:
                while queue and len(running) < limit:
                    running.add(asyncio.create_task(one(queue.pop())))
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    for entry in task.result():
                        if entry.is_dir:
                            queue.append(entry.path)
                        yield entry
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    # -- upload --------------------------------------------------------------------------------

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
        return await _davput.put(
            self, path, body, size=size, mtime_ns=mtime_ns, if_match=if_match, upload_id=upload_id
        )

    # -- download ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _get(self, path: str) -> AsyncIterator[AsyncIterator[bytes]]:
        url = self._url(path)

        async def failure(resp: httpx.Response) -> RemoteError:
            if resp.status_code in (301, 302, 405):
                # WsgiDAV redirects to "name/", rclone answers 405: a collection is there.
                entry = await self.stat(path)
                if entry is not None and entry.is_dir:
                    return RemoteConflict(f"GET {redact(url)}: is a directory", path=path)
            return status_error(resp, path=path)

        async with streamed_get(self._http, url, path, failure, chunk_size=CHUNK) as chunks:
            yield chunks

    # -- namespace -----------------------------------------------------------------------------

    async def _mkdir(self, path: str) -> None:
        url = self._url(path, collection=True)
        try:
            await self._request("MKCOL", path, url=url, ok=(200, 201))
        except RemoteError as e:
            if e.status in (400, 405):
                # "Only on an unmapped URL" (405); Apache says 400 for a file named "x/".
                entry = await self.stat(path)
                if entry is not None and entry.is_dir:
                    return
                raise RemoteConflict(
                    f"MKCOL {redact(url)}: a file is in the way", status=e.status, path=path
                ) from None
            if e.status == 404:
                raise RemoteConflict(e.message, status=404, path=path) from None
            if e.status is not None and (e.status == 403 or e.status >= 500):
                # A concurrent MKCOL made the folder first: WsgiDAV answers 500, Apache 403.
                entry = await self.stat(path)
                if entry is not None and entry.is_dir:
                    return
            raise

    async def _delete(self, path: str) -> None:
        try:
            await self._request("DELETE", path, ok=(200, 202, 204, 404))
        except RemoteError as e:
            # nginx refuses a collection without its slash (409, or 400); the path alone does
            # not say whether it is one, so ask, and address it as one.
            if e.status not in (400, 405, 409):
                raise
            entry = await self.stat(path)
            if entry is None or not entry.is_dir:
                raise
            await self._delete_collection(path)

    async def _delete_collection(self, path: str) -> None:
        await self._request(
            "DELETE", path, url=self._url(path, collection=True), ok=(200, 202, 204, 404)
        )

    async def _delete_file(self, path: str) -> None:
        await self._request("DELETE", path, ok=(200, 202, 204, 404))

    async def _discard_upload(self, path: str, upload_id: str) -> None:
        with suppress(RemoteNotFound):
            await self._delete_file(staging_name(path, upload_id))

    async def _send_move(
        self, src: str, dst: str, method: str = "MOVE", *, collection: bool = False
    ) -> httpx.Response:
        """One MOVE (or COPY) request with ``Overwrite: T``; rclone's 403s told apart."""
        headers = {"Destination": self._url(dst, collection=collection), "Overwrite": "T"}
        try:
            return await self._request(
                method,
                src,
                ok=(200, 201, 204),
                headers=headers,
                url=self._url(src, collection=collection),
            )
        except RemoteAuthError as e:
            # rclone answers 403 when the source or the destination's parent is missing.
            if e.status == 403:
                if await self.stat(src) is None:
                    raise RemoteNotFound(
                        f"{e.message} (source missing)", status=403, path=src
                    ) from None
                if dst and await self.stat(parent(dst)) is None:
                    raise RemoteConflict(
                        f"{e.message} (destination parent missing)", status=403, path=dst
                    ) from None
            raise

    async def _move(self, src: str, dst: str) -> None:
        await self._move_or_copy("MOVE", src, dst)

    async def _copy(self, src: str, dst: str) -> None:
        await self._move_or_copy("COPY", src, dst)

    async def _move_or_copy(self, method: str, s: str, d: str) -> None:
        # rclone's MOVE/COPY of a missing source with Overwrite: T deletes the destination before
        # noticing; make sure there is a source first.
        entry = await self.stat(s)
        if entry is None:
            raise RemoteNotFound(f"{method} {self.display_url}{s}: not found", status=404, path=s)
        if s == d:
            return
        if not await _davdest.destination_ok(self, d):
            await _davput.move_or_copy_by_hand(self, method, entry, d)
            return
        try:
            await self._send_move(s, d, method, collection=entry.is_dir)
        except RemoteNotFound as e:
            if e.path == s:
                raise
            # The source exists (checked above): a 404 here means the destination's parent.
            raise RemoteConflict(e.message, status=e.status, path=d) from None
        except RemoteUnavailable as e:
            # Apache answers 500 to a MOVE into a missing collection.
            if e.status != 500 or not parent(d) or await self.stat(parent(d)) is not None:
                raise
            raise RemoteConflict(
                f"{e.message} (destination parent missing)", status=e.status, path=d
            ) from None

    # -- what the server does --------------------------------------------------------------------

    def _apply(self, facts: DAVFacts | None) -> None:
        """Settle the upload mode and the flags from what was learned; explicit settings win."""
        self.facts = facts
        send = self._cfg.send_mtime
        keeps = send if isinstance(send, bool) else bool(facts and facts.keeps_mtime)
        # "auto" sends X-OC-Mtime until the server was seen to ignore it (harmless meanwhile).
        self._send_mtime = send is True or (send == "auto" and (facts is None or keeps))
        mode = self._cfg.atomic_upload
        if mode == "auto":
            # Unknown means "rename": only a server seen to hide partial bodies gets one PUT.
            mode = "server" if facts is not None and not facts.partial_visible else "rename"
        self._direct_put = mode == "server"
        if facts is not None:
            self._dest_ok = facts.destination_ok
        self.capabilities = replace(
            self.capabilities,
            server_mtime=keeps,
            # If-Match needs ETags (nginx gives none); unknown until seen.
            conditional_put=facts.file_etags if facts is not None else True,
            distinct_stamps=facts is not None and facts.distinct_stamps,
        )

    async def learn(
        self, where: str, *, kept: Mapping[str, object] | None = None, probe: bool = True
    ) -> Mapping[str, object]:
        async with self._probe_lock:
            if self.facts is None:
                facts = DAVFacts.from_dict(kept) if kept else None
                if facts is None and probe:
                    facts = await _davlearn.probe(self, clean_path(where))
                if facts is not None:
                    self._apply(facts)
            return asdict(self.facts) if self.facts is not None else {}

    def describe(self) -> builtins.list[str]:
        return _davlearn.describe(self)


def _slash_redirect(resp: httpx.Response, url: str) -> str | None:
    """The URL to follow when ``resp`` redirects ``url`` to itself plus ``/``; None otherwise."""
    if resp.status_code not in (301, 308):
        return None
    location = resp.headers.get("Location")
    if not location:
        return None
    target = urljoin(url, location)
    return target if unquote(target) == unquote(url) + "/" else None
