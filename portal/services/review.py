"""Staff review: the queue by SLA deadline, claiming, and the decisions on a case.

Decisions are made by the reviewer who claimed the case; everybody else sees it read-only.
An approval re-enters the invoice (ledger row and outbox row in one transaction); one above the
four-eyes amount, for another invoice than the reported one, or changing an invoice already in
the ledger first waits for a second, different supervisor, who confirms exactly what they saw.
The registry's confirmation later resolves the case (``resolve_registered``, called by the
delivery job).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select, update

from ..domain.fields import WIRE_FIELDS
from ..extensions import db
from ..models import (
    OPEN_CASE_STATES,
    Case,
    CaseEvent,
    CaseState,
    DecisionKind,
    Invoice,
    InvoiceSource,
    RegistryState,
    ReviewDecision,
    Role,
    Submission,
    SubmissionState,
    Upload,
    User,
    utcnow,
)
from ..support.ids import parse_id
from . import audit, cases, intake, notify, outbox
from .errors import ServiceError
from .evidence import source_label

REVIEWABLE = (CaseState.AWAITING_REVIEW, CaseState.IN_REVIEW)
# The states the queue can be filtered by.
QUEUE_STATES = (
    CaseState.AWAITING_REVIEW,
    CaseState.IN_REVIEW,
    CaseState.INFO_REQUESTED,
    CaseState.APPROVED,
)
REJECT_REASONS = {
    "not_our_invoice": _l("The invoice was not issued by us"),
    "not_beijing": _l("The invoice is not a Beijing invoice"),
    "evidence_unreadable": _l("The evidence cannot be read"),
    "fields_do_not_match": _l("The evidence does not match the reported fields"),
    "duplicate": _l("The invoice was reported already"),
    "other": _l("Other reason"),
}


# ---------------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is filtered by; every field optional."""

    state: str | None = None
    channel: str | None = None
    older_than_hours: int | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    assignee: str | None = None  # "me", "none", or a user id as text
    region: str | None = None  # "beijing" or "other"


def sla_status(case: Case, now: datetime) -> str:
    """breached, at_risk or on_time, by the resolution deadline."""
    if case.resolution_due_at is None:
        return "on_time"
    if case.resolution_due_at <= now:
        return "breached"
    if case.resolution_due_at <= now + timedelta(hours=current_app.config["SLA_AT_RISK_HOURS"]):
        return "at_risk"
    return "on_time"


def queue(f: QueueFilter, me: User, limit: int = 200) -> list[Case]:
    """Open cases needing staff, the most urgent first: breached, then at risk, then the rest,
    each by resolution deadline."""
    now = utcnow()
    at_risk = now + timedelta(hours=current_app.config["SLA_AT_RISK_HOURS"])
    query = select(Case).where(Case.state.in_((f.state and [f.state]) or REVIEWABLE))
    if f.channel:
        query = query.where(Case.channel == f.channel)
    if f.older_than_hours:
        query = query.where(Case.created_at <= now - timedelta(hours=f.older_than_hours))
    amount = func.coalesce(Case.claimed_total, Case.claimed_amount)
    if f.amount_min is not None:
        query = query.where(amount >= f.amount_min)
    if f.amount_max is not None:
        query = query.where(amount <= f.amount_max)
    if f.assignee == "me":
        query = query.where(Case.assignee_id == me.id)
    elif f.assignee == "none":
        query = query.where(Case.assignee_id.is_(None))
    elif f.assignee and parse_id(f.assignee):
        query = query.where(Case.assignee_id == parse_id(f.assignee))
    if f.region == "beijing":
        query = query.where(_beijing_claim())
    elif f.region == "other":
        query = query.where(~_beijing_claim())
    urgency = sql_case(
        (Case.resolution_due_at <= now, 0), (Case.resolution_due_at <= at_risk, 1), else_=2
    )
    return db.session.scalars(
        query.order_by(urgency, Case.resolution_due_at, Case.id).limit(limit)
    ).all()


