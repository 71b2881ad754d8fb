"""Right on the WebDAV servers people run (issue 11): WsgiDAV, ``rclone serve webdav``, Apache httpd
(mod_dav_fs) and nginx (dav + dav-ext), each started on loopback by this test.

What each server can do is a table of facts measured on the servers themselves
(``tests.servers.dav_httpd.EXPECTED``, kept true by ``test_server_facts`` with plain HTTP), never
syncapp's own flags. Requests are counted
from the server's access log (Apache, nginx) or, for servers without one, by a pass-through proxy
in front of them (tests/servers/faultproxy.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from syncapp.config import parse_config
from syncapp.engine import SyncEngine
from tests.helpers import STAGING, VERSIONS, staging_leftovers, syncapp, tree, write_tree
from tests.servers import dav_httpd
from tests.servers.dav_httpd import EXPECTED, WEBDAV_PROCESSES, DavHttpdProcess, Facts, Request
from tests.servers.faultproxy import FaultProxy
from tests.servers.webdav import Auth, ServerProcess

SERVERS = list(WEBDAV_PROCESSES)
HTTPD = ["apache", "nginx"]


PASSWORD = "dav-Pa55word!"
AUTH: Auth = ("alice", PASSWORD)
CONFLICT = ".conflict-"


@dataclass
class Dav:
    """One WebDAV server of this test's own, and how to count what reaches it."""

    kind: str
    server: ServerProcess
    #: In front of servers without an access log, to count requests; None for Apache and nginx.
    proxy: FaultProxy | None

    @property
    def facts(self) -> Facts:
        return EXPECTED[self.kind]

    @property
    def url(self) -> str:
        """The URL syncapp is given: the proxy's where there is one."""
        return self.proxy.url if self.proxy is not None else self.server.url

    @property
    def storage(self) -> Path:
        return self.server.root

    def mark(self) -> int:
        if self.proxy is not None:
            return len(self.proxy.records())
        assert isinstance(self.server, DavHttpdProcess)
        return self.server.mark()

    def requests(self, since: int = 0) -> list[Request]:
        """Requests after ``mark()`` (status 0 where only the proxy saw them)."""
        if self.proxy is not None:
            return [
                Request(r.method, r.path, 0, r.destination) for r in self.proxy.records()[since:]
            ]
        assert isinstance(self.server, DavHttpdProcess)
        return self.server.requests(since)

    def write_behind(self, rel: str, data: bytes) -> None:
        """Someone else changes the storage directly, as the server's user."""
        path = self.storage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.server.hand_over()
        if self.kind == "rclone":
            time.sleep(0.2)  # past rclone's directory cache (100 ms in tests/servers/webdav.py)

    def config(
        self,
        tmp_path: Path,
        folder: Path,
        *,
        url: str | None = None,
        remote_path: str = "Docs",
        remote_extra: str = "",
        folder_extra: str = "",
    ) -> Path:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[remotes.r]\ntype = "webdav"\nurl = "{url or self.url}"\n{remote_extra}\n'
            f'[folders.docs]\npath = "{folder}"\nremote = "r"\nremote_path = "{remote_path}"\n'
            f"{folder_extra}",
            encoding="utf-8",
        )
        return cfg


def _dav(kind: str, tmp_path: Path, auth: Auth | None = None) -> Iterator[Dav]:
    with WEBDAV_PROCESSES[kind](tmp_path / f"dav-{kind}", auth) as server:
        if isinstance(server, DavHttpdProcess):
            yield Dav(kind, server, None)
            return
        with FaultProxy(server.port) as proxy:
            yield Dav(kind, server, proxy)


@pytest.fixture(params=SERVERS)
def dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dav]:
    yield from _dav(request.param, tmp_path)


@pytest.fixture(params=HTTPD)
def httpd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dav]:
    yield from _dav(request.param, tmp_path)


@pytest.fixture(params=SERVERS)
def auth_dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dav]:
    yield from _dav(request.param, tmp_path, AUTH)


