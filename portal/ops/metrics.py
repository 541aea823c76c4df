"""Prometheus metrics: request counts and latencies (per worker process), plus gauges read
from the database and Redis when scraped.

Request figures live in each gunicorn worker's memory and carry a ``pid`` label; Prometheus
sums them. The gauges are the same whichever worker answers.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import defaultdict

from flask import Flask, request
from sqlalchemy import func, select

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_lock = threading.Lock()
_requests: dict[tuple[str, str, int], int] = defaultdict(int)
# Per (endpoint, method): one slot per bucket, one for slower requests, then sum and count.
_latency: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * (len(BUCKETS) + 3))


STARTED = "portal.metrics.started"


class _StartClock:
    """WSGI middleware noting when a request arrived (cheaper than a before_request hook)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> None:
    """Time every request (by endpoint, not by URL, so the label set stays small)."""
    app.wsgi_app = _StartClock(app.wsgi_app)

    @app.after_request
    def count_request(response):
        req = request._get_current_object()  # one context lookup, not one per attribute
        started = req.environ.get(STARTED)
        if started is not None:
            observe(req.endpoint or "unmatched", req.method, response.status_code, started)
        return response


def observe(endpoint: str, method: str, status: int, started: float) -> None:
    """Count one request, answered with ``status``, that arrived at ``started``
    (``time.perf_counter()``)."""
    seconds = time.perf_counter() - started
    with _lock:
        _requests[(endpoint, method, status)] += 1
        row = _latency[(endpoint, method)]
        # Only the first bucket the time fits in counts here; render() sums them up to
        # Prometheus' cumulative buckets (a slower request lands past the last bound).
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[len(BUCKETS) + 2] += 1  # count
        row[len(BUCKETS) + 1] += seconds  # sum


def _esc(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render() -> str:
    """The metrics in the Prometheus text format (version 0.0.4)."""
    from ..extensions import db
    from ..models import OPEN_CASE_STATES, Alert, Case, Submission, utcnow
    from ..queue import all_queues

    pid = os.getpid()
    lines = [
        "# HELP portal_http_requests_total HTTP requests answered by this worker process.",
        "# TYPE portal_http_requests_total counter",
    ]
    with _lock:
        requests = dict(_requests)
        latency = {k: list(v) for k, v in _latency.items()}
    for (endpoint, method, status), n in sorted(requests.items()):
        lines.append(
            f'portal_http_requests_total{{pid="{pid}",endpoint="{_esc(endpoint)}",'
            f'method="{method}",status="{status}"}} {n}'
        )
    lines += [
        "# HELP portal_http_request_duration_seconds Time to answer a request.",
        "# TYPE portal_http_request_duration_seconds histogram",
    ]
    for (endpoint, method), row in sorted(latency.items()):
        labels = f'pid="{pid}",endpoint="{_esc(endpoint)}",method="{method}"'
        cumulative = 0
        for index, bound in enumerate(BUCKETS):
            cumulative += int(row[index])
            lines.append(
                f'portal_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}'
            )
        count = int(row[len(BUCKETS) + 2])
        lines.append(f'portal_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
        lines.append(f"portal_http_request_duration_seconds_count{{{labels}}} {count}")
        lines.append(
            f"portal_http_request_duration_seconds_sum{{{labels}}} {row[len(BUCKETS) + 1]:.6f}"
        )
    lines += [
        "# HELP portal_queue_jobs Jobs waiting in each RQ queue.",
        "# TYPE portal_queue_jobs gauge",
    ]
    try:
        for queue in all_queues():
            lines.append(f'portal_queue_jobs{{queue="{queue.name}"}} {queue.count}')
    except Exception:  # Redis down: say so rather than fail the scrape
        lines.append("portal_queue_up 0")
    lines += ["# HELP portal_submissions Outbox rows by state.", "# TYPE portal_submissions gauge"]
    for state, n in db.session.execute(
        select(Submission.state, func.count()).group_by(Submission.state)
    ):
        lines.append(f'portal_submissions{{state="{state}"}} {n}')
    breached = db.session.scalar(
        select(func.count())
        .select_from(Case)
        .where(Case.state.in_(OPEN_CASE_STATES), Case.resolution_due_at < utcnow())
    )
    alerts = db.session.scalar(
        select(func.count()).select_from(Alert).where(Alert.cleared_at.is_(None))
    )
    lines += [
        "# HELP portal_sla_breached_cases Open cases past their resolution deadline.",
        "# TYPE portal_sla_breached_cases gauge",
        f"portal_sla_breached_cases {breached}",
        "# HELP portal_alerts_open Alerts not cleared.",
        "# TYPE portal_alerts_open gauge",
        f"portal_alerts_open {alerts}",
    ]
    return "\n".join(lines) + "\n"
