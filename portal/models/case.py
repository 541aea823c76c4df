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

    AWAITING_EVIDENCE = "awaiting_evidence"
    AWAITING_REVIEW = "awaiting_review"
    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"  # re-entered; waiting for the registry to confirm
    RESOLVED = "resolved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


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


class Case(db.Model):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # BJ-2026-000123
    channel: Mapped[str] = mapped_column(String(16), default=Channel.WEB)
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

    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    customer = relationship("User", foreign_keys=[customer_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    invoice = relationship("Invoice")
    uploads: Mapped[list[Upload]] = relationship(back_populates="case", order_by="Upload.id")

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_CASE_STATES


class UploadState(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    EXTRACTED = "extracted"
    FAILED = "failed"


class Upload(db.Model):
    """One evidence file. The bytes live in storage under ``storage_key``, never in static/."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    perceptual_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default=UploadState.RECEIVED)
    extracted: Mapped[dict | None] = mapped_column(db.JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    case: Mapped[Case | None] = relationship(back_populates="uploads")