def run_once(cfg: Path, *args: str, env: dict[str, str] | None = None) -> str:
    res = syncapp("--config", str(cfg), "run", "--once", *args, env=env)
    assert res.returncode == 0, res.stderr + res.stdout[-3000:]
    return res.stdout


def conflict_copies(root: Path) -> list[str]:
    return sorted(p for p in tree(root, skip_reserved=False) if CONFLICT in os.path.basename(p))


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uploads_of(requests: list[Request], paths: set[str]) -> list[Request]:
    """Requests that write one of ``paths`` (URL paths): a PUT to it, or a MOVE/COPY onto it."""
    return [
        r
        for r in requests
        if (r.method == "PUT" and r.path in paths)
        or (r.method in ("MOVE", "COPY") and r.destination in paths)
    ]


def not_probes(requests: list[Request]) -> list[Request]:
    """Leaves out requests on syncapp's own probe names (``.syncapp-tmp-…-probe…``)."""
    return [r for r in requests if "-probe" not in r.path]


# -- the servers themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
def test_server_facts(kind: str, tmp_path: Path) -> None:
    """EXPECTED is what the servers really do (plain HTTP, no syncapp)."""
    facts = EXPECTED[kind]
    with WEBDAV_PROCESSES[kind](tmp_path / "dav") as server, httpx.Client(timeout=20) as c:
        u, root = server.url, server.root
        assert c.put(u + "f.txt", content=b"hello", headers={"X-OC-Mtime": "1000000000"}).is_success
        assert (int((root / "f.txt").stat().st_mtime) == 1_000_000_000) is facts.keeps_mtime
        assert c.request("MKCOL", u + "d/").status_code == 201
        assert c.put(u + "d/x", content=b"x").is_success
        deep = c.request("PROPFIND", u, headers={"Depth": "infinity"})
        assert deep.status_code == (207 if facts.depth_infinity else 403)
        assert c.put(u + "d/.dot", content=b"dot").is_success
        listing = c.request("PROPFIND", u + "d/", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert ("getetag>" in listing.text) is facts.file_etags
        assert ("/d/.dot<" in listing.text) is facts.lists_dot_names
        wrong = c.put(u + "f.txt", content=b"zz", headers={"If-Match": '"not-the-etag"'})
        assert (wrong.status_code == 412) is facts.if_match
        move = c.request("MOVE", u + "d", headers={"Destination": u + "e"})
        assert move.status_code == facts.move_collection_without_slash
        if move.status_code in (301, 308):
            assert move.headers["location"].endswith("/d/")

        # Half a body sent: is anything under the real name yet?
        half, go = threading.Event(), threading.Event()
        first = 4 * 1024 * 1024

        def body() -> Iterator[bytes]:
            yield b"a" * first
            half.set()
            go.wait(10)
            yield b"b" * 1024

        done: list[httpx.Response] = []
        put = threading.Thread(
            target=lambda: done.append(
                httpx.put(u + "big.bin", content=body(), timeout=20,
                          headers={"Content-Length": str(first + 1024)})
            )
        )
        put.start()
        try:
            assert half.wait(10)
            time.sleep(0.3)
            visible = (root / "big.bin").exists()
        finally:
            go.set()
            put.join()
        assert done and done[0].is_success
        assert visible is not facts.stages_put
        assert (root / "big.bin").stat().st_size == first + 1024

        # A MOVE onto "what?": does it land there, or on "what" (stock WsgiDAV)?
        assert c.put(u + "what", content=b"precious").is_success
        assert c.put(u + "src", content=b"moved").is_success
        onto = c.request("MOVE", u + "src", headers={"Destination": u + "what%3F"})
        assert onto.is_success
        intact = (root / "what?").exists() and (root / "what").read_bytes() == b"precious"
        assert intact is facts.destination_intact


def test_missing_server_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dav_httpd, "APACHE_BINARY", "syncapp-test-no-such-apache2")
    monkeypatch.setattr(dav_httpd, "NGINX_BINARY", "syncapp-test-no-such-nginx")
    for factory in (dav_httpd.apache_dav_process, dav_httpd.nginx_dav_process):
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="install-debian"):
            factory(Path("unused"))
        monkeypatch.delenv("CI")
        with pytest.raises(pytest.skip.Exception, match="not installed"):
            factory(Path("unused"))


