"""The details list asks the engine for a page: at most the rows it shows, with exact counts of
every status, filtered by the engine once the folder holds more than a page; against a real
background engine, over the control socket."""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import Input, Label

from syncapp import daemon
from syncapp.config import load_config
from syncapp.engine.client import EngineClient
from syncapp.engine.control import socket_path
from syncapp.engine.pathpage import PathQuery, page_of, select
from syncapp.engine.state import Pending, StateDB
from syncapp.tui.app import SyncApp
from syncapp.tui.detail import PAGE_AHEAD, PAGE_ROWS, FolderDetailScreen
from tests.helpers import config_text, syncapp, write_tree
from tests.tui.conftest import wait_for

LINKS = 650
FAILED = 2


def _state() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "syncapp" / "state.db"


@pytest.fixture
def many_pending(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder whose paths not in sync outnumber a page: symbolic links (skipped) and files a
    directory on the remote is in the way of (failed); two files sync. (config, remote)."""
    folder, remote = tmp_path / "docs", tmp_path / "remote"
    write_tree(folder, {"a.txt": "alpha", "b.txt": "beta"})
    for i in range(FAILED):
        (remote / f"docs/report-{i}.txt/in the way").mkdir(parents=True)
        (folder / f"report-{i}.txt").write_text("quarterly")
    (folder / "links").mkdir()
    for i in range(LINKS):
        (folder / f"links/link-{i:04d}").symlink_to(folder / "a.txt")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(f'[remotes.r]\ntype = "local"\npath = "{remote}"\n', {"docs": folder})
    )
    yield cfg, remote / "docs"
    syncapp("--config", str(cfg), "stop", timeout=90)


def _request(sock: Path, path: str) -> Any:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", data
    return json.loads(body)


def summary(app: SyncApp) -> str:
    return str(app.screen.query_one("#detail-summary", Label).content)


async def test_details_of_a_big_folder_come_a_page_at_a_time_with_exact_counts(
    many_pending: tuple[Path, Path],
) -> None:
    cfg, remote = many_pending

    def start() -> str | None:
        out = io.StringIO()
        return None if daemon.start(cfg, _state(), out) == 0 else out.getvalue()

    # Every answer to /pending the UI gets over the socket, as rows counted in its JSON.
    answered: list[int] = []

    async def count_rows(resp: httpx.Response) -> None:
        if resp.url.path.endswith("/pending"):
            await resp.aread()
            answered.append(len(resp.json()["rows"]))

    client = EngineClient(_state(), start)
    app = SyncApp(load_config(cfg), config_path=cfg, engine_factory=lambda _c: client)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.attached, "attached")
        assert client._http is not None
        client._http.event_hooks["response"].append(count_rows)
        want = f"{FAILED:,} failed · {LINKS:,} skipped"
        await wait_for(pilot, lambda: (remote / "a.txt").exists(), "a.txt synced")

        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, FolderDetailScreen)
        table = screen.table
        await wait_for(pilot, lambda: summary(app).startswith(want), "exact counts")
        assert table.row_count == PAGE_ROWS
        assert f"the first {PAGE_ROWS:,} shown" in summary(app)
        assert [str(table.get_row_at(i)[1]) for i in range(FAILED + 1)] == [
            *["failed"] * FAILED,
            "skipped",
        ]
        assert answered == [PAGE_ROWS] * len(answered)  # never the whole list
        # Down towards the end of the page: the next page comes.
        await pilot.press(*["pagedown"] * ((PAGE_ROWS - PAGE_AHEAD) // 10))  # 10 rows each
        await wait_for(pilot, lambda: table.row_count == 2 * PAGE_ROWS, "the next page")
        assert table.cursor_row == PAGE_ROWS - PAGE_AHEAD
        assert f"the first {2 * PAGE_ROWS:,} shown" in summary(app)

        # More rows than a page: the engine filters (exact counts stay).
        field = screen.query_one("#filter", Input)
        await pilot.press(*"LINK-012")
        await wait_for(pilot, lambda: table.row_count == 10, "ten links match")
        assert field.value == "LINK-012"
        assert summary(app) == f"{want} — 10 matches"
        assert str(table.get_row_at(0)[0]) == "links/link-0120"
        await pilot.press("ctrl+u")
        await wait_for(pilot, lambda: table.row_count == PAGE_ROWS, "unfiltered again")

        # Synced files too (ctrl+t): they come after every path not in sync.
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "2 in sync" in summary(app), "synced files counted")
        await pilot.press(*"b.txt")
        await wait_for(pilot, lambda: table.row_count == 1, "b.txt found")
        assert str(table.get_row_at(0)[1]) == "in sync"
        assert max(answered) == 2 * PAGE_ROWS
        await pilot.press("escape")

        # Opened again: the same screen (kept), as if new: no filter, the paths not in sync.
        await pilot.press("enter")
        assert app.screen is screen
        assert field.value == "" and app.focused is field
        await wait_for(pilot, lambda: summary(app).startswith(want), "counts again")
        assert table.row_count == PAGE_ROWS and "in sync" not in summary(app)
        await pilot.press("escape")
        await pilot.press("q")

    # Over the socket by hand: the limit, the offset (across into the synced files), the counts.
    sock = socket_path(_state())
    page = _request(sock, "/v1/folders/docs/pending?limit=7&offset=3")
    assert len(page["rows"]) == 7
    assert page["counts"] == {"failed": FAILED, "skipped": LINKS}
    assert page["matching"] == FAILED + LINKS
    assert page["rows"][0]["path"] == "links/link-0001"
    page = _request(sock, f"/v1/folders/docs/pending?everything=1&offset={FAILED + LINKS - 1}")
    assert [r["path"] for r in page["rows"]] == [f"links/link-{LINKS - 1:04d}", "a.txt", "b.txt"]
    assert page["counts"]["in sync"] == 2
    whole = _request(sock, "/v1/folders/docs/pending")
    assert len(whole["rows"]) == FAILED + LINKS


def test_the_engine_and_a_view_page_alike(tmp_path: Path) -> None:
    """``select`` (SQL, in the engine) and ``page_of`` (a view's rows at hand) agree on order,
    filter (any case, not only ASCII) and counts."""
    state = StateDB(tmp_path / "state.db")
    rows = [
        Pending("Überweisung.pdf", "failed", "HTTP 507"),
        Pending("b/queued.txt", "queued", "queued for upload"),
        Pending("a/later.txt", "settling", "still being written"),
        Pending("z.txt", "retrying", "waiting to retry after: ÜBER the quota", 2, 5.0),
        Pending("n.txt", "news", "a word from a newer version"),
        Pending("a/queued.txt", "queued", "queued for upload"),
    ]
    state.set_pending_many("docs", rows)
    for query in (
        PathQuery(),
        PathQuery(limit=2),
        PathQuery(offset=2, limit=3),
        PathQuery(needle="über"),
        PathQuery(needle="QUEUED", offset=1),
    ):
        engine = select(state, "docs", {}, query)
        here = page_of(rows, query)
        assert [p.path for p in engine.rows] == [p.path for p in here.rows], query
        assert (engine.counts, engine.matching) == (here.counts, here.matching), query
    order = [p.path for p in select(state, "docs", {}, PathQuery()).rows]
    assert order == [
        "Überweisung.pdf",
        "z.txt",
        "a/later.txt",
        "n.txt",
        "a/queued.txt",
        "b/queued.txt",
    ]
    with pytest.raises(ValueError):
        PathQuery(limit=-1)
    state.close()
