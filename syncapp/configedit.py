"""Round-trip edits of the config document, shared by the UI's forms and the engine's control API.

Every edit works on a copy of the tomlkit document, is re-parsed with ``parse_config`` (so the UI
and the command line accept exactly the same files) and only then written. The user's comments,
key order and keys the form does not know survive because tables are edited in place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.items import Comment, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from syncapp.config import (
    REMOTE_MODELS,
    Config,
    FolderConfig,
    RemoteConfig,
    parse_config,
    parse_duration,
    parse_max_delete,
    save_document,
)
from syncapp.errors import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: The keys the remote form edits, per type, in the order it shows them.
REMOTE_FIELDS: dict[str, tuple[str, ...]] = {
    "local": ("path",),
    "webdav": ("url", "username", "password_env", "password"),
    "s3": (
        "endpoint",
        "bucket",
        "prefix",
        "region",
        "access_key_id_env",
        "secret_access_key_env",
        "access_key_id",
        "secret_access_key",
    ),
    "http": ("url", "method", "token_env", "list_url"),
}

#: Keys that hold a secret itself: written into the file (0600) only when the user asks.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "webdav": ("password",),
    "s3": ("access_key_id", "secret_access_key"),
}


def empty_config(path: Path) -> Config:
    """The config of a first run: nothing configured yet, nothing written yet."""
    return Config(path=path, remotes={}, folders={}, document=tomlkit.document())


def copy_document(config: Config) -> TOMLDocument:
    doc = config.document if config.document is not None else tomlkit.document()
    return tomlkit.parse(tomlkit.dumps(doc))


#: ``[remotes]`` or ``[folders]``: a table, or a proxy when its sections are not contiguous
#: (``[remotes.a]``, ``[folders.x]``, ``[remotes.b]``).
Section = Table | OutOfOrderTableProxy


def _section(doc: TOMLDocument, key: str) -> Section:
    """``[remotes]`` / ``[folders]``, created as a super table (no empty header) when absent."""
    if key not in doc:
        doc[key] = tomlkit.table(is_super_table=True)
    section = doc[key]
    if not isinstance(section, Table | OutOfOrderTableProxy):
        raise ConfigError("", key, "must be a table of sections")
    return section


def _append_table(section: Section, name: str, table: Table) -> None:
    """Add ``[section.name]`` after the section's last table.

    tomlkit keeps the comments and blank lines written above the *next* section at the end of
    the section's last table; they move to the end of the new table so they stay above it.
    """
    if isinstance(section, OutOfOrderTableProxy):
        section[name] = table
        table.value.body.append((None, Whitespace("\n")))
        return
    last: Table | None = None
    for _, item in reversed(section.value.body):
        if isinstance(item, Table):
            last = item
            break
    trivia: list[Comment | Whitespace] = []
    if last is not None:
        body = last.value.body
        while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
            item = body.pop()[1]
            assert isinstance(item, Comment | Whitespace)
            trivia.insert(0, item)
        body.append((None, Whitespace("\n")))
    section[name] = table
    if trivia and not isinstance(trivia[0], Whitespace):
        trivia.insert(0, Whitespace("\n"))
    for item in trivia:
        table.value.body.append((None, item))


def _set(table: Table, key: str, value: Any, default: Any) -> None:
    """Write ``key`` unless it is absent and would only restate the default (keeps files short);
    a value that did not change keeps how the user wrote it (``2.0``, ``"10"``, a comment)."""
    if key in table:
        old = table[key]
        old = old.unwrap() if hasattr(old, "unwrap") else old
        if old == value or (isinstance(old, str | int | float) and str(old) == str(value)):
            return
    if key in table or value != default:
        table[key] = value


def _validated(config: Config, doc: TOMLDocument) -> Config:
    return parse_config(tomlkit.dumps(doc), config.path)


def save(config: Config) -> None:
    """Write the config file (atomically, mode 0600)."""
    assert config.document is not None
    save_document(config.path, config.document)


# -- folders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderDraft:
    """What the folder form holds: strings as typed, before validation."""

    name: str
    path: str
    remote: str
    remote_path: str
    ignore: tuple[str, ...] = ()
    mirror_deletes: bool = True
    max_delete: str = "50%"
    versions: bool = True
    keep_versions: str = "30d"
    follow_symlinks: bool = False
    settle: str = "0.05"
    rescan_interval: str = "300"
    paused: bool = False
    direction: str = "upload"
    remote_poll: str = "30"

    @classmethod
    def from_config(cls, cfg: FolderConfig) -> FolderDraft:
        return cls(
            name=cfg.name,
            path=display_path(cfg.path),
            remote=cfg.remote,
            remote_path=cfg.remote_path,
            ignore=cfg.ignore,
            mirror_deletes=cfg.mirror_deletes,
            max_delete=cfg.max_delete,
            versions=cfg.versions,
            keep_versions=cfg.keep_versions,
            follow_symlinks=cfg.follow_symlinks,
            settle=number_text(cfg.settle),
            rescan_interval=number_text(cfg.rescan_interval),
            paused=cfg.paused,
            direction=cfg.direction,
            remote_poll=number_text(cfg.remote_poll),
        )


#: The folder keys the README documents beyond the four every folder has, with their defaults
#: (the form shows each default beside its field).
FOLDER_DEFAULTS: dict[str, object] = {
    field: FolderConfig.__dataclass_fields__[field].default
    for field in (
        "mirror_deletes",
        "max_delete",
        "versions",
        "keep_versions",
        "follow_symlinks",
        "settle",
        "rescan_interval",
        "paused",
        "direction",
        "remote_poll",
    )
}


def number_text(value: float) -> str:
    """``300`` for 300.0, ``0.05`` for 0.05: a number as a person types it."""
    return f"{value:g}"


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def display_path(path: Path | str) -> str:
    """A path as the user reads it: the home directory as ``~``."""
    p = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (p == home or p.startswith(home + os.sep)):
        return "~" + p[len(home) :]
    return p


def resolve_path(text: str) -> Path:
    return Path(os.path.expanduser(text.strip())).absolute()


def stored_path(text: str) -> str:
    """What goes into the file: ``~/…`` kept as typed (portable), anything else made absolute."""
    t = text.strip()
    if t.startswith("~"):
        return t.rstrip("/") or "~"
    return str(resolve_path(t))


def suggest_name(path_text: str, taken: Mapping[str, object]) -> str:
    """A unique folder name from a path's base name, in the characters names allow."""
    base = resolve_path(path_text).name if path_text.strip() else ""
    # Names start with a letter or digit; anything else becomes "-".
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-._") or "folder"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def default_remote_path(path_text: str) -> str:
    return resolve_path(path_text).name if path_text.strip() else ""


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def folder_problems(config: Config, draft: FolderDraft, editing: str | None) -> dict[str, str]:
    """Field name → what is wrong, for the form to show inline; empty when it may be saved."""
    problems: dict[str, str] = {}
    if not draft.path.strip():
        problems["path"] = "type the folder to sync"
    else:
        p = resolve_path(draft.path)
        if not p.exists():
            problems["path"] = f"no such folder: {p}"
        elif not p.is_dir():
            problems["path"] = f"not a folder: {p}"
    if not draft.name:
        problems["name"] = "give the folder a name"
    elif not NAME_RE.match(draft.name):
        problems["name"] = "letters, digits, _ . - only, starting with a letter or digit"
    elif draft.name in config.folders and draft.name != editing:
        problems["name"] = f"a folder named {draft.name!r} exists already"
    if not draft.remote:
        problems["remote"] = "add a remote first (m)"
    elif draft.remote not in config.remotes:
        problems["remote"] = f"no remote named {draft.remote!r}"
    segments = [s for s in draft.remote_path.replace("\\", "/").split("/") if s]
    if any(s in (".", "..") for s in segments):
        problems["remote_path"] = "must not contain . or .. segments"
    if "path" not in problems:
        p = resolve_path(draft.path).resolve()
        rp = "/".join(segments)
        for other in config.folders.values():
            if other.name == editing or other.remote != draft.remote:
                continue
            q = other.path.resolve()
            if _inside(p, q) or _inside(q, p):
                where = "is" if p == q else ("is inside" if _inside(p, q) else "contains")
                problems["path"] = (
                    f"{where} folder {other.name!r} ({display_path(q)}), "
                    f"already synced to {other.remote!r}"
                )
                break
            o = other.remote_path
            if not rp or not o or rp == o or rp.startswith(o + "/") or o.startswith(rp + "/"):
                problems["remote_path"] = (
                    f"overlaps folder {other.name!r} ({other.remote}:/{o}); "
                    "give each folder its own remote path"
                )
                break
    for pat in draft.ignore:
        if not pat.strip():
            problems["ignore"] = "empty pattern"
    try:
        parse_max_delete(draft.max_delete)
    except ValueError as e:
        problems["max_delete"] = str(e)
    try:
        parse_duration(draft.keep_versions)
    except ValueError as e:
        problems["keep_versions"] = str(e)
    for key in ("settle", "rescan_interval", "remote_poll"):
        try:
            seconds = float(getattr(draft, key))
        except ValueError:
            problems[key] = f"a number of seconds, not {getattr(draft, key)!r}"
            continue
        if seconds < 0 or (key == "remote_poll" and seconds == 0):
            problems[key] = "must be positive" if key == "remote_poll" else "must not be negative"
    if draft.direction not in ("upload", "both"):
        problems["direction"] = 'either "upload" or "both"'
    return problems