# -- no false conflicts -------------------------------------------------------------------------


async def test_200_edits_make_no_conflict_copy(tmp_path: Path, dav: Dav) -> None:
    """One synced file edited 200 times: 6 with ``run --once`` in between, 194 under a live
    engine in bursts (some saves land while the previous one uploads). No conflict copy."""
    rnd = random.Random(11)
    folder = tmp_path / "docs"
    target = folder / "notes.txt"
    write_tree(folder, {"notes.txt": "line 0\n", "other.txt": "untouched"})
    # A short settle time: in a burst, uploads start between saves and later saves land while
    # they run.
    cfg = dav.config(tmp_path, folder, folder_extra="settle = 0.01\n")
    remote = dav.storage / "Docs"
    run_once(cfg)
    edits = 0

    def edit() -> None:
        nonlocal edits
        edits += 1
        how = edits % 3
        if how == 0:  # append
            with target.open("a") as fh:
                fh.write(f"line {edits}\n")
        elif how == 1:  # rewrite, same size as before
            old = target.read_bytes()
            target.write_bytes(rnd.randbytes(len(old)))
        else:  # rewrite, another size
            target.write_bytes(f"rewritten {edits}\n".encode() * rnd.randint(1, 50))
        if edits % 2:
            # Saved a while before the sync sees it (or by a tool that keeps timestamps, like
            # cp -p or rsync -t): the local mtime is far from the server's upload time.
            past = time.time() - rnd.uniform(5, 3600)
            os.utime(target, (past, past))

    for _ in range(6):
        edit()
        out = run_once(cfg)
        assert "conflict" not in out, out
        assert (remote / "notes.txt").read_bytes() == target.read_bytes()

    config = parse_config(cfg.read_text(), cfg)
    async with SyncEngine(config, live=True) as engine:
        await engine.wait_idle()
        for burst in [24] * 8 + [2]:
            for _ in range(burst):
                edit()
                await asyncio.sleep(rnd.uniform(0, 0.02))
            deadline = time.monotonic() + 30
            # (A replace by MOVE may leave the name absent for a moment: WsgiDAV, Apache.)
            while read_or_none(remote / "notes.txt") != target.read_bytes():
                assert time.monotonic() < deadline, "the live engine did not catch up"
                await asyncio.sleep(0.05)
        await engine.wait_idle()
    assert edits == 200
    out = run_once(cfg)
    assert "conflict" not in out, out
    assert conflict_copies(folder) == []
    assert conflict_copies(dav.storage) == []
    assert (remote / "notes.txt").read_bytes() == target.read_bytes()
    assert tree(remote) == tree(folder, synced_only=True)


@pytest.mark.parametrize("change", ["same size, on the server's disk", "other size, by HTTP PUT"])
def test_real_remote_change_makes_exactly_one_conflict_copy(
    tmp_path: Path, dav: Dav, change: str
) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {"report.txt": "ours, v1", "plain.txt": "plain"})
    cfg = dav.config(tmp_path, folder)
    remote = dav.storage / "Docs"
    run_once(cfg)
    # Later than the upload by more than what can be told apart: the server's own resolution,
    # and syncapp's, which is one second where it compares times (one request per file buys
    # no ETag read back after the upload; a same-second edit is kept as a version instead).
    time.sleep(max(dav.facts.change_resolution, 1.0) + 0.1)
    if change.startswith("same size"):
        theirs = b"THEIRS!!"
        assert len(theirs) == len(b"ours, v1")
        dav.write_behind("Docs/report.txt", theirs)
    else:
        theirs = b"theirs: changed by someone else, longer"
        resp = httpx.put(dav.server.url + "Docs/report.txt", content=theirs, timeout=10)
        assert resp.is_success, resp
    (folder / "report.txt").write_text("ours, v2 after their change")
    (folder / "plain.txt").write_text("plain, edited")
    out = run_once(cfg)
    copies = conflict_copies(folder)
    assert len(copies) == 1, out
    assert (folder / copies[0]).read_bytes() == theirs
    assert copies[0].startswith("report.conflict-")
    assert (remote / "report.txt").read_text() == "ours, v2 after their change"
    assert (remote / "plain.txt").read_text() == "plain, edited"
    assert conflict_copies(remote) == copies
    assert tree(remote) == tree(folder, synced_only=True)


