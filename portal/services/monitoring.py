"""Sync and SLA monitoring: checks that raise an alert (row, mail, banner) and clear it when
the condition is over; and the at-risk / breach warnings for cases.

``run_checks`` is run periodically by the workers (``workers.maintenance.monitor``). Each check
keeps at most one open alert of its kind, so a long outage is one alert, not thousands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..domain.shanghai_time import SHANGHAI
from ..extensions import db
from ..models import (
    Alert,
    Case,
    CaseEvent,
    CaseState,
    Submission,
    SubmissionAttempt,
    SubmissionState,
    utcnow,
)
from ..queue import redis_connection
from . import notify
from .registry_link import breaker

DUE = (SubmissionState.QUEUED, SubmissionState.RETRY_SCHEDULED)


@dataclass(frozen=True)
class CheckResult:
    kind: str
    healthy: bool
    message: str


def _setting(name: str):
    """A ``MONITOR_*`` setting (type and default in ``portal/config.py``)."""
    return current_app.config[name]


def check_stuck(now: datetime) -> CheckResult:
    """Submissions due for a long time, or in flight far past their lease."""
    minutes = _setting("MONITOR_STUCK_MINUTES")
    cutoff = now - timedelta(minutes=minutes)
    stuck = db.session.scalar(
        select(func.count())
        .select_from(Submission)
        .where(
            ((Submission.state.in_(DUE)) & (Submission.next_attempt_at < cutoff))
            | (
                (Submission.state == SubmissionState.IN_FLIGHT)
                & (Submission.lease_expires_at < cutoff)
            )
        )
    )
    return CheckResult(
        "stuck_submissions",
        stuck == 0,
        f"{stuck} submission(s) overdue by more than {minutes} minutes",
    )


def check_failure_rate(now: datetime) -> CheckResult:
    """The share of failed registry attempts over the recent window."""
    window = _setting("MONITOR_WINDOW_MINUTES")
    limit = _setting("MONITOR_FAILURE_RATE")
    rows = dict(
        db.session.execute(
            select(SubmissionAttempt.outcome, func.count())
            .where(SubmissionAttempt.started_at >= now - timedelta(minutes=window))
            .group_by(SubmissionAttempt.outcome)
        ).all()
    )
    total = sum(rows.values())
    failed = total - rows.get("success", 0)
    rate = failed / total if total else 0.0
    healthy = total < _setting("MONITOR_MIN_ATTEMPTS") or rate <= limit
    return CheckResult(
        "failure_rate",
        healthy,
        f"{rate:.0%} of {total} registry attempts failed in {window} minutes",
    )


def check_breaker(now: datetime) -> CheckResult:
    """Is the registry reachable (the breaker closed)?"""
    state = breaker().status().state
    return CheckResult("breaker_open", state == "closed", f"registry breaker is {state}")


def check_backlog(now: datetime) -> CheckResult:
    """Too many deliveries waiting."""
    limit = _setting("MONITOR_BACKLOG_MAX")
    waiting = db.session.scalar(
        select(func.count()).select_from(Submission).where(Submission.state.in_(DUE))
    )
    return CheckResult("backlog", waiting <= limit, f"{waiting} deliveries waiting (limit {limit})")


def check_workers(now: datetime) -> CheckResult:
    """At least one RQ worker has sent a heartbeat recently."""
    from rq import Worker

    seconds = _setting("MONITOR_HEARTBEAT_SECONDS")
    workers = Worker.all(connection=redis_connection())
    alive = [
        w
        for w in workers
        if w.last_heartbeat
        and (now - w.last_heartbeat.replace(tzinfo=now.tzinfo)).total_seconds() < seconds
    ]
    return CheckResult(
        "worker_heartbeat", bool(alive), f"{len(alive)} of {len(workers)} worker(s) alive"
    )


def check_dead_letters(now: datetime) -> CheckResult:
    """Dead letters waiting for staff (one alert while any are left)."""
    from . import dead_letters

    # Open ones only: a dead letter retried successfully (or being retried) needs nobody.
    dead = dead_letters.open_count(waiting_only=True)
    return CheckResult("dead_letters", dead == 0, f"{dead} dead letter(s) need staff")


def check_holiday_calendar(now: datetime) -> CheckResult:
    """This year's official holiday arrangement is loaded, and from 1 November next year's."""
    from . import sla

    missing = sla.missing_arrangement(now.astimezone(SHANGHAI).date())
    if missing is None:
        return CheckResult("holiday_calendar", True, "holiday arrangements loaded")
    return CheckResult(
        "holiday_calendar",
        False,
        f"no official {missing.year} holiday arrangement: promises in {missing.year} count its "
        f"statutory holidays only, without make-up working days ({missing.source}); add "
        f"HOLIDAYS_DIR/{missing.year}.json or update the holidays package",
    )


CHECKS = (
    check_stuck,
    check_failure_rate,
    check_breaker,
    check_backlog,
    check_workers,
    check_dead_letters,
    check_holiday_calendar,
)


def run_checks(now: datetime | None = None) -> list[CheckResult]:
    """Run every check; raise an alert for each new problem and clear the ones that are over."""
    now = now or utcnow()
    results = []
    for check in CHECKS:
        try:
            result = check(now)
        except Exception as error:  # a check that cannot run is itself worth an alert
            result = CheckResult(check.__name__, False, f"check failed: {type(error).__name__}")
        results.append(result)
        current = db.session.scalar(
            select(Alert).where(Alert.kind == result.kind, Alert.cleared_at.is_(None)).limit(1)
        )
        if result.healthy and current is not None:
            current.cleared_at = now
        elif not result.healthy and current is None:
            db.session.add(Alert(kind=result.kind, severity="critical", message=result.message))
            if result.kind == "breaker_open":
                notify.registry_down(now)
        elif not result.healthy:
            current.message = result.message
    db.session.commit()
    return results


def open_alerts() -> list[Alert]:
    """Conditions not cleared yet, newest first (the banner on staff pages). The per-invoice
    dead-letter records are summarised by the ``dead_letters`` condition instead."""
    return db.session.scalars(
        select(Alert)
        .where(Alert.cleared_at.is_(None), Alert.kind != "dead_letter")
        .order_by(Alert.id.desc())
        .limit(20)
    ).all()


def warn_sla(now: datetime | None = None) -> tuple[int, int]:
    """Warn the reviewer of cases at risk and escalate breached ones to supervisors, once each.
    Returns (warned, escalated)."""
    now = now or utcnow()
    hours = current_app.config["SLA_AT_RISK_HOURS"]
    open_states = (CaseState.AWAITING_REVIEW, CaseState.IN_REVIEW)
    warned = escalated = 0
    candidates = db.session.scalars(
        select(Case).where(
            Case.state.in_(open_states),
            Case.sla_paused_at.is_(None),
            Case.resolution_due_at <= now + timedelta(hours=hours),
        )
    ).all()
    for case in candidates:
        kinds = {e.kind for e in case.events}
        if case.resolution_due_at <= now and "sla_breached" not in kinds:
            db.session.add(
                CaseEvent(case_id=case.id, kind="sla_breached", public=False, from_staff=True)
            )
            context = {
                "reference": case.reference,
                "due": case.resolution_due_at,
                "review_url": notify.external_url("staff.case_review", reference=case.reference),
            }
            for boss in notify.supervisors():
                notify.queue("sla_breached", boss.email, user=boss, case=case, context=context)
            escalated += 1
        elif case.resolution_due_at > now and "sla_at_risk" not in kinds and case.assignee:
            db.session.add(
                CaseEvent(case_id=case.id, kind="sla_at_risk", public=False, from_staff=True)
            )
            notify.queue(
                "sla_at_risk",
                case.assignee.email,
                user=case.assignee,
                case=case,
                context={
                    "reference": case.reference,
                    "due": case.resolution_due_at,
                    "review_url": notify.external_url(
                        "staff.case_review", reference=case.reference
                    ),
                },
            )
            warned += 1
    db.session.commit()
    return warned, escalated
