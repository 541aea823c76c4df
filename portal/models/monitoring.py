"""Alerts raised for operators (a dead letter, the registry unreachable, …)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class Alert(db.Model):
    """Something staff must know about. ``cleared_at`` is set when the condition is over."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # e.g. dead_letter, breaker_open
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
