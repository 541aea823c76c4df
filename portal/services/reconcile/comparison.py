"""Comparing the staged listing with the ledger, set-wise in the database, and acting on it.

The heavy statements each read the ledger and the staged listing once, as hash joins:
the missing anti-join (ledger → staging) and one outer join (staging → ledger) that finds
unknown keys and differing fields together. Everything else starts from findings, which are
few, and joins them to the big tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, text, update

from ...domain.fields import WIRE_FIELDS, wire_text
from ...extensions import db
from ...models import Alert, Invoice, RegistryState, Submission, SubmissionState, utcnow
from ...models.reconciliation import (
    FindingKind,
    ReconciliationFinding,
    ReconciliationRun,
    ReconciliationStaging,
    RunKind,
    RunState,
)
from ...models.types import UTCDateTime
from .. import audit, outbox
from .base import Progress, clear_staging, setting, this_run
from .lease import RunRef, hold, update_run

LIVE_SUBMISSION_STATES = (
    SubmissionState.QUEUED,
    SubmissionState.IN_FLIGHT,
    SubmissionState.RETRY_SCHEDULED,
)

_S = ReconciliationStaging.__table__
_I = Invoice.__table__
_F = ReconciliationFinding.__table__


def _undescribed_findings(ref: RunRef, *, missing: bool):
    """This run's findings not yet described (``missing`` ones, or the others), in chunks of
    ``RECONCILE_CHUNK``; the run's lease is renewed before each chunk is handed out. Each chunk
    is read after the caller has committed the one before."""
    kind = (
        ReconciliationFinding.kind == FindingKind.MISSING
        if missing
        else ReconciliationFinding.kind != FindingKind.MISSING
    )
    chunk = setting("RECONCILE_CHUNK")
    last_id = 0
    while True:
        findings = db.session.scalars(
            select(ReconciliationFinding)
            .where(
                ReconciliationFinding.run_id == ref.id,
                kind,
                ReconciliationFinding.details.is_(None),
                ReconciliationFinding.id > last_id,
            )
            .order_by(ReconciliationFinding.id)
            .limit(chunk)
        ).all()
        if not findings:
            return
        last_id = findings[-1].id
        hold(ref)
        yield findings


def _fields_differ():
    return or_(*(_S.c[name].is_distinct_from(_I.c[name]) for name in WIRE_FIELDS))


def _staged_key(ref: RunRef, key_column):
    return and_(_S.c.run_id == ref.id, _S.c.key == key_column)


def _not_staged(ref: RunRef, key_column):
    """The anti-join "this key is not in the staged listing", as each database runs it well.

    PostgreSQL turns NOT EXISTS into a hash anti-join. SQLite would scan the staging table once
    per ledger row (the table has no key index, see ReconciliationStaging); NOT IN over the
    uncorrelated subquery makes it build a temporary index of the staged keys once. (On
    PostgreSQL NOT IN would be the quadratic one.) Staged keys are never NULL, so NOT IN means
    what it says.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        return key_column.not_in(select(_S.c.key).where(this_run(ref)))
    return ~exists().where(_staged_key(ref, key_column))


def _missing_scope(ref: RunRef):
    """Ledger invoices a full run may call missing (see the module docstring)."""
    cutoff = ref.started_at - timedelta(seconds=setting("RECONCILE_CLOCK_SKEW_SECONDS"))
    return (_I.c.registry_state == RegistryState.REGISTERED, _I.c.registered_at < cutoff)


def _registry_side_problem():
    # Unknown to the ledger, or known with other fields (an invoice already in conflict is a
    # dead letter staff have; it gets no second task).
    return or_(
        _I.c.id.is_(None),
        and_(_I.c.registry_state != RegistryState.CONFLICT, _fields_differ()),
    )


def _now_literal(now: datetime):
    return literal(now, UTCDateTime())


_STEPS = 5


