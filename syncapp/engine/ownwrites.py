"""Two-way: this machine's own uploads and moves as the next listings show them.

A PUT's answer may hold no ETag (rclone, nginx), one computed before the server applied
X-OC-Mtime (rclone, WsgiDAV), or none for a staged upload moved into place; a move may give a
file a new mtime (S3's copy). What the listing says of each (ETag and mtime) is recorded, so
the state holds what the next poll lists and later looks compare ETags; an upload the listing
does not show as ours stays unconfirmed (``remoteside`` decides what that means).

An upload is **settled** only once a listing shows it a while after it finished
(``settle_after``): another machine that checked the remote just before our PUT landed may
still overwrite it, and a look that had already taken the file for ours would then take that
overwrite for a plain remote edit and download it over our content. Where the server's stamps
cannot tell two writes of one size within one second apart (``Capabilities.distinct_stamps``
False: rclone serve webdav, WsgiDAV, nginx), a listing that shows "our" stamp proves nothing,
so a settled upload is compared by content with what was sent (``digesting`` kept its
digest); another content there was written by someone who never saw ours: a conflict.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, MutableMapping
from dataclasses import dataclass, replace

from syncapp.engine.adopt import remote_changed, same_mtime
from syncapp.engine.state import Entry
from syncapp.errors import RemoteError
from syncapp.remotes.base import Remote, RemoteEntry, join

log = logging.getLogger(__name__)

#: An upload is settled no sooner than this after it finished, and no sooner than twice its
#: own duration (a same-size upload racing ours takes about as long).
SETTLE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Upload:
    """One of our uploads that is not settled yet."""

    #: When it may settle (monotonic clock).
    settles: float
    #: The digest of what it sent, where the content must be checked (else None).
    digest: bytes | None = None

    @classmethod
    def finished(cls, now: float, seconds: float, digest: bytes | None) -> Upload:
        """An upload that finished at ``now`` and took ``seconds``."""
        return cls(now + max(SETTLE_SECONDS, 2 * seconds), digest)


def new_digest() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=20)


async def digesting(body: AsyncIterator[bytes], digest: hashlib.blake2b) -> AsyncIterator[bytes]:
    """``body``, fed to ``digest`` on its way out."""
    async for chunk in body:
        digest.update(chunk)
        yield chunk


async def remote_digest(remote: Remote, path: str) -> bytes:
    """The digest of what the remote holds at ``path`` (streamed: memory bounded)."""
    digest = new_digest()
    async with remote.get(path) as chunks:
        async for chunk in chunks:
            digest.update(chunk)
    return digest.digest()


async def holds_what_was_sent(remote: Remote, path: str, sent: bytes) -> bool | None:
    """Whether the remote file is what our upload sent; None when it could not be read now
    (a retryable error: ask again at the next look). A file gone or refused counts as ours:
    the stamp decides, and the next listing tells what became of it."""
    try:
        return await remote_digest(remote, path) == sent
    except RemoteError as e:
        if e.retryable:
            return None
        log.info("%s: not read back (%s); its stamp says it is ours", path, e)
        return True


def confirm_own_writes(
    unconfirmed: MutableMapping[str, Upload],
    moved: set[str],
    known: Mapping[str, Entry],
    listed: Mapping[str, RemoteEntry],
    *,
    server_mtime: bool,
    now: float,
) -> tuple[list[Entry], list[str]]:
    """The entries to record for our uploads (``unconfirmed``) and
    moves (``moved``) that the listing shows as ours, and the uploads shown as ours that are
    now due to settle. ``moved`` loses what is handled; ``unconfirmed`` loses what is gone
    (the caller settles what is due)."""
    out: list[Entry] = []
    due: list[str] = []

    def record(k: Entry, r: RemoteEntry) -> None:
        if (k.etag, k.remote_mtime_ns) != (r.etag, r.mtime_ns):
            out.append(replace(k, etag=r.etag, remote_mtime_ns=r.mtime_ns))

    for p, up in list(unconfirmed.items()):
        k, r = known.get(p), listed.get(p)
        if k is None or r is None or k.is_dir or r.is_dir:
            del unconfirmed[p]
            continue
        # The ETag the PUT gave, or (only when it gave none: with one, another ETag is
        # another writer) the same size and the mtime we sent: our upload.
        if not remote_changed(k, r, server_mtime=server_mtime) or (
            k.etag is None
            and r.size == k.size
            and same_mtime(k.mtime_ns, r.mtime_ns, server_mtime=True)
        ):
            record(k, r)
            if now >= up.settles:
                due.append(p)
    for p in list(moved):
        moved.discard(p)
        k, r = known.get(p), listed.get(p)
        if k is None or r is None or k.is_dir or r.is_dir:
            continue
        if not remote_changed(k, r, server_mtime=server_mtime):
            record(k, r)
    return out, due


class OwnWrites:
    """One folder's uploads and moves until a listing settles them."""

    def __init__(self, remote: Remote, prefix: str, sent: dict[str, bytes]) -> None:
        self.remote = remote
        self.prefix = prefix
        #: Our uploads that are not settled yet.
        self.unconfirmed: dict[str, Upload] = {}
        #: Paths our moves put in place (their listing may differ from what was recorded).
        self.moved: set[str] = set()
        #: What the upload of a path sent, by digest (filled by the operations, taken here).
        self.sent = sent
        self._doubted: set[str] = set()
        #: The clock at the last settling (uploads due by then were judged there).
        self._checked = float("-inf")

    def uploaded(self, path: str, seconds: float) -> None:
        """An upload of ``path`` finished now, after ``seconds``."""
        digest = self.sent.pop(path, None)
        self.unconfirmed[path] = Upload.finished(time.monotonic(), seconds, digest)

    def next_settle(self, now: float) -> float:
        """Seconds until a look should settle the uploads that were not due at the last one
        (0 when some are due already; infinite when none waits). Uploads due within
        ``SETTLE_SECONDS`` of the first are waited for too: one look for a burst."""
        later = [u.settles for u in self.unconfirmed.values() if u.settles > self._checked]
        if not later:
            return float("inf")
        first = min(later)
        last = max(s for s in later if s <= first + SETTLE_SECONDS)
        return max(0.0, last - now + 0.05)

    def judged(self, now: float) -> None:
        """A look at ``now`` judges every upload due by then (``next_settle`` leaves them)."""
        self._checked = max(self._checked, now)

    def doubt(self, path: str, *, last: bool = False) -> bool:
        """A look found our unsettled upload of ``path`` written over: False the first time
        (the writer's conflict copy of ours may be on its way), True the next (decide now),
        or at once at the ``last`` look (``run --once``: no later look remembers it)."""
        if path not in self._doubted and not last:
            self._doubted.add(path)
            return False
        self._doubted.discard(path)
        self.unconfirmed.pop(path, None)
        return True

    async def settle(
        self,
        known: Mapping[str, Entry],
        listed: Mapping[str, RemoteEntry],
        *,
        server_mtime: bool,
        now: float,
    ) -> tuple[list[Entry], list[str]]:
        """The entries to record (``confirm_own_writes``), and the uploads found written over
        with a stamp like ours (their content is not what we sent); ``now``: the monotonic
        clock (infinite: settle every upload the listing shows as ours)."""
        seen, due = confirm_own_writes(
            self.unconfirmed, self.moved, known, listed, server_mtime=server_mtime, now=now
        )
        self.judged(now)
        checks: dict[str, tuple[Upload, bytes]] = {}
        for p in due:
            up = self.unconfirmed[p]
            if up.digest is None or self.remote.capabilities.distinct_stamps:
                del self.unconfirmed[p]  # the stamp tells: ours
            else:
                checks[p] = (up, up.digest)
        if not checks:
            return seen, []
        gate = asyncio.Semaphore(4)

        async def check(p: str, digest: bytes) -> bool | None:
            async with gate:
                return await holds_what_was_sent(self.remote, join(self.prefix, p), digest)

        same = await asyncio.gather(*(check(p, d) for p, (_, d) in checks.items()))
        overwritten = []
        for (p, (up, _)), ours in zip(checks.items(), same, strict=True):
            if ours is None or self.unconfirmed.get(p) is not up:
                continue  # not readable now, or uploaded again meanwhile: the next look
            del self.unconfirmed[p]
            if not ours:
                overwritten.append(p)
        return seen, overwritten
