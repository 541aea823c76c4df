"""What the registry last said about an invoice, as stored by a worker: the review page reads
this instead of asking the registry (only workers talk to the registry)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class RegistrySnapshot(db.Model):
    """The registry's record of one invoice key, fetched by a worker on a reviewer's request.

    ``record`` is the registry's JSON (SQL NULL when it has none: ``found`` says which);
    ``requested_at`` is set when a refresh was asked for and cleared when its answer is stored,
    so the page knows an answer is on its way; ``error`` says why the last fetch failed.
    """

    __tablename__ = "registry_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_key: Mapped[str] = mapped_column(String(40), unique=True)
    found: Mapped[bool] = mapped_column(default=False)
    record: Mapped[dict | None] = mapped_column(db.JSON(none_as_null=True))
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<RegistrySnapshot {self.invoice_key}>"
