"""Load, validate and save syncapp's TOML config.

The file is found at ``--config PATH``, else ``$SYNCAPP_CONFIG``, else
``platformdirs.user_config_dir("syncapp")/config.toml``. It is parsed with tomlkit so that edits
made from the UI keep the user's comments and order, and validated into frozen dataclasses; every
problem is a ``ConfigError`` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import platformdirs
import tomlkit
import tomlkit.exceptions
from tomlkit.toml_document import TOMLDocument

from syncapp.errors import ConfigError
from syncapp.units import parse_duration as parse_duration
from syncapp.units import parse_max_delete as parse_max_delete
from syncapp.units import parse_rate as parse_rate
from syncapp.units import parse_size as parse_size

APP_NAME = "syncapp"
REMOTE_TYPES = ("local", "webdav", "s3", "http")


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME))


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SYNCAPP_CONFIG")
    if env:
        return Path(env).expanduser()
    return default_config_path()


# -- typed models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteConfig:
    """Keys every remote type accepts."""

    name: str
    type: str
    #: Connections (and so concurrent transfers) to this endpoint.
    connections: int = 8
    timeout: float = 30.0
    verify_tls: bool = True
    #: Upload/download rate limit such as "2MiB/s"; "" for none.
    bwlimit: str = ""


@dataclass(frozen=True)
class LocalRemoteConfig(RemoteConfig):
    path: str = ""


@dataclass(frozen=True)
class WebDAVRemoteConfig(RemoteConfig):
    url: str = ""
    username: str = ""
    #: Name of the environment variable that holds the password.
    password_env: str = ""
    #: The password itself; only written when the user asks for it.
    password: str = dataclasses.field(default="", repr=False)
    #: "rename": PUT to a temporary name, then MOVE (atomic on every server);
    #: "server": the server stages PUTs itself, so PUT straight to the final name;
    #: "auto": "server" where the server was seen to hide a partial upload, else "rename".
    atomic_upload: Literal["auto", "rename", "server"] = "auto"
    #: Send X-OC-Mtime (Nextcloud, ownCloud, rclone keep the file's mtime); "auto": send it
    #: and rely on it only where the server was seen to keep it.
    send_mtime: bool | Literal["auto"] = "auto"


@dataclass(frozen=True)
class S3RemoteConfig(RemoteConfig):
    endpoint: str = ""
    bucket: str = ""
    #: Key prefix inside the bucket that is this remote's root ("" for the whole bucket); lets
    #: several remotes (or an IAM policy limited to a prefix) share one bucket.
    prefix: str = ""
    region: str = "us-east-1"
    #: Virtual-hosted-style addressing (bucket.endpoint); path-style by default for endpoints.
    virtual_hosted: bool = False
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"
    #: The keys themselves, kept as a WebDAV ``password`` is (only when asked; ``*_env`` wins).
    access_key_id: str = dataclasses.field(default="", repr=False)
    secret_access_key: str = dataclasses.field(default="", repr=False)
    #: Files above this size use multipart uploads, in parts of this size.
    part_size: str = "8MiB"
    multipart_threshold: str = "8MiB"
    #: Concurrent part uploads of one file.
    part_concurrency: int = 4
    #: Send Content-MD5 / x-amz-checksum headers (some S3-compatible servers reject them).
    checksums: bool = True


@dataclass(frozen=True)
class HTTPRemoteConfig(RemoteConfig):
    #: URL template with {path} (percent-encoded, "/" kept).
    url: str = ""
    method: Literal["PUT", "POST"] = "PUT"
    delete_method: str = "DELETE"
    #: URL template for deletes; "" means the upload template.
    delete_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    token_env: str = ""
    #: "raw": the file is the request body; "multipart": a multipart/form-data field.
    body: Literal["raw", "multipart"] = "raw"
    field_name: str = "file"
    #: URL template answering GET (download) and HEAD (stat) for {path}; "" means ``url``.
    get_url: str = ""
    #: Optional URL template listing the files under {path} as a JSON array of objects with
    #: "path" (relative to the root), "size" and optionally "etag" and "mtime_ns"; "" when the
    #: API cannot list (the engine then relies on its own state).
    list_url: str = ""
    #: The API stores an upload under its final name only once it is complete.
    atomic: bool = False


REMOTE_MODELS: dict[str, type[RemoteConfig]] = {
    "local": LocalRemoteConfig,
    "webdav": WebDAVRemoteConfig,
    "s3": S3RemoteConfig,
    "http": HTTPRemoteConfig,
}


@dataclass(frozen=True)
class FolderConfig:
    name: str
    path: Path
    remote: str
    remote_path: str = ""
    ignore: tuple[str, ...] = ()
    mirror_deletes: bool = True
    #: Most deletes one pass may propagate: a count ("100", 100) or a share of known files ("50%").
    max_delete: str = "50%"
    #: Keep what an overwrite or delete replaces under .syncapp-versions/ on the remote.
    versions: bool = True
    keep_versions: str = "30d"
    follow_symlinks: bool = False
    #: Seconds a file must stay unchanged before it is uploaded (it is being written meanwhile).
    settle: float = 0.05
    #: Seconds between safety rescans in live mode (watchfiles can drop events); 0 turns them off.
    rescan_interval: float = 300.0
    paused: bool = False
    #: "upload": the remote mirrors this folder; "both": changes on either side reach the other.
    direction: Literal["upload", "both"] = "upload"
    #: Seconds between looks at the remote for changes made there (direction = "both").
    remote_poll: float = 30.0


@dataclass(frozen=True)
class Config:
    path: Path
    remotes: dict[str, RemoteConfig]
    folders: dict[str, FolderConfig]
    #: Global rate limit for all transfers, e.g. "10MiB/s"; "" for none.
    bwlimit: str = ""
    #: The parsed document, kept for round-trip edits.
    document: TOMLDocument | None = field(default=None, compare=False, repr=False)


# -- validation -----------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "a list of strings"
    if origin is dict:
        return "a table of strings"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    return str(tp)


def _coerce(value: Any, tp: Any) -> Any:
    """Check one TOML value against a field type; raise ValueError describing the mismatch."""
    origin = get_origin(tp)
    if isinstance(value, tomlkit.items.Item):
        value = value.unwrap()
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"must be {_type_name(tp)}, not {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):
        for arg in get_args(tp):
            try:
                return _coerce(value, arg)
            except ValueError:
                continue
        raise ValueError(f"has the wrong type ({type(value).__name__})")
    if origin in (tuple, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be {_type_name(tp)}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError(f"must be {_type_name(tp)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be {_type_name(tp)}, not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be {_type_name(tp)}, not {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be {_type_name(tp)}, not {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"must be {_type_name(tp)}, not {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ValueError("must be a path string")
        return Path(value).expanduser()
    raise ValueError(f"unsupported type {tp}")


def _build(
    cls: type[Any], table: Mapping[str, Any], *, file: str, prefix: str, **fixed: Any
) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in fixed}
    kwargs: dict[str, Any] = dict(fixed)
    for key, value in table.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(file, f"{prefix}.{key}", f"unknown key (known keys: {known})")
        try:
            kwargs[key] = _coerce(value, hints[key])
        except ValueError as e:
            raise ConfigError(file, f"{prefix}.{key}", str(e)) from None
    for name, f in fields.items():
        if (
            name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(file, f"{prefix}.{name}", "is required")
    return cls(**kwargs)


def _check_url(url: str, *, file: str, key: str, template: bool = False) -> None:
    probe = url.replace("{path}", "x") if template else url
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(file, key, f"not an http(s) URL: {_redact_url(url)!r}")
    if parts.username or parts.password:
        raise ConfigError(
            file, key, "must not contain credentials; use username and password_env instead"
        )


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


def _validate_remote(cfg: RemoteConfig, file: str) -> None:
    key = f"remotes.{cfg.name}"
    if cfg.connections < 1 or cfg.connections > 64:
        raise ConfigError(file, f"{key}.connections", "must be from 1 to 64")
    if cfg.timeout <= 0:
        raise ConfigError(file, f"{key}.timeout", "must be positive")
    try:
        parse_rate(cfg.bwlimit)
    except ValueError as e:
        raise ConfigError(file, f"{key}.bwlimit", str(e)) from None
    if isinstance(cfg, LocalRemoteConfig):
        if not cfg.path:
            raise ConfigError(file, f"{key}.path", 'is required for type = "local"')
    elif isinstance(cfg, WebDAVRemoteConfig):
        if not cfg.url:
            raise ConfigError(file, f"{key}.url", 'is required for type = "webdav"')
        _check_url(cfg.url, file=file, key=f"{key}.url")
    elif isinstance(cfg, S3RemoteConfig):
        if not cfg.bucket:
            raise ConfigError(file, f"{key}.bucket", 'is required for type = "s3"')
        if cfg.endpoint:
            _check_url(cfg.endpoint, file=file, key=f"{key}.endpoint")
        if any(s in (".", "..") for s in cfg.prefix.split("/")) or "\0" in cfg.prefix:
            raise ConfigError(file, f"{key}.prefix", "must not contain . or .. segments")
        if cfg.part_concurrency < 1 or cfg.part_concurrency > 64:
            raise ConfigError(file, f"{key}.part_concurrency", "must be from 1 to 64")
        for k in ("part_size", "multipart_threshold"):
            try:
                n = parse_size(getattr(cfg, k))
            except ValueError as e:
                raise ConfigError(file, f"{key}.{k}", str(e)) from None
            if n < 5 * 1024 * 1024:
                raise ConfigError(file, f"{key}.{k}", "must be at least 5MiB (an S3 limit)")
    elif isinstance(cfg, HTTPRemoteConfig):
        if not cfg.url:
            raise ConfigError(file, f"{key}.url", 'is required for type = "http"')
        if "{path}" not in cfg.url:
            raise ConfigError(file, f"{key}.url", "must contain {path}")
        _check_url(cfg.url, file=file, key=f"{key}.url", template=True)
        for k in ("delete_url", "get_url", "list_url"):
            value = getattr(cfg, k)
            if value:
                if "{path}" not in value:
                    raise ConfigError(file, f"{key}.{k}", "must contain {path}")
                _check_url(value, file=file, key=f"{key}.{k}", template=True)
        if not re.fullmatch(r"[A-Za-z]+", cfg.delete_method):
            raise ConfigError(file, f"{key}.delete_method", "must be an HTTP method such as DELETE")


def missing_secret(cfg: RemoteConfig, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``*_env`` key of ``cfg`` whose environment variable is unset or empty, and that
    variable's name; None when every secret the remote needs is there."""
    wanted: list[tuple[str, str, bool]] = []  # (key, variable, has an inline fallback)
    if isinstance(cfg, WebDAVRemoteConfig) and cfg.password_env:
        wanted.append(("password_env", cfg.password_env, bool(cfg.password)))
    elif isinstance(cfg, HTTPRemoteConfig) and cfg.token_env:
        wanted.append(("token_env", cfg.token_env, False))
    elif isinstance(cfg, S3RemoteConfig):
        wanted += [
            ("access_key_id_env", cfg.access_key_id_env, bool(cfg.access_key_id)),
            ("secret_access_key_env", cfg.secret_access_key_env, bool(cfg.secret_access_key)),
        ]
    for key, var, fallback in wanted:
        if not fallback and not env.get(var):
            return key, var
    return None


