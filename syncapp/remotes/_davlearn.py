"""What a WebDAV server does, found out once (``WebDAVRemote.learn``) and said in words.

The probe works in a ``.syncapp-tmp-…-probe`` collection of its own inside the folder's
``remote_path`` (the only place syncapp may write) and removes it again; the engine keeps the
answer (``DAVFacts``) in its state database, so later runs ask nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syncapp.errors import RemoteError
from syncapp.remotes._davdest import warn_mangled
from syncapp.remotes._http import quietly
from syncapp.remotes.base import STAGING_PREFIX, RemoteEntry, join

if TYPE_CHECKING:
    from syncapp.remotes.webdav import WebDAVRemote

_log = logging.getLogger("syncapp.remotes.webdav")

#: Facts kept from an older probe are tried again after this long (servers get upgraded).
FACTS_MAX_AGE = 30 * 86400
_PROBE_MTIME = 1_000_000_000  # 2001-09-09: no server's clock says that by accident
_PROBE_BODY = b"syncapp checks what this server does; this file is removed at once\n"
_PROBE_HALF = b"\0" * (256 * 1024)
_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DAVFacts:
    """What a WebDAV server was seen to do; kept by the engine in its state database."""

    keeps_mtime: bool
    file_etags: bool
    #: A PUT's partial body shows under the real name (or it could not be told).
    partial_visible: bool
    #: MOVE/COPY to a name with '?' or ';' lands on that name.
    destination_ok: bool
    #: A listing shows names starting with a dot (nginx's dav-ext leaves them out).
    lists_dot_names: bool
    #: Two writes of one size within one second get different ETags (Apache's has the mtime
    #: in microseconds, Nextcloud's is new each write); rclone's and WsgiDAV's do not.
    distinct_stamps: bool
    #: The server's Server header, for humans.
    server: str
    where: str
    learned_at: float

    @classmethod
    def from_dict(cls, kept: Mapping[str, object]) -> DAVFacts | None:
        """The facts in ``kept``, or None when they are malformed, from another version of
        this class, or too old to trust."""
        try:
            facts = cls(**kept)  # type: ignore[arg-type]
        except TypeError:
            return None
        bools = (
            facts.keeps_mtime,
            facts.file_etags,
            facts.partial_visible,
            facts.destination_ok,
            facts.lists_dot_names,
            facts.distinct_stamps,
        )
        if (
            not all(isinstance(b, bool) for b in bools)
            or not isinstance(facts.learned_at, int | float)
            or not isinstance(facts.server, str)
            or not isinstance(facts.where, str)
        ):
            return None
        if time.time() - facts.learned_at > FACTS_MAX_AGE:
            return None
        return facts


async def probe(remote: WebDAVRemote, where: str) -> DAVFacts | None:
    """Try the server inside ``where`` with staging names (never synced), then clean up.

    Five questions: does it keep an X-OC-Mtime (header ``X-OC-MTime: accepted``, or the
    mtime read back); do two writes of one size within a second get different ETags; does a
    listing show names starting with a dot (nginx's dav-ext hides them); does a MOVE to a
    name with ``?`` and ``;`` land there; is a PUT body visible under its name before it is
    complete. Everything happens in a collection of
    its own, removed at the end. A server that refuses a probe (no write permission here)
    leaves everything at the safe defaults and is asked again next time; a server that is
    down raises, like any other request.
    """
    box = join(where, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}-probe")
    first, odd = join(box, ".a"), join(box, "p;q?r")
    mangled, partial = join(box, "p"), join(box, "b")
    try:
        await remote.mkdir(box)
        sent = time.monotonic()
        answer = await remote._request(
            "PUT",
            first,
            ok=(200, 201, 204),
            content=_PROBE_BODY,
            headers={"Content-Length": str(len(_PROBE_BODY)), "X-OC-Mtime": str(_PROBE_MTIME)},
        )
        rtt = time.monotonic() - sent
        entry = await remote.stat(first)
        accepted = answer.headers.get("X-OC-MTime", "").lower() == "accepted"
        keeps = accepted or (entry is not None and entry.mtime_ns == _PROBE_MTIME * _SECOND)
        distinct = await stamps_differ(remote, first, entry)
        dots = any([e.path == first async for e in remote._children(box)])
        await remote._send_move(first, odd)
        dest_ok = await remote.stat(odd) is not None
        visible = await partial_put_visible(remote, partial, rtt)
    except RemoteError as e:
        if e.retryable:
            raise
        _log.warning(
            "%s: could not try the server inside %r (%s); using safe defaults",
            remote.display_url,
            where,
            e,
        )
        return None
    finally:
        for name in (first, odd, mangled, partial):
            await quietly(remote._delete_file(name))
        await quietly(remote._delete_collection(box))
    if not dest_ok:
        warn_mangled(remote)
    return DAVFacts(
        keeps_mtime=keeps,
        file_etags=entry is not None and entry.etag is not None,
        partial_visible=visible,
        destination_ok=dest_ok,
        lists_dot_names=dots,
        distinct_stamps=distinct,
        server=answer.headers.get("Server", "")[:100],
        where=where,
        learned_at=time.time(),
    )


async def stamps_differ(remote: WebDAVRemote, path: str, before: RemoteEntry | None) -> bool:
    """Whether writing other bytes of the same size within the same second changes the stamp
    a listing shows for ``path`` (``before``). A server that stamps with its own clock may
    pass a second between the two writes, which tells nothing: tried again (three times)."""
    bodies = [_PROBE_BODY.swapcase(), _PROBE_BODY, _PROBE_BODY.swapcase()]
    for body in bodies:
        if before is None or before.etag is None or before.mtime_ns is None:
            return False  # size and a whole-second mtime: alike
        await remote._request(
            "PUT",
            path,
            ok=(200, 201, 204),
            content=body,
            headers={"Content-Length": str(len(body)), "X-OC-Mtime": str(_PROBE_MTIME)},
        )
        after = await remote.stat(path)
        if after is None or after.mtime_ns is None:
            return False
        if after.mtime_ns // _SECOND == before.mtime_ns // _SECOND:
            return after.etag != before.etag
        before = after
    return False


async def partial_put_visible(remote: WebDAVRemote, path: str, rtt: float) -> bool:
    """Whether half a PUT body shows under its name; True also when it could not be told.

    The body's first half is sent, then the name is looked for while the second half
    waits. A server that writes in place (rclone serve, WsgiDAV) shows the name at once;
    one that stages the body (nginx's client_body_temp, Apache's temporary file) does not.
    """
    release = asyncio.Event()
    half_sent = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield _PROBE_HALF
        half_sent.set()
        with suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 10.0)
        yield _PROBE_HALF

    size = str(2 * len(_PROBE_HALF))
    put = asyncio.create_task(
        remote._request(
            "PUT",
            path,
            ok=(200, 201, 204),
            content=body(),
            headers={"Content-Length": size, "Content-Type": "application/octet-stream"},
        )
    )
    seen: bool | None = None
    try:
        await asyncio.wait(
            {put, asyncio.ensure_future(half_sent.wait())},
            timeout=10.0,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if half_sent.is_set() and not put.done():
            loop = asyncio.get_running_loop()
            started = loop.time()
            # A look at a name that is not there answers at once; rclone holds a look at
            # a file being written for 5 s, then answers 500: something is there.
            patience = 0.3 + 10 * rtt
            try:
                seen = await asyncio.wait_for(remote.stat(path), patience) is not None
                # Give a slower server time to write what it received: a few round trips.
                until = loop.time() + max(0.3, 4 * (loop.time() - started))
                while not seen and loop.time() < until:
                    await asyncio.sleep(0.05)
                    seen = await asyncio.wait_for(remote.stat(path), patience) is not None
            except (RemoteError, TimeoutError):
                seen = None
            if put.done():
                seen = None  # the answer came after the upload ended: it tells nothing
    finally:
        release.set()
        await put
    return seen is not False


def describe(remote: WebDAVRemote) -> list[str]:
    f = remote.facts
    if f is None:
        lines = ["not tried yet: safe defaults until the first sync"]
    else:
        day = time.strftime("%Y-%m-%d", time.localtime(f.learned_at))
        lines = [f"server: {f.server or 'unnamed'} (tried {day})"]

    def how(key: str, explicit: bool) -> str:
        return f"set by {key} in the config" if explicit else "seen" if f else "assumed"

    mtime = how("send_mtime", isinstance(remote._cfg.send_mtime, bool))
    if remote.capabilities.server_mtime:
        lines.append(f"keeps the modification time sent (X-OC-Mtime): yes, {mtime}")
    else:
        lines.append(
            f"keeps the modification time sent (X-OC-Mtime): no, {mtime}; a remote edit "
            "is told by size and the server's own time of each upload"
        )
    if f is not None:
        lines.append("gives ETags for files: " + ("yes" if f.file_etags else "no"))
        lines.append(
            "tells two writes of one size within a second apart: "
            + ("yes" if f.distinct_stamps else "no; two-way sync reads its uploads back once")
        )
    staged = how("atomic_upload", remote._cfg.atomic_upload != "auto")
    if remote._direct_put:
        lines.append(f"hides an upload until it is complete: yes, {staged}; one PUT a file")
    else:
        lines.append(
            f"hides an upload until it is complete: no, {staged}; each file goes to a "
            "temporary name, then MOVE (two requests a file)"
        )
    if remote._dest_ok is not None:
        word = "intact" if remote._dest_ok else "mangled; such names are uploaded in place"
        lines.append(f"'?' and ';' in MOVE destinations: {word}")
    if f is not None and not f.lists_dot_names:
        lines.append(
            "listings leave out names starting with a dot: such files sync, but a first "
            "run uploads them again and restores ask for them by name"
        )
    if f is not None and "apache" in f.server.lower():
        # mod_dav_fs removes the target before renaming onto it (~15 ms on 50 MiB).
        lines.append(
            "MOVE onto an existing name deletes it first: a renamed-over file is briefly "
            "missing (uploads here need no MOVE)"
        )
    return lines
