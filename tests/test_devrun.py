"""`make run` (portal.devrun): its children end with it, however it ends (issue #19 §5)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.support.redisserver import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("redis-server") is None,
    reason="the parent-death signal is Linux's; the run starts redis-server from PATH",
)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def test_sigkill_of_the_supervisor_leaves_no_child(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "REGISTRY_"))},
        "PORTAL_ENV": "development",
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "PORT": str(port),
        "DEMO_INVOICES": "0",
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "portal.devrun"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 180  # migrating and starting everything, on a busy machine
        while time.monotonic() < deadline and not _reachable(port):
            assert supervisor.poll() is None, "make run stopped before the web server answered"
            time.sleep(0.2)
        assert _reachable(port), "the web server never answered"
        children = _descendants(supervisor.pid)
        assert len(children) >= 4  # redis, simulator, worker, gunicorn (and its workers)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 60  # gunicorn's and the worker's graceful stops
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        for pid in children:  # never leave anything behind, even when the test failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