def secret_names(config: Config) -> list[str]:
    """The environment variables the folders' remotes read secrets from."""
    names: list[str] = []
    for name in dict.fromkeys(f.remote for f in config.folders.values()):
        cfg = config.remotes.get(name)
        if isinstance(cfg, WebDAVRemoteConfig):
            names.append(cfg.password_env)
        elif isinstance(cfg, HTTPRemoteConfig):
            names.append(cfg.token_env)
        elif isinstance(cfg, S3RemoteConfig):
            names += [cfg.access_key_id_env, cfg.secret_access_key_env, cfg.session_token_env]
    return [n for n in dict.fromkeys(names) if n]


def check_secrets(config: Config, env: Mapping[str, str], *, only: Iterable[str] = ()) -> None:
    """``ConfigError`` naming the first remote (of ``only``, or of every folder) whose secret's
    environment variable is unset or empty: said before any request is sent, not as a 401."""
    names = list(only) or list(dict.fromkeys(f.remote for f in config.folders.values()))
    for name in names:
        cfg = config.remotes.get(name)
        found = missing_secret(cfg, env) if cfg is not None else None
        if found is not None:
            key, var = found
            raise ConfigError(
                str(config.path),
                f"remotes.{name}.{key}",
                f"the environment variable {var} is not set (or is empty)",
            )


