"""Figures for the supervisors' dashboard: cases, SLA, registry health, causes, satisfaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..models import (
    OPEN_CASE_STATES,
    Case,
    CaseState,
    LookupEvent,
    Rating,
    ReconciliationRun,
    Submission,
    SubmissionAttempt,
    SubmissionState,
    User,
    utcnow,
)
from ..queue import try_redis
from . import dead_letters
from .registry_link import breaker
from .review import sla_status

# Lookup findings grouped into the complaint causes the business talks about.
CAUSES = {
    "pending_registry": "registry_failure",
    "amount_is_total": "keying_error",
    "date_mismatch": "keying_error",
    "check_code_mismatch": "keying_error",
    "amount_mismatch": "keying_error",
    "not_beijing": "not_beijing",
    "issued_today": "issued_today",
    "unknown": "unknown",
    "registered": "registered",
}


@dataclass
class Dashboard:
    cases_by_state: dict[str, int] = field(default_factory=dict)
    cases_by_channel: dict[str, int] = field(default_factory=dict)
    sla_now: dict[str, int] = field(default_factory=dict)
    sla_weeks: list[tuple[str, int, int]] = field(default_factory=list)  # (week, met, missed)
    registry: dict[str, object] = field(default_factory=dict)
    causes: dict[str, int] = field(default_factory=dict)
    ratings: list[tuple[str, str, float, int]] = field(default_factory=list)
    reconciliations: list[ReconciliationRun] = field(default_factory=list)


def build(now: datetime | None = None, weeks: int = 8) -> Dashboard:
    """Every figure of the dashboard, computed with aggregate queries."""
    now = now or utcnow()
    d = Dashboard()
    d.cases_by_state = dict(
        db.session.execute(select(Case.state, func.count()).group_by(Case.state)).all()
    )
    d.cases_by_channel = dict(
        db.session.execute(
            select(Case.channel, func.count())
            .where(Case.state.in_(OPEN_CASE_STATES))
            .group_by(Case.channel)
        ).all()
    )
    d.sla_now = {"on_time": 0, "at_risk": 0, "breached": 0}
    for case in db.session.scalars(select(Case).where(Case.state.in_(OPEN_CASE_STATES))):
        d.sla_now[sla_status(case, now)] += 1
    since = now - timedelta(weeks=weeks)
    met: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for resolved_at, due in db.session.execute(
        select(Case.resolved_at, Case.resolution_due_at).where(
            Case.resolved_at >= since, Case.state == CaseState.RESOLVED
        )
    ):
        week = resolved_at.strftime("%G-W%V")
        met[week][0 if due is None or resolved_at <= due else 1] += 1
    d.sla_weeks = [(week, *met[week]) for week in sorted(met)]
    day = now - timedelta(hours=24)
    outcomes = dict(
        db.session.execute(
            select(SubmissionAttempt.outcome, func.count())
            .where(SubmissionAttempt.started_at >= day)
            .group_by(SubmissionAttempt.outcome)
        ).all()
    )
    attempts = sum(outcomes.values())
    latency = db.session.scalar(
        select(func.avg(SubmissionAttempt.duration_ms)).where(SubmissionAttempt.started_at >= day)
    )
    states = dict(
        db.session.execute(select(Submission.state, func.count()).group_by(Submission.state)).all()
    )
    d.registry = {
        "attempts_24h": attempts,
        "success_rate": (outcomes.get("success", 0) / attempts) if attempts else None,
        "avg_latency_ms": round(float(latency), 1) if latency is not None else None,
        "backlog": states.get(SubmissionState.QUEUED, 0)
        + states.get(SubmissionState.RETRY_SCHEDULED, 0)
        + states.get(SubmissionState.IN_FLIGHT, 0),
        "dead": dead_letters.open_count(),
        "dead_waiting": dead_letters.open_count(waiting_only=True),
        "breaker": _breaker_state(),
    }
    causes: dict[str, int] = defaultdict(int)
    for finding, count in db.session.execute(
        select(LookupEvent.finding, func.count())
        .where(LookupEvent.created_at >= now - timedelta(days=30))
        .group_by(LookupEvent.finding)
    ):
        causes[CAUSES.get(finding, "unknown")] += count
    d.causes = dict(causes)
    month = func.substr(func.cast(Rating.created_at, db.String), 1, 7)
    d.ratings = [
        (email or "—", m, round(float(avg), 2), n)
        for email, m, avg, n in db.session.execute(
            select(User.email, month, func.avg(Rating.score), func.count())
            .select_from(Rating)
            .outerjoin(User, User.id == Rating.reviewer_id)
            .group_by(User.email, month)
            .order_by(month.desc(), User.email)
        )
    ]
    d.reconciliations = db.session.scalars(
        select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(5)
    ).all()
    return d


def _breaker_state() -> str:
    return try_redis("registry breaker", lambda _redis: breaker().status().state, "unknown")


def bars(values: list[tuple[str, float]], width: int = 320, bar_height: int = 22) -> dict:
    """Geometry for a horizontal bar chart drawn as SVG by the template (no script, no CSS)."""
    top = max((v for _, v in values), default=0) or 1
    rows = []
    for index, (label, value) in enumerate(values):
        rows.append(
            {
                "label": label,
                "value": value,
                "y": index * (bar_height + 8),
                "w": max(2, round(value / top * (width - 140))),
            }
        )
    return {
        "rows": rows,
        "height": max(1, len(rows)) * (bar_height + 8),
        "width": width,
        "bar_height": bar_height,
    }


@dataclass
class Trends:
    """The dashboard over time: one row per period, oldest first.

    ``cases``: (day, opened, resolved) for 14 days; ``registry_hours`` and ``registry_days``:
    (period, attempts, success share or None, average latency ms or None) for 24 h and 7 days;
    ``lookups``: (day, total, {cause: n}) for 14 days. Days and hours are Beijing time.
    """

    cases: list[tuple[str, int, int]] = field(default_factory=list)
    registry_hours: list[tuple[str, int, float | None, float | None]] = field(default_factory=list)
    registry_days: list[tuple[str, int, float | None, float | None]] = field(default_factory=list)
    lookups: list[tuple[str, int, dict[str, int]]] = field(default_factory=list)


def _local(moment: datetime) -> datetime:
    from ..domain.shanghai_time import SHANGHAI

    return moment.astimezone(SHANGHAI)


def trends(now: datetime | None = None, days: int = 14) -> Trends:
    """Cases opened and resolved per day, registry success and latency per hour and per day,
    lookup outcomes per day. Periods come from the rows' times, bucketed in Beijing time
    (the same on SQLite and PostgreSQL); only the columns needed are read."""
    now = now or utcnow()
    t = Trends()
    since = now - timedelta(days=days)
    day_keys = [
        (_local(now) - timedelta(days=i)).strftime("%m-%d") for i in range(days - 1, -1, -1)
    ]
    opened = dict.fromkeys(day_keys, 0)
    resolved = dict.fromkeys(day_keys, 0)
    for (moment,) in db.session.execute(select(Case.created_at).where(Case.created_at >= since)):
        key = _local(moment).strftime("%m-%d")
        if key in opened:
            opened[key] += 1
    for (moment,) in db.session.execute(
        select(Case.resolved_at).where(Case.resolved_at >= since, Case.state == CaseState.RESOLVED)
    ):
        key = _local(moment).strftime("%m-%d")
        if key in resolved:
            resolved[key] += 1
    t.cases = [(k, opened[k], resolved[k]) for k in day_keys]

    def registry(period_keys, fmt, start):
        buckets = {k: [0, 0, 0] for k in period_keys}  # attempts, successes, total ms
        for moment, outcome, ms in db.session.execute(
            select(
                SubmissionAttempt.started_at,
                SubmissionAttempt.outcome,
                SubmissionAttempt.duration_ms,
            ).where(SubmissionAttempt.started_at >= start)
        ):
            bucket = buckets.get(_local(moment).strftime(fmt))
            if bucket is not None:
                bucket[0] += 1
                bucket[1] += outcome == "success"
                bucket[2] += ms or 0
        return [
            (k, n, (ok / n) if n else None, round(ms / n, 1) if n else None)
            for k, (n, ok, ms) in buckets.items()
        ]

    hours = [(_local(now) - timedelta(hours=i)).strftime("%H:00") for i in range(23, -1, -1)]
    t.registry_hours = registry(hours, "%H:00", now - timedelta(hours=24))
    week = [(_local(now) - timedelta(days=i)).strftime("%m-%d") for i in range(6, -1, -1)]
    t.registry_days = registry(week, "%m-%d", now - timedelta(days=7))

    lookups: dict[str, dict[str, int]] = {k: defaultdict(int) for k in day_keys}
    for moment, finding in db.session.execute(
        select(LookupEvent.created_at, LookupEvent.finding).where(LookupEvent.created_at >= since)
    ):
        bucket = lookups.get(_local(moment).strftime("%m-%d"))
        if bucket is not None:
            bucket[CAUSES.get(finding, "unknown")] += 1
    t.lookups = [(k, sum(v.values()), dict(v)) for k, v in lookups.items()]
    return t
