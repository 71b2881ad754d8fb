"""Where a local file goes when the remote deleted it: the trash, never ``unlink``.

Two-way sync turns a delete made on the remote (or on another machine) into a local delete, so
every such delete must be recoverable. ``trash`` moves the file or folder:

- to the user's freedesktop trash (``$XDG_DATA_HOME/Trash``, ``~/.local/share/Trash`` by
  default), through send2trash, when the file is on the same device as that trash: a rename,
  and the file manager's "Restore" knows where it came from;
- else to ``<folder>/.syncapp-trash/<YYYYMMDD-HHMMSS>/<relpath>``: a rename inside the folder
  (same device), kept out of every sync by the ignore rules' reserved names.

A trash on another device (send2trash's ``$topdir/.Trash-$uid``) is not used: syncapp should
not create folders at the top of a mount the user may not know about, and the folder's own
trash is as recoverable. A send2trash failure of any kind falls back to the folder's trash.
Neither path copies and unlinks: a file is never deleted by this module.

Interface for the coordinator (phase 2)::

    done = await asyncio.to_thread(trash, root, rel)     # -> Trashed(rel, where, how)
    # emit Event "trashed" with done.rel and done.where; forget the state entry of rel
    # (recursively for a folder); the watcher's "deleted" echo for rel is then nothing to do.

``where`` is the path the file now has (for the freedesktop trash: the name inside
``Trash/files``, which send2trash may have suffixed; found again by its ``.trashinfo``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from syncapp.engine.download import UnsafePath, local_path

#: The folder's own trash, at its top; a reserved name (see ``syncapp.ignore``): never synced.
TRASH_DIR = ".syncapp-trash"


@dataclass(frozen=True, slots=True)
class Trashed:
    rel: str
    #: Where the file or folder is now.
    where: str
    how: Literal["freedesktop", "folder"]


def system_trash_dir() -> str | None:
    """The freedesktop home trash send2trash would use (it reads ``XDG_DATA_HOME`` once, when
    imported); None when send2trash is not installed."""
    try:
        from send2trash import plat_other  # type: ignore[attr-defined]
    except ImportError:  # another platform's module, or not installed
        return None
    return os.fsdecode(plat_other.HOMETRASH)


def _device_of(path: str) -> int | None:
    """st_dev of ``path`` or of its nearest existing ancestor (the trash may not exist yet)."""
    while True:
        try:
            return os.lstat(path).st_dev
        except FileNotFoundError:
            up = os.path.dirname(path)
            if up == path:
                return None
            path = up
        except OSError:
            return None


def trash(root: str, rel: str, *, now: float | None = None, system: bool = True) -> Trashed:
    """Move ``root/rel`` (a file or a folder) to the trash; ``FileNotFoundError`` when it is
    gone already, ``UnsafePath`` when ``rel`` leaves the folder. ``system=False`` always uses
    the folder's trash."""
    src = local_path(root, rel)
    st = os.lstat(src)  # FileNotFoundError: nothing to trash
    if system:
        home_trash = system_trash_dir()
        if home_trash is not None and _device_of(home_trash) == st.st_dev:
            found = _to_system_trash(src, home_trash)
            if found is not None:
                return Trashed(rel, found, "freedesktop")
    return Trashed(rel, _to_folder_trash(root, rel, src, now), "folder")


def _to_system_trash(src: str, home_trash: str) -> str | None:
    from send2trash import send2trash
    from send2trash.exceptions import TrashPermissionError

    files = os.path.join(home_trash, "files")
    before = set(_listdir(files))
    try:
        send2trash(src)
    except (OSError, TrashPermissionError):
        if os.path.lexists(src):
            return None  # not moved: the folder's trash takes it
    new = sorted(set(_listdir(files)) - before)
    info = os.path.join(home_trash, "info")
    for name in new:  # send2trash suffixes a taken name ("a 1.txt"); its .trashinfo says whose
        with contextlib.suppress(OSError), open(os.path.join(info, name + ".trashinfo")) as fh:
            if f"Path={quote(os.fsencode(src))}" in fh.read():
                return os.path.join(files, name)
    return os.path.join(files, new[0] if new else os.path.basename(src))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _to_folder_trash(root: str, rel: str, src: str, now: float | None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    base = os.path.join(root, TRASH_DIR, stamp)
    dst = os.path.join(base, *rel.split("/"))
    n = 1
    while os.path.lexists(dst):  # the same path trashed twice within a second
        n += 1
        dst = os.path.join(f"{base}-{n}", *rel.split("/"))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    os.rename(src, dst)  # same folder, same device: a rename, never a copy and unlink
    return dst


def trash_root(root: str) -> str:
    """The folder's own trash, ``<root>/.syncapp-trash``."""
    return os.path.join(root, TRASH_DIR)


__all__ = ["TRASH_DIR", "Trashed", "UnsafePath", "system_trash_dir", "trash", "trash_root"]