def _validate_folder(cfg: FolderConfig, remotes: Mapping[str, RemoteConfig], file: str) -> None:
    key = f"folders.{cfg.name}"
    if cfg.remote not in remotes:
        known = ", ".join(sorted(remotes)) or "none are configured"
        raise ConfigError(file, f"{key}.remote", f"unknown remote {cfg.remote!r} ({known})")
    if not cfg.path.is_absolute():
        raise ConfigError(
            file, f"{key}.path", f"must be an absolute path (or start with ~): {cfg.path}"
        )
    if not cfg.path.exists():
        raise ConfigError(file, f"{key}.path", f"folder does not exist: {cfg.path}")
    if not cfg.path.is_dir():
        raise ConfigError(file, f"{key}.path", f"not a folder: {cfg.path}")
    segments = [s for s in cfg.remote_path.replace("\\", "/").split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise ConfigError(file, f"{key}.remote_path", "must not contain . or .. segments")
    try:
        parse_max_delete(cfg.max_delete)
    except ValueError as e:
        raise ConfigError(file, f"{key}.max_delete", str(e)) from None
    try:
        parse_duration(cfg.keep_versions)
    except ValueError as e:
        raise ConfigError(file, f"{key}.keep_versions", str(e)) from None
    if cfg.settle < 0 or cfg.rescan_interval < 0:
        raise ConfigError(file, key, "settle and rescan_interval must not be negative")
    if cfg.remote_poll <= 0:
        raise ConfigError(file, f"{key}.remote_poll", "must be a positive number of seconds")
    rcfg = remotes[cfg.remote]
    if cfg.direction == "both" and isinstance(rcfg, HTTPRemoteConfig) and not rcfg.list_url:
        why = f"needs a remote that can list its files; remote {cfg.remote!r} has no list_url"
        raise ConfigError(file, f"{key}.direction", why)
    from syncapp.ignore import IgnoreRules

    try:
        IgnoreRules(cfg.ignore)
    except ValueError as e:
        raise ConfigError(file, f"{key}.ignore", str(e)) from None


def parse_config(text: str, file: str | os.PathLike[str]) -> Config:
    fname = str(file)
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(fname, f"line {e.line}", f"not valid TOML: {e}") from None
    top = doc.unwrap()
    allowed = {"remotes", "folders", "bwlimit"}
    for key in top:
        if key not in allowed:
            raise ConfigError(fname, key, "unknown key (known: remotes, folders, bwlimit)")
    bwlimit = top.get("bwlimit", "")
    if not isinstance(bwlimit, str):
        raise ConfigError(fname, "bwlimit", 'must be a string such as "2MiB/s"')
    try:
        parse_rate(bwlimit)
    except ValueError as e:
        raise ConfigError(fname, "bwlimit", str(e)) from None

    remotes: dict[str, RemoteConfig] = {}
    raw_remotes = top.get("remotes", {})
    if not isinstance(raw_remotes, dict):
        raise ConfigError(fname, "remotes", "must be a table of [remotes.NAME] sections")
    for name, table in raw_remotes.items():
        key = f"remotes.{name}"
        if not _NAME_RE.match(name):
            raise ConfigError(fname, key, "names use letters, digits, _ . - only")
        if not isinstance(table, dict):
            raise ConfigError(fname, key, "must be a table")
        rtype = table.get("type")
        if rtype not in REMOTE_TYPES:
            raise ConfigError(
                fname, f"{key}.type", f"must be one of {', '.join(REMOTE_TYPES)}, not {rtype!r}"
            )
        body = {k: v for k, v in table.items() if k != "type"}
        cfg = _build(REMOTE_MODELS[rtype], body, file=fname, prefix=key, name=name, type=rtype)
        _validate_remote(cfg, fname)
        remotes[name] = cfg

    folders: dict[str, FolderConfig] = {}
    raw_folders = top.get("folders", {})
    if not isinstance(raw_folders, dict):
        raise ConfigError(fname, "folders", "must be a table of [folders.NAME] sections")
    for name, table in raw_folders.items():
        key = f"folders.{name}"
        if not _NAME_RE.match(name):
            raise ConfigError(fname, key, "names use letters, digits, _ . - only")
        if not isinstance(table, dict):
            raise ConfigError(fname, key, "must be a table")
        fcfg = _build(FolderConfig, table, file=fname, prefix=key, name=name)
        fcfg = dataclasses.replace(fcfg, remote_path=fcfg.remote_path.strip("/"))
        _validate_folder(fcfg, remotes, fname)
        folders[name] = fcfg
    _check_overlaps(folders, fname)
    return Config(path=Path(file), remotes=remotes, folders=folders, bwlimit=bwlimit, document=doc)


def _check_overlaps(folders: Mapping[str, FolderConfig], file: str) -> None:
    seen: list[FolderConfig] = []
    for f in folders.values():
        for g in seen:
            if f.remote != g.remote:
                continue
            a, b = f.remote_path, g.remote_path
            if a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b:
                raise ConfigError(
                    file,
                    f"folders.{f.name}.remote_path",
                    f"overlaps folder {g.name!r} on remote {f.remote!r}; "
                    "give each folder its own remote_path",
                )
        seen.append(f)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Find, read and validate the config; ``ConfigError`` on any problem."""
    p = find_config_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(p), "", "config file not found (create it, or pass --config PATH)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), "", f"cannot read: {e}") from None
    return parse_config(text, p)


def save_document(path: Path, document: TOMLDocument) -> None:
    """Write the config atomically, mode 0600 (it may hold a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(tomlkit.dumps(document))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