def with_folder(config: Config, draft: FolderDraft, editing: str | None = None) -> Config:
    """A validated config with the folder added (or ``editing`` replaced); nothing is written."""
    doc = copy_document(config)
    folders = _section(doc, "folders")
    if editing is not None and editing in folders:
        table = folders[editing]
        if not isinstance(table, Table):
            raise ConfigError(str(config.path), f"folders.{editing}", "must be a table")
        if editing != draft.name:
            del folders[editing]
            folders[draft.name] = table
    else:
        table = tomlkit.table()
    table["path"] = stored_path(draft.path)
    table["remote"] = draft.remote
    table["remote_path"] = draft.remote_path.strip().strip("/")
    _set(table, "ignore", list(draft.ignore), [])
    max_delete = draft.max_delete.strip()
    try:
        values: dict[str, object] = {
            "mirror_deletes": draft.mirror_deletes,
            "max_delete": int(max_delete) if max_delete.isdigit() else max_delete,
            "versions": draft.versions,
            "keep_versions": draft.keep_versions.strip(),
            "follow_symlinks": draft.follow_symlinks,
            "settle": _number(draft.settle),
            "rescan_interval": _number(draft.rescan_interval),
            "paused": draft.paused,
            "direction": draft.direction,
            "remote_poll": _number(draft.remote_poll),
        }
    except ValueError as e:
        raise ConfigError(str(config.path), f"folders.{draft.name}", str(e)) from None
    for key, value in values.items():
        _set(table, key, value, FOLDER_DEFAULTS[key])
    if draft.name not in folders:
        _append_table(folders, draft.name, table)
    return _validated(config, doc)


