"""Edits of the config file, the one truth: read it as it is on disk now, apply one edit from a
form's draft (``syncapp.configedit``), validate, write it back (0600).

The running engine does this for the control API; the UI and the command line do it only when
no engine runs. Reading the file again first keeps a hand edit made since it was loaded.
Refusals are ``ConfigError`` keyed by the draft's field (``settle``, ``name``, ``url``) so a
form can show each next to its field; ``UnknownName`` for a name that is not configured;
``ConfigConflict`` for a remote still used by a folder.
"""

from __future__ import annotations

from collections.abc import Callable

from syncapp.config import Config, load_config
from syncapp.configedit import (
    FolderDraft,
    RemoteDraft,
    folder_problems,
    remote_problems,
    save,
    with_folder,
    with_remote,
    without_folder,
    without_remote,
)
from syncapp.errors import ConfigConflict, ConfigError, UnknownName

__all__ = [
    "current",
    "edit_file",
    "folder_removed",
    "folder_saved",
    "remote_removed",
    "remote_saved",
]


def current(known: Config) -> Config:
    """``known.path`` as it is on disk now; ``known`` itself while there is no file yet (a first
    run: nothing was written so far)."""
    if not known.path.exists():
        return known
    return load_config(known.path)


def edit_file(known: Config, change: Callable[[Config], Config]) -> Config:
    """Apply ``change`` to the file as it is now and write the result; returns it."""
    new = change(current(known))
    save(new)
    return new


def _refused(config: Config, problems: dict[str, str]) -> ConfigError:
    key, problem = next(iter(problems.items()))
    return ConfigError(str(config.path), key, problem)


def _by_field(e: ConfigError, section: str, name: str) -> ConfigError:
    """A problem the re-parse found in the draft's own table, keyed by the field's name."""
    prefix = f"{section}.{name}."
    if e.key.startswith(prefix):
        return ConfigError(e.file, e.key.removeprefix(prefix), e.problem)
    return e


def folder_saved(config: Config, draft: FolderDraft, editing: str | None = None) -> Config:
    """``config`` with the folder added (``editing`` None) or folder ``editing`` changed."""
    if editing is not None and editing not in config.folders:
        raise UnknownName(f"no folder named {editing!r}")
    problems = folder_problems(config, draft, editing)
    if problems:
        raise _refused(config, problems)
    try:
        return with_folder(config, draft, editing)
    except ConfigError as e:
        raise _by_field(e, "folders", draft.name) from None


def folder_removed(config: Config, name: str) -> Config:
    """``config`` without folder ``name`` (no file is touched anywhere)."""
    if name not in config.folders:
        raise UnknownName(f"no folder named {name!r}")
    return without_folder(config, name)


def _users(config: Config, remote: str) -> list[str]:
    return [f.name for f in config.folders.values() if f.remote == remote]


def remote_saved(config: Config, draft: RemoteDraft, editing: str | None = None) -> Config:
    if editing is not None and editing not in config.remotes:
        raise UnknownName(f"no remote named {editing!r}")
    users = _users(config, editing) if editing is not None and editing != draft.name else []
    if users:
        raise ConfigConflict(
            str(config.path),
            "name",
            f"remote {editing!r} is used by folder(s) {', '.join(users)}; a remote in use keeps "
            "its name",
        )
    problems = remote_problems(config, draft, editing)
    if problems:
        raise _refused(config, problems)
    try:
        return with_remote(config, draft, editing)
    except ConfigError as e:
        raise _by_field(e, "remotes", draft.name) from None


def remote_removed(config: Config, name: str) -> Config:
    if name not in config.remotes:
        raise UnknownName(f"no remote named {name!r}")
    users = _users(config, name)
    if users:
        raise ConfigConflict(
            str(config.path),
            f"folders.{users[0]}.remote",
            f"remote {name!r} is used by folder(s) {', '.join(users)}; remove those first",
        )
    return without_remote(config, name)
