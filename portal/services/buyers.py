"""Which buyers' invoices a customer may see: links requested by customers or offered by staff,
and the customer's "my invoices" list over the approved ones."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select

from ..domain import InvoiceRuleError, parse_taxpayer_id
from ..domain.fields import WIRE_FIELDS, wire_text
from ..extensions import db
from ..models import BuyerLink, Invoice, LinkState, User, utcnow
from . import audit
from .errors import ServiceError

_OPEN_STATES = (LinkState.REQUESTED, LinkState.INVITED, LinkState.APPROVED)


def _tax_id(text: str) -> str:
    try:
        return parse_taxpayer_id(text).value
    except InvoiceRuleError as error:
        raise ServiceError(error.message(), field="buyer_tax_id") from None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def links_of(user: User) -> list[BuyerLink]:
    """The user's links in every state, newest first."""
    return db.session.scalars(
        select(BuyerLink).where(BuyerLink.user_id == user.id).order_by(BuyerLink.id.desc())
    ).all()


def approved_tax_ids(user: User) -> list[str]:
    """The buyer tax IDs whose invoices ``user`` may see."""
    return list(
        db.session.scalars(
            select(BuyerLink.buyer_tax_id).where(
                BuyerLink.user_id == user.id, BuyerLink.state == LinkState.APPROVED
            )
        )
    )


def request_link(user: User, tax_id: str, buyer_name: str, note: str = "") -> BuyerLink:
    """The customer asks to see a buyer's invoices; staff approve or reject. Commits."""
    tax_id = _tax_id(tax_id)
    existing = db.session.scalar(
        select(BuyerLink).where(
            BuyerLink.user_id == user.id,
            BuyerLink.buyer_tax_id == tax_id,
            BuyerLink.state.in_(_OPEN_STATES),
        )
    )
    if existing is not None:
        raise ServiceError(
            _l("You already have a request or link for this taxpayer ID."), field="buyer_tax_id"
        )
    link = BuyerLink(
        user_id=user.id,
        buyer_tax_id=tax_id,
        buyer_name=buyer_name.strip()[:200],
        note=note.strip()[:500],
        state=LinkState.REQUESTED,
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "buyer_link.requested",
        "buyer_link",
        link.id,
        after={"tax_id": tax_id, "user": user.email},
        actor=user,
    )
    db.session.commit()
    return link


def pending_requests() -> list[BuyerLink]:
    """Requests waiting for staff, oldest first."""
    return db.session.scalars(
        select(BuyerLink).where(BuyerLink.state == LinkState.REQUESTED).order_by(BuyerLink.id)
    ).all()


def decide(link_id: int, staff: User, approve: bool) -> BuyerLink:
    """Approve or reject a customer's request. Commits."""
    link = db.session.get(BuyerLink, link_id)
    if link is None or link.state != LinkState.REQUESTED:
        raise ServiceError(_l("This request has already been decided."))
    link.state = LinkState.APPROVED if approve else LinkState.REJECTED
    link.decided_by_id = staff.id
    link.decided_at = utcnow()
    audit.record(
        "buyer_link." + link.state,
        "buyer_link",
        link.id,
        before={"state": LinkState.REQUESTED},
        after={"state": link.state},
        actor=staff,
    )
    db.session.commit()
    return link


def invite(staff: User, email: str, tax_id: str, buyer_name: str) -> tuple[BuyerLink, str]:
    """Offer a buyer's invoices to whoever holds ``email``; returns the link and the one-time
    token for the invitation URL (only its hash is stored). Commits."""
    from .accounts import normalise_email

    email = normalise_email(email)
    tax_id = _tax_id(tax_id)
    token = secrets.token_urlsafe(24)
    link = BuyerLink(
        invited_email=email,
        buyer_tax_id=tax_id,
        buyer_name=buyer_name.strip()[:200],
        state=LinkState.INVITED,
        invitation_hash=_hash(token),
        decided_by_id=staff.id,
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "buyer_link.invited",
        "buyer_link",
        link.id,
        after={"tax_id": tax_id, "email": email},
        actor=staff,
    )
    db.session.commit()
    return link, token