def without_folder(config: Config, name: str) -> Config:
    doc = copy_document(config)
    folders = _section(doc, "folders")
    if name in folders:
        del folders[name]
    return _validated(config, doc)


# -- remotes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteDraft:
    name: str
    type: str
    #: The form's keys for this type (see REMOTE_FIELDS), as typed.
    values: dict[str, str] = field(default_factory=dict)
    #: Write the type's secrets (``SECRET_KEYS``: a password, S3 keys) into the file (only when
    #: the user ticked it).
    store_password: bool = False

    @classmethod
    def from_config(cls, cfg: RemoteConfig) -> RemoteDraft:
        values = {k: str(getattr(cfg, k, "")) for k in REMOTE_FIELDS.get(cfg.type, ())}
        stored = any(values.get(k) for k in SECRET_KEYS.get(cfg.type, ()))
        return cls(cfg.name, cfg.type, values, store_password=stored)


def remote_defaults(rtype: str) -> dict[str, str]:
    model = REMOTE_MODELS[rtype]
    out: dict[str, str] = {}
    for key in REMOTE_FIELDS[rtype]:
        default = model.__dataclass_fields__[key].default
        out[key] = default if isinstance(default, str) else ""
    return out


def remote_problems(config: Config, draft: RemoteDraft, editing: str | None) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not draft.name:
        problems["name"] = "give the remote a name"
    elif not NAME_RE.match(draft.name):
        problems["name"] = "letters, digits, _ . - only, starting with a letter or digit"
    elif draft.name in config.remotes and draft.name != editing:
        problems["name"] = f"a remote named {draft.name!r} exists already"
    if draft.type not in REMOTE_FIELDS:
        problems["type"] = "choose a type"
        return problems
    v = draft.values
    if draft.type == "local" and not v.get("path", "").strip():
        problems["path"] = "the folder files are copied to"
    if draft.type in ("webdav", "http"):
        url = v.get("url", "").strip()
        if not url:
            problems["url"] = "the server's URL"
        elif not url.startswith(("http://", "https://")):
            problems["url"] = "must start with http:// or https://"
        elif draft.type == "http" and "{path}" not in url:
            problems["url"] = "must contain {path}"
    if draft.type == "webdav" and v.get("password") and not draft.store_password:
        problems["password"] = (
            "tick “store password in config” to keep it, or name an environment variable"
        )
    if draft.type == "s3":
        if not v.get("bucket", "").strip():
            problems["bucket"] = "the bucket name"
        key_id, secret = v.get("access_key_id", ""), v.get("secret_access_key", "")
        if (key_id or secret) and not draft.store_password:
            problems["secret_access_key" if secret else "access_key_id"] = (
                "tick “store keys in config” to keep them, or name environment variables"
            )
        elif bool(key_id) != bool(secret):
            problems["access_key_id" if not key_id else "secret_access_key"] = (
                "give both keys (or neither: then the environment variables are read)"
            )
    if editing is not None and editing != draft.name:
        users = [f.name for f in config.folders.values() if f.remote == editing]
        if users:
            problems["name"] = (
                f"used by folder(s) {', '.join(users)}; a remote in use keeps its name"
            )
    return problems


