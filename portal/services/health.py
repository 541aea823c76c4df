"""Health of the portal: liveness for load balancers, dependency status for people and monitors.

- ``liveness``: this process answers and the database does (one ``SELECT 1``). No Redis, no
  registry, no outbound call: an outage of either must not take a web host out of rotation
  (DESIGN.md §6), and the database is what every page needs.
- ``status``: Redis, the registry (as the workers' circuit breaker and their last delivery
  attempt say: never a request to the registry), the workers' heartbeats and the backlog. The
  report is kept for ``STATUS_KEPT_SECONDS`` in each process, so however often it is asked for
  it costs a few Redis reads and two queries per process per period.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select, text

from ..extensions import db
from ..models import Submission, SubmissionAttempt, SubmissionState, utcnow
from ..queue import redis_connection

STATUS_KEPT_SECONDS = 5.0
_WAITING = (SubmissionState.QUEUED, SubmissionState.RETRY_SCHEDULED, SubmissionState.IN_FLIGHT)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
    except Exception as error:  # any failure means unhealthy; the reason is for operators
        return {
            "ok": False,
            "error": type(error).__name__,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}


def liveness() -> dict:
    """Is this process able to serve pages? The database, and nothing else."""

    def database():
        db.session.execute(text("SELECT 1"))

    checks = {"database": _timed(database)}
    return {"ok": checks["database"]["ok"], "checks": checks}


def _redis_check() -> dict:
    redis_connection().ping()
    return {}


def _registry_check() -> dict:
    """The breaker the workers keep, and their last attempt: no request to the registry."""
    from .registry_link import breaker

    state = breaker().status()
    last = db.session.execute(
        select(SubmissionAttempt.started_at, SubmissionAttempt.outcome)
        .order_by(SubmissionAttempt.id.desc())
        .limit(1)
    ).first()
    if state.state != "closed":
        raise RuntimeError(f"breaker {state.state}")
    return {
        "breaker": state.state,
        "last_attempt_at": last.started_at.isoformat() if last else None,
        "last_outcome": last.outcome if last else None,
    }


def _workers_check() -> dict:
    from rq import Worker

    limit = current_app.config["MONITOR_HEARTBEAT_SECONDS"]
    now = datetime.now(UTC)
    workers = Worker.all(connection=redis_connection())
    alive = [
        w
        for w in workers
        if w.last_heartbeat and (now - w.last_heartbeat.replace(tzinfo=UTC)).total_seconds() < limit
    ]
    if not alive:
        raise RuntimeError("no worker heartbeat")
    return {"alive": len(alive), "known": len(workers)}


def _backlog_check() -> dict:
    waiting, oldest = db.session.execute(
        select(func.count(), func.min(Submission.created_at)).where(Submission.state.in_(_WAITING))
    ).one()
    dead = db.session.scalar(
        select(func.count()).select_from(Submission).where(Submission.state == SubmissionState.DEAD)
    )
    limit = current_app.config["MONITOR_BACKLOG_MAX"]
    if waiting > limit:
        raise RuntimeError(f"{waiting} deliveries waiting (limit {limit})")
    age = (utcnow() - oldest).total_seconds() if oldest else 0
    return {"waiting": waiting, "oldest_seconds": round(age), "dead": dead}


class _Kept:
    """The last status report of this process and when it was made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.report: dict | None = None
        self.made = 0.0


def status(now: float | None = None) -> dict:
    """Redis, registry, workers and backlog; ``ok`` when all are well. Kept a few seconds."""
    kept: _Kept = current_app.extensions.setdefault("portal.status", _Kept())
    now = time.monotonic() if now is None else now
    with kept.lock:  # one report at a time per process; the others take it when it is made
        if kept.report is not None and now - kept.made < STATUS_KEPT_SECONDS:
            return kept.report
        checks = {
            "database": liveness()["checks"]["database"],
            "redis": _timed(_redis_check),
            "registry": _timed(_registry_check),
            "workers": _timed(_workers_check),
            "backlog": _timed(_backlog_check),
        }
        db.session.rollback()  # a failed check may have left the transaction aborted
        kept.report = {
            "ok": all(c["ok"] for c in checks.values()),
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "checks": checks,
        }
        kept.made = now
        return kept.report
