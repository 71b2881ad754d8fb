"""WsgiDAV's Destination-header bug: whether a MOVE/COPY to a name with ``?``/``;`` lands there."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from syncapp.remotes._http import quietly
from syncapp.remotes.base import STAGING_PREFIX, clean_path, join, parent

if TYPE_CHECKING:
    from syncapp.remotes.webdav import WebDAVRemote

_log = logging.getLogger("syncapp.remotes.webdav")


async def destination_ok(r: WebDAVRemote, dst: str) -> bool:
    """Whether a MOVE/COPY to ``dst`` lands on exactly ``dst``.

    WsgiDAV (4.4) unquotes the Destination header *before* parsing it as a URL, so a ``?``
    in the path starts a query and a ``;`` starts parameters: a MOVE to ``what?`` would
    replace ``what``. Only names with those characters are at risk. ``learn`` finds out;
    a remote used without it probes once, in the destination's own folder.
    """
    if "?" not in dst and ";" not in dst:
        return True
    if r._dest_ok is None:
        async with r._probe_lock:
            if r._dest_ok is None:
                r._dest_ok = await probe_destination(r, parent(clean_path(dst)))
    return r._dest_ok


async def probe_destination(r: WebDAVRemote, where: str) -> bool:
    # Every name involved is a staging name, which the engine never syncs, so whatever a
    # broken server does with the probe harms nothing.
    stem = join(where, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}-probe")
    src, dst, mangled = f"{stem}-src", f"{stem}-p;q?r", f"{stem}-p"
    try:
        await r._request(
            "PUT", src, ok=(200, 201, 204), content=b"", headers={"Content-Length": "0"}
        )
        await r._send_move(src, dst)
        ok = await r.stat(dst) is not None
    finally:
        for name in (src, dst, mangled):
            await quietly(r._delete_file(name))
    if not ok:
        warn_mangled(r)
    return ok


def warn_mangled(r: WebDAVRemote) -> None:
    _log.warning(
        "%s mishandles '?' and ';' in the Destination header; names with them are "
        "uploaded in place and moved by download and upload",
        r.display_url,
    )
