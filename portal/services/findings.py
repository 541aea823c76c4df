"""Reconciliation findings as staff work them: the list, each finding's ledger and registry
records side by side, and the ways to resolve one.

- **resubmit**: an invoice missing at the registry is delivered again through the outbox;
- **correct through re-entry**: a review case is opened for the invoice; its approval changes
  an invoice already in the ledger, so it waits for a second supervisor (four eyes), as every
  correction does (``services.review``);
- **mark explained**: the finding is closed with a note saying why nothing needs doing.

A finding sent to re-entry is closed when its correction case is resolved, that is when the
registry has confirmed the corrected invoice (``settle_corrected``, called by
``review.resolve_registered``).

Every resolution is audited (``reconcile.resolve_finding``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..domain.fields import WIRE_FIELDS, wire_text
from ..domain.messages import field_label
from ..extensions import db
from ..models import (
    Case,
    FindingKind,
    Invoice,
    ReconciliationFinding,
    Submission,
    SubmissionState,
)
from . import cases, outbox, reconcile
from .errors import ServiceError

RECONCILIATION_CHANNEL = "reconciliation"
LIVE = (SubmissionState.QUEUED, SubmissionState.RETRY_SCHEDULED, SubmissionState.IN_FLIGHT)


@dataclass(frozen=True)
class FindingRow:
    """One field of a finding: ours and the registry's, and whether they differ."""

    field: str
    ledger: str
    registry: str

    @property
    def differs(self) -> bool:
        return self.ledger != self.registry


@dataclass(frozen=True)
class FindingView:
    finding: ReconciliationFinding
    invoice: Invoice | None
    rows: list[FindingRow]
    case: Case | None  # the re-entry case opened for it, if any

    @property
    def can_resubmit(self) -> bool:
        return self.finding.kind == FindingKind.MISSING and self.invoice is not None

    @property
    def can_reenter(self) -> bool:
        return self.invoice is not None and self.case is None


def _view(finding: ReconciliationFinding) -> FindingView:
    invoice = db.session.scalar(select(Invoice).where(Invoice.key == finding.invoice_key))
    details = finding.details or {}
    registry = details.get("registry") or {}
    ours = {n: (wire_text(getattr(invoice, n)) or "") for n in WIRE_FIELDS} if invoice else {}
    rows = [
        FindingRow(
            name,
            ours.get(name, ""),
            # A mismatch keeps only the fields that differ; the others agree with the ledger.
            (wire_text(registry[name]) or "")
            if name in registry
            else (ours.get(name, "") if finding.kind == FindingKind.MISMATCH else ""),
        )
        for name in WIRE_FIELDS
    ]
    case = db.session.scalar(
        select(Case)
        .where(Case.claimed_key == finding.invoice_key, Case.channel == RECONCILIATION_CHANNEL)
        .order_by(Case.id.desc())
        .limit(1)
    )
    return FindingView(finding, invoice, rows, case)


def listing(kind: str | None = None, resolved: bool = False, limit: int = 100) -> list[FindingView]:
    """Findings (open ones, or resolved ones), oldest open first / newest resolved first."""
    query = select(ReconciliationFinding)
    if kind:
        query = query.where(ReconciliationFinding.kind == kind)
    if resolved:
        query = query.where(ReconciliationFinding.resolved_at.is_not(None)).order_by(
            ReconciliationFinding.resolved_at.desc()
        )
    else:
        query = query.where(ReconciliationFinding.resolved_at.is_(None)).order_by(
            ReconciliationFinding.id
        )
    return [_view(f) for f in db.session.scalars(query.limit(limit))]


def open_count() -> int:
    """Open findings of every kind (the dashboard's figure)."""
    return db.session.scalar(
        select(func.count())
        .select_from(ReconciliationFinding)
        .where(ReconciliationFinding.resolved_at.is_(None))
    )


def _open(finding_id) -> FindingView:
    finding = db.session.get(ReconciliationFinding, finding_id) if finding_id else None
    if finding is None or finding.resolved_at is not None:
        raise ServiceError(_l("This finding is resolved already, or no longer exists."))
    return _view(finding)


def resubmit(finding_id: int, actor) -> None:
    """Deliver an invoice missing at the registry again, and close the finding. Commits."""
    view = _open(finding_id)
    if not view.can_resubmit:
        raise ServiceError(_l("Only an invoice missing at the registry can be resubmitted."))
    live = db.session.scalar(
        select(Submission.id)
        .where(Submission.invoice_id == view.invoice.id, Submission.state.in_(LIVE))
        .limit(1)
    )
    if live is None:
        outbox.queue_delivery(view.invoice, reason="reconcile", actor=actor)
    db.session.commit()
    reconcile.resolve_finding(view.finding.id, actor=actor, note="resubmitted")


def reenter(finding_id: int, actor) -> Case:
    """Open a review case to correct the invoice through re-entry (its approval waits for a
    second supervisor, since it changes an invoice in the ledger). The finding stays open
    until the registry confirms the corrected invoice (``settle_corrected``); the case says
    where it came from. Commits."""
    view = _open(finding_id)
    if view.invoice is None:
        raise ServiceError(_l("The ledger has no such invoice to correct."))
    if view.case is not None:
        raise ServiceError(
            _l("A correction case is open already: %(ref)s.", ref=view.case.reference)
        )
    invoice = view.invoice
    claimed = cases.ClaimedInvoice(
        code=invoice.code,
        number=invoice.number,
        issue_date=invoice.issue_date,
        amount=invoice.amount,
        total=invoice.total,
        check_code=invoice.check_code or "",
        buyer_tax_id=invoice.buyer_tax_id,
    )
    differing = "、".join(field_label(r.field) for r in view.rows if r.differs)
    return cases.open_case(
        claimed,
        customer=None,
        channel=RECONCILIATION_CHANNEL,
        description=str(
            _l(
                "Reconciliation found the registry's record of this invoice different from "
                "the ledger (%(fields)s). Correct it through re-entry.",
                fields=differing or "—",
            )
        ),
        actor=actor,
    )


def settle_corrected(case: Case) -> int:
    """Close the open findings of ``case``'s invoice when ``case`` is a correction opened from
    them and the registry has just confirmed the corrected invoice. Audited; the caller
    commits. Returns how many were closed."""
    if case.channel != RECONCILIATION_CHANNEL or not case.claimed_key:
        return 0
    open_findings = db.session.scalars(
        select(ReconciliationFinding).where(
            ReconciliationFinding.invoice_key == case.claimed_key,
            ReconciliationFinding.resolved_at.is_(None),
        )
    ).all()
    for finding in open_findings:
        reconcile.close_finding(finding, note=f"corrected through re-entry: {case.reference}")
    return len(open_findings)


def explain(finding_id: int, actor, note: str) -> None:
    """Close a finding that needs no change, with the reason. Commits."""
    note = (note or "").strip()
    if not note:
        raise ServiceError(_l("Say why nothing needs doing."), field="note")
    view = _open(finding_id)
    reconcile.resolve_finding(view.finding.id, actor=actor, note=note)
