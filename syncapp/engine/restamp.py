"""Make an overwrite visible to the other machines that poll the remote.

Other engines tell a remote edit by the stamp the server reports: its ETag, or its size and
modification time. Many servers derive both from (whole-second mtime, size): rclone serve
webdav's ETag is the mtime and the size in hex, nginx gives no ETag and its own clock. Two
edits of the same size within one second then look the same, and a machine that wrote the first
never fetches the second (seen in two-way sync: both sides edited ``a.txt``, one kept the other's
content for good). So after an overwrite the writer compares the stamp it got with the one it
replaced, and when another machine could not tell them apart it writes once more with a stamp
that differs: an mtime one second past the old one (servers that keep the mtime we send), after
the server's clock has moved past the old one (servers that use their own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from syncapp.engine.adopt import MTIME_SLACK_NS
from syncapp.remotes.base import PutResult, RemoteEntry

SECOND_NS = 1_000_000_000

log = logging.getLogger(__name__)


def looks_unchanged(prior: RemoteEntry, size: int, result: PutResult, *, keeps_mtime: bool) -> bool:
    """Whether a machine that recorded ``prior`` would take the new file for the same one
    (the rule of ``adopt.remote_changed``, seen from the writer's side)."""
    if prior.is_dir or prior.size != size:
        return False
    if prior.etag and result.etag:
        return prior.etag == result.etag
    if prior.mtime_ns is None or result.mtime_ns is None:
        return False  # nothing to compare: the poller compares nothing either
    if keeps_mtime:
        return abs(result.mtime_ns - prior.mtime_ns) < MTIME_SLACK_NS
    return result.mtime_ns <= prior.mtime_ns


def next_mtime_ns(prior: RemoteEntry, local_mtime_ns: int) -> int:
    """The mtime to send again: the file's own, or one second past the old stamp if that is not
    later (servers keep whole seconds)."""
    floor = (prior.mtime_ns or 0) // SECOND_NS * SECOND_NS + SECOND_NS
    return max(local_mtime_ns, floor)


def wait_for_server_clock(prior: RemoteEntry, result: PutResult) -> float:
    """Seconds to wait before writing again on a server that stamps with its own clock, so the
    new mtime is past the old one (whole seconds there too)."""
    if prior.mtime_ns is None or result.mtime_ns is None:
        return 1.0
    return max(0.0, (prior.mtime_ns - result.mtime_ns) / SECOND_NS) + 1.05


async def restamp(
    prior: RemoteEntry,
    size: int,
    local_mtime_ns: int,
    result: PutResult,
    keeps_mtime: bool,
    put_again: Callable[[int], Awaitable[PutResult]],
) -> PutResult:
    """``result``, or the answer to one more write when ``result`` looks like ``prior``.

    ``put_again(mtime_ns)`` writes the same content once more with that mtime. Once only: a
    server whose stamp is the content's hash gives the same one for the same bytes, rightly.
    """
    if not looks_unchanged(prior, size, result, keeps_mtime=keeps_mtime):
        return result
    # Both ways where the server's habit is not known yet: a later mtime is sent (kept by
    # servers that honour X-OC-Mtime), and one that uses its clock gets it a second later.
    mtime_ns = next_mtime_ns(prior, local_mtime_ns)
    if not keeps_mtime:
        await asyncio.sleep(wait_for_server_clock(prior, result))
    log.info("%s: stamped like the copy it replaced; written again with a new stamp", prior.path)
    return await put_again(mtime_ns)
