"""The ledger of issued invoices and the outbox of their deliveries to the registry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

Money = Numeric(14, 2, asdecimal=True)


class RegistryState(StrEnum):
    """Where an invoice stands with the city registry, as the ledger knows it."""

    PENDING = "pending"  # in the outbox: queued, in flight or waiting to retry
    REGISTERED = "registered"
    FAILED = "failed"  # its submission is a dead letter; staff must act
    CONFLICT = "conflict"  # the registry holds the key with different fields


class InvoiceSource(StrEnum):
    API = "api"
    CSV = "csv"
    REENTRY = "reentry"
    DEMO = "demo"


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        # Staff search matches buyer names by prefix; text_pattern_ops lets PostgreSQL use the
        # index for LIKE 'prefix%' whatever the database collation.
        Index(
            "ix_invoices_buyer_name_prefix",
            "buyer_name",
            postgresql_ops={"buyer_name": "text_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # `{code}-{number}` for legacy invoices, the 20-digit number for 数电票.
    key: Mapped[str] = mapped_column(String(40), unique=True)
    code: Mapped[str] = mapped_column(String(12), default="")
    number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    issue_date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Money)
    tax: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    buyer_tax_id: Mapped[str] = mapped_column(String(20), index=True)
    buyer_name: Mapped[str] = mapped_column(String(200))
    seller_tax_id: Mapped[str] = mapped_column(String(20), default="")
    check_code: Mapped[str] = mapped_column(String(20), default="")
    source: Mapped[str] = mapped_column(String(16), default=InvoiceSource.API)
    registry_state: Mapped[str] = mapped_column(
        String(16), default=RegistryState.PENDING, index=True
    )
    registry_id: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    submissions: Mapped[list[Submission]] = relationship(
        back_populates="invoice", order_by="Submission.id"
    )

    def registry_payload(self) -> dict:
        """The invoice as the registry protocol carries it (DESIGN.md §6)."""
        return {
            "code": self.code,
            "number": self.number,
            "kind": self.kind,
            "issue_date": self.issue_date.isoformat(),
            "amount": f"{self.amount:.2f}",
            "tax": f"{self.tax:.2f}",
            "total": f"{self.total:.2f}",
            "buyer_tax_id": self.buyer_tax_id,
            "buyer_name": self.buyer_name,
            "seller_tax_id": self.seller_tax_id,
            "check_code": self.check_code,
        }

    def __repr__(self) -> str:
        return f"<Invoice {self.key} {self.registry_state}>"


class SubmissionState(StrEnum):
    """The outbox state machine: queued → in_flight → succeeded | retry_scheduled | dead."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD = "dead"


class Submission(db.Model):
    """One delivery of one invoice to the registry: the outbox row, written with the invoice."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=SubmissionState.QUEUED)
    reason: Mapped[str] = mapped_column(String(16), default="issued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The deterministic id of the RQ job last asked to deliver this row, and when; the sweeper
    # re-dispatches a due row whose job is no longer in Redis.
    job_id: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error_kind: Mapped[str | None] = mapped_column(String(32))
    last_error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship(back_populates="submissions")
    attempt_log: Mapped[list[SubmissionAttempt]] = relationship(
        back_populates="submission", order_by="SubmissionAttempt.id"
    )


class SubmissionAttempt(db.Model):
    """What happened on one call to the registry, kept for staff and for health figures."""

    __tablename__ = "submission_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    duration_ms: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    error_kind: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(String(500))

    submission: Mapped[Submission] = relationship(back_populates="attempt_log")
