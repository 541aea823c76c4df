"""A record of each lookup: its outcome feeds the complaint-cause figures and abuse checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class LookupEvent(db.Model):
    __tablename__ = "lookup_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_key: Mapped[str] = mapped_column(String(40), index=True)
    finding: Mapped[str] = mapped_column(String(32), index=True)  # the first finding's code
    channel: Mapped[str] = mapped_column(String(8), default="web")  # web | api
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
