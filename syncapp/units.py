"""Sizes, rates, durations and delete limits as the config writes them (``"8MiB"``, ``"30d"``).

Kept apart from ``syncapp.config`` (which re-exports them) so that file stays one job.
"""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}


def parse_size(text: str | int) -> int:
    """``"8MiB"`` → 8388608; raises ValueError with a readable message."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(text)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 512KiB, 8MiB, 1GB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def parse_rate(text: str) -> int:
    """``"2MiB/s"`` → bytes per second; ``""`` → 0 (unlimited)."""
    if not text:
        return 0
    body = text.strip()
    if body.lower().endswith("/s"):
        body = body[:-2]
    return parse_size(body)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``"30d"`` → seconds."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 12h, 30d)")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def parse_max_delete(text: str | int) -> tuple[int | None, float | None]:
    """``"50%"`` → (None, 0.5); ``100`` or ``"100"`` → (100, None)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("must not be negative")
        return text, None
    t = text.strip()
    if t.endswith("%"):
        share = float(t[:-1])
        if not 0 <= share <= 100:
            raise ValueError(f"a percentage from 0% to 100%, not {text!r}")
        return None, share / 100
    if t.isdigit():
        return int(t), None
    raise ValueError(f'a count (100) or a percentage ("50%"), not {text!r}')
