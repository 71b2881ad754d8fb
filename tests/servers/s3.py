"""S3 servers on loopback: ``rclone serve s3`` and SeaweedFS (``weed mini``).

Both context managers yield an ``S3Server``: where it listens, its bucket and credentials, and
``stop()``/``start()`` to take it down and bring it back on the same port with the same data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from httpx_auth import AWS4Auth

from tests.servers import free_port, wait_port

ACCESS_KEY = "syncapptestkey"
SECRET_KEY = "syncapp-test-secret-0123456789"
REGION = "us-east-1"


def find_binary(name: str) -> str:
    """The binary installed next to this Python (a venv's bin/), else the one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


@dataclass
class S3Server:
    kind: str
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    cmd: list[str]
    port: int
    log: Path
    region: str = REGION
    #: The directory that holds the buckets as plain files (rclone); None for SeaweedFS.
    root: Path | None = None
    #: How to ask the server to stop.
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """The environment an ``S3RemoteConfig`` with default ``*_env`` names reads."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self) -> httpx.Client:
        """A signed synchronous client for fixture set-up (bucket creation, raw requests)."""
        return httpx.Client(
            auth=AWS4Auth(self.access_key, self.secret_key, self.region, "s3"),
            timeout=30,
            trust_env=False,
        )

    def create_bucket(self, name: str) -> None:
        with self.client() as c:
            r = c.put(f"{self.endpoint}/{name}")
            if r.status_code not in (200, 409):
                raise RuntimeError(f"cannot create bucket {name}: {r.status_code} {r.text}")

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_port(self.port, timeout=30)
            self._wait_bucket()
        except BaseException:
            self.stop()
            raise

    def _wait_bucket(self) -> None:
        # The port opens before the filer/VFS behind it answers; poll the bucket itself.
        deadline = time.monotonic() + 30
        last = ""
        with self.client() as c:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} exited: {self.log.read_text()[-2000:]}")
                try:
                    r = c.head(f"{self.endpoint}/{self.bucket}")
                    if r.status_code == 404:
                        self.create_bucket(self.bucket)
                    elif r.status_code == 200:
                        # After a restart SeaweedFS answers 500 to reads until its volumes have
                        # registered again: a write and a read show the data path works.
                        probe = f"{self.endpoint}/{self.bucket}/.ready-probe"
                        r = c.put(probe, content=b"ok")
                        if r.status_code == 200 and c.get(probe).status_code == 200:
                            c.delete(probe)
                            return
                    last = f"HTTP {r.status_code}"
                except httpx.TransportError as e:
                    last = repr(e)
                time.sleep(0.05)
        raise TimeoutError(f"{self.kind}: bucket {self.bucket} not ready ({last})")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.stop_signal)
        try:
            # weed mini can take 10 s to stop after heavy writes; test data needs no clean stop.
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def rclone_s3_server(root: Path, bucket: str = "syncapp-test") -> Iterator[S3Server]:
    """``rclone serve s3 ROOT``: every top-level directory of ROOT is a bucket."""
    root.mkdir(parents=True, exist_ok=True)
    (root / bucket).mkdir(exist_ok=True)
    port = free_port()
    cmd = [
        find_binary("rclone"),
        "serve",
        "s3",
        str(root),
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        "--config",
        "/dev/null",  # never read the user's rclone.conf
        "--log-level",
        "NOTICE",
    ]
    server = S3Server(
        kind="rclone",
        endpoint=f"http://127.0.0.1:{port}",
        bucket=bucket,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        cmd=cmd,
        port=port,
        log=root.parent / f"rclone-s3-{port}.log",
        root=root,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def seaweedfs_server(data_dir: Path, bucket: str = "syncapp-test") -> Iterator[S3Server]:
    """``weed mini``: master, volume, filer and S3 in one process, all on loopback.

    Every listener gets a free port (the defaults would collide with a second instance), the
    admin UI, WebDAV, Iceberg/Lance catalogs and telemetry are off, and volumes are kept small
    so the idle process stays near 100 MB.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "syncapp",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        )
    }
    cmd = [
        find_binary("weed"),
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        # Like AWS: writing into a missing bucket is an error, not a new bucket.
        "-s3.autoCreateBucket=false",
        f"-s3.config={config}",
        f"-bucket={bucket}",
        # Small volumes: less to allocate, and a test run never needs more.
        "-master.volumeSizeLimitMB=256",
        "-volume.preStopSeconds=0",  # stop in well under a second
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    (data_dir / "data").mkdir(exist_ok=True)
    s3_port = ports["s3.port"]
    server = S3Server(
        kind="seaweedfs",
        endpoint=f"http://127.0.0.1:{s3_port}",
        bucket=bucket,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        cmd=cmd,
        port=s3_port,
        log=data_dir / "weed.log",
        # After SIGTERM a restarted weed mini fails reads and writes for ~20 s; after SIGINT
        # it is ready in about a second.
        stop_signal=signal.SIGINT,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
