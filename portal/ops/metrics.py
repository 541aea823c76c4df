"""Prometheus metrics through ``prometheus_client``: request counts and latencies, plus gauges
read from the database and Redis when scraped.

Under gunicorn every worker process counts into files of its own in
``PROMETHEUS_MULTIPROC_DIR`` (set up by ``gunicorn.conf.py``, which also marks dead workers),
and a scrape, whichever worker answers it, adds all of them up: one scrape gives the whole
server's counts. Without that variable (tests, ``flask run``) the counts live in this process.
The gauges are read at scrape time and are the same whichever worker answers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Not in prometheus_client's default registry: render() builds the registry of each scrape.
REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests answered (by every worker process of the server).",
    ["endpoint", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer a request.",
    ["endpoint", "method"],
    buckets=BUCKETS,
    registry=None,
)
# The labelled children, by label values: one dict lookup per request instead of labels()'s
# validation and lock.
_counters: dict[tuple[str, str, int], Counter] = {}
_timers: dict[tuple[str, str], Histogram] = {}

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
    counter = _counters.get((endpoint, method, status))
    if counter is None:
        counter = _counters.setdefault(
            (endpoint, method, status), REQUESTS.labels(endpoint, method, str(status))
        )
    timer = _timers.get((endpoint, method))
    if timer is None:
        timer = _timers.setdefault((endpoint, method), LATENCY.labels(endpoint, method))
    counter.inc()
    timer.observe(seconds)


class _StateCollector:
    """Gauges read from the database and Redis at scrape time."""

    def collect(self):
        from ..extensions import db
        from ..models import OPEN_CASE_STATES, Alert, Case, Submission, utcnow
        from ..queue import all_queues

        jobs = GaugeMetricFamily(
            "portal_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        up = GaugeMetricFamily("portal_queue_up", "1 when Redis answered the scrape, else 0.")
        try:
            for queue in all_queues():
                jobs.add_metric([queue.name], queue.count)
            up.add_metric([], 1)
        except Exception:  # Redis down: say so rather than fail the scrape
            up.add_metric([], 0)
        yield jobs
        yield up
        submissions = GaugeMetricFamily(
            "portal_submissions", "Outbox rows by state.", labels=["state"]
        )
        for state, n in db.session.execute(
            select(Submission.state, func.count()).group_by(Submission.state)
        ):
            submissions.add_metric([str(state)], n)
        yield submissions
        breached = db.session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.state.in_(OPEN_CASE_STATES), Case.resolution_due_at < utcnow())
        )
        yield GaugeMetricFamily(
            "portal_sla_breached_cases", "Open cases past their resolution deadline.", breached
        )
        alerts = db.session.scalar(
            select(func.count()).select_from(Alert).where(Alert.cleared_at.is_(None))
        )
        yield GaugeMetricFamily("portal_alerts_open", "Alerts not cleared.", alerts)


def multiprocess_dir() -> str | None:
    """The folder the worker processes count into, when running under gunicorn."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> str:
    """The metrics in the Prometheus text format (version 0.0.4)."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(_StateCollector())
    return generate_latest(registry).decode("utf-8")
