"""A small lab of hosts in Linux network namespaces, made and torn down by the test itself.

``Lab`` makes one bridge in the root namespace (the "switch", holding the lab's gateway
address) and, per host, a namespace joined to it by a veth pair, with an address in a /24 of
10.231.0.0/16 that nothing on the machine uses. A namespace has a route to that /24 only (no
default route): its processes reach the other hosts and the gateway, nothing else. The
machine's PostgreSQL and Redis listen on 127.0.0.1, which a namespace cannot reach, so the lab
offers them on the gateway address: PostgreSQL through ``TcpForwarder`` (a thread of the test
process relaying to 127.0.0.1:5432), Redis and the S3 stand-in as processes of their own bound
to the gateway address.

Everything the lab starts or makes is recorded as it is made, and ``close()`` (called from a
``finally``) kills every process (by process group, then whatever is still inside a
namespace), deletes the namespaces and the bridge, and stops the forwarders, whatever state a
failed test left them in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

SUBNETS = ipaddress.ip_network("10.231.0.0/16")
COMMAND_TIMEOUT = 20  # seconds for one `ip` command


def cannot_make_namespaces() -> str | None:
    """Why this machine cannot run the lab (None when it can): root and ``ip netns`` needed."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"p22probe{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=COMMAND_TIMEOUT)
    return None


def ip(*args: str) -> None:
    """Run one ``ip`` command; raise with its error output if it fails."""
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    used = (
        subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        ).stdout
        + subprocess.run(
            ["ip", "-4", "route"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        ).stdout
    )
    candidates = list(SUBNETS.subnets(new_prefix=24))[1:-1]
    start = secrets.randbelow(len(candidates))
    for subnet in candidates[start:] + candidates[:start]:
        prefix = ".".join(str(subnet.network_address).split(".")[:3]) + "."
        if prefix not in used:
            return subnet
    raise RuntimeError("no free /24 in 10.231.0.0/16")


class TcpForwarder:
    """Accept TCP connections on ``listen`` and relay each one to ``target``, until ``stop``."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((listen_host, 0))
        self.host, self.port = self.server.getsockname()[:2]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, name="forwarder", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self.stopped.set()
        self.server.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()


class Lab:
    """A bridge, namespaces joined to it, and the processes run in them (see the module doc)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tag = secrets.token_hex(3)
        self.subnet = _free_subnet()
        hosts = self.subnet.hosts()
        self.gateway = str(next(hosts))
        self._addresses = hosts
        self.bridge = f"pb{self.tag}"
        self.namespaces: dict[str, str] = {}  # host name -> namespace
        self.addresses: dict[str, str] = {}  # host name -> address
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []
        self.forwarders: list[TcpForwarder] = []
        self._bridge_made = False

    def start(self) -> Lab:
        """Make the bridge with the gateway address."""
        ip("link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str) -> str:
        """A namespace for host ``name`` on the bridge; returns its address."""
        namespace = f"p22{self.tag}{name}"
        address = str(next(self._addresses))
        outside, inside = f"pv{self.tag}{name}", f"pv{self.tag}{name}h"
        ip("netns", "add", namespace)
        self.namespaces[name] = namespace
        ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        self.addresses[name] = address
        return address

    def forward(self, target: tuple[str, int]) -> int:
        """Offer ``target`` (on the root namespace's loopback) on the gateway; returns the port."""
        forwarder = TcpForwarder(self.gateway, target)
        self.forwarders.append(forwarder)
        return forwarder.port

    def free_port(self, host: str | None = None) -> int:
        """A port free on the gateway address (where the lab's own services listen)."""
        with socket.socket() as probe:
            probe.bind((host or self.gateway, 0))
            return probe.getsockname()[1]

    def run(self, name: str, command: list[str], *, host: str | None, env: dict, cwd: Path):
        """Start ``command`` in host ``host``'s namespace (None: the root namespace), in a
        process group of its own, logging to ``<workdir>/<name>.log``."""
        log_path = self.workdir / f"{name}.log"
        if host is not None:
            command = ["ip", "netns", "exec", self.namespaces[host], *command]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, proc, log_path))
        return proc

    def wait_for_port(self, address: str, port: int, name: str, timeout: float = 60) -> None:
        """Wait until ``address:port`` accepts connections; fail naming the process's log."""
        deadline = time.monotonic() + timeout
        proc = next(p for n, p, _ in self.processes if n == name)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not start listening on {address}:{port}\n{self.logs()}")

    def logs(self, tail: int = 40) -> str:
        """The last lines of every process's log, for a failure message."""
        parts = []
        for name, proc, path in self.processes:
            lines = path.read_text(errors="replace").splitlines()[-tail:] if path.exists() else []
            parts.append(f"--- {name} (exit {proc.poll()}):\n" + "\n".join(lines))
        return "\n".join(parts)

    def close(self) -> None:
        """Kill every process, delete the namespaces and the bridge, stop the forwarders."""
        for _name, proc, _log in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc, _log in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for namespace in self.namespaces.values():
            # Anything still alive inside (a child that left the process group) goes too.
            pids = subprocess.run(
                ["ip", "netns", "pids", namespace],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", namespace], timeout=COMMAND_TIMEOUT, check=False)
        if self._bridge_made:
            subprocess.run(["ip", "link", "del", self.bridge], timeout=COMMAND_TIMEOUT, check=False)
        for forwarder in self.forwarders:
            forwarder.stop()