# -- folders ------------------------------------------------------------------------------------


def test_folder_rename_is_one_move_and_delete_keeps_versions(tmp_path: Path, dav: Dav) -> None:
    folder = tmp_path / "docs"
    fifty = {f"fifty dir/file {i:02d}.txt": f"content {i}" for i in range(50)}
    write_tree(folder, {**fifty, "top.txt": "top"})
    cfg = dav.config(tmp_path, folder, folder_extra='max_delete = "100%"\n')
    remote = dav.storage / "Docs"
    run_once(cfg)
    assert tree(remote) == tree(folder)

    mark = dav.mark()
    (folder / "fifty dir").rename(folder / "renamed dir")
    run_once(cfg)
    assert tree(remote) == tree(folder)
    sent = not_probes(dav.requests(mark))
    moves = [r for r in sent if r.method == "MOVE"]
    assert len(moves) == 1, sent
    assert moves[0].path.rstrip("/") == "/Docs/fifty dir", moves
    assert (moves[0].destination or "").rstrip("/") == "/Docs/renamed dir", moves
    assert [r for r in sent if r.method == "PUT"] == []
    if moves[0].status:
        assert moves[0].status in (201, 204), moves

    shutil.rmtree(folder / "renamed dir")
    run_once(cfg)
    assert not (remote / "renamed dir").exists()
    assert tree(remote) == tree(folder) == {"top.txt": sha(b"top")}
    kept = set(tree(remote / VERSIONS, skip_reserved=False).values())
    assert {sha(v.encode()) for v in fifty.values()} <= kept
    assert staging_leftovers(dav.storage) == []


# -- where syncapp may write --------------------------------------------------------------------


def test_read_only_root_with_writable_remote_path(tmp_path: Path, httpd: Dav) -> None:
    """The URL's root takes only GET/HEAD/OPTIONS/PROPFIND; ``remote_path`` is writable."""
    server = httpd.server
    assert isinstance(server, DavHttpdProcess)
    folder = tmp_path / "docs"
    write_tree(folder, {"a?b;c.txt": "odd name", "plain.txt": "plain", "sub/x;y?.txt": "sub"})
    cfg = httpd.config(tmp_path, folder, url=server.readonly_url, remote_path=dav_httpd.WRITABLE)
    run_once(cfg)
    stored = server.readonly_root
    assert tree(stored / dav_httpd.WRITABLE) == tree(folder)
    assert (stored / dav_httpd.WRITABLE / "a?b;c.txt").read_text() == "odd name"
    assert sorted(os.listdir(stored)) == [dav_httpd.WRITABLE]
    assert staging_leftovers(stored) == []
    # No write was tried outside remote_path (probes included).
    inside = f"/{dav_httpd.READONLY}/{dav_httpd.WRITABLE}/"
    reads = ("GET", "HEAD", "OPTIONS", "PROPFIND")
    writes = [r for r in server.requests() if r.method not in reads]
    outside = [
        r
        for r in writes
        if not r.path.startswith(inside) or not (r.destination or inside).startswith(inside)
    ]
    assert outside == []


def _old_local_and_fresh_remote_copies(
    dav: Dav, folder: Path, local: dict[str, str], remote: dict[str, str]
) -> None:
    """Local files from last month; the remote filled today (a copy that did not keep times)."""
    write_tree(folder, local)
    month_ago = time.time() - 30 * 86400
    for i, rel in enumerate(sorted(local)):
        os.utime(folder / rel, (month_ago + i, month_ago + i))
    write_tree(dav.storage / "Docs", remote)
    dav.server.hand_over()
    if dav.kind == "rclone":
        time.sleep(0.2)  # past rclone's directory cache


