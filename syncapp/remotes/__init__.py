"""Remote backends behind one contract (``base.Remote``); ``open_remote`` picks one from config."""

from __future__ import annotations

from collections.abc import Mapping

from syncapp.config import (
    HTTPRemoteConfig,
    LocalRemoteConfig,
    RemoteConfig,
    S3RemoteConfig,
    WebDAVRemoteConfig,
)
from syncapp.remotes.base import Capabilities, PutResult, Remote, RemoteEntry, join, parent

__all__ = [
    "Capabilities",
    "PutResult",
    "Remote",
    "RemoteEntry",
    "join",
    "open_remote",
    "parent",
]


def open_remote(cfg: RemoteConfig, *, env: Mapping[str, str] | None = None) -> Remote:
    """An unopened backend for ``cfg``; use it as ``async with open_remote(cfg) as remote``.

    Secrets named by ``*_env`` keys are read from ``env`` (default: ``os.environ``) here, once.
    """
    import logging
    import os

    environ = os.environ if env is None else env
    if not cfg.verify_tls:
        logging.getLogger("syncapp").warning(
            "remote %s: TLS certificate verification is OFF (verify_tls = false); "
            "anyone on the network path can read and change what is synced",
            cfg.name,
        )
    if isinstance(cfg, LocalRemoteConfig):
        from syncapp.remotes.local import LocalRemote

        return LocalRemote(cfg)
    if isinstance(cfg, WebDAVRemoteConfig):
        from syncapp.remotes.webdav import WebDAVRemote

        return WebDAVRemote(cfg, environ)
    if isinstance(cfg, S3RemoteConfig):
        from syncapp.remotes.s3 import S3Remote

        return S3Remote(cfg, environ)
    if isinstance(cfg, HTTPRemoteConfig):
        from syncapp.remotes.http import HTTPRemote

        return HTTPRemote(cfg, environ)
    raise ValueError(f"unknown remote type {cfg.type!r}")
