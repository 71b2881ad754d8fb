"""The README's screenshot: the dashboard mid-sync, from a real run (not fed events).

    .venv/bin/python -m tests.bench.screenshot [assets/dashboard.svg]

A throwaway HOME holds three folders: 3,000 small documents and 300 photos go to a real
``rclone serve webdav`` (bandwidth-limited so the shot catches transfers in flight), a few notes
to a local "usb" remote. When the photos are about a third done, ``App.save_screenshot`` writes
the SVG.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

from syncapp.config import load_config
from syncapp.tui.app import SyncApp
from tests.servers.webdav import rclone_webdav_server


def fill(root: Path, files: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    for rel, size in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))


async def shoot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home" / "alice"
        os.environ["HOME"] = str(home)
        rng = random.Random(1)
        fill(home / "Documents", {
            f"{y}/{kind}/{kind}-{i:04}.{ext}": int(rng.lognormvariate(8, 1))
            for i in range(3000)
            for y, kind, ext in [(2020 + i % 5, ("letters", "reports", "notes")[i % 3], "odt")]
        }, 2)
        fill(home / "Pictures", {
            f"2024/IMG_{i:04}.jpg": rng.randrange(400_000, 4_000_000) for i in range(300)
        }, 3)
        fill(home / "Notes", {f"note-{i}.md": 800 for i in range(40)}, 4)
        storage = Path(tmp) / "nas"
        usb = Path(tmp) / "usb"
        storage.mkdir()
        usb.mkdir()
        with rclone_webdav_server(storage) as server:
            cfg = home / ".config/syncapp/config.toml"
            cfg.parent.mkdir(parents=True)
            cfg.write_text(
                f'[remotes.nas]\ntype = "webdav"\nurl = "{server.url}"\nbwlimit = "24M"\n'
                f'[remotes.usb]\ntype = "local"\npath = "{usb}"\n'
                '[folders.photos]\npath = "~/Pictures"\nremote = "nas"\nremote_path = "Photos"\n'
                '[folders.docs]\npath = "~/Documents"\nremote = "nas"\n'
                'remote_path = "Documents"\n'
                '[folders.notes]\npath = "~/Notes"\nremote = "usb"\nremote_path = "notes"\n'
            )
            app = SyncApp(load_config(cfg), state_path=Path(tmp) / "state.db")
            async with app.run_test(size=(120, 36)) as pilot:
                views = app.dashboard.folders.views
                for _ in range(1200):
                    await pilot.pause(0.1)
                    photos = views["photos"].progress
                    if photos.totals.share > 0.33 and photos.eta(app.clock()) is not None:
                        break
                app.dashboard.folders.refresh_panels()
                app.dashboard.show_total()
                await pilot.pause()
                app.save_screenshot(filename=out.name, path=str(out.parent.resolve()))
                await pilot.press("q")
    print(f"wrote {out}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "assets/dashboard.svg")
    asyncio.run(shoot(out))


if __name__ == "__main__":
    main()
