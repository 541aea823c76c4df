"""Runs and findings as the CLI, the supervisors' dashboard and staff read and close them."""

from __future__ import annotations

from sqlalchemy import func, select

from ...extensions import db
from ...models import utcnow
from ...models.reconciliation import (
    ReconciliationFinding,
    ReconciliationRun,
)
from .. import audit
from ..errors import ServiceError


def recent_runs(limit: int = 20) -> list[ReconciliationRun]:
    """The latest runs, newest first (the dashboard's reconciliation table)."""
    return db.session.scalars(
        select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
    ).all()


def open_finding_counts() -> dict[str, int]:
    """Open findings by kind (mismatch: staff tasks; unknown: reported; missing: resubmitted)."""
    rows = db.session.execute(
        select(ReconciliationFinding.kind, func.count())
        .where(ReconciliationFinding.resolved_at.is_(None))
        .group_by(ReconciliationFinding.kind)
    ).all()
    return {kind: count for kind, count in rows}


def open_findings(kind: str | None = None, limit: int = 100) -> list[ReconciliationFinding]:
    """Open findings, oldest first (a staff work list), optionally of one kind."""
    query = select(ReconciliationFinding).where(ReconciliationFinding.resolved_at.is_(None))
    if kind:
        query = query.where(ReconciliationFinding.kind == kind)
    return db.session.scalars(query.order_by(ReconciliationFinding.id).limit(limit)).all()


def resolve_finding(finding_id: int, actor=None, note: str = "") -> ReconciliationFinding:
    """Staff close a finding (a mismatch dealt with, an unknown invoice explained); audited."""
    finding = db.session.get(ReconciliationFinding, finding_id)
    if finding is None:
        raise ServiceError(f"no reconciliation finding {finding_id}")
    if finding.resolved_at is not None:
        raise ServiceError(f"reconciliation finding {finding_id} is already resolved")
    close_finding(finding, actor=actor, note=note)
    db.session.commit()
    return finding


def close_finding(finding: ReconciliationFinding, actor=None, note: str = "") -> None:
    """Mark an open finding resolved, with its audit row; the caller commits."""
    finding.resolved_at = utcnow()
    audit.record(
        "reconcile.finding_resolved",
        "reconciliation_finding",
        finding.id,
        {"resolved_at": None},
        {"resolved_at": finding.resolved_at, "note": note[:500]},
        actor=actor,
    )
