"""The registry's record of an invoice as staff see it, from stored state only.

A web request never calls the registry (DESIGN.md §4): the review page shows what the
registry said at the last delivery (a registered invoice: the registry holds the ledger's
fields under its registry ID), at the last reconciliation (a mismatch finding keeps the
registry's differing fields), or at the last refresh a reviewer asked for, whichever is newest.
``request_refresh`` records the request, commits, then enqueues ``workers.registry_view``,
whose ``refresh`` asks the registry and stores the answer; the page polls until it is there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..domain.fields import WIRE_FIELDS, wire_text
from ..extensions import db
from ..models import (
    FindingKind,
    Invoice,
    ReconciliationFinding,
    RegistrySnapshot,
    RegistryState,
    utcnow,
)
from . import audit
from .errors import ServiceError

log = logging.getLogger(__name__)

REFRESH_JOB = "workers.registry_view.refresh"
REFRESH_PATIENCE = timedelta(minutes=2)


@dataclass(frozen=True)
class RegistryView:
    """What we know of the registry's record: ``record`` (None: it has none, or we do not
    know — ``known`` says which), where it came from (``source``: delivery, reconciliation,
    refresh), as of when, whether a refresh is on its way, and why the last refresh failed."""

    known: bool
    record: dict | None
    source: str | None
    as_of: datetime | None
    refreshing: bool = False
    error: str | None = None

    @property
    def as_of_iso(self) -> str | None:
        return self.as_of.isoformat() if self.as_of else None


def _ledger_record(invoice: Invoice) -> dict:
    record = {name: (wire_text(getattr(invoice, name)) or "") for name in WIRE_FIELDS}
    record["registry_id"] = invoice.registry_id or ""
    return record


def for_key(key: str) -> RegistryView:
    """The newest stored knowledge of the registry's record of ``key``. No registry call."""
    snapshot = db.session.scalar(
        select(RegistrySnapshot).where(RegistrySnapshot.invoice_key == key)
    )
    invoice = db.session.scalar(select(Invoice).where(Invoice.key == key))
    finding = db.session.scalar(
        select(ReconciliationFinding)
        .where(
            ReconciliationFinding.invoice_key == key,
            ReconciliationFinding.kind.in_((FindingKind.MISMATCH, FindingKind.UNKNOWN)),
            ReconciliationFinding.details.is_not(None),
        )
        .order_by(ReconciliationFinding.id.desc())
        .limit(1)
    )
    candidates: list[tuple[datetime, str, dict | None]] = []
    if snapshot is not None and snapshot.fetched_at is not None:
        candidates.append(
            (snapshot.fetched_at, "refresh", snapshot.record if snapshot.found else None)
        )
    if finding is not None:
        details = finding.details or {}
        base = _ledger_record(invoice) if invoice is not None else {}
        record = {**base, **{k: v or "" for k, v in (details.get("registry") or {}).items()}}
        record["registry_id"] = details.get("registry_id") or record.get("registry_id", "")
        candidates.append((finding.created_at, "reconciliation", record))
    if invoice is not None and invoice.registry_state == RegistryState.REGISTERED:
        as_of = invoice.registered_at or invoice.updated_at
        candidates.append((as_of, "delivery", _ledger_record(invoice)))
    # A request whose job vanished (Redis flushed, worker gone) stops counting as on its way
    # after a while, so the page stops waiting and offers the button again.
    refreshing = (
        snapshot is not None
        and snapshot.requested_at is not None
        and snapshot.requested_at > utcnow() - REFRESH_PATIENCE
    )
    error = snapshot.error if snapshot is not None else None
    if not candidates:
        return RegistryView(False, None, None, None, refreshing, error)
    as_of, source, record = max(candidates, key=lambda c: c[0])
    return RegistryView(True, record, source, as_of, refreshing, error)


def request_refresh(key: str | None, actor=None) -> None:
    """Ask a worker to fetch the registry's record of ``key`` again. The request is committed
    before the job is enqueued; a refresh already on its way is not queued twice."""
    from ..queue import enqueue_now

    if not key:
        raise ServiceError(_l("This report names no invoice the registry could know."))
    snapshot = db.session.scalar(
        select(RegistrySnapshot).where(RegistrySnapshot.invoice_key == key)
    )
    if snapshot is None:
        snapshot = RegistrySnapshot(invoice_key=key)
        db.session.add(snapshot)
    snapshot.requested_at = utcnow()
    audit.record(
        "registry.refresh_requested", "invoice", key, after={"requested": True}, actor=actor
    )
    db.session.commit()
    if not enqueue_now([(REFRESH_JOB, (key,), f"registry-view-{key}")]):
        # Redis away (logged): say so; the stored record stays on the page
        snapshot.requested_at = None
        db.session.commit()
        raise ServiceError(
            _l("The refresh could not be queued just now; the record shown is the stored one.")
        )


def refresh(key: str) -> RegistryView:
    """Fetch the registry's record of ``key`` and store it (called by the worker job only).
    A registry that cannot answer leaves the last record and notes why. Commits."""
    from ..registry.client import RegistryError
    from .registry_link import client

    snapshot = db.session.scalar(
        select(RegistrySnapshot).where(RegistrySnapshot.invoice_key == key)
    )
    if snapshot is None:
        snapshot = RegistrySnapshot(invoice_key=key)
        db.session.add(snapshot)
    try:
        record = client().get_invoice(key)
    except RegistryError as error:
        snapshot.requested_at = None
        snapshot.error = getattr(error, "error_kind", None) or "unavailable"
        db.session.commit()
        return for_key(key)
    snapshot.found = record is not None
    snapshot.record = record
    snapshot.fetched_at = utcnow()
    snapshot.requested_at = None
    snapshot.error = None
    db.session.commit()
    return for_key(key)
