"""``watchfiles.awatch`` held open as an async context manager.

It knows nothing of the engine or the UI: it reports batches of changed relative paths, and
failures, through callbacks. watchfiles' defaults (1600 ms debounce) are far too slow for a live
mirror, so batches are cut after a short quiet ``step``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable
from types import TracebackType
from typing import Self

import watchfiles

log = logging.getLogger(__name__)

OnChanges = Callable[[set[str]], None]
OnError = Callable[[str], None]

INOTIFY_HINT = (
    "the system ran out of inotify watches; raise the limit with "
    "`sudo sysctl fs.inotify.max_user_watches=524288` (and put it in /etc/sysctl.conf); "
    "until then the folder is rescanned periodically"
)


class Watcher:
    def __init__(
        self,
        root: str,
        on_changes: OnChanges,
        on_error: OnError,
        *,
        debounce_ms: int = 400,
        step_ms: int = 15,
    ) -> None:
        self.root = root
        self._on_changes = on_changes
        self._on_error = on_error
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.root}")
        # Give the watcher a moment to install its watches, so changes made right after entering
        # are seen (the Rust side starts asynchronously).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=2.0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5.0)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    async def _run(self) -> None:
        prefix = self.root.rstrip(os.sep) + os.sep
        try:
            # yield_on_timeout lets us flag "ready" once the watcher is up.
            async for changes in watchfiles.awatch(
                self.root,
                watch_filter=None,
                debounce=self._debounce_ms,
                step=self._step_ms,
                stop_event=self._stop,
                rust_timeout=200,
                yield_on_timeout=True,
                recursive=True,
                ignore_permission_denied=True,
            ):
                self._ready.set()
                if not changes:
                    continue
                rels: set[str] = set()
                for _change, path in changes:
                    if path.startswith(prefix):
                        # Undecodable names arrive as surrogates; the planner reports them.
                        rels.add(path[len(prefix) :].replace(os.sep, "/"))
                    elif path == self.root:
                        rels.add("")
                if rels:
                    self._on_changes(rels)
        except asyncio.CancelledError:
            raise
        except OSError as e:
            self.failed = True
            self._ready.set()
            if e.errno == errno.ENOSPC or "No space left" in str(e) or "inotify" in str(e).lower():
                self._on_error(INOTIFY_HINT)
            else:
                self._on_error(f"file watcher stopped: {e}; the folder is rescanned periodically")
        except Exception as e:  # watchfiles wraps notify errors in RuntimeError and friends
            self.failed = True
            self._ready.set()
            text = str(e)
            if "No space left" in text or "inotify" in text.lower() or "max_user_watches" in text:
                self._on_error(INOTIFY_HINT)
            else:
                self._on_error(
                    f"file watcher stopped: {text}; the folder is rescanned periodically"
                )
            log.debug("watcher failed", exc_info=True)
