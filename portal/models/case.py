"""A customer's report that an invoice is missing, and everything said on it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class CaseState(StrEnum):
    """The life of a case. Staff decisions move it; the registry's answer resolves it."""

    # A web report starts in awaiting_evidence until a file is added or the customer says they
    # have none; counter and phone reports taken by staff go straight to awaiting_review.

    AWAITING_EVIDENCE = "awaiting_evidence"
    AWAITING_REVIEW = "awaiting_review"
    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"  # re-entered; waiting for the registry to confirm
    RESOLVED = "resolved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    MERGED = "merged"  # a duplicate folded into another case (``merged_into_id``)


OPEN_CASE_STATES = (
    CaseState.AWAITING_EVIDENCE,
    CaseState.AWAITING_REVIEW,
    CaseState.IN_REVIEW,
    CaseState.INFO_REQUESTED,
    CaseState.APPROVED,
)


class Channel(StrEnum):
    WEB = "web"
    COUNTER = "counter"
    PHONE = "phone"
    EMAIL = "email"
    SYSTEM = "system"  # opened by the portal itself (a registration that failed for good)


class Case(db.Model):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # BJ-2026-000123
    channel: Mapped[str] = mapped_column(String(16), default=Channel.WEB)
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # normal | urgent
    state: Mapped[str] = mapped_column(String(24), default=CaseState.AWAITING_EVIDENCE, index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_preference: Mapped[str] = mapped_column(String(16), default="email")
    description: Mapped[str] = mapped_column(Text, default="")

    # What the customer says the invoice is; the reviewer compares it with the evidence.
    claimed_key: Mapped[str | None] = mapped_column(String(40), index=True)
    claimed_code: Mapped[str] = mapped_column(String(12), default="")
    claimed_number: Mapped[str] = mapped_column(String(20), default="")
    claimed_issue_date: Mapped[date | None]
    claimed_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    claimed_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    claimed_check_code: Mapped[str] = mapped_column(String(20), default="")
    claimed_buyer_tax_id: Mapped[str] = mapped_column(String(20), default="")
    # What the customer confirmed after seeing the fields read from the evidence.
    confirmed_fields: Mapped[dict | None] = mapped_column(db.JSON)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The nonce signed into this case's rating links; cleared when a rating is recorded.
    rating_nonce: Mapped[str | None] = mapped_column(String(64))

    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The SLA clock stops while the customer is asked for information.
    sla_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    customer = relationship("User", foreign_keys=[customer_id])
    merged_into = relationship("Case", remote_side=[id], foreign_keys=[merged_into_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    invoice = relationship("Invoice")
    uploads: Mapped[list[Upload]] = relationship(back_populates="case", order_by="Upload.id")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")
    decisions: Mapped[list[ReviewDecision]] = relationship(
        back_populates="case", order_by="ReviewDecision.id"
    )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_CASE_STATES


class UploadState(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    EXTRACTED = "extracted"
    FAILED = "failed"
    # Its files were deleted under the retention policy (services/privacy.py); final.
    PURGED = "purged"


class Upload(db.Model):
    """One evidence file. The bytes live in storage under ``storage_key``, never in static/."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    # Derived files: a metadata-free re-encoded image (or a PDF's first page as PNG) and a
    # thumbnail; the original is only ever offered as a download.
    preview_key: Mapped[str | None] = mapped_column(String(80))
    thumbnail_key: Mapped[str | None] = mapped_column(String(80))
    pages: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    job_id: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    perceptual_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default=UploadState.RECEIVED)
    extracted: Mapped[dict | None] = mapped_column(db.JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    case: Mapped[Case | None] = relationship(back_populates="uploads")

    @property
    def is_purged(self) -> bool:
        """True once its files were deleted under the retention policy (views answer 404)."""
        return self.state == UploadState.PURGED


class CaseEvent(db.Model):
    """One line of a case's timeline (opened, evidence added, information requested, …).

    ``public`` events are shown to the customer; internal notes are for staff only.
    """

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_staff: Mapped[bool] = mapped_column(default=False)
    public: Mapped[bool] = mapped_column(default=True)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[Case] = relationship(back_populates="events")
    actor = relationship("User")


class ReferenceCounter(db.Model):
    """The last case number used in a year, for references like BJ-2026-000123."""

    __tablename__ = "reference_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(default=0)


class DecisionKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    MERGE = "merge"
    CLOSE_REGISTERED = "close_registered"


class ReviewDecision(db.Model):
    """A reviewer's decision on a case, with the fields approved and the reasons given.

    An approval that needs four eyes (a total above the four-eyes amount, another invoice than
    the one reported, or a change to an invoice already in the ledger) waits
    (``awaiting_second``) until a different supervisor confirms exactly it (its id and
    ``services.review.decision_digest``); only then is the invoice re-entered.
    """

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str] = mapped_column(Text, default="")
    approved_fields: Mapped[dict | None] = mapped_column(db.JSON)
    awaiting_second: Mapped[bool] = mapped_column(default=False)
    # Why a second person must confirm: "amount", "identity" (the approved invoice is not the
    # reported one), "ledger_change" / "registered_change" (it alters an invoice we hold).
    second_reasons: Mapped[list | None] = mapped_column(db.JSON)
    # A pending approval taken back before anyone confirmed it.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    second_reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    second_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[Case] = relationship(back_populates="decisions")
    reviewer = relationship("User", foreign_keys=[reviewer_id])
    second_reviewer = relationship("User", foreign_keys=[second_reviewer_id])
