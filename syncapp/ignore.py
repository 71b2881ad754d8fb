"""Ignore rules: gitignore-style patterns (pathspec) plus defaults for editor and OS temp files.

``match`` answers with the pattern that ignored a path, so ``syncapp why`` can name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

#: Files no user wants mirrored: editor swap/lock files, OS droppings, partial downloads.
DEFAULT_IGNORES: tuple[str, ...] = (
    "*.swp",
    "*.swo",
    "*.swx",
    ".#*",
    "#*#",
    "*~",
    "~$*",
    ".~lock.*#",
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "desktop.ini",
    ".directory",
    "*.crdownload",
    "*.part",
    ".goutputstream-*",
    "4913",
)

#: Names syncapp itself owns on the remote; never synced as normal paths.
#: ``.syncapp-trash`` is the local folder's own trash (files the remote deleted, two-way sync).
RESERVED_NAMES: tuple[str, ...] = (
    ".syncapp-versions",
    ".syncapp-tmp-*",
    ".syncapp-restore-*",
    ".syncapp-trash",
)


@dataclass(frozen=True, slots=True)
class IgnoreMatch:
    pattern: str
    source: str  # "default", "config" or "syncapp"

    def describe(self) -> str:
        where = {
            "default": "syncapp's default ignore list",
            "config": "the folder's ignore setting",
            "syncapp": "syncapp's own reserved names",
        }[self.source]
        return f"ignored by pattern {self.pattern!r} from {where}"


def _any_include(spec: GitIgnoreSpec) -> re.Pattern[str] | None:
    """One regex matching wherever any including pattern matches (None if it cannot be built).

    pathspec checks patterns one by one, which dominated scans of big trees; a path no include
    pattern matches is never ignored, whatever the negations say.
    """
    parts = []
    for pat in spec.patterns:
        rx = getattr(pat, "regex", None)
        if not getattr(pat, "include", False) or rx is None:
            continue
        parts.append("(?:" + re.sub(r"\(\?P<[^>]+>", "(?:", rx.pattern) + ")")
    if not parts:
        return re.compile(r"(?!)")
    try:
        return re.compile("|".join(parts))
    except re.error:
        return None


class IgnoreRules:
    """Compiled rules for one folder. Paths are relative, ``/``-separated; dirs end with ``/``."""

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True) -> None:
        self.patterns = tuple(patterns)
        lines: list[tuple[str, str]] = [(p, "syncapp") for p in RESERVED_NAMES]
        if defaults:
            lines += [(p, "default") for p in DEFAULT_IGNORES]
        lines += [(p, "config") for p in self.patterns]
        try:
            self._spec = GitIgnoreSpec.from_lines([p for p, _ in lines])
        except Exception as e:  # pathspec raises several types for a malformed pattern
            raise ValueError(f"invalid ignore pattern: {e}") from None
        self._lines = lines
        self._reserved = GitIgnoreSpec.from_lines(RESERVED_NAMES)
        self._any = _any_include(self._spec)

    def _maybe(self, probe: str) -> bool:
        return self._any is None or self._any.match(probe) is not None

    def match(self, rel: str, *, is_dir: bool = False) -> IgnoreMatch | None:
        """The rule that ignores ``rel``, or None when it is synced."""
        probe = rel + "/" if is_dir and not rel.endswith("/") else rel
        if not self._maybe(probe):
            return None  # the common case, decided by one regex instead of one per pattern
        # A user's "!pattern" may re-include a default, but never a name syncapp owns.
        res = self._reserved.check_file(probe)
        if res.include and res.index is not None:
            return IgnoreMatch(RESERVED_NAMES[res.index], "syncapp")
        res = self._spec.check_file(probe)
        if res.include and res.index is not None:
            pattern, source = self._lines[res.index]
            return IgnoreMatch(pattern, source)
        return None

    def ignored(self, rel: str, *, is_dir: bool = False) -> bool:
        return self.match(rel, is_dir=is_dir) is not None
