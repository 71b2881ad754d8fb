"""Two-way: this machine's own uploads and moves as the next listing shows them.

A PUT's answer may hold no ETag (rclone, nginx), one computed before the server applied
X-OC-Mtime (rclone, WsgiDAV), or none for a staged upload moved into place; a move may give a
file a new mtime (S3's copy). What the listing says of each (ETag and mtime) is recorded, so
the state holds what the next poll lists and later looks compare ETags; an upload the listing
does not show as ours stays unconfirmed (``remoteside`` decides what that means).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from syncapp.engine.adopt import remote_changed, same_mtime
from syncapp.engine.state import Entry
from syncapp.remotes.base import RemoteEntry


def confirm_own_writes(
    unconfirmed: set[str],
    moved: set[str],
    known: Mapping[str, Entry],
    listed: Mapping[str, RemoteEntry],
    *,
    server_mtime: bool,
) -> list[Entry]:
    """The entries to record for our uploads (``unconfirmed``) and moves (``moved``) that the
    listing shows as ours; both sets lose what is settled."""
    out: list[Entry] = []

    def record(k: Entry, r: RemoteEntry) -> None:
        if (k.etag, k.remote_mtime_ns) != (r.etag, r.mtime_ns):
            out.append(replace(k, etag=r.etag, remote_mtime_ns=r.mtime_ns))

    for p in list(unconfirmed):
        k, r = known.get(p), listed.get(p)
        if k is None or r is None or k.is_dir or r.is_dir:
            unconfirmed.discard(p)
            continue
        # The ETag the PUT gave, or (only when it gave none: with one, another ETag is
        # another writer) the same size and the mtime we sent: our upload.
        if not remote_changed(k, r, server_mtime=server_mtime) or (
            k.etag is None
            and r.size == k.size
            and same_mtime(k.mtime_ns, r.mtime_ns, server_mtime=True)
        ):
            unconfirmed.discard(p)
            record(k, r)
    for p in list(moved):
        moved.discard(p)
        k, r = known.get(p), listed.get(p)
        if k is None or r is None or k.is_dir or r.is_dir:
            continue
        if not remote_changed(k, r, server_mtime=server_mtime):
            record(k, r)
    return out
