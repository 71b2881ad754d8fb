"""Apache httpd 2.4 (mod_dav + mod_dav_fs) and nginx 1.22 (dav + dav-ext) from Debian's packages,
each serving a folder over WebDAV on a free loopback port, in its own process.

Each runs in the foreground from a config file kept in the suite (``conf/apache-dav.conf``,
``conf/nginx-dav.conf``, templated with the port and the paths), as an unprivileged user
(``www-data``) when the tests run as root, the way these servers run in real life: the served
folder and the server's temp and lock directories belong to that user, the test process (root)
reads and writes the storage behind the server's back. What a test writes there itself belongs to
root until ``hand_over()`` gives it to the server's user.

The server's user must reach the folder it serves, and pytest's temp dirs are private (0700, and
every new pytest session on the machine makes ``pytest-of-<user>`` private again). So the served
folder lives in a work directory of the server's own under the system temp dir, and ``root`` (the
path the test asked for) is a symbolic link to it while the server is open; ``close()`` moves the
folder back to ``root``, so the storage outlives the server as with the other servers. The work
directory also holds the config, logs, pid file, lock database and temp dirs (nginx stages PUT
bodies there, on the served folder's filesystem, and renames them into place), and is removed by
``close()``.

Each server also serves a read-only area: ``readonly_url`` (stored in ``readonly_root``) accepts
only GET, HEAD, OPTIONS and PROPFIND, except its subfolder ``writable/``, which is read-write.

The access log records every request; ``mark()`` and ``requests(since)`` let a test count what
syncapp sent (``Request(method, path, status, destination)``, paths decoded).

A missing binary or module skips the test with the reason, except under ``CI=true``, where it
fails it: a CI run must not pass by skipping its servers (tests/servers/install-debian installs
them).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import getpass
import grp
import hashlib
import os
import pwd
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, NoReturn
from urllib.parse import unquote, urlsplit

import pytest

from tests.servers.webdav import (
    Auth,
    ServerProcess,
    rclone_webdav_process,
    wsgidav_process,
)

CONF_DIR = Path(__file__).with_name("conf")
APACHE_BINARY = "apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX_BINARY = "nginx"
NGINX_DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
#: The unprivileged user the servers' workers run as when the tests run as root.
SERVER_USER = "www-data"
READONLY = "readonly"
WRITABLE = "writable"


class Request(NamedTuple):
    """One line of a server's access log."""

    method: str
    path: str  #: decoded URL path, e.g. ``/Docs/fifty dir/``
    status: int
    destination: str | None  #: decoded path of a MOVE/COPY ``Destination`` header


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test (fail it under ``CI=true``): a server it needs is not installed."""
    message = f"{reason} (tests/servers/install-debian installs it)"
    if on_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _binary(name: str) -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def apache_binary() -> str:
    found = _binary(APACHE_BINARY)
    if found is None or not (APACHE_MODULES / "mod_dav_fs.so").exists():
        unavailable("Apache httpd with mod_dav_fs is not installed (Debian package apache2)")
    return found


def nginx_binary() -> str:
    found = _binary(NGINX_BINARY)
    if found is None:
        unavailable("nginx is not installed (Debian package nginx)")
    if not NGINX_DAV_EXT.exists():
        unavailable(f"{NGINX_DAV_EXT} is missing (Debian package libnginx-mod-http-dav-ext)")
    return found


def _run_as() -> tuple[str, str, int, int]:
    """(user, group, uid, gid) the server's workers run as: www-data under root, else us."""
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(SERVER_USER)
            return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name, pw.pw_uid, pw.pw_gid
    uid, gid = os.geteuid(), os.getegid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = getpass.getuser()
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = user
    return user, group, uid, gid


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry both Apache and nginx read (``{SHA}``: no htpasswd binary needed)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def _reachable_by_others(path: Path) -> bool:
    """Whether any user can pass through every folder above ``path`` (search permission)."""
    return all(d.stat().st_mode & stat.S_IXOTH for d in path.resolve().parents)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0 or not path.exists():
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


_GROUPS: set[int] = set()


@atexit.register
def _kill_leftover_groups() -> None:
    # A server is a parent with worker children, all in one process group (its own session).
    for pgid in list(_GROUPS):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


