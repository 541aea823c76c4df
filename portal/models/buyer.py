"""Links between customer accounts and the buyers (taxpayer IDs) whose invoices they may see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class LinkState(StrEnum):
    REQUESTED = "requested"  # the customer asked; staff decide
    INVITED = "invited"  # staff invited an e-mail address; the customer accepts
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class BuyerLink(db.Model):
    """May ``user`` see the invoices issued to ``buyer_tax_id``? Only when ``approved``."""

    __tablename__ = "buyer_links"
    __table_args__ = (Index("ix_buyer_links_user_id_state", "user_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    invited_email: Mapped[str | None] = mapped_column(String(254), index=True)
    buyer_tax_id: Mapped[str] = mapped_column(String(20), index=True)
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default=LinkState.REQUESTED)
    note: Mapped[str] = mapped_column(String(500), default="")
    # An invitation is accepted through a link holding this token (stored hashed).
    invitation_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship("User", foreign_keys=[user_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
