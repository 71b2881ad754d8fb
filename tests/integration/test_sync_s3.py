"""The engine end to end on S3 (rclone serve s3, whose buckets are plain folders we can read):
mirror under a key prefix, delete on the next run, versions kept by server-side copy."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import syncapp, tree, write_tree
from tests.servers.s3 import S3Server, rclone_s3_server


def write_config(tmp_path: Path, server: S3Server, folder: Path, remote_path: str) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[remotes.s3]\ntype = "s3"\nendpoint = "{server.endpoint}"\n'
        f'bucket = "{server.bucket}"\n\n'
        f'[folders.docs]\npath = "{folder}"\nremote = "s3"\nremote_path = "{remote_path}"\n'
    )
    return cfg


def test_once_mirrors_into_a_prefix_then_deletes_and_keeps_versions(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_tree(folder, {f"dir {i % 4}/file #{i}.txt": os.urandom(100 + i) for i in range(60)})
    (folder / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))  # multipart (8 MiB parts)
    with rclone_s3_server(tmp_path / "s3") as server:
        assert server.root is not None
        cfg = write_config(tmp_path, server, folder, "laptop/docs")
        env = server.env()
        first = syncapp("--config", str(cfg), "run", "--once", env=env)
        assert first.returncode == 0, first.stderr
        stored = server.root / server.bucket / "laptop" / "docs"
        assert tree(stored) == tree(folder)

        (folder / "dir 0" / "file #0.txt").unlink()
        (folder / "dir 1" / "file #1.txt").write_bytes(b"edited")
        second = syncapp("--config", str(cfg), "run", "--once", env=env)
        assert second.returncode == 0, second.stderr
        assert tree(stored) == tree(folder)  # the delete reached the bucket
        kept = tree(stored / ".syncapp-versions", skip_reserved=False)
        assert len([k for k in kept if kept[k] != "<dir>"]) == 2  # the deleted and the edited
        assert "AWS" not in first.stdout + second.stdout
        assert env["AWS_SECRET_ACCESS_KEY"] not in first.stdout + first.stderr


def test_renames_are_server_side_copies_and_trip_no_guard(tmp_path: Path) -> None:
    """S3 has no rename: a renamed folder is copied key by key on the server, then the old keys
    go. Every file must arrive in the same run, and the delete guard must not take a rename of
    a whole folder for a mass delete."""
    folder = tmp_path / "docs"
    write_tree(folder, {f"Photos/img {i}.jpg": os.urandom(200 + i) for i in range(20)})
    write_tree(folder, {"notes.txt": "n"})
    with rclone_s3_server(tmp_path / "s3") as server:
        assert server.root is not None
        cfg = write_config(tmp_path, server, folder, "docs")
        env = server.env()
        assert syncapp("--config", str(cfg), "run", "--once", env=env).returncode == 0
        stored = server.root / server.bucket / "docs"
        (folder / "Photos").rename(folder / "Photos 2024")
        (folder / "notes.txt").rename(folder / "notes-renamed.txt")
        dry = syncapp("--config", str(cfg), "run", "--once", "--dry-run", env=env)
        assert "delete guard" not in dry.stdout, dry.stdout
        res = syncapp("--config", str(cfg), "run", "--once", "--json", env=env)
        assert res.returncode == 0, res.stderr
        assert tree(stored) == tree(folder)
        assert '"op": "upload"' not in res.stdout  # copied on the server, not sent again
        status = syncapp("--config", str(cfg), "status", "--json", env=env)
        assert '"files_in_sync": 21' in status.stdout, status.stdout
