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
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

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
        on_recovered: Callable[[], None] = lambda: None,
        debounce_ms: int = 400,
        step_ms: int = 15,
    ) -> None:
        self.root = root
        self._on_changes = on_changes
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._skip_unreadable = False
        self._late = False
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
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=2.0)
        except TimeoutError:
            # Slow to start (a loaded machine, a big tree): changes made before it is up would be
            # missed, so ask for a rescan once it is.
            self._late = True
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
        """Watch until stopped; restart the watcher when it dies, with growing pauses.

        watchfiles gives up on some trees (a name that is not valid UTF-8, an ENOSPC from
        inotify): each failure is reported in words, the folder is rescanned meanwhile, and the
        watcher is started again, so changes are never missed silently.
        """
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._watch_once()
                return  # stopped on purpose
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # watchfiles raises ExceptionGroups and Rust errors
                if not self._skip_unreadable and _permission_problem(e):
                    # An unreadable subfolder: watch the rest (scans report that folder). Only
                    # then, because this mode also hides "watch limit reached" errors.
                    self._skip_unreadable = True
                    continue
                self.failed = True
                self._ready.set()
                self._on_error(describe_failure(e))
                log.debug("watcher failed", exc_info=True)
            if time.monotonic() - started > 30:
                delay = 1.0  # it had been working: a fresh failure, retry soon
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            delay = min(delay * 2, 60.0)

    async def _watch_once(self) -> None:
        import watchfiles  # here, not at the top: `run --once` never watches (~15 ms of start)

        prefix = self.root.rstrip(os.sep) + os.sep
        # yield_on_timeout lets us flag "ready" (and healthy again) once the watcher is up.
        async for changes in watchfiles.awatch(
            self.root,
            watch_filter=None,
            debounce=self._debounce_ms,
            step=self._step_ms,
            stop_event=self._stop,
            rust_timeout=200,
            yield_on_timeout=True,
            recursive=True,
            ignore_permission_denied=self._skip_unreadable,
        ):
            self._ready.set()
            if self.failed or self._late:
                self.failed = self._late = False
                self._on_recovered()
            if not changes:
                continue
            rels: set[str] = set()
            for _change, path in changes:
                if path.startswith(prefix):
                    rels.add(path[len(prefix) :].replace(os.sep, "/"))
                elif path == self.root:
                    rels.add("")
            if rels:
                self._on_changes(rels)


def _leaves(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in _leaves(sub)]
    return [e]


def _permission_problem(e: BaseException) -> bool:
    return any(
        isinstance(leaf, PermissionError) or "Permission denied" in str(leaf) for leaf in _leaves(e)
    )


def describe_failure(e: BaseException) -> str:
    """The watcher's failure in words, with the fix where there is one."""
    for leaf in _leaves(e):
        text = str(leaf)
        if (isinstance(leaf, OSError) and leaf.errno == errno.ENOSPC) or any(
            s in text
            for s in (
                "No space left",
                "max_user_watches",
                "inotify",
                "watch limit",
                "MaxFilesWatch",
            )
        ):
            return INOTIFY_HINT
        if "decode path" in text or "to string" in text:
            return (
                "the file watcher cannot handle a file name that is not valid UTF-8 "
                f"({text}); rename it to get live updates — until then the folder is "
                "rescanned every 10 s"
            )
    leaf = _leaves(e)[0]
    return f"file watcher stopped ({leaf.__class__.__name__}: {leaf}); rescanning periodically"
