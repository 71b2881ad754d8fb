"""How honest is the ETA? A first sync of many small files in the UI, against rclone serve webdav.

    .venv/bin/python -m tests.bench.eta [--files 5000]

Runs the real app (Pilot, headless) with its engine; every 0.25 s it reads the folder's progress
(done share and ETA) the way the panel shows it. At the end it compares each predicted finish
(now + ETA) with the real one, as a share of the time that was then left, and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from syncapp.config import load_config
from syncapp.engine import FolderState
from syncapp.tui.app import SyncApp
from tests.servers.webdav import rclone_webdav_server


def make_tree(root: Path, files: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        p = root / f"d{i % 50:02}" / f"s{i % 7}" / f"f{i:05}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        size = int(rng.lognormvariate(7.5, 1.2))  # median ~1.8 KB, a tail to ~100 KB
        p.write_bytes(os.urandom(min(size, 256_000)))
        total += min(size, 256_000)
    return total


async def measure(files: int, connections: int = 8) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        folder = base / "data"
        storage = base / "remote"
        storage.mkdir()
        size = make_tree(folder, files)
        with rclone_webdav_server(storage) as server:
            cfg = base / "config.toml"
            cfg.write_text(
                f'[remotes.dav]\ntype = "webdav"\nurl = "{server.url}"\n'
                f"connections = {connections}\n"
                f'[folders.data]\npath = "{folder}"\nremote = "dav"\nremote_path = "data"\n'
            )
            app = SyncApp(load_config(cfg), state_path=base / "state.db")
            samples: list[tuple[float, float, float | None]] = []
            curve: list[tuple[float, int]] = []
            all_done = 0.0
            async with app.run_test(size=(120, 36)) as pilot:
                start = time.monotonic()
                while True:
                    await pilot.pause(0.25)
                    view = app.dashboard.folders.views["data"]
                    now = time.monotonic()
                    if view.progress.active() and view.state is FolderState.SYNCING:
                        samples.append(
                            (now, view.progress.totals.share, view.progress.eta(app.clock()))
                        )
                        curve.append((now, view.progress.totals.files_done))
                    if view.progress.totals.files_done == view.progress.totals.files_total > 0:
                        all_done = all_done or now
                    if view.state is FolderState.UP_TO_DATE and samples:
                        break
                    if now - start > 900:
                        raise SystemExit("did not finish in 15 minutes")
                end = time.monotonic()
                await pilot.press("q")
    first = samples[0][0]
    print(f"{files:,} files, {size / 1e6:.1f} MB; syncing took {end - first:.1f} s "
          f"(start to finish {end - start:.1f} s)")
    print(" done   elapsed   ETA said   really left   error (of time left)")
    worst = 0.0
    worst_finish = 0.0
    shown = set()
    for at, share, eta in samples:
        left = end - at
        if eta is None:
            continue
        err = (eta - left) / left
        decile = int(share * 10)
        # Judged while at least 10 % of the sync time is left (at the very end 0.2 s of
        # rounding is a large share of nothing).
        if left >= 0.1 * (end - first):
            worst = max(worst, abs(err))
        worst_finish = max(worst_finish, abs(eta - left) / (end - first))
        if decile not in shown and share < 1:
            shown.add(decile)
            print(f"{share * 100:4.0f}%  {at - first:7.1f} s  {eta:7.1f} s  {left:9.1f} s   "
                  f"{err * 100:+6.1f} %")
    if all_done:
        print(f"last file done {end - all_done:.2f} s before the folder said up to date")
    if os.environ.get("ETA_CURVE"):
        for at, n in curve[::4]:
            print(f"  {at - first:6.1f} s  {n:6} files")
    judged = [
        abs(eta - (end - at)) / (end - at)
        for at, _, eta in samples
        if eta is not None and end - at >= 0.1 * (end - first)
    ]
    if judged:
        judged.sort()
        inside = sum(1 for e in judged if e <= 0.3) / len(judged)
        print(f"ETA within ±30 % of the time then left in {inside * 100:.0f} % of "
              f"{len(judged)} readings; median error {judged[len(judged) // 2] * 100:.1f} %")
    first_eta = next((at for at, _, eta in samples if eta is not None), None)
    if first_eta is not None:
        print(f"first ETA after {first_eta - first:.1f} s; worst error while ≥10 % was left: "
              f"{worst * 100:.1f} % of the time left; predicted finish vs real finish: worst "
              f"{worst_finish * 100:.1f} % of the sync time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8, help="as a slower server")
    args = parser.parse_args()
    asyncio.run(measure(args.files, args.connections))


if __name__ == "__main__":
    main()
