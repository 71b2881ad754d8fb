"""Numbers, times and paths in the few words a dashboard has room for."""

from __future__ import annotations

import re
import time

from syncapp.config import FolderConfig
from syncapp.configedit import display_path


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_rate(bytes_per_second: float) -> str:
    return f"{human_size(bytes_per_second)}/s"


def ago(then: float | None, now: float) -> str:
    """``never``, ``just now``, ``42 s ago``, ``3 min ago``, ``5 h ago`` or a date."""
    if then is None:
        return "never"
    delta = max(0.0, now - then)
    if delta < 5:
        return "just now"
    if delta < 60:
        return f"{delta:.0f} s ago"
    if delta < 3600:
        return f"{delta // 60:.0f} min ago"
    if delta < 86400:
        return f"{delta // 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(then))


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def date_time(at: float) -> str:
    """``2024-03-01 14:05:09`` in local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def route(cfg: FolderConfig) -> str:
    """``~/Documents → nas:/Documents``; two-way: ``~/Documents ⇄ nas:/Documents``."""
    arrow = "⇄" if cfg.direction == "both" else "→"
    return f"{display_path(cfg.path)} {arrow} {cfg.remote}:/{cfg.remote_path}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def duration(seconds: float) -> str:
    """``8 s``, ``2 min 05 s``, ``1 h 12 min``: the time left, short."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02} s"
    return f"{s // 3600} h {s % 3600 // 60:02} min"


def files_rate(per_second: float) -> str:
    if per_second >= 10:
        return f"{per_second:,.0f} files/s"
    return f"{per_second:.1f} files/s"


#: What the engine puts before a remote's own words: our wrapping, then "METHOD url: ".
_WRAPPING = re.compile(
    r"^(?:(?:remote unreachable|waiting for the remote|remote unusable"
    r"|waiting to retry after): )*"
)
_REQUEST = re.compile(r"^[A-Z]+ \S+(?: → \S+)?: ")
#: Our upload staging names (``.syncapp-tmp-<id>``) mean nothing to a user.
_STAGING = re.compile(r"/?\.syncapp-tmp-[A-Za-z0-9_-]+")


def hide_staging(text: str) -> str:
    """The full text of an error, without our temporary upload names."""
    return _STAGING.sub(" (temporary upload name)", text)


def short_error(text: str) -> str:
    """``connection refused`` from ``remote unreachable: PROPFIND https://…: connection
    refused``: the server's own words, without our wrapping, the request or staging names."""
    short = _REQUEST.sub("", _WRAPPING.sub("", text.strip()), count=1)
    return hide_staging(short) or text


def seconds_until(then: float | None, now: float) -> str:
    """``in 8 s`` / ``in 2 min``, or ``now`` once due."""
    if then is None or then - now < 1:
        return "now"
    if then - now < 60:
        return f"in {then - now:.0f} s"
    return f"in {(then - now) // 60:.0f} min"
