"""Meeting the remote: the folder's ``remote_path`` made and its server's ways learned, and on a
first run or after a crash, one listing reconciled with the disk.

Reconciling adopts remote files already identical to the local ones (recorded as synced, not
sent), removes the staging names of our interrupted uploads, notes remote files the state knew
nothing of (an overwrite keeps them as versions), and after a crash marks as "synced" the
remote paths that exist neither locally nor in the state (an upload whose record was lost), so
the ordinary delete path, through the guard, removes them.

A dry run learns only what is kept, lists, and adopts in memory: it sends nothing that changes
the remote.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from syncapp.engine.adopt import adopt, list_remote_tree
from syncapp.engine.entries import EntryMap
from syncapp.engine.learned import learn_remote
from syncapp.engine.pacer import backoff
from syncapp.engine.scanner import LocalEntry
from syncapp.engine.state import Entry, StateDB
from syncapp.errors import RemoteError
from syncapp.ignore import IgnoreRules
from syncapp.remotes.base import Remote


@dataclass(slots=True)
class Reconciled:
    #: Already identical remotely: recorded as synced.
    adopted: list[Entry] = field(default_factory=list)
    #: Local files with a different remote copy the state knew nothing of.
    unrecorded: set[str] = field(default_factory=set)
    #: After a crash: remote paths neither local nor known, as entries, so the ordinary delete
    #: path (and the guard) removes them.
    extras: list[Entry] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        remote: Remote,
        state: StateDB,
        remote_root: str,
        rules: IgnoreRules,
        *,
        live: bool,
        dry_run: bool = False,
        max_attempts_once: int = 5,
    ) -> None:
        self.remote = remote
        self.state = state
        self.remote_root = remote_root
        self.rules = rules
        self.live = live
        self.dry_run = dry_run
        self.max_attempts_once = max_attempts_once
        #: The remote_path is known to exist (made this session, or synced into last time).
        self.ready = False
        self._learned = False

    async def ensure_root(self, *, again: bool = False) -> bool:
        """Create ``remote_path`` (and its parents) remotely, once per session, and know what
        the server does (kept from an earlier run, or tried there now); ``again``: it vanished.
        True when the remote was reached for it now."""
        if again:
            self.ready = False

        async def learn() -> None:
            await learn_remote(self.remote, self.state, self.remote_root, probe=not self.dry_run)
            self._learned = True

        if self.ready:
            if not self._learned:  # a known root: the kept facts cost no request
                await self.retrying(learn)
            return False

        async def make() -> None:
            if self.dry_run:
                pass  # a dry run makes nothing; a missing remote_path lists as empty
            elif self.remote_root and self.remote.capabilities.directories:
                parts = self.remote_root.split("/")
                for i in range(1, len(parts) + 1):
                    await self.remote.mkdir("/".join(parts[:i]))
            else:
                await self.remote.stat(self.remote_root)
            await learn()

        await self.retrying(make)
        self.ready = True
        return True

    async def reconcile(
        self,
        local: Mapping[str, LocalEntry],
        root: str,
        entries: EntryMap,
        *,
        after_crash: bool,
        mirror_deletes: bool,
    ) -> Reconciled:
        """List the remote once and reconcile it with ``local`` (the scan of ``root``) and the
        ``entries`` known so far."""
        prefix = self.remote_root
        listing = await list_remote_tree(self.remote, prefix)
        if not self.dry_run:
            for p in listing.staging:
                with contextlib.suppress(RemoteError):
                    await self.remote.delete(p)
            with contextlib.suppress(RemoteError):
                await self.remote.cleanup_stale_uploads(prefix)
        now = time.time()
        out = Reconciled()
        out.adopted = await adopt(self.remote, prefix, root, local, listing, entries, now=now)
        adopted = {e.path for e in out.adopted}
        out.unrecorded = {
            rel
            for rel, le in local.items()
            if not le.is_dir
            and rel not in entries
            and rel not in adopted
            and (r := listing.entries.get(rel)) is not None
            and not r.is_dir
        }
        if after_crash and mirror_deletes:
            out.extras = [
                Entry(rel, r.is_dir, 0, 0, 0, None, now)
                for rel, r in listing.entries.items()
                if rel not in local
                and rel not in entries
                and rel not in adopted
                and not self.rules.ignored(rel, is_dir=r.is_dir)
            ]
        return out

    async def retrying(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run a whole-folder step; in --once mode retry transient failures a few times (with
        backoff and Retry-After) before the run gives up. Live mode has its own offline probe."""
        attempt = 0
        while True:
            try:
                await step()
                return
            except RemoteError as e:
                attempt += 1
                if self.live or not e.retryable or attempt >= self.max_attempts_once:
                    raise
                await asyncio.sleep(backoff(attempt, e.retry_after))
