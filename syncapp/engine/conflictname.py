"""The names conflict copies get: ``a.conflict-20261126-175500-3fa2.txt``."""

from __future__ import annotations

import hashlib
import socket
import time


def conflict_name(path: str, ts: float, tag: str = "") -> str:
    """``notes/a.txt`` → ``notes/a.conflict-20261126-175500-3fa2.txt`` (local time, like
    editors; ``tag`` names the machine, see ``machine_tag``)."""
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dotfile such as ".bashrc"
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ts))
    if tag:
        stamp = f"{stamp}-{tag}"
    new = f"{stem}.conflict-{stamp}{dot}{ext}"
    return f"{head}/{new}" if head else new


def machine_tag(state_path: object) -> str:
    """Four hex digits for this machine (host and state database) in conflict names: two
    machines that keep a conflict of one file in the same second pick different names."""
    key = f"{socket.gethostname()}\0{state_path}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:4]