def with_remote(config: Config, draft: RemoteDraft, editing: str | None = None) -> Config:
    doc = copy_document(config)
    remotes = _section(doc, "remotes")
    if editing is not None and editing in remotes:
        table = remotes[editing]
        if not isinstance(table, Table):
            raise ConfigError(str(config.path), f"remotes.{editing}", "must be a table")
        if editing != draft.name:
            del remotes[editing]
            remotes[draft.name] = table
        if table.get("type") != draft.type:
            # Another type: the old type's keys would be unknown keys now.
            for key in list(table.keys()):
                if key not in REMOTE_MODELS[draft.type].__dataclass_fields__:
                    del table[key]
    else:
        table = tomlkit.table()
    table["type"] = draft.type
    defaults = remote_defaults(draft.type)
    for key in REMOTE_FIELDS[draft.type]:
        value = draft.values.get(key, "").strip()
        if key in SECRET_KEYS.get(draft.type, ()):
            if draft.store_password and value:
                table[key] = value
            elif key in table:
                del table[key]
            continue
        if key == "path" and draft.type == "local":
            value = stored_path(value)
        _set(table, key, value, defaults.get(key, ""))
    if draft.name not in remotes:
        _append_table(remotes, draft.name, table)
    return _validated(config, doc)


def without_remote(config: Config, name: str) -> Config:
    users = [f.name for f in config.folders.values() if f.remote == name]
    if users:
        raise ConfigError(
            str(config.path),
            f"remotes.{name}",
            f"used by folder(s) {', '.join(users)}; remove those first",
        )
    doc = copy_document(config)
    remotes = _section(doc, "remotes")
    if name in remotes:
        del remotes[name]
    return _validated(config, doc)


def remote_config(draft: RemoteDraft, config_path: Path) -> RemoteConfig:
    """The draft as a validated RemoteConfig, password included even when not stored (for Test)."""
    stored = RemoteDraft(draft.name or "test", draft.type, draft.values, store_password=True)
    cfg = with_remote(_bare(config_path), stored)
    return cfg.remotes[stored.name]


def _bare(path: Path) -> Config:
    return Config(path=path, remotes={}, folders={}, document=tomlkit.document())


def describe_remote(cfg: RemoteConfig) -> str:
    """Where a remote points, in one short line."""
    for key in ("url", "endpoint", "path"):
        value = getattr(cfg, key, "")
        if value:
            if key == "endpoint":
                return f"{value} bucket {getattr(cfg, 'bucket', '')}"
            return str(value)
    bucket = getattr(cfg, "bucket", "")
    return f"s3 bucket {bucket}" if bucket else cfg.type


__all__ = [
    "FOLDER_DEFAULTS",
    "REMOTE_FIELDS",
    "SECRET_KEYS",
    "FolderDraft",
    "RemoteDraft",
    "copy_document",
    "default_remote_path",
    "describe_remote",
    "display_path",
    "empty_config",
    "folder_problems",
    "number_text",
    "remote_config",
    "remote_defaults",
    "remote_problems",
    "resolve_path",
    "save",
    "stored_path",
    "suggest_name",
    "with_folder",
    "with_remote",
    "without_folder",
    "without_remote",
]
