"""Adding, changing and removing folders and remotes over the control API: the request bodies
both ways (``EngineClient`` sends a form's draft, the server rebuilds it) and the handlers.

Calls (JSON in and out; answers name the config file and the folders that could not open)::

    POST   /v1/folders            {"name": N, "path": P, "remote": R, ...}: add (201)
    PUT    /v1/folders/NAME       change; fields left out keep their values; "name" renames
    DELETE /v1/folders/NAME       stop syncing it and drop it from the config (no file deleted)
    POST   /v1/remotes            {"name": N, "type": T, ...the type's fields}: add (201)
    PUT    /v1/remotes/NAME       change, as for folders
    DELETE /v1/remotes/NAME       409 while a folder uses it

A refused draft answers 422 ``{"error", "key", "problem", "file"}`` with ``key`` the body's
field; an unknown NAME 404; a remote in use 409. Secrets (a WebDAV password, S3 keys) may come
in but never go out: answers describe a remote without them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncapp import configfile
from syncapp.config import Config, RemoteConfig
from syncapp.configedit import (
    REMOTE_FIELDS,
    SECRET_KEYS,
    FolderDraft,
    RemoteDraft,
    default_remote_path,
    stored_path,
)
from syncapp.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from syncapp.engine.api import LocalEngine

API = "/v1"

#: A folder's body fields (besides "name") and what JSON each takes.
_FOLDER_BOOLS = {k for k, t in typing.get_type_hints(FolderDraft).items() if t is bool}
_FOLDER_FIELDS = [f.name for f in dataclasses.fields(FolderDraft) if f.name != "name"]


# -- bodies ---------------------------------------------------------------------------------------


def absolute(path_text: str) -> str:
    """A path as typed, made absolute here (the engine runs in another directory); ``~/…``
    stays as it is, "" stays "" (the engine says what is missing)."""
    return stored_path(path_text) if path_text.strip() else ""


def folder_body(draft: FolderDraft) -> dict[str, Any]:
    body = dataclasses.asdict(draft)
    body["path"] = absolute(draft.path)
    body["ignore"] = list(draft.ignore)
    return body


def remote_body(draft: RemoteDraft) -> dict[str, Any]:
    values = dict(draft.values)
    if draft.type == "local" and "path" in values:
        values["path"] = absolute(values["path"])
    return {
        "name": draft.name,
        "type": draft.type,
        "store_password": draft.store_password,
        **values,
    }


def _path(value: str, key: str, file: Path) -> str:
    # Relative to what? The engine's working directory is nobody's business.
    if value.strip() and not value.strip().startswith("~") and not Path(value).is_absolute():
        raise ConfigError(
            str(file), key, f"must be an absolute path (or start with ~), not {value!r}"
        )
    return value


def _name(body: Mapping[str, Any], default: str, file: Path) -> str:
    name = body.get("name", default)
    if not isinstance(name, str):
        raise ConfigError(str(file), "name", "must be a string")
    return name.strip()


def folder_draft(
    body: Mapping[str, Any], name: str, base: FolderDraft | None, file: Path
) -> FolderDraft:
    """The draft a body describes; fields left out keep ``base``'s values (the folder as it is)
    or, for a new folder, take the defaults."""
    unknown = sorted(set(body) - {"name", *_FOLDER_FIELDS})
    if unknown:
        known = ", ".join(["name", *_FOLDER_FIELDS])
        raise ConfigError(str(file), unknown[0], f"not a folder field (known: {known})")
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key == "name":
            continue
        if key == "ignore":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(str(file), key, "must be a list of patterns")
            values[key] = tuple(value)
        elif key in _FOLDER_BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(str(file), key, "must be true or false")
            values[key] = value
        elif isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            values[key] = str(value)  # as typed: the draft validates it
            if key == "path":
                _path(values[key], key, file)
        else:
            raise ConfigError(str(file), key, "must be a string or a number")
    if base is not None:
        return dataclasses.replace(base, name=name, **values)
    path = values.get("path", "")
    values.setdefault("remote_path", default_remote_path(path))
    return FolderDraft(name=name, **{"path": "", "remote": "", **values})


def remote_draft(
    body: Mapping[str, Any], name: str, base: RemoteDraft | None, file: Path
) -> RemoteDraft:
    """As ``folder_draft``, for a remote: a body may carry its type's ``REMOTE_FIELDS`` and
    ``store_password`` (write the type's secrets into the file)."""
    rtype = body.get("type", base.type if base is not None else "")
    if rtype not in REMOTE_FIELDS:
        raise ConfigError(str(file), "type", f"must be one of {', '.join(REMOTE_FIELDS)}")
    fields = REMOTE_FIELDS[rtype]
    unknown = sorted(set(body) - {"name", "type", "store_password", *fields})
    if unknown:
        known = ", ".join(["name", "type", "store_password", *fields])
        raise ConfigError(str(file), unknown[0], f"not a field of a {rtype} remote ({known})")
    same = base is not None and base.type == rtype
    values = dict(base.values) if base is not None and same else {}
    for key in fields:
        if key in body:
            value = body[key]
            if not isinstance(value, str):
                raise ConfigError(str(file), key, "must be a string")
            values[key] = _path(value, key, file) if (rtype, key) == ("local", "path") else value
    store = body.get("store_password", base.store_password if base is not None and same else False)
    if not isinstance(store, bool):
        raise ConfigError(str(file), "store_password", "must be true or false")
    return RemoteDraft(name, rtype, values, store)


# -- answers --------------------------------------------------------------------------------------


def remote_summary(cfg: RemoteConfig) -> dict[str, Any]:
    """A remote as answers show it: its form's fields without the secrets."""
    secrets = SECRET_KEYS.get(cfg.type, ())
    out: dict[str, Any] = {"name": cfg.name, "type": cfg.type}
    for key in REMOTE_FIELDS.get(cfg.type, ()):
        if key not in secrets:
            out[key] = getattr(cfg, key, "")
    out["secrets_stored"] = any(getattr(cfg, key, "") for key in secrets)
    return out


def _answer(config: Config, errors: Mapping[str, str], **what: Any) -> dict[str, Any]:
    return {**what, "config": str(config.path), "errors": dict(errors)}


# -- handlers -------------------------------------------------------------------------------------


class ConfigRoutes:
    """The handlers, served by ``syncapp.engine.control.ControlServer``."""

    def __init__(self, api: LocalEngine) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        from aiohttp import web

        return [
            web.post(f"{API}/folders", self._add_folder),
            web.put(f"{API}/folders/{{name}}", self._change_folder),
            web.delete(f"{API}/folders/{{name}}", self._remove_folder),
            web.post(f"{API}/remotes", self._add_remote),
            web.put(f"{API}/remotes/{{name}}", self._change_remote),
            web.delete(f"{API}/remotes/{{name}}", self._remove_remote),
        ]

    async def _on_disk(self) -> Config:
        # What fields left out keep: the file as it is now, as the edit itself will read it.
        return await asyncio.to_thread(configfile.current, self.api.sync.config)

    def _errors(self) -> dict[str, str]:
        return dict(self.api.sync.open_errors)

    async def _add_folder(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        config = await self._on_disk()
        draft = folder_draft(body, _name(body, "", config.path), None, config.path)
        new = await self.api.save_folder(draft, None)
        return _folder_reply(new, draft.name, self._errors(), 201)

    async def _change_folder(self, request: web.Request) -> web.Response:
        editing = request.match_info["name"]
        body = await json_body(request)
        config = await self._on_disk()
        cfg = config.folders.get(editing)
        base = FolderDraft.from_config(cfg) if cfg is not None else None
        draft = folder_draft(body, _name(body, editing, config.path), base, config.path)
        new = await self.api.save_folder(draft, editing)
        return _folder_reply(new, draft.name, self._errors())

    async def _remove_folder(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        new = await self.api.remove_folder(name)
        return _json(_answer(new, self._errors(), removed=name))

    async def _add_remote(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        config = await self._on_disk()
        draft = remote_draft(body, _name(body, "", config.path), None, config.path)
        new = await self.api.save_remote(draft, None)
        return _remote_reply(new, draft.name, self._errors(), 201)

    async def _change_remote(self, request: web.Request) -> web.Response:
        editing = request.match_info["name"]
        body = await json_body(request)
        config = await self._on_disk()
        cfg = config.remotes.get(editing)
        base = RemoteDraft.from_config(cfg) if cfg is not None else None
        draft = remote_draft(body, _name(body, editing, config.path), base, config.path)
        new = await self.api.save_remote(draft, editing)
        return _remote_reply(new, draft.name, self._errors())

    async def _remove_remote(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        new = await self.api.remove_remote(name)
        return _json(_answer(new, self._errors(), removed=name))


def _folder_reply(
    config: Config, name: str, errors: Mapping[str, str], status: int = 200
) -> web.Response:
    folder = folder_body(FolderDraft.from_config(config.folders[name]))
    return _json(_answer(config, errors, folder=folder), status)


def _remote_reply(
    config: Config, name: str, errors: Mapping[str, str], status: int = 200
) -> web.Response:
    return _json(_answer(config, errors, remote=remote_summary(config.remotes[name])), status)


def _json(data: object, status: int = 200) -> web.Response:
    from aiohttp import web

    return web.json_response(data, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a ValueError saying what is wrong with it."""
    try:
        data = await request.json()
    except ValueError as e:
        raise ValueError(f"the body is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