class DavHttpdProcess(ServerProcess):
    """Apache or nginx from a templated config file; see the module's docstring."""

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        template: Path,
        command: list[str],
        auth: Auth | None = None,
    ) -> None:
        super().__init__(name, root, self._argv, auth=auth)
        self.template = template
        self.command = command
        self.user, self.group, self.uid, self.gid = _run_as()
        self.work: Path | None = None
        self.conf: Path | None = None
        self._pgid: int | None = None

    # -- paths --------------------------------------------------------------------------------

    @property
    def access_log(self) -> Path:
        assert self.work is not None, f"{self.name} was never started"
        return self.work / "access.log"

    @property
    def error_log(self) -> Path:
        assert self.work is not None, f"{self.name} was never started"
        return self.work / "error.log"

    @property
    def readonly_url(self) -> str:
        """A read-only collection whose subfolder ``writable/`` is read-write."""
        return f"{self.url}{READONLY}/"

    @property
    def readonly_root(self) -> Path:
        """Where the read-only area is stored (``writable/`` inside it)."""
        assert self.work is not None, f"{self.name} was never started"
        return self.work / READONLY

    # -- the request log ------------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the access log: ``requests(since=mark)`` reads what came after it."""
        self._settle()
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def requests(self, since: int = 0) -> list[Request]:
        """Every request logged after ``since`` (a ``mark()``), oldest first.

        Both servers log a request once it is done with its connection: at once on a kept-alive
        connection (syncapp's), only when the client closes a connection the server is closing.
        """
        self._settle()
        try:
            with self.access_log.open("rb") as fh:
                fh.seek(since)
                data = fh.read()
        except FileNotFoundError:
            return []
        out: list[Request] = []
        for line in data.decode("utf-8", "replace").splitlines():
            # "<status> <METHOD> <target> HTTP/1.1 <Destination or ->"
            parts = line.split(" ")
            if len(parts) < 5 or not parts[0].isdigit():
                continue
            dest = parts[-1]
            destination = None if dest in ("-", "") else unquote(urlsplit(dest).path)
            out.append(Request(parts[1], unquote(urlsplit(parts[2]).path), int(parts[0]),
                               destination))
        return out

    def _settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        # A server logs a request after it has answered it: wait until the log stops growing.
        if self.work is None:
            return
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            try:
                size = self.access_log.stat().st_size
            except FileNotFoundError:
                size = 0
            if size == last:
                return
            last = size
            time.sleep(quiet)

    # -- storage --------------------------------------------------------------------------------

    def hand_over(self, path: Path | None = None) -> None:
        """Give what a test wrote into the storage (``path``, default all of it) to the server's
        user, as if the server had written it."""
        _chown_tree((path or self.root).resolve(), self.uid, self.gid)

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def storage(self) -> Path:
        """The served folder itself (``root`` links to it while the server is open)."""
        assert self.work is not None, f"{self.name} was never started"
        return self.work / "root"

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        first = self.work is None
        if first:
            self._make_work()
        self.hand_over()
        try:
            super().start(timeout)
        except BaseException:
            if first:
                self.close()  # no work dir or link left behind by a server that never ran
            raise

    def _make_work(self) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"syncapp-{self.name}-")).resolve()
        if os.geteuid() == 0 and self.uid != 0 and not _reachable_by_others(work):
            shutil.rmtree(work)
            raise RuntimeError(f"{self.name}: {self.user} cannot reach {work.parent} (TMPDIR)")
        os.chmod(work, 0o711)
        self.work = work
        for sub in ("run", "lock", "client_body_temp", f"{READONLY}/{WRITABLE}"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("lock", "client_body_temp", READONLY):
            _chown_tree(work / sub, self.uid, self.gid)
        if self.auth is not None:
            htpasswd = work / "htpasswd"
            htpasswd.write_text(htpasswd_line(*self.auth))
            os.chmod(htpasswd, 0o640)
            if os.geteuid() == 0:
                os.chown(htpasswd, 0, self.gid)
        # What the test already put at root moves in; root becomes a link to the served folder.
        if self.root.is_dir() and not self.root.is_symlink():
            shutil.move(self.root, self.storage)
        else:
            self.storage.mkdir()
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.root.symlink_to(self.storage, target_is_directory=True)

    def _argv(self, port: int) -> list[str]:
        assert self.work is not None
        auth = ""
        if self.auth is not None:
            auth = AUTH_DIRECTIVES[self.template.name].replace("@WORK@", str(self.work))
        user_line = (
            f"user {self.user} {self.group};" if os.geteuid() == 0 else "# (not root: no user)"
        )
        mime = "/etc/mime.types" if Path("/etc/mime.types").exists() else os.devnull
        text = self.template.read_text()
        for key, value in {
            "@AUTH@": auth,
            "@REQUIRE@": "Require valid-user" if self.auth is not None else "Require all granted",
            "@USER_LINE@": user_line,
            "@PORT@": str(port),
            "@ROOT@": str(self.storage),
            "@WORK@": str(self.work),
            "@USER@": self.user,
            "@GROUP@": self.group,
            "@MIME_TYPES@": mime,
            "@DAV_EXT_MODULE@": str(NGINX_DAV_EXT),
        }.items():
            text = text.replace(key, value)
        self.conf = self.work / self.template.name
        self.conf.write_text(text)
        return [
            arg.replace("@CONF@", str(self.conf)).replace("@WORK@", str(self.work))
            for arg in self.command
        ]

    def _spawn(self, timeout: float) -> bool:
        ok = super()._spawn(timeout)
        if self._proc is not None:
            self._pgid = self._proc.pid  # its own session: the group id is its pid
            _GROUPS.add(self._pgid)
        return ok

    def stop(self) -> None:
        super().stop()
        pgid, self._pgid = self._pgid, None
        if pgid is None:
            return
        # Workers left behind by a parent that did not shut down in time.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _GROUPS.discard(pgid)

    def close(self) -> None:
        super().close()
        work, self.work = self.work, None
        if work is None:
            return
        # The storage goes back where the test asked for it; the rest of the work dir goes.
        if self.root.is_symlink():
            self.root.unlink()
            with contextlib.suppress(FileNotFoundError):
                shutil.move(work / "root", self.root)
        shutil.rmtree(work, ignore_errors=True)

    def _log_text(self) -> str:
        text = super()._log_text()
        if self.work is not None and self.error_log.exists():
            text += "\n" + self.error_log.read_text(errors="replace")[-4000:]
        return text


AUTH_DIRECTIVES = {
    "apache-dav.conf": (
        "    AuthType Basic\n"
        '    AuthName "syncapp tests"\n'
        "    AuthBasicProvider file\n"
        '    AuthUserFile "@WORK@/htpasswd"\n'
    ),
    "nginx-dav.conf": (
        '        auth_basic "syncapp tests";\n        auth_basic_user_file @WORK@/htpasswd;\n'
    ),
}


def apache_dav_process(root: Path, auth: Auth | None = None) -> DavHttpdProcess:
    """An unstarted Apache httpd (mod_dav_fs) serving ``root``."""
    binary = apache_binary()
    return DavHttpdProcess(
        "apache-dav",
        root,
        template=CONF_DIR / "apache-dav.conf",
        command=[binary, "-f", "@CONF@", "-DFOREGROUND"],
        auth=auth,
    )


def nginx_dav_process(root: Path, auth: Auth | None = None) -> DavHttpdProcess:
    """An unstarted nginx (dav + dav-ext) serving ``root``."""
    binary = nginx_binary()
    return DavHttpdProcess(
        "nginx-dav",
        root,
        template=CONF_DIR / "nginx-dav.conf",
        command=[binary, "-c", "@CONF@", "-p", "@WORK@/", "-e", "@WORK@/error.log"],
        auth=auth,
    )


@contextmanager
def apache_dav_server(root: Path, auth: Auth | None = None) -> Iterator[DavHttpdProcess]:
    with apache_dav_process(root, auth) as server:
        yield server


@contextmanager
def nginx_dav_server(root: Path, auth: Auth | None = None) -> Iterator[DavHttpdProcess]:
    with nginx_dav_process(root, auth) as server:
        yield server


#: Every WebDAV server the suite starts, by the short name test ids use.
WEBDAV_PROCESSES: dict[str, Callable[..., ServerProcess]] = {
    "wsgidav": wsgidav_process,
    "rclone": rclone_webdav_process,
    "apache": apache_dav_process,
    "nginx": nginx_dav_process,
}

#: ``ServerProcess.name`` → the short name.
KINDS = {
    "wsgidav": "wsgidav",
    "rclone-webdav": "rclone",
    "apache-dav": "apache",
    "nginx-dav": "nginx",
}


def kind_of(server: ServerProcess) -> str:
    return KINDS[server.name]


@dataclass(frozen=True)
class Facts:
    """What a server does, measured with plain HTTP (``test_server_facts`` in
    tests/integration/test_dav_servers.py keeps this table true)."""

    #: Applies ``X-OC-Mtime`` to the stored file (else the mtime is the upload time).
    keeps_mtime: bool
    #: Answers ``PROPFIND Depth: infinity`` (else 403: list folder by folder).
    depth_infinity: bool
    #: Reports a ``getetag`` for files in PROPFIND.
    file_etags: bool
    #: Refuses a PUT whose ``If-Match`` does not match (412); else ignores the header.
    if_match: bool
    #: Status of ``MOVE /dir`` (a collection without its trailing slash).
    move_collection_without_slash: int
    #: A PUT body is never visible under the file's real name before the upload completes.
    stages_put: bool
    #: PROPFIND listings include names that start with a dot (nginx's dav-ext leaves them out).
    lists_dot_names: bool
    #: A MOVE onto a name with ``?`` or ``;`` lands on that name (stock WsgiDAV decodes the
    #: Destination header before parsing it and lands on the name cut at the ``?``/``;``).
    destination_intact: bool
    #: Seconds within which a same-size change to a file may leave everything the server reports
    #: about it (ETag, getlastmodified) unchanged: a test changing a file behind syncapp's back
    #: waits longer than that after syncapp's upload.
    change_resolution: float
    #: Two writes of one size within one second (the same X-OC-Mtime sent) get different
    #: ETags: Apache's has the mtime in microseconds; rclone's is (the mtime kept, in whole
    #: seconds, and the size), WsgiDAV's (path, whole-second mtime, size); nginx gives none.
    distinct_stamps: bool


EXPECTED: dict[str, Facts] = {
    # ETag inode-mtime-size with whole seconds; syncapp.davserver honours X-OC-Mtime. Stock
    # WsgiDAV (what tests/servers/webdav.py starts unless asked for the patched one).
    "wsgidav": Facts(
        keeps_mtime=True, depth_infinity=True, file_etags=True, if_match=True,
        move_collection_without_slash=201, stages_put=False, lists_dot_names=True,
        destination_intact=False, change_resolution=1.0, distinct_stamps=False,
    ),
    # Writes the body straight into the file (visible once past its buffer).
    "rclone": Facts(
        keeps_mtime=True, depth_infinity=True, file_etags=True, if_match=False,
        move_collection_without_slash=201, stages_put=False, lists_dot_names=True,
        destination_intact=True, change_resolution=0.0, distinct_stamps=False,
    ),
    # mod_dav_fs writes .davfs.tmpXXXX and renames it; ETag size-mtime in microseconds;
    # mod_dir answers a collection URL without its slash with 301 to the slashed URL.
    "apache": Facts(
        keeps_mtime=False, depth_infinity=False, file_etags=True, if_match=True,
        move_collection_without_slash=301, stages_put=True, lists_dot_names=True,
        destination_intact=True, change_resolution=0.0, distinct_stamps=True,
    ),
    # Stages the body in client_body_temp and renames it; no ETags in PROPFIND (dav-ext), only
    # getlastmodified in whole seconds; 400 "is collection" to MOVE without the slash; dot names
    # left out of listings.
    "nginx": Facts(
        keeps_mtime=False, depth_infinity=False, file_etags=False, if_match=False,
        move_collection_without_slash=400, stages_put=True, lists_dot_names=False,
        destination_intact=True, change_resolution=1.0, distinct_stamps=False,
    ),
}

