"""A Redis that hangs: web latency and errors while it is paused (SIGSTOP) for 20 s.

Starts a redis-server of its own on a free port, the portal under gunicorn (2 workers × 4
threads, as ``make run``) on a throwaway PostgreSQL database (``portal_bench_hung_redis``),
and 12 clients that each open the lookup page and post a lookup, again and again. Measures
three phases: Redis well (the baseline), Redis paused, Redis resumed. Passes (exit 0) when no
answer was a 5xx or a client timeout, and the p99 of both the page and the lookup while Redis
hangs is under 1 s; prints each phase's p50/p99/max and the pause's p99 as a ratio of the
baseline's.

    .venv/bin/python bench/hung_redis.py [--pause 20] [--clients 12]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    Children,
    create_database,
    drop_database,
    free_port,
    wait_until,
)

DB_NAME = "portal_bench_hung_redis"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def client_loop(base: str, phase: list[str], stop: threading.Event, seen: list, n: int) -> None:
    session = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        for method in ("GET", "POST"):
            current = phase[0]
            started = time.perf_counter()
            try:
                if method == "GET":
                    answer = session.get(f"{base}/lookup", timeout=30)
                    match = TOKEN.search(answer.text)
                    token = match.group(1) if match else ""
                else:
                    answer = session.post(
                        f"{base}/lookup",
                        data={
                            "csrf_token": token,
                            "code": "011001900111",
                            "number": f"{n:02d}{i % 1000000:06d}",
                            "issue_date": "2026-01-05",
                            "check_code_last6": "123456",
                        },
                        timeout=30,
                    )
                status = answer.status_code
            except requests.RequestException:
                status = 599  # no answer within 30 s
            seen.append((current, method, status, time.perf_counter() - started))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause", type=float, default=20.0, help="seconds Redis is stopped")
    parser.add_argument("--before", type=float, default=8.0, help="seconds of baseline")
    parser.add_argument("--after", type=float, default=8.0, help="seconds after resuming")
    parser.add_argument("--clients", type=int, default=12)
    args = parser.parse_args()

    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="portal-hung-redis-"))
    children = Children()
    redis_port, web_port = free_port(), free_port()
    database_url = create_database(DB_NAME)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "PORTAL_INSTANCE_PATH": str(tmp),
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_LOOKUP_IP": "100000 per minute",  # every client has the same address
        "MAIL_URL": f"file://{tmp / 'mail'}",
        "UPLOAD_DIR": str(tmp / "uploads"),
    }
    seen: list = []
    phase = ["before"]
    stop = threading.Event()
    redis = None
    try:
        redis = children.start(
            [server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""], env
        )
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
        children.start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{web_port}",
                "wsgi:app",
            ],
            env,
            log=tmp / "gunicorn.log",
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_until(lambda: requests.get(f"{base}/lookup", timeout=2).ok, 60, what="gunicorn")
        threads = [
            threading.Thread(target=client_loop, args=(base, phase, stop, seen, n), daemon=True)
            for n in range(args.clients)
        ]
        for t in threads:
            t.start()
        time.sleep(args.before)
        phase[0] = "paused"
        os.kill(redis.pid, signal.SIGSTOP)
        try:
            time.sleep(args.pause)
        finally:
            os.kill(redis.pid, signal.SIGCONT)
        phase[0] = "after"
        time.sleep(args.after)
        stop.set()
        for t in threads:
            t.join(timeout=40)
    finally:
        stop.set()
        if redis is not None and redis.poll() is None:
            os.kill(redis.pid, signal.SIGCONT)
        children.stop_all()
        drop_database(DB_NAME)

    by = defaultdict(list)
    statuses = defaultdict(lambda: defaultdict(int))
    for name, method, status, seconds in seen:
        by[(name, method)].append(seconds)
        statuses[(name, method)][status] += 1
    print(
        f"\nhung Redis: {args.clients} clients, Redis paused {args.pause:.0f} s "
        "(GET /lookup, then POST /lookup, again and again)"
    )
    header = f"{'phase':8} {'request':12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(f"  {header}  answers")
    for name in ("before", "paused", "after"):
        for method in ("GET", "POST"):
            values = by[(name, method)]
            codes = dict(sorted(statuses[(name, method)].items()))
            print(
                f"  {name:8} {method + ' /lookup':12} {len(values):6d} "
                f"{percentile(values, 0.5) * 1000:8.1f} {percentile(values, 0.99) * 1000:8.1f} "
                f"{max(values, default=float('nan')) * 1000:8.1f}  {codes}"
            )
    failures = sum(n for codes in statuses.values() for s, n in codes.items() if s >= 500)
    paused_p99 = {m: percentile(by[("paused", m)], 0.99) for m in ("GET", "POST")}
    base_p99 = {m: percentile(by[("before", m)], 0.99) for m in ("GET", "POST")}
    for m in ("GET", "POST"):
        print(f"  {m} p99 paused / before: {paused_p99[m] / base_p99[m]:.2f}×")
    checks = {
        "no 5xx and no client timeout": failures == 0,
        "GET /lookup p99 under 1 s while Redis hangs": paused_p99["GET"] < 1.0,
        "POST /lookup p99 under 1 s while Redis hangs": paused_p99["POST"] < 1.0,
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