def invitation(token: str) -> BuyerLink | None:
    """The open invitation behind ``token``, or None."""
    return db.session.scalar(
        select(BuyerLink).where(
            BuyerLink.invitation_hash == _hash(token or ""), BuyerLink.state == LinkState.INVITED
        )
    )


def accept_invitation(user: User, token: str) -> BuyerLink:
    """The invited customer accepts: the link is approved for their account. Commits."""
    link = invitation(token)
    if link is None:
        raise ServiceError(_l("This invitation is not valid any more."))
    if link.invited_email != user.email:
        raise ServiceError(_l("This invitation was sent to another e-mail address."))
    if user.email_verified_at is None:
        # The invitation is for whoever holds the mailbox; an account is not proof of that.
        raise ServiceError(
            _l("Confirm your e-mail address first (open the link we mailed you), then accept.")
        )
    link.user_id = user.id
    link.state = LinkState.APPROVED
    link.decided_at = utcnow()
    link.invitation_hash = None  # single use
    audit.record(
        "buyer_link.accepted",
        "buyer_link",
        link.id,
        before={"state": LinkState.INVITED},
        after={"state": link.state},
        actor=user,
    )
    db.session.commit()
    return link


@dataclass(frozen=True)
class InvoiceFilter:
    """What the customer filters "my invoices" by; every field optional."""

    state: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    number: str | None = None


def _my_invoices_query(user: User, f: InvoiceFilter) -> Select:
    # Ownership is part of the query itself: rows outside the approved tax IDs never load.
    query = select(Invoice).where(Invoice.buyer_tax_id.in_(approved_tax_ids(user)))
    if f.state:
        query = query.where(Invoice.registry_state == f.state)
    if f.date_from:
        query = query.where(Invoice.issue_date >= f.date_from)
    if f.date_to:
        query = query.where(Invoice.issue_date <= f.date_to)
    if f.amount_min is not None:
        query = query.where(Invoice.total >= f.amount_min)
    if f.amount_max is not None:
        query = query.where(Invoice.total <= f.amount_max)
    if f.number:
        query = query.where(Invoice.number.contains(f.number.strip()))
    return query


@dataclass(frozen=True)
class Page:
    items: list[Invoice]
    page: int
    pages: int
    total: int


def my_invoices(user: User, f: InvoiceFilter, page: int, per_page: int) -> Page:
    """One page of the invoices issued to the user's approved buyers, newest first."""
    query = _my_invoices_query(user, f)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    items = db.session.scalars(
        query.order_by(Invoice.issue_date.desc(), Invoice.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(list(items), page, pages, total)


def my_invoice(user: User, key: str) -> Invoice | None:
    """One invoice, if it was issued to one of the user's approved buyers; else None (→ 404)."""
    return db.session.scalar(_my_invoices_query(user, InvoiceFilter()).where(Invoice.key == key))


# The buyer's own copy of the ledger: the wire fields but the seller's and the check code,
# then where the invoice stands at the registry.
EXPORT_FIELDS = tuple(n for n in WIRE_FIELDS if n not in ("seller_tax_id", "check_code"))
EXPORT_HEADER = ("key", *EXPORT_FIELDS, "registry_state", "registry_id", "registered_at")


def export_csv(user: User, f: InvoiceFilter, max_rows: int) -> Iterator[str]:
    """The filtered invoices as CSV text, streamed in chunks (UTF-8 with BOM for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(EXPORT_HEADER)
    query = _my_invoices_query(user, f).order_by(Invoice.issue_date.desc(), Invoice.id.desc())
    for n, invoice in enumerate(db.session.scalars(query.limit(max_rows)).yield_per(500)):
        writer.writerow(
            [
                invoice.key,
                *(_cell(getattr(invoice, name)) for name in EXPORT_FIELDS),
                invoice.registry_state,
                invoice.registry_id or "",
                invoice.registered_at.isoformat() if invoice.registered_at else "",
            ]
        )
        if n % 500 == 499:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> str:
    return _safe_cell(wire_text(value) or "")


def _safe_cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
