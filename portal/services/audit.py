"""The audit trail: one hash-chained row per state change, and the check that finds tampering.

Every service that changes state calls :func:`record` inside its own transaction, so the audit
row commits (or rolls back) with the change it describes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import g, has_request_context, request
from sqlalchemy import func, select, text

from ..extensions import db
from ..models import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any fixed number: the key of the PostgreSQL advisory lock that serialises chain appends.
_CHAIN_LOCK_KEY = 0x0A0D17


def jsonable(value):
    """Plain JSON values: decimals as "1.00" strings, times as ISO 8601 UTC, dates as ISO."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "ip": event.ip,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    """The chain link: SHA-256 over the previous hash and this event's canonical form."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(event)).hexdigest()


def _current_actor():
    if not has_request_context():
        return None
    from flask_login import current_user

    return current_user if current_user and current_user.is_authenticated else None


def _lock_chain(session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Appends from many workers must not fork the chain: one appender at a time.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})


def _chain_tail(session) -> str:
    # The query autoflushes rows added earlier in this transaction, so they chain in order.
    return (
        session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        or GENESIS_HASH
    )


def _new_event(action, object_type, object_id, before, after, actor) -> AuditEvent:
    actor = actor if actor is not None else _current_actor()
    return AuditEvent(
        created_at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor=getattr(actor, "email", None) or (actor if isinstance(actor, str) else "system"),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=jsonable(before),
        after=jsonable(after),
        request_id=_request_id(),
        ip=request.remote_addr if has_request_context() else None,
    )


def _request_id() -> str | None:
    """One id for every audit row a request writes (made on first use: most requests write
    none)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return g.request_id


def record(
    action: str,
    object_type: str,
    object_id,
    before: dict | None = None,
    after: dict | None = None,
    actor=None,
) -> AuditEvent:
    """Append an audit row to the current transaction (the caller commits).

    ``actor`` defaults to the signed-in user of the current request, else "system" (a worker or
    CLI command). Values are stored as JSON: decimals as strings, times as ISO 8601 UTC.
    """
    return record_many([(action, object_type, object_id, before, after)], actor=actor)[0]


def record_many(changes, actor=None) -> list[AuditEvent]:
    """Append several audit rows at once: ``changes`` holds
    ``(action, object_type, object_id, before, after)`` tuples. One chain look-up for all,
    which is what keeps a 100-invoice registry batch cheap to audit."""
    session = db.session
    _lock_chain(session)
    prev = _chain_tail(session)
    events = []
    for action, object_type, object_id, before, after in changes:
        event = _new_event(action, object_type, object_id, before, after, actor)
        event.prev_hash = prev
        event.hash = prev = compute_hash(prev, event)
        events.append(event)
    session.add_all(events)
    return events


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: how many rows it checked and the first broken link."""

    checked: int
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the whole chain in id order and name the first row that was edited or removed."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > last_id)
            .order_by(AuditEvent.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return ChainReport(checked=checked)
        for event in rows:
            if event.prev_hash != prev:
                return ChainReport(
                    checked, event.id, "the row before this one was deleted or altered"
                )
            if compute_hash(prev, event) != event.hash:
                return ChainReport(checked, event.id, "this row was edited after it was written")
            prev = event.hash
            checked += 1
            last_id = event.id
        db.session.expunge_all()


@dataclass(frozen=True)
class AuditFilter:
    """What the audit viewer filters by; every field optional."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(f: AuditFilter):
    query = select(AuditEvent)
    if f.actor:
        query = query.where(AuditEvent.actor == f.actor)
    if f.action:
        query = query.where(AuditEvent.action == f.action)
    if f.object_type:
        query = query.where(AuditEvent.object_type == f.object_type)
    if f.object_id:
        query = query.where(AuditEvent.object_id == f.object_id)
    if f.since:
        query = query.where(AuditEvent.created_at >= f.since)
    if f.until:
        query = query.where(AuditEvent.created_at < f.until)
    return query


def search(f: AuditFilter, limit: int = 200) -> list[AuditEvent]:
    """The newest matching events."""
    return db.session.scalars(_filtered(f).order_by(AuditEvent.id.desc()).limit(limit)).all()


@dataclass(frozen=True)
class AuditPage:
    """One page of matching events, newest first; ``next_before`` is the id to continue from
    (None on the last page); ``total`` counts every matching event."""

    events: list[AuditEvent]
    next_before: int | None
    total: int


def page(f: AuditFilter, before: int | None = None, size: int = 50) -> AuditPage:
    """Matching events older than id ``before`` (keyset paging: every event exactly once,
    however many arrive meanwhile), newest first."""
    query = _filtered(f)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    total = db.session.scalar(select(func.count()).select_from(_filtered(f).subquery()))
    return AuditPage(rows, rows[-1].id if more and rows else None, total)


def actions() -> list[str]:
    """Every action name that occurs (the filter's choices)."""
    return list(
        db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    )


def export_csv(f: AuditFilter, max_rows: int = 100_000):
    """Matching events as CSV text in chunks (UTF-8 with BOM), oldest first."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(
        [
            "id",
            "created_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
            "ip",
            "hash",
        ]
    )
    rows = db.session.scalars(_filtered(f).order_by(AuditEvent.id).limit(max_rows)).yield_per(1000)
    for n, e in enumerate(rows):
        writer.writerow(
            [
                e.id,
                e.created_at.isoformat(),
                e.actor,
                e.action,
                e.object_type,
                e.object_id,
                json.dumps(e.before, ensure_ascii=False) if e.before is not None else "",
                json.dumps(e.after, ensure_ascii=False) if e.after is not None else "",
                e.request_id or "",
                e.ip or "",
                e.hash,
            ]
        )
        if n % 1000 == 999:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
