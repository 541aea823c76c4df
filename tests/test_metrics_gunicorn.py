"""/metrics under ``gunicorn -w 2``: one scrape counts what every worker answered.

gunicorn's own access log (``%(p)s``: the worker's pid) tells which worker served each request,
independently of the portal's metrics.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from portal.support.redisserver import free_port
from tests.conftest import ROOT

URL_PATH = "/static/css/app.css"


def _count(scrape: str) -> float:
    total = 0.0
    for line in scrape.splitlines():
        if line.startswith("portal_http_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels == {"endpoint": "static", "method": "GET", "status": "200"}:
                total += float(line.rsplit(" ", 1)[1])
    return total


def _served_by(log: Path) -> Counter:
    pids = Counter()
    for line in log.read_text().splitlines():
        pid, path = line.split(" ", 1)
        if path == URL_PATH:
            pids[pid] += 1
    return pids


def _get_once(base: str) -> None:
    # A new connection each time, so that either worker may accept it.
    response = requests.get(base + URL_PATH, headers={"Connection": "close"}, timeout=60)
    assert response.status_code == 200


@pytest.fixture
def gunicorn_two_workers(database_url, redis_url, tmp_path):
    port = free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "PORTAL_ENV": "testing",
        "TEST_DATABASE_URL": database_url,
        "TEST_REDIS_URL": redis_url,
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes the server its own
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(log),
            "--access-logformat",
            "%(p)s %(U)s",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.err").open("wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    if proc.poll() is not None:
        pytest.fail("gunicorn did not start:\n" + (tmp_path / "gunicorn.err").read_text())
    # The master listens before its workers have imported the app: wait for an answer (a
    # scrape, which counts no static request).
    requests.get(f"http://127.0.0.1:{port}/metrics", timeout=60).raise_for_status()
    yield f"http://127.0.0.1:{port}", log, proc
    proc.terminate()
    proc.wait(timeout=20)


def _logged(log: Path, count: int) -> Counter:
    # gunicorn writes the access-log line just after sending the response: wait for the lines.
    deadline = time.monotonic() + 30
    while sum((served := _served_by(log)).values()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return served


def _send_until_both_served(base: str, log: Path) -> int:
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while sent < 800:
            list(pool.map(lambda _: _get_once(base), range(20)))
            sent += 20
            if len(_logged(log, sent)) >= 2:
                break
    return sent


@pytest.mark.slow
def test_one_scrape_counts_the_requests_of_both_workers(gunicorn_two_workers):
    base, log, _proc = gunicorn_two_workers
    sent = _send_until_both_served(base, log)
    served = _logged(log, sent)
    assert len(served) == 2 and sum(served.values()) == sent, served
    # Whichever worker answers the scrape, it counts what both of them served.
    for _ in range(4):
        scrape = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=60)
        assert scrape.status_code == 200
        assert _count(scrape.text) == sent
    assert "portal_queue_jobs" in scrape.text and "portal_sla_breached_cases" in scrape.text


@pytest.mark.slow
def test_the_counts_of_a_dead_worker_are_kept(gunicorn_two_workers):
    base, log, proc = gunicorn_two_workers
    sent = _send_until_both_served(base, log)
    victim = int(next(iter(_served_by(log))).strip("<>"))
    os.kill(victim, signal.SIGKILL)
    # gunicorn starts a replacement; until then the other worker answers.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if len(children) == 2 and str(victim) not in children:
            break
        time.sleep(0.1)
    else:
        pytest.fail("gunicorn did not replace the killed worker")
    for _ in range(10):
        _get_once(base)
    scrape = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=60).text
    assert _count(scrape) == sent + 10
