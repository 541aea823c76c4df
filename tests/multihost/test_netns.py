"""The multi-host test's lab: what it makes is reachable, stays inside, and is gone afterwards,
even when the test using it fails."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

from tests.multihost import netns
from tests.multihost.netns import Lab, cannot_make_namespaces

pytestmark = pytest.mark.multihost


@pytest.fixture
def root_only():
    reason = cannot_make_namespaces()
    if reason:
        if os.environ.get("REQUIRE_MULTIHOST") == "1":
            pytest.fail(f"REQUIRE_MULTIHOST=1 but {reason}")
        pytest.skip(reason)


def test_without_root_the_reason_is_given(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert cannot_make_namespaces() == "needs root to make network namespaces (ip netns add)"


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_a_failing_test_leaves_no_namespace_bridge_or_process(root_only, tmp_path):
    lab = Lab(tmp_path)
    serve = [sys.executable, "-m", "http.server", "--bind", "ADDRESS", "8000"]
    with pytest.raises(RuntimeError, match="the test failed"):
        try:
            lab.start()
            address = lab.add_host("a")
            echo = lab.forward(("127.0.0.1", _echo_server(tmp_path)))
            proc = lab.run(
                "web-a",
                [part.replace("ADDRESS", address) for part in serve],
                host="a",
                env=dict(os.environ),
                cwd=tmp_path,
            )
            lab.wait_for_port(address, 8000, "web-a")
            # The host reaches the gateway's forwarder, and nothing beyond the lab's /24: with
            # no route, a connection elsewhere fails at once (ENETUNREACH) and sends nothing.
            script = (
                "import socket,sys\n"
                f"s=socket.create_connection(({lab.gateway!r},{echo}),timeout=5)\n"
                "s.sendall(b'ping'); print(s.recv(4).decode())\n"
                "try:\n"
                "    socket.create_connection(('192.0.2.1',9),timeout=2)\n"
                "except OSError as e: print('unreachable', e.errno)\n"
            )
            inside = subprocess.run(
                ["ip", "netns", "exec", lab.namespaces["a"], sys.executable, "-c", script],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert inside.stdout.split() == ["ping", "unreachable", str(errno.ENETUNREACH)], inside
            assert lab.namespaces["a"] in _namespaces()
            raise RuntimeError("the test failed")
        finally:
            lab.close()
    assert proc.poll() is not None
    assert lab.namespaces["a"] not in _namespaces()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert lab.bridge not in links and f"pv{lab.tag}" not in links
    with pytest.raises(OSError):
        socket.create_connection((lab.gateway, echo), timeout=1)


def _echo_server(tmp_path) -> int:
    """A one-shot echo server on loopback (in a thread), standing in for PostgreSQL."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(4))

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]