def compare(ref: RunRef, progress: Progress) -> None:
    """Compare the staged listing with the ledger, act on the findings, finish the run."""
    if db.session.get_bind().dialect.name == "postgresql":
        # The table was empty when last analysed; the planner must know it is big now.
        db.session.execute(text("ANALYZE reconciliation_staging"))
        db.session.commit()
    _resolve_settled(ref)
    progress("comparing", 1, _STEPS)
    if ref.kind == RunKind.FULL:
        _find_missing(ref)
        _resubmit_missing(ref)
    progress("comparing", 2, _STEPS)
    _find_registry_side(ref)
    progress("comparing", 3, _STEPS)
    _describe(ref)
    progress("comparing", 4, _STEPS)
    _finish(ref)
    progress("comparing", 5, _STEPS)


def _resolve_settled(ref: RunRef) -> None:
    """Close the open findings of earlier runs that this run shows are over.

    missing: the listing has the key now (resubmitted and delivered). mismatch: the listing
    has the key with the ledger's fields. unknown: the ledger has the key now (e.g. entered by
    a re-entry case). Each query starts from the open findings (few) and joins them to the big
    tables; the ids found are bounded by the open findings, not by the ledger.
    """
    open_earlier = and_(_F.c.resolved_at.is_(None), _F.c.run_id != ref.id)
    staged = _F.join(_S, _staged_key(ref, _F.c.invoice_key))
    queries = (
        select(_F.c.id, _F.c.invoice_key)
        .select_from(staged)
        .where(open_earlier, _F.c.kind == FindingKind.MISSING),
        select(_F.c.id, _F.c.invoice_key)
        .select_from(staged.join(_I, _I.c.key == _F.c.invoice_key))
        .where(open_earlier, _F.c.kind == FindingKind.MISMATCH, ~_fields_differ()),
        select(_F.c.id, _F.c.invoice_key)
        .select_from(_F.join(_I, _I.c.key == _F.c.invoice_key))
        .where(open_earlier, _F.c.kind == FindingKind.UNKNOWN),
    )
    settled = sorted({tuple(row) for query in queries for row in db.session.execute(query)})
    chunk = setting("RECONCILE_CHUNK")
    for start in range(0, len(settled), chunk):
        rows = settled[start : start + chunk]
        hold(ref)
        now = utcnow()
        db.session.execute(
            update(_F).where(_F.c.id.in_([i for i, _ in rows])).values(resolved_at=now)
        )
        audit.record_many(
            [
                (
                    "reconcile.finding_resolved",
                    "reconciliation_finding",
                    finding_id,
                    {"resolved_at": None},
                    {"resolved_at": now, "by_run": ref.id, "key": key},
                )
                for finding_id, key in rows
            ],
            actor=ref.actor,
        )
        db.session.commit()


def _find_missing(ref: RunRef) -> None:
    """Record a finding for every in-scope ledger invoice the full listing lacks (set-wise)."""
    hold(ref)
    this_run_has_it = exists().where(
        _F.c.run_id == ref.id, _F.c.kind == FindingKind.MISSING, _F.c.invoice_key == _I.c.key
    )
    db.session.execute(
        insert(_F).from_select(
            ["run_id", "kind", "invoice_key", "created_at"],
            select(
                literal(ref.id),
                literal(FindingKind.MISSING.value),
                _I.c.key,
                _now_literal(utcnow()),
            ).where(
                *_missing_scope(ref),
                _not_staged(ref, _I.c.key),
                ~this_run_has_it,  # a resumed run must not record the same invoice twice
            ),
        )
    )
    count = db.session.scalar(
        select(func.count())
        .select_from(_F)
        .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.MISSING)
    )
    # The ledger side compared: what is in scope now, plus what this run already moved out of
    # it by resubmitting (a resumed run finds those pending).
    in_scope = db.session.scalar(select(func.count()).select_from(_I).where(*_missing_scope(ref)))
    hold(ref, missing_at_registry=count, ledger_rows=in_scope + ReconciliationRun.resubmitted)
    db.session.commit()