def _beijing_claim():
    # Region from the identity: 10-digit codes start 1100, 12-digit codes have 1100 at 2-5,
    # 数电票 numbers have 11 at 3-4 (fapiao.md §1).
    return or_(
        Case.claimed_code.like("1100%"),
        Case.claimed_code.like("_1100%"),
        (Case.claimed_code == "") & Case.claimed_number.like("__11%"),
    )


def counts_by_state() -> dict[str, int]:
    """Open cases by state, for the queue's header."""
    rows = db.session.execute(
        select(Case.state, func.count())
        .where(Case.state.in_(OPEN_CASE_STATES))
        .group_by(Case.state)
    ).all()
    return {state: n for state, n in rows}


def reviewers() -> list[User]:
    """Active staff who can review, by e-mail."""
    return db.session.scalars(
        select(User).where(User.active.is_(True), User.role != Role.CUSTOMER).order_by(User.email)
    ).all()


# --------------------------------------------------------------------------- claiming


def _event(case: Case, kind: str, actor: User, body: str = "", public: bool = True) -> None:
    db.session.add(
        CaseEvent(
            case_id=case.id, kind=kind, actor_id=actor.id, from_staff=True, public=public, body=body
        )
    )


def claim(case: Case, reviewer: User) -> None:
    """Take an unclaimed case; exactly one of two reviewers claiming at once wins. Commits."""
    now = utcnow()
    won = db.session.execute(
        update(Case)
        .where(
            Case.id == case.id, Case.assignee_id.is_(None), Case.state == CaseState.AWAITING_REVIEW
        )
        .values(assignee_id=reviewer.id, state=CaseState.IN_REVIEW, claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        db.session.rollback()
        raise ServiceError(_l("Someone else has already claimed this case."), code="taken")
    db.session.refresh(case)
    _event(case, "claimed", reviewer, public=False)
    audit.record(
        "case.claimed",
        "case",
        case.reference,
        before={"state": "awaiting_review"},
        after={"state": case.state, "assignee": reviewer.email},
        actor=reviewer,
    )
    db.session.commit()


def release(case: Case, actor: User) -> None:
    """Give a claimed case back to the queue (its reviewer, or a supervisor). Commits."""
    if case.state != CaseState.IN_REVIEW:
        raise ServiceError(_l("This case is not claimed."))
    if case.assignee_id != actor.id and not actor.has_role(Role.SUPERVISOR):
        raise ServiceError(_l("Only the reviewer who claimed it, or a supervisor, can release it."))
    before = {"state": case.state, "assignee_id": case.assignee_id}
    case.state, case.assignee_id, case.claimed_at = CaseState.AWAITING_REVIEW, None, None
    _event(case, "released", actor, public=False)
    audit.record(
        "case.released",
        "case",
        case.reference,
        before=before,
        after={"state": case.state},
        actor=actor,
    )
    db.session.commit()


def assign(case: Case, supervisor: User, reviewer: User) -> None:
    """A supervisor gives a case to a reviewer. Commits."""
    if not supervisor.has_role(Role.SUPERVISOR):
        raise ServiceError(_l("Only supervisors assign cases."))
    if case.state not in REVIEWABLE:
        raise ServiceError(_l("This case is not waiting for review."))
    if not reviewer.is_staff or not reviewer.active:
        raise ServiceError(_l("Cases can only be assigned to active staff."))
    before = {"state": case.state, "assignee_id": case.assignee_id}
    case.state, case.assignee_id, case.claimed_at = CaseState.IN_REVIEW, reviewer.id, utcnow()
    _event(case, "assigned", supervisor, body=reviewer.email, public=False)
    notify.staff_assigned(case, reviewer)
    audit.record(
        "case.assigned",
        "case",
        case.reference,
        before=before,
        after={"state": case.state, "assignee": reviewer.email},
        actor=supervisor,
    )
    db.session.commit()


def least_loaded_reviewer() -> User | None:
    """The active reviewer with the fewest cases in review (ties: the earliest account)."""
    load = (
        select(Case.assignee_id, func.count().label("n"))
        .where(Case.state == CaseState.IN_REVIEW)
        .group_by(Case.assignee_id)
        .subquery()
    )
    return db.session.scalar(
        select(User)
        .outerjoin(load, load.c.assignee_id == User.id)
        .where(User.active.is_(True), User.role.in_([Role.REVIEWER, Role.SUPERVISOR]))
        .order_by(func.coalesce(load.c.n, 0), User.id)
        .limit(1)
    )


def auto_assign(cases_to_assign: list[Case], supervisor: User) -> int:
    """Assign each unclaimed case to whoever has least work at that moment."""
    done = 0
    for case in cases_to_assign:
        if case.state != CaseState.AWAITING_REVIEW:
            continue
        reviewer = least_loaded_reviewer()
        if reviewer is None:
            break
        assign(case, supervisor, reviewer)
        done += 1
    return done


def _require_reviewer(case: Case, reviewer: User) -> None:
    if case.state != CaseState.IN_REVIEW or case.assignee_id != reviewer.id:
        raise ServiceError(
            _l("Claim the case before deciding; it is read-only until then."), code="not_claimed"
        )


# ---------------------------------------------------------------------------- decisions


def four_eyes_amount() -> Decimal:
    return Decimal(str(current_app.config["FOUR_EYES_AMOUNT"]))


def decision_digest(decision: ReviewDecision) -> str:
    """A digest of what an approval says (its id, case, fields and reasons): the second
    supervisor's form carries it, so a confirm can only confirm what was shown."""
    canonical = json.dumps(
        {
            "decision": decision.id,
            "case": decision.case_id,
            "fields": decision.approved_fields,
            "reasons": decision.second_reasons or [],
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _four_eyes_reasons(case: Case, issued: intake.IssuedInvoice) -> list[str]:
    reasons = []
    if issued.total > four_eyes_amount():
        reasons.append("amount")
    if issued.key != case.claimed_key:
        reasons.append("identity")
    existing = db.session.scalar(select(Invoice).where(Invoice.key == issued.key))
    if existing is not None and any(
        getattr(existing, n) != getattr(issued, n) for n in WIRE_FIELDS
    ):
        registered = existing.registry_state == RegistryState.REGISTERED
        reasons.append("registered_change" if registered else "ledger_change")
    return reasons


def approve(
    case: Case, reviewer: User, fields: Mapping[str, object], *, other_invoice: bool = False
) -> ReviewDecision:
    """Approve re-entry with these invoice fields (validated by the domain rules).

    The approved invoice must be the one the case reports; another one is refused unless the
    reviewer says so (``other_invoice``), and then, like a total above the four-eyes amount or
    any change to an invoice already in the ledger, the decision waits for a second, different
    supervisor. Otherwise the invoice is re-entered at once. While an approval waits, no new one
    is taken (withdraw it first). Commits. Raises intake.IntakeErrors for invalid fields.
    """
    _require_reviewer(case, reviewer)
    if pending_second_approval(case) is not None:
        raise ServiceError(
            _l(
                "An approval of this case is waiting for a second supervisor. Withdraw it "
                "before approving again."
            ),
            code="pending",
        )
    issued = intake.validate_issued(fields)
    if issued.key != case.claimed_key and not other_invoice:
        raise ServiceError(
            _l(
                "The invoice %(key)s is not the one reported (%(claimed)s). If the report "
                "named the wrong invoice, tick “another invoice”: a second supervisor must "
                "then confirm.",
                key=issued.key,
                claimed=case.claimed_key,
            ),
            field="number",
            code="identity_mismatch",
        )
    reasons = _four_eyes_reasons(case, issued)
    decision = ReviewDecision(
        case_id=case.id,
        kind=DecisionKind.APPROVE,
        reviewer_id=reviewer.id,
        approved_fields={k: str(v) for k, v in issued.as_record().items()},
        second_reasons=reasons or None,
    )
    db.session.add(decision)
    if reasons:
        decision.awaiting_second = True
        db.session.flush()
        _event(case, "approval_pending", reviewer, public=False, body=", ".join(reasons))
        audit.record(
            "case.approval_pending",
            "case",
            case.reference,
            after={
                "decision": decision.id,
                "fields": decision.approved_fields,
                "reasons": reasons,
                "reported": case.claimed_key,
            },
            actor=reviewer,
        )
        db.session.commit()
        return decision
    _reenter(case, reviewer, issued, decision)
    return decision


def confirm(case: Case, supervisor: User, decision_id: int | None, digest: str) -> None:
    """The second approval, by a different supervisor, of exactly the decision they were shown
    (its id and ``decision_digest``); anything else is refused. Commits."""
    if not supervisor.has_role(Role.SUPERVISOR):
        raise ServiceError(_l("Only a supervisor can give the second approval."))
    decision = pending_second_approval(case)
    if decision is None:
        raise ServiceError(_l("Nothing is waiting for a second approval."), code="none")
    if decision.id != decision_id or not hmac.compare_digest(
        decision_digest(decision), digest or ""
    ):
        raise ServiceError(
            _l(
                "The approval waiting on this case is not the one you confirmed (it changed). "
                "Look at it again."
            ),
            code="stale",
        )
    if decision.reviewer_id == supervisor.id:
        raise ServiceError(
            _l("The second approval must come from someone else."), code="same_person"
        )
    if case.state != CaseState.IN_REVIEW:
        raise ServiceError(_l("This case is no longer in review."))
    issued = intake.validate_issued(decision.approved_fields)
    decision.awaiting_second = False
    decision.second_reviewer_id = supervisor.id
    decision.second_decided_at = utcnow()
    if "identity" in (decision.second_reasons or []):
        audit.record(
            "case.identity_corrected",
            "case",
            case.reference,
            before={"invoice": case.claimed_key},
            after={"invoice": issued.key, "first_approver": decision.reviewer_id},
            actor=supervisor,
        )
    _reenter(case, supervisor, issued, decision)


def withdraw_pending(case: Case, actor: User) -> None:
    """Take back an approval waiting for a second supervisor (its author or a supervisor), so
    that a corrected one can be made. Commits."""
    decision = pending_second_approval(case)
    if decision is None:
        raise ServiceError(_l("Nothing is waiting for a second approval."), code="none")
    if decision.reviewer_id != actor.id and not actor.has_role(Role.SUPERVISOR):
        raise ServiceError(_l("Only its author or a supervisor can withdraw this approval."))
    decision.awaiting_second = False
    decision.withdrawn_at = utcnow()
    _event(case, "approval_withdrawn", actor, public=False)
    audit.record(
        "case.approval_withdrawn",
        "case",
        case.reference,
        before={"decision": decision.id, "awaiting_second": True},
        after={"awaiting_second": False},
        actor=actor,
    )
    db.session.commit()


def pending_second_approval(case: Case) -> ReviewDecision | None:
    """The approval of this case waiting for a second supervisor, if any."""
    return next((d for d in reversed(case.decisions) if d.awaiting_second), None)


def _reenter(case: Case, actor: User, issued: intake.IssuedInvoice, decision) -> None:
    """Put the approved invoice in the ledger (or correct it) with a new outbox row, and mark
    the case approved — one transaction."""
    invoice = db.session.scalar(select(Invoice).where(Invoice.key == issued.key))
    before_case = {"state": case.state}
    if invoice is None:
        invoice = Invoice(**issued.as_record(), source=InvoiceSource.REENTRY)
        db.session.add(invoice)
        db.session.flush()
        audit.record(
            "invoice.reentered", "invoice", invoice.key, after=issued.as_record(), actor=actor
        )
        outbox.queue_delivery(invoice, reason="reentry", actor=actor)
    else:
        differences = [n for n in WIRE_FIELDS if getattr(invoice, n) != getattr(issued, n)]
        live = db.session.scalar(
            select(Submission.id)
            .where(
                Submission.invoice_id == invoice.id,
                Submission.state.in_(
                    (
                        SubmissionState.QUEUED,
                        SubmissionState.RETRY_SCHEDULED,
                        SubmissionState.IN_FLIGHT,
                    )
                ),
            )
            .limit(1)
        )
        if differences:
            before = {n: getattr(invoice, n) for n in differences}
            for name in differences:
                setattr(invoice, name, getattr(issued, name))
            audit.record(
                "invoice.corrected",
                "invoice",
                invoice.key,
                before=before,
                after={n: getattr(issued, n) for n in differences},
                actor=actor,
            )
        if (differences or invoice.registry_state != RegistryState.REGISTERED) and live is None:
            outbox.queue_delivery(
                invoice, reason="correction" if differences else "reentry", actor=actor
            )
    case.invoice_id = invoice.id
    case.state = CaseState.APPROVED
    case.first_responded_at = case.first_responded_at or utcnow()
    _event(case, "approved", actor)
    notify.case_approved(case, invoice.key)
    audit.record(
        "case.approved",
        "case",
        case.reference,
        before=before_case,
        after={
            "state": case.state,
            "invoice": invoice.key,
            "second_approver": getattr(decision, "second_reviewer_id", None),
        },
        actor=actor,
    )
    db.session.commit()
    if invoice.registry_state == RegistryState.REGISTERED and not db.session.scalar(
        select(Submission.id)
        .where(Submission.invoice_id == invoice.id, Submission.state != SubmissionState.SUCCEEDED)
        .limit(1)
    ):
        resolve_registered([invoice.id])


def reject(case: Case, reviewer: User, reason_code: str, text: str = "") -> None:
    """Reject the report with a reason the customer sees. Commits."""
    _require_reviewer(case, reviewer)
    if reason_code not in REJECT_REASONS:
        raise ServiceError(_l("Choose a reason."), field="reason_code")
    reason = f"{REJECT_REASONS[reason_code]}" + (f" — {text.strip()}" if text.strip() else "")
    db.session.add(
        ReviewDecision(
            case_id=case.id,
            kind=DecisionKind.REJECT,
            reviewer_id=reviewer.id,
            reason_code=reason_code,
            reason_text=text.strip(),
        )
    )
    notify.case_rejected(case, reason)
    _finish(case, reviewer, CaseState.REJECTED, "rejected", reason)


def request_info(case: Case, reviewer: User, text: str) -> None:
    """Ask the customer for more; the SLA clock pauses until they answer. Commits."""
    _require_reviewer(case, reviewer)
    if not text.strip():
        raise ServiceError(_l("Say what information you need."), field="text")
    db.session.add(
        ReviewDecision(
            case_id=case.id,
            kind=DecisionKind.REQUEST_INFO,
            reviewer_id=reviewer.id,
            reason_text=text.strip(),
        )
    )
    before = {"state": case.state}
    case.state = CaseState.INFO_REQUESTED
    case.sla_paused_at = utcnow()
    case.first_responded_at = case.first_responded_at or utcnow()
    _event(case, "info_requested", reviewer, body=text.strip())
    notify.info_requested(case, text.strip())
    audit.record(
        "case.info_requested",
        "case",
        case.reference,
        before=before,
        after={"state": case.state},
        actor=reviewer,
    )
    db.session.commit()


def merge(case: Case, reviewer: User, into_reference: str) -> Case:
    """Fold this duplicate case into another open case of the same invoice. Commits."""
    _require_reviewer(case, reviewer)
    target = db.session.scalar(select(Case).where(Case.reference == into_reference.strip()))
    if target is None or target.id == case.id or not target.is_open:
        raise ServiceError(_l("Choose another open case to merge into."), field="into")
    if target.claimed_key != case.claimed_key:
        raise ServiceError(_l("Only reports of the same invoice can be merged."), field="into")
    db.session.add(
        ReviewDecision(
            case_id=case.id,
            kind=DecisionKind.MERGE,
            reviewer_id=reviewer.id,
            reason_text=target.reference,
        )
    )
    case.merged_into_id = target.id
    db.session.add(
        CaseEvent(
            case_id=target.id,
            kind="merged_in",
            actor_id=reviewer.id,
            from_staff=True,
            public=False,
            body=case.reference,
        )
    )
    _finish(
        case,
        reviewer,
        CaseState.MERGED,
        "merged",
        str(_l("Handled together with report %(ref)s.", ref=target.reference)),
    )
    return target


def close_registered(case: Case, reviewer: User) -> None:
    """The invoice turned out to be registered already: resolve the case. Commits."""
    _require_reviewer(case, reviewer)
    invoice = db.session.scalar(select(Invoice).where(Invoice.key == case.claimed_key))
    if invoice is None or invoice.registry_state != RegistryState.REGISTERED:
        raise ServiceError(_l("This invoice is not registered; approve or reject instead."))
    case.invoice_id = invoice.id
    db.session.add(
        ReviewDecision(case_id=case.id, kind=DecisionKind.CLOSE_REGISTERED, reviewer_id=reviewer.id)
    )
    notify.case_resolved(case, invoice.registry_id or "")
    _finish(
        case,
        reviewer,
        CaseState.RESOLVED,
        "already_registered",
        str(_l("The invoice is registered (registry ID %(id)s).", id=invoice.registry_id)),
    )


def _finish(case: Case, actor: User, state: str, event_kind: str, body: str) -> None:
    before = {"state": case.state}
    case.state = state
    case.resolved_at = utcnow()
    case.first_responded_at = case.first_responded_at or case.resolved_at
    _event(case, event_kind, actor, body=body)
    audit.record(
        f"case.{event_kind}",
        "case",
        case.reference,
        before=before,
        after={"state": state, "reason": body},
        actor=actor,
    )
    db.session.commit()


def reply(case: Case, staff: User, text: str) -> None:
    """A message from the service desk to the customer. Commits."""
    if case.first_responded_at is None:
        case.first_responded_at = utcnow()
    cases.add_message(case, staff, text, from_staff=True)


def resolve_registered(invoice_ids: list[int]) -> int:
    """Cases approved for these invoices are resolved now that the registry confirmed them.
    Called in the delivery job's transaction flow; commits. Returns how many were resolved."""
    if not invoice_ids:
        return 0
    from . import findings  # reconciliation's screen sits above review

    approved = db.session.scalars(
        select(Case).where(Case.invoice_id.in_(invoice_ids), Case.state == CaseState.APPROVED)
    ).all()
    for case in approved:
        invoice = db.session.get(Invoice, case.invoice_id)
        case.state = CaseState.RESOLVED
        case.resolved_at = utcnow()
        db.session.add(
            CaseEvent(case_id=case.id, kind="registered", body=invoice.registry_id or "")
        )
        notify.case_resolved(case, invoice.registry_id or "")
        audit.record(
            "case.resolved",
            "case",
            case.reference,
            before={"state": "approved"},
            after={"state": case.state, "registry_id": invoice.registry_id},
        )
        findings.settle_corrected(case)  # a correction opened from reconciliation findings
    db.session.commit()
    return len(approved)


# --------------------------------------------------------------------- what staff see


@dataclass(frozen=True)
class Duplicate:
    kind: str  # ledger | registered | open_case | same_evidence
    reference: str
    detail: str = ""


def duplicates(case: Case) -> list[Duplicate]:
    """Everything that says this report may not be new."""
    found: list[Duplicate] = []
    if case.claimed_key:
        invoice = db.session.scalar(select(Invoice).where(Invoice.key == case.claimed_key))
        if invoice is not None and invoice.id != case.invoice_id:
            kind = "registered" if invoice.registry_state == RegistryState.REGISTERED else "ledger"
            found.append(Duplicate(kind, invoice.key, invoice.registry_state))
        for other in db.session.scalars(
            select(Case).where(
                Case.claimed_key == case.claimed_key,
                Case.id != case.id,
                Case.state.in_(OPEN_CASE_STATES),
            )
        ):
            found.append(Duplicate("open_case", other.reference, other.state))
    hashes = [u.sha256 for u in case.uploads]
    phashes = [u.perceptual_hash for u in case.uploads if u.perceptual_hash]
    if hashes or phashes:
        conditions = [Upload.sha256.in_(hashes)] if hashes else []
        if phashes:
            conditions.append(Upload.perceptual_hash.in_(phashes))
        for upload in db.session.scalars(
            select(Upload).where(
                or_(*conditions), Upload.case_id != case.id, Upload.case_id.is_not(None)
            )
        ):
            found.append(Duplicate("same_evidence", upload.case.reference, upload.original_name))
    return found


def bulk(action: str, references: list[str], actor: User, reviewer_id=None) -> int:
    """Apply one queue action to the chosen cases: ``claim``, ``release``, ``assign`` (to
    ``reviewer_id``) or ``auto_assign``. A case that cannot take it (claimed by someone else
    meanwhile) is skipped. Returns how many cases changed; raises ServiceError for an unknown
    action or reviewer."""
    chosen = [c for c in (case_by_reference(r) for r in references) if c is not None]
    if not chosen:
        raise ServiceError(_l("Tick the cases first."), field="case")
    if action == "auto_assign":
        return auto_assign(chosen, actor)
    if action == "assign":
        reviewer = staff_member(reviewer_id)
        if reviewer is None:
            raise ServiceError(_l("Choose a reviewer."), field="reviewer_id")
        for case in chosen:
            assign(case, actor, reviewer)
        return len(chosen)
    steps = {"claim": claim, "release": release}
    if action not in steps:
        raise ServiceError(_l("Choose an action."), field="action")
    done = 0
    for case in chosen:
        try:
            steps[action](case, actor)
        except ServiceError:
            continue
        done += 1
    return done


def staff_member(user_id) -> User | None:
    """An active staff account by id (text or int), or None."""
    parsed = parse_id(user_id)
    user = db.session.get(User, parsed) if parsed else None
    return user if user is not None and user.is_staff else None


def case_by_reference(reference: str) -> Case | None:
    """Any case by its reference (staff see all)."""
    return db.session.scalar(select(Case).where(Case.reference == reference))


def extracted_fields(case: Case) -> dict[str, tuple[str, str]]:
    """The best value read from the case's evidence for each field: (value, source)."""
    best: dict[str, tuple[str, str, float]] = {}
    for upload in case.uploads:
        for item in (upload.extracted or {}).get("fields", []):
            name, value = item.get("name"), item.get("value")
            confidence = float(item.get("confidence") or 0)
            if name and value and (name not in best or confidence > best[name][2]):
                label = source_label(str(item.get("source", "")), item.get("where"), confidence)
                best[name] = (str(value), label, confidence)
    return {k: (v, label) for k, (v, label, _c) in best.items()}


def set_priority(case: Case, staff: User, priority: str) -> None:
    """Mark a case urgent (or normal again); its deadlines follow the policy for that priority,
    counted from when it was opened. Commits."""
    from . import sla

    if priority not in ("normal", "urgent"):
        raise ServiceError(_l("Unknown priority."))
    if not case.is_open:
        raise ServiceError(_l("This case is closed."))
    before = {"priority": case.priority, "resolution_due_at": case.resolution_due_at}
    case.priority = priority
    case.first_response_due_at = sla.first_response_due(case.created_at, case.channel, priority)
    case.resolution_due_at = sla.resolution_due(case.created_at, case.channel, priority)
    _event(case, "priority", staff, body=priority, public=False)
    audit.record(
        "case.priority",
        "case",
        case.reference,
        before=before,
        after={"priority": priority, "resolution_due_at": case.resolution_due_at},
        actor=staff,
    )
    db.session.commit()
