"""The local side of a folder: is its root there, a readable folder, on the device it was on;
and the full scan of it, with its progress.

A root that is missing, unreadable or on another device (an unmounted disk) stops the folder
with that reason before anything is planned: an empty mount point must never look like a
folder whose files were all deleted. A ``--once`` run starts its scan while the state loads;
that early scan is used only if it was of the root that passed the checks since.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat as statmod
import time
from collections.abc import Callable

from syncapp.engine.events import EventBus, ScanProgressed
from syncapp.engine.scanner import ScanResult, scan_tree
from syncapp.ignore import IgnoreRules

RootId = tuple[int, int]  # (st_dev, st_ino)

#: Scan progress is said at most this often (seconds).
PROGRESS_EVERY = 0.2


def root_problem(root: str, known: RootId | None) -> tuple[str, RootId | None]:
    """What is wrong with the folder's root, in words ("" when nothing), and its id."""
    try:
        st = os.stat(root)
    except OSError as e:
        problem = (
            "is missing" if isinstance(e, FileNotFoundError) else f"cannot be read ({e.strerror})"
        )
        return (
            f"folder root {root} {problem}; nothing is deleted remotely, "
            "syncing goes on when it is back"
        ), None
    if not statmod.S_ISDIR(st.st_mode):
        return f"folder root {root} is not a folder", None
    if not os.access(root, os.R_OK | os.X_OK):
        return f"folder root {root} cannot be read (permission denied)", None
    if known is not None and known[0] != st.st_dev:
        return (
            f"folder root {root} is on another device than before "
            "(an unmounted disk?); nothing is deleted remotely until it is back"
        ), None
    return "", (st.st_dev, st.st_ino)


class LocalRoot:
    def __init__(
        self,
        name: str,
        root: str,
        rules: IgnoreRules,
        bus: EventBus,
        *,
        follow_symlinks: bool,
    ) -> None:
        self.name = name
        self.root = root
        self.rules = rules
        self.bus = bus
        self.follow_symlinks = follow_symlinks
        #: Where the root was when first seen (kept in the state: checked on every start).
        self.root_id: RootId | None = None
        self._prescan: asyncio.Task[tuple[RootId | None, ScanResult]] | None = None

    async def check(self) -> tuple[str, RootId | None]:
        """``(problem, id)``; the id is given only when it is new (to be kept)."""
        problem, found = await asyncio.to_thread(root_problem, self.root, self.root_id)
        if problem or self.root_id is not None:
            return problem, None
        self.root_id = found
        return "", found

    # -- scanning ---------------------------------------------------------------------------------

    def start_early_scan(self) -> None:
        """Scan now, before the checks (a --once run: the state loads meanwhile)."""
        self._prescan = asyncio.create_task(asyncio.to_thread(self._scan_with_id, self.progress()))

    async def cancel_early_scan(self) -> None:
        task, self._prescan = self._prescan, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    @property
    def early_scan(self) -> asyncio.Task[tuple[RootId | None, ScanResult]] | None:
        return self._prescan

    async def scan(self) -> ScanResult:
        """The whole folder: the early scan when it is still good, else a new one."""
        result = await self._take_early_scan()
        if result is None:
            result = await asyncio.to_thread(
                scan_tree,
                self.root,
                self.rules,
                follow_symlinks=self.follow_symlinks,
                progress=self.progress(),
            )
        return result

    def _scan_with_id(
        self, progress: Callable[[int, int], None] | None = None
    ) -> tuple[RootId | None, ScanResult]:
        try:
            st = os.stat(self.root)
            root_id: RootId | None = (st.st_dev, st.st_ino)
        except OSError:
            root_id = None
        result = scan_tree(
            self.root, self.rules, follow_symlinks=self.follow_symlinks, progress=progress
        )
        return root_id, result

    async def _take_early_scan(self) -> ScanResult | None:
        task, self._prescan = self._prescan, None
        if task is None:
            return None
        root_id, result = await task
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        return result if root_id == (st.st_dev, st.st_ino) else None

    def progress(self) -> Callable[[int, int], None]:
        """A callback for the scanner's thread: a ScanProgressed at most five times a second,
        published in the engine's loop."""
        loop = asyncio.get_running_loop()
        last = 0.0

        def report(files: int, dirs: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < PROGRESS_EVERY:
                return
            last = now
            loop.call_soon_threadsafe(self.bus.publish, ScanProgressed(self.name, files, dirs))

        return report