def _resubmit_missing(ref: RunRef) -> None:
    """Put the missing invoices back in the outbox, a chunk per transaction.

    Each finding is described (``details``) in the transaction that acts on it, so a resumed
    run carries on with the findings still undescribed. An invoice no longer ``registered``
    (changed meanwhile) or with a live delivery is not resubmitted.
    """
    for findings in _undescribed_findings(ref, missing=True):
        keys = [f.invoice_key for f in findings]
        invoices = {
            i.key: i
            for i in db.session.scalars(
                select(Invoice).where(Invoice.key.in_(keys)).with_for_update(of=Invoice)
            )
        }
        live = set(
            db.session.scalars(
                select(Submission.invoice_id).where(
                    Submission.invoice_id.in_([i.id for i in invoices.values()]),
                    Submission.state.in_(LIVE_SUBMISSION_STATES),
                )
            )
        )
        resubmit, changes = [], []
        for finding in findings:
            invoice = invoices.get(finding.invoice_key)
            if invoice is None or invoice.registry_state != RegistryState.REGISTERED:
                finding.details = {"resubmitted": False, "reason": "no longer registered"}
            elif invoice.id in live:
                finding.details = {"resubmitted": False, "reason": "a delivery is already live"}
            else:
                finding.details = {
                    "resubmitted": True,
                    "invoice_id": invoice.id,
                    "registry_id": invoice.registry_id,
                    "registered_at": invoice.registered_at.isoformat(),
                }
                resubmit.append(invoice)
                changes.append(
                    (
                        "invoice.reconcile_resubmitted",
                        "invoice",
                        invoice.id,
                        {
                            "registry_state": invoice.registry_state,
                            "registry_id": invoice.registry_id,
                        },
                        {"registry_state": RegistryState.PENDING, "finding": finding.id},
                    )
                )
        if changes:
            audit.record_many(changes, actor=ref.actor)
            outbox.queue_deliveries(resubmit, reason="reconcile", actor=ref.actor)
        hold(ref, resubmitted=ReconciliationRun.resubmitted + len(resubmit))
        db.session.commit()  # after_commit hands the deliveries to RQ


def _find_registry_side(ref: RunRef) -> None:
    """Record mismatches and unknowns among the staged records, in one outer join, and count
    what the listing shows (new findings, and open ones of earlier runs seen again)."""
    hold(ref)
    kind = case((_I.c.id.is_(None), FindingKind.UNKNOWN.value), else_=FindingKind.MISMATCH.value)
    # One open finding per key: a problem staff already have is not repeated (a key cannot
    # be unknown and mismatched at once; it is in the ledger or it is not).
    reported = exists().where(
        _F.c.invoice_key == _S.c.key,
        _F.c.resolved_at.is_(None),
        _F.c.kind.in_((FindingKind.MISMATCH, FindingKind.UNKNOWN)),
    )
    db.session.execute(
        insert(_F).from_select(
            ["run_id", "kind", "invoice_key", "created_at"],
            select(literal(ref.id), kind, _S.c.key, _now_literal(utcnow()))
            .select_from(_S.outerjoin(_I, _I.c.key == _S.c.key))
            .where(this_run(ref), _registry_side_problem(), ~reported)
            .distinct(),
        )
    )
    new = dict(
        db.session.execute(
            select(_F.c.kind, func.count())
            .where(_F.c.run_id == ref.id, _F.c.kind != FindingKind.MISSING)
            .group_by(_F.c.kind)
        ).all()
    )
    # Open findings of earlier runs still open after _resolve_settled, whose key this listing
    # holds: the problem is still there.
    again = dict(
        db.session.execute(
            select(_F.c.kind, func.count(func.distinct(_F.c.id)))
            .select_from(_F.join(_S, _staged_key(ref, _F.c.invoice_key)))
            .where(
                _F.c.run_id != ref.id,
                _F.c.resolved_at.is_(None),
                _F.c.kind != FindingKind.MISSING,
            )
            .group_by(_F.c.kind)
        ).all()
    )
    hold(
        ref,
        mismatched=new.get(FindingKind.MISMATCH, 0) + again.get(FindingKind.MISMATCH, 0),
        unknown_to_ledger=new.get(FindingKind.UNKNOWN, 0) + again.get(FindingKind.UNKNOWN, 0),
    )
    db.session.commit()