def test_first_run_against_filled_remote_uploads_nothing_identical(
    tmp_path: Path, dav: Dav
) -> None:
    folder = tmp_path / "docs"
    same = {f"{d}/file {i}.txt": f"same content {d} {i}" for d in ("a", "b c") for i in range(15)}
    _old_local_and_fresh_remote_copies(dav, folder, {**same, "only here.txt": "new"}, same)
    cfg = dav.config(tmp_path, folder)
    mark = dav.mark()
    run_once(cfg)
    sent = dav.requests(mark)
    assert uploads_of(sent, {f"/Docs/{p}" for p in same}) == []
    remote = dav.storage / "Docs"
    assert tree(remote) == tree(folder, synced_only=True)
    assert conflict_copies(folder) == conflict_copies(dav.storage) == []
    # And the state now knows them all: nothing to do.
    mark = dav.mark()
    out = run_once(cfg, "--json")
    assert '"JobFinished"' not in out
    assert [r for r in dav.requests(mark) if r.method in ("PUT", "MOVE", "COPY")] == []


def test_first_run_never_loses_a_differing_remote_file(tmp_path: Path, dav: Dav) -> None:
    folder = tmp_path / "docs"
    _old_local_and_fresh_remote_copies(
        dav, folder, {"differs.txt": "the local version"}, {"differs.txt": "the remote's version"}
    )
    run_once(dav.config(tmp_path, folder))
    remote = dav.storage / "Docs"
    assert tree(remote) == tree(folder, synced_only=True)
    # Kept somewhere: a version on the remote, or a conflict copy.
    everything = set(tree(remote, skip_reserved=False).values()) | set(tree(folder).values())
    assert sha(b"the remote's version") in everything
    assert sha(b"the local version") in everything


def test_requests_per_new_file_and_none_to_write_when_nothing_changed(
    tmp_path: Path, dav: Dav
) -> None:
    """One request per new file where the server stages uploads itself, PUT + MOVE where a
    partial body would be visible, plus a few for listing; a run with nothing to do writes
    nothing (no probe again)."""
    folder = tmp_path / "docs"
    write_tree(folder, {"new/first.txt": "first"})
    cfg = dav.config(tmp_path, folder)
    run_once(cfg)
    n = 40
    write_tree(folder, {f"new/file {i}.txt": f"new file {i}" for i in range(n)})
    mark = dav.mark()
    run_once(cfg)
    assert tree(dav.storage / "Docs") == tree(folder)
    sent = not_probes(dav.requests(mark))
    per_file = 1 if dav.facts.stages_put else 2
    puts = [r for r in sent if r.method == "PUT"]
    assert len(puts) == n, sent
    if dav.facts.stages_put:
        staged = [r for r in puts if STAGING in r.path]
        assert not staged, "PUT to a temporary name on a server that stages uploads itself"
    assert len(sent) <= n * per_file + 8, [(r.method, r.path) for r in sent]

    # What a process learned about the server is kept: a run with nothing to do only reads.
    mark = dav.mark()
    run_once(cfg)
    assert [r for r in dav.requests(mark) if r.method not in ("PROPFIND", "OPTIONS", "HEAD")] == []


# -- configuration errors -----------------------------------------------------------------------


def test_unset_or_empty_password_env_is_one_line_exit_2_and_no_request(
    tmp_path: Path, auth_dav: Dav, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = "SYNCAPP_TEST_DAV_PASSWORD_NOT_SET"
    monkeypatch.delenv(var, raising=False)
    folder = tmp_path / "docs"
    write_tree(folder, {"a.txt": "a"})
    cfg = auth_dav.config(
        tmp_path, folder, remote_extra=f'username = "alice"\npassword_env = "{var}"\n'
    )
    mark = auth_dav.mark()
    for env in ({}, {var: ""}):
        res = syncapp("--config", str(cfg), "run", "--once", env=env)
        lines = (res.stdout + res.stderr).strip().splitlines()
        assert res.returncode == 2, res.stdout + res.stderr
        assert len(lines) == 1 and var in lines[0], lines
    assert auth_dav.requests(mark) == []
    assert not any(auth_dav.storage.iterdir())
