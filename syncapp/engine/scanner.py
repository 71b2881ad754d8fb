"""Walk a local folder (``os.scandir``, one ``lstat`` per entry) into what the engine compares.

Runs in a worker thread: a 100,000-file tree must not freeze the event loop (or the UI).
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from syncapp.ignore import IgnoreRules


@dataclass(frozen=True, slots=True)
class LocalEntry:
    path: str
    is_dir: bool
    size: int
    mtime_ns: int
    ino: int


@dataclass(slots=True)
class ScanResult:
    entries: dict[str, LocalEntry] = field(default_factory=dict)
    #: Paths that exist but are not synced, with the reason in words.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Directories that could not be listed; their known contents must not be deleted.
    unreadable_dirs: list[str] = field(default_factory=list)


def bad_name_reason(name: str) -> str | None:
    """Why a file name cannot be synced, or None. Non-UTF-8 bytes arrive as surrogates."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename it to sync it"
    return None


def printable(path: str) -> str:
    """A path safe to store, print or encode: undecodable bytes shown as ``\\xff`` escapes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def classify(st: os.stat_result, rel: str, follow_symlinks: bool) -> str | None:
    """Why a stat'ed path is skipped (not a regular file or directory), or None."""
    mode = st.st_mode
    if statmod.S_ISLNK(mode):
        return "symbolic link (not followed; set follow_symlinks = true to follow links)"
    if statmod.S_ISREG(mode) or statmod.S_ISDIR(mode):
        return None
    return "not a regular file (device, socket or pipe)"


def entry_from_stat(rel: str, st: os.stat_result) -> LocalEntry:
    is_dir = statmod.S_ISDIR(st.st_mode)
    return LocalEntry(rel, is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns, st.st_ino)


def scan_tree(
    root: str,
    rules: IgnoreRules,
    *,
    start: str = "",
    follow_symlinks: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Everything below ``root/start`` (``start`` itself excluded), breadth-first.

    ``progress(files, dirs)`` is called after each listed folder with the counts so far.
    """
    result = ScanResult()
    dirs_seen = 0
    # Each queued directory carries the (dev, ino) of itself and its ancestors: a followed link
    # back up that chain is a loop, while two links to the same folder elsewhere are not.
    try:
        top = os.stat(os.path.join(root, start) if start else root)
        chain0: frozenset[tuple[int, int]] = frozenset({(top.st_dev, top.st_ino)})
    except OSError:
        chain0 = frozenset()
    queue: list[tuple[str, frozenset[tuple[int, int]]]] = [(start, chain0)]
    while queue:
        rel_dir, chain = queue.pop(0) if len(queue) < 64 else queue.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            it = os.scandir(abs_dir)
        except FileNotFoundError:
            continue
        except OSError as e:
            result.unreadable_dirs.append(rel_dir)
            if rel_dir:
                result.skipped[rel_dir] = f"cannot list folder: {e.strerror or e}"
            continue
        with it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                reason = bad_name_reason(de.name)
                if reason:
                    result.skipped[printable(rel)] = reason
                    continue
                try:
                    st = de.stat(follow_symlinks=False)
                    if follow_symlinks and statmod.S_ISLNK(st.st_mode):
                        try:
                            st = de.stat(follow_symlinks=True)
                        except OSError:
                            result.skipped[rel] = "broken symbolic link"
                            continue
                except FileNotFoundError:
                    continue
                except OSError as e:
                    result.skipped[rel] = f"cannot stat: {e.strerror or e}"
                    continue
                is_dir = statmod.S_ISDIR(st.st_mode)
                if rules.ignored(rel, is_dir=is_dir):
                    continue
                why = classify(st, rel, follow_symlinks)
                if why:
                    result.skipped[rel] = why
                    continue
                if is_dir:
                    key = (st.st_dev, st.st_ino)
                    if key in chain:
                        result.skipped[rel] = "symbolic link loop (points at a folder above it)"
                        continue
                    queue.append((rel, chain | {key}))
                if is_dir:
                    dirs_seen += 1
                result.entries[rel] = entry_from_stat(rel, st)
        if progress is not None:
            progress(len(result.entries) - dirs_seen, dirs_seen)
    return result


def lstat_entry(
    root: str, rel: str, rules: IgnoreRules, follow_symlinks: bool = False
) -> tuple[LocalEntry | None, str | None]:
    """Current state of one path: (entry, None), (None, skip reason) or (None, None) if gone."""
    reason = bad_name_reason(rel)
    if reason:
        return None, reason
    try:
        st = os.stat(os.path.join(root, rel), follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        if follow_symlinks:
            return None, f"cannot stat (broken or looping link?): {e.strerror or e}"
        return None, f"cannot stat: {e.strerror or e}"
    is_dir = statmod.S_ISDIR(st.st_mode)
    if rules.ignored(rel, is_dir=is_dir):
        return None, None
    why = classify(st, rel, follow_symlinks)
    if why:
        return None, why
    return entry_from_stat(rel, st), None


def parents(rel: str) -> Iterator[str]:
    """``a/b/c`` → ``a/b``, ``a``."""
    while "/" in rel:
        rel = rel.rsplit("/", 1)[0]
        yield rel
