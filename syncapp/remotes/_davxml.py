"""WebDAV's XML: the PROPFIND request body, multistatus answers parsed into ``RemoteEntry``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import httpx

from syncapp.errors import RemoteProtocolError
from syncapp.remotes._http import is_weak_etag, normalize_etag, parse_http_date, redact
from syncapp.remotes.base import RemoteEntry

DAV = "{DAV:}"

# Only what we use: asking for allprop makes some servers compute quota and lock data per entry.
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
    b"</d:prop></d:propfind>"
)
PROPFIND_HEADERS = {"Content-Type": 'application/xml; charset="utf-8"'}


def status_code(text: str | None) -> int | None:
    """``HTTP/1.1 200 OK`` → 200."""
    if not text:
        return None
    parts = text.split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


class Multistatus:
    """One PROPFIND answer, parsed while it streams in (``feed`` each chunk, then ``None``).

    ``rel_path`` turns an href into a remote path (None when it is outside the remote's root).
    ``weak_etags`` turns True once the server gave a weak ETag (Apache, for a file just written).
    """

    def __init__(
        self, rel_path: Callable[[str], str | None], base_path: str, url: str, path: str
    ) -> None:
        self._rel_path = rel_path
        self._base_path = base_path
        self._url = url
        self._path = path
        self._parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
        self.weak_etags = False

    def feed(self, chunk: bytes | None) -> Iterator[RemoteEntry]:
        """The entries completed by ``chunk`` (``None``: the end of the answer)."""
        try:
            if chunk is None:
                self._parser.close()
            else:
                self._parser.feed(chunk)
            events = list(self._parser.read_events())
        except ET.ParseError as e:
            raise RemoteProtocolError(
                f"PROPFIND {redact(self._url)}: malformed multistatus XML ({e})", path=self._path
            ) from None
        for item in events:
            el = item[-1] if isinstance(item, tuple) else None
            if isinstance(el, ET.Element) and el.tag == f"{DAV}response":
                entry = self._entry_from(el)
                el.clear()  # keep memory flat on big listings
                if entry is not None:
                    yield entry

    def _entry_from(self, el: ET.Element) -> RemoteEntry | None:
        href = el.findtext(f"{DAV}href")
        if href is None:
            raise RemoteProtocolError("PROPFIND response without href")
        rel = self._rel_path(href)
        if rel is None:
            # Silently skipping it would make the remote look empty; most likely a reverse proxy
            # maps the URL path onto a different one on the server.
            raise RemoteProtocolError(
                f"PROPFIND answered with {href!r}, which is not below {self._base_path!r} "
                "(is a proxy rewriting paths?)"
            )
        code = status_code(el.findtext(f"{DAV}status"))
        if code is not None and code != 200:
            return None
        is_dir: bool | None = None
        size = 0
        mtime_ns: int | None = None
        etag: str | None = None
        for propstat in el.findall(f"{DAV}propstat"):
            if status_code(propstat.findtext(f"{DAV}status")) not in (200, None):
                continue  # 404 for properties the resource does not have
            prop = propstat.find(f"{DAV}prop")
            if prop is None:
                continue
            rtype = prop.find(f"{DAV}resourcetype")
            if rtype is not None:
                is_dir = rtype.find(f"{DAV}collection") is not None
            length = prop.findtext(f"{DAV}getcontentlength")
            if length and length.strip().isdigit():
                size = int(length.strip())
            mtime_ns = parse_http_date(prop.findtext(f"{DAV}getlastmodified")) or mtime_ns
            raw_etag = prop.findtext(f"{DAV}getetag")
            if is_weak_etag(raw_etag):
                self.weak_etags = True  # If-Match compares strongly: a weak one never matches
            etag = normalize_etag(raw_etag) or etag
        if is_dir is None:
            is_dir = href.rstrip().endswith("/")
        # A collection's ETag is kept: where it changes with everything below it (Nextcloud,
        # ownCloud, SabreDAV) a poll can skip unchanged subtrees (engine/remotepoll.py).
        return RemoteEntry(
            path=rel, is_dir=is_dir, size=0 if is_dir else size, mtime_ns=mtime_ns, etag=etag
        )


def dav_error(resp: httpx.Response) -> str:
    """The DAV:error precondition name in an error body, if any (e.g. propfind-finite-depth)."""
    try:
        root = ET.fromstring(resp.content)
    except ET.ParseError:
        return ""
    if root.tag != f"{DAV}error" or not len(root):
        return ""
    return root[0].tag.removeprefix(DAV)