def _describe(ref: RunRef) -> None:
    """Fill in the details of this run's new mismatch and unknown findings, a chunk at a time
    (each chunk reads the staged listing once)."""
    for findings in _undescribed_findings(ref, missing=False):
        keys = [f.invoice_key for f in findings]
        staged = {
            row.key: row
            for row in db.session.execute(select(_S).where(this_run(ref), _S.c.key.in_(keys)))
        }
        ledger = {
            row.key: row
            for row in db.session.execute(
                select(
                    _I.c.key, _I.c.id, _I.c.registry_state, *(_I.c[n] for n in WIRE_FIELDS)
                ).where(_I.c.key.in_(keys))
            )
        }
        for finding in findings:
            finding.details = _details(
                finding.kind, staged.get(finding.invoice_key), ledger.get(finding.invoice_key)
            )
        audit.record_many(
            [
                (
                    "reconcile.finding_opened",
                    "reconciliation_finding",
                    f.id,
                    None,
                    {"kind": f.kind, "key": f.invoice_key, "run": ref.id},
                )
                for f in findings
            ],
            actor=ref.actor,
        )
        db.session.commit()


def _details(kind: str, staged, ledger) -> dict:
    registry = {name: wire_text(getattr(staged, name)) for name in WIRE_FIELDS} if staged else {}
    details: dict[str, Any] = {"registry_id": staged.registry_id if staged else None}
    if kind == FindingKind.UNKNOWN or ledger is None:
        details["registry"] = registry
        return details
    ours = {name: wire_text(getattr(ledger, name)) for name in WIRE_FIELDS}
    differences = [name for name in WIRE_FIELDS if ours[name] != registry.get(name)]
    details.update(
        invoice_id=ledger.id,
        registry_state=ledger.registry_state,
        fields=differences,
        ledger={name: ours[name] for name in differences},
        registry={name: registry.get(name) for name in differences},
    )
    return details


def _finish(ref: RunRef) -> None:
    """Count the ledger side of an incremental run, raise the alert for new unknowns, drop the
    staging, mark the run succeeded."""
    if ref.kind == RunKind.INCREMENTAL:
        ledger_rows = db.session.scalar(
            select(func.count(func.distinct(_I.c.id)))
            .select_from(_S.join(_I, _I.c.key == _S.c.key))
            .where(this_run(ref))
        )
    else:
        ledger_rows = ReconciliationRun.ledger_rows  # counted before resubmitting
    new_unknown = db.session.scalar(
        select(func.count())
        .select_from(_F)
        .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.UNKNOWN)
    )
    hold(ref)
    if new_unknown:
        examples = db.session.scalars(
            select(_F.c.invoice_key)
            .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.UNKNOWN)
            .order_by(_F.c.id)
            .limit(5)
        ).all()
        db.session.add(
            Alert(
                kind="reconcile_unknown",
                severity="warning",
                subject_type="reconciliation_run",
                subject_id=str(ref.id),
                message=(
                    f"Reconciliation run #{ref.id} found {new_unknown} invoice(s) registered "
                    f"with the registry but unknown to the ledger, e.g. {', '.join(examples)}."
                ),
            )
        )
    clear_staging()
    update_run(
        ref.id,
        state=RunState.SUCCEEDED,
        finished_at=utcnow(),
        ledger_rows=ledger_rows,
        owner=None,
        lease_expires_at=None,
        error=None,
    )
    run = db.session.get(ReconciliationRun, ref.id)
    db.session.refresh(run)
    audit.record(
        "reconcile.run_succeeded",
        "reconciliation_run",
        ref.id,
        {"state": RunState.RUNNING},
        {
            "state": RunState.SUCCEEDED,
            "kind": run.kind,
            "registry_rows": run.registry_rows,
            "ledger_rows": run.ledger_rows,
            "missing_at_registry": run.missing_at_registry,
            "resubmitted": run.resubmitted,
            "mismatched": run.mismatched,
            "unknown_to_ledger": run.unknown_to_ledger,
            "new_unknown": new_unknown,
        },
        actor=ref.actor,
    )
    db.session.commit()
