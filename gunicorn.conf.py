"""gunicorn's settings for the portal, read by every ``gunicorn`` started in this folder (make
run, the tests, the benchmarks, production: ``gunicorn wsgi:app``).

Prometheus' multiprocess mode: each worker counts into files of its own in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape of /metrics adds them all up. When the variable is
not set, the master makes a folder of its own (removed when it stops); either way the master
empties it at start (the counts of an earlier server are not this one's), and a worker that
exits is marked dead. One folder per gunicorn server: never share it between two.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_made_here: list[str] = []


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="portal-metrics-")
        _made_here.append(folder)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # the workers inherit it
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for folder in _made_here:
        shutil.rmtree(folder, ignore_errors=True)
