"""Cases: a customer's report that an invoice is missing, its timeline and its messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import lazy_gettext as _l
from limits import parse_many
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..domain import (
    InvoiceRuleError,
    check_issue_date_range,
    parse_check_code,
    parse_check_code_last6,
    parse_identity,
    parse_money,
    parse_taxpayer_id,
    shanghai_date,
)
from ..extensions import db
from ..models import (
    OPEN_CASE_STATES,
    Case,
    CaseEvent,
    CaseState,
    Channel,
    ReferenceCounter,
    User,
    utcnow,
)
from . import audit, notify, sla
from .errors import ServiceError

MAX_MESSAGE_LENGTH = 4000


@dataclass(frozen=True)
class ClaimedInvoice:
    """What the reporter says the missing invoice is (already parsed by the form)."""

    code: str
    number: str
    issue_date: date | None
    amount: Decimal | None
    total: Decimal | None
    check_code: str
    buyer_tax_id: str


def parse_claim(values: Mapping[str, object]) -> ClaimedInvoice:
    """Parse a report's invoice fields with the domain rules; raises InvoiceRuleError naming the
    field at fault. The check code may be all 20 digits or just the last 6."""
    claimed, problems = parse_claim_all(values)
    if problems:
        raise problems[0]
    assert claimed is not None
    return claimed


def _on_field(error: InvoiceRuleError, field: str) -> InvoiceRuleError:
    if error.field == field:
        return error
    return InvoiceRuleError(error.code, **{**error.params, "field": field})


def parse_claim_all(
    values: Mapping[str, object],
) -> tuple[ClaimedInvoice | None, list[InvoiceRuleError]]:
    """Parse a report's invoice fields, judging every field: the claim (None if any field is
    wrong) and every problem found, each naming the report's own field (a short check code's
    problem is about ``check_code``), so a form can show them all at once."""
    problems: list[InvoiceRuleError] = []

    def text(name: str) -> str:
        value = values.get(name)
        return value.strip() if isinstance(value, str) else ""

    def judged(name: str, parse):
        try:
            return parse()
        except InvoiceRuleError as error:
            problems.append(_on_field(error, name) if name != "identity" else error)
            return None

    def money(name: str) -> Decimal | None:
        return judged(name, lambda: parse_money(text(name), field=name)) if text(name) else None

    identity = judged("identity", lambda: parse_identity(text("code"), text("number")))
    check = text("check_code")
    if check:
        digits = "".join(ch for ch in check if not ch.isspace())
        parse = parse_check_code if len(digits) > 6 else parse_check_code_last6
        check = judged("check_code", lambda: parse(check)) or ""
    tax_id = text("buyer_tax_id")
    if tax_id:
        parsed = judged("buyer_tax_id", lambda: parse_taxpayer_id(tax_id))
        tax_id = parsed.value if parsed is not None else ""
    issue_date = values.get("issue_date")
    if isinstance(issue_date, date):
        judged("issue_date", lambda: check_issue_date_range(issue_date, shanghai_date(utcnow())))
    amount, total = money("amount"), money("total")
    if problems or identity is None:
        return None, problems
    return ClaimedInvoice(
        code=identity.code,
        number=identity.number,
        issue_date=issue_date if isinstance(issue_date, date) else None,
        amount=amount,
        total=total,
        check_code=check,
        buyer_tax_id=tax_id,
    ), problems


class DuplicateCase(ServiceError):
    """The customer already has an open case for this invoice; ``case`` is that case."""

    def __init__(self, case: Case) -> None:
        super().__init__(
            _l(
                "You already reported this invoice: report %(ref)s is still open. Here it is; "
                "add files or a message to it instead of a new report.",
                ref=case.reference,
            ),
            code="duplicate",
        )
        self.case = case


class ReportsLimited(ServiceError):
    """The customer has sent as many reports as RATELIMIT_CASE_CREATE allows for now."""

    def __init__(self) -> None:
        super().__init__(
            _l(
                "You have sent the most reports we take in a short time. What you typed is "
                "kept: please send it again later, or add it to one of your open reports."
            ),
            code="limited",
        )


def reports_allowed(customer: User, rates: str) -> bool:
    """True while the customer's accepted web reports stay within ``rates`` ("10 per hour",
    several separated by ";"). Only reports that were opened count: a form the rules refused
    costs nothing here (Flask-Limiter throttles attempts separately)."""
    now = utcnow()
    for rate in parse_many(rates):
        since = now - timedelta(seconds=rate.get_expiry())
        sent = db.session.scalar(
            select(func.count())
            .select_from(Case)
            .where(
                Case.customer_id == customer.id,
                Case.channel == Channel.WEB,
                Case.created_at >= since,
            )
        )
        if sent >= rate.amount:
            return False
    return True


def open_case_for_invoice(customer: User, key: str) -> Case | None:
    """The customer's open case for the invoice with identity ``key``, if there is one."""
    return db.session.scalar(
        select(Case)
        .where(
            Case.customer_id == customer.id,
            Case.claimed_key == key,
            Case.state.in_(list(OPEN_CASE_STATES)),
        )
        .order_by(Case.id)
        .limit(1)
    )


def next_reference(year: int) -> str:
    """The next public case reference of ``year``: ``BJ-2026-000123`` (never reused)."""
    for _ in range(5):
        value = db.session.scalar(
            update(ReferenceCounter)
            .where(ReferenceCounter.year == year)
            .values(last_value=ReferenceCounter.last_value + 1)
            .returning(ReferenceCounter.last_value)
        )
        if value is not None:
            return f"BJ-{year}-{value:06d}"
        try:
            with db.session.begin_nested():
                db.session.add(ReferenceCounter(year=year, last_value=0))
        except IntegrityError:
            pass  # another request created the year's counter first; use it
    raise RuntimeError("could not allocate a case reference")


def open_case(
    claimed: ClaimedInvoice,
    *,
    customer: User | None,
    channel: str = Channel.WEB,
    contact_email: str | None = None,
    contact_phone: str | None = None,
    contact_preference: str = "email",
    description: str = "",
    priority: str = "normal",
    actor=None,
) -> Case:
    """Open a case with its SLA promise and first timeline entry; commits."""
    try:
        identity = parse_identity(claimed.code, claimed.number)
    except InvoiceRuleError as error:
        raise ServiceError(error.message(), field=error.field) from None
    now = utcnow()
    case = Case(
        reference=next_reference(now.year),
        channel=channel,
        state=CaseState.AWAITING_REVIEW,
        customer_id=customer.id if customer else None,
        contact_email=contact_email or (customer.email if customer else None),
        contact_phone=contact_phone or None,
        contact_preference=contact_preference,
        description=description.strip()[:MAX_MESSAGE_LENGTH],
        claimed_key=identity.key,
        claimed_code=identity.code,
        claimed_number=identity.number,
        claimed_issue_date=claimed.issue_date,
        claimed_amount=claimed.amount,
        claimed_total=claimed.total,
        claimed_check_code=claimed.check_code,
        claimed_buyer_tax_id=claimed.buyer_tax_id,
        first_response_due_at=sla.first_response_due(now, channel, priority),
        resolution_due_at=sla.resolution_due(now, channel, priority),
        priority=priority,
        created_at=now,
    )
    db.session.add(case)
    db.session.flush()
    db.session.add(
        CaseEvent(
            case_id=case.id,
            kind="opened",
            actor_id=getattr(actor, "id", None),
            from_staff=channel != Channel.WEB,
        )
    )
    notify.case_opened(case)
    audit.record(
        "case.opened",
        "case",
        case.reference,
        after={"state": case.state, "channel": channel, "invoice": identity.key},
        actor=actor,
    )
    db.session.commit()
    return case


def report_case(claimed: ClaimedInvoice, customer: User, **details) -> Case:
    """A customer's own report on the web: refused as a ``DuplicateCase`` while the customer
    has an open case for the same invoice, as ``ReportsLimited`` past RATELIMIT_CASE_CREATE;
    otherwise ``open_case`` (commits). ``details`` go to ``open_case``."""
    key = parse_identity(claimed.code, claimed.number).key
    existing = open_case_for_invoice(customer, key)
    if existing is not None:
        raise DuplicateCase(existing)
    if not reports_allowed(customer, current_app.config["RATELIMIT_CASE_CREATE"]):
        raise ReportsLimited
    return open_case(claimed, customer=customer, actor=customer, **details)


def ensure_registry_task(invoice) -> Case:
    """The open case that holds ``invoice`` for staff (anyone's), or a new one the portal opens
    itself when every registry attempt failed and nobody has reported it; commits (with the
    ``case.opened`` audit row)."""
    existing = db.session.scalar(
        select(Case)
        .where(Case.claimed_key == invoice.key, Case.state.in_(list(OPEN_CASE_STATES)))
        .order_by(Case.id)
        .limit(1)
    )
    if existing is not None:
        return existing
    claimed = ClaimedInvoice(
        code=invoice.code or "",
        number=invoice.number,
        issue_date=invoice.issue_date,
        amount=invoice.amount,
        total=invoice.total,
        check_code=invoice.check_code or "",
        buyer_tax_id=invoice.buyer_tax_id or "",
    )
    return open_case(
        claimed,
        customer=None,
        channel=Channel.SYSTEM,
        description="登记系统多次提交均未成功，由系统自动创建的处理任务。",
        priority="urgent",
    )


def customer_for_contact(email: str | None) -> User | None:
    """The customer account a case taken by staff for ``email`` belongs to: only one whose
    holder confirmed that address. Anyone can register any address; until its holder opens the
    verification link, the case waits (``attach_waiting_cases``)."""
    if not email:
        return None
    from .accounts import find_user_by_email, normalise_email

    try:
        user = find_user_by_email(normalise_email(email))
    except ServiceError:
        return None
    if user is None or user.is_staff or user.email_verified_at is None:
        return None
    return user


def attach_waiting_cases(user: User) -> int:
    """Give a customer who just confirmed their address the cases staff opened for it while
    no confirmed account had it. In the caller's transaction; returns how many."""
    waiting = db.session.scalars(
        select(Case).where(
            Case.customer_id.is_(None),
            func.lower(Case.contact_email) == user.email.lower(),
        )
    ).all()
    for case in waiting:
        case.customer_id = user.id
        audit.record(
            "case.attached",
            "case",
            case.reference,
            before={"customer": None},
            after={"customer": user.email},
            actor=user,
        )
    return len(waiting)


def cases_of(customer: User) -> list[Case]:
    """A customer's cases, newest first."""
    return db.session.scalars(
        select(Case).where(Case.customer_id == customer.id).order_by(Case.id.desc())
    ).all()


def case_for_customer(customer: User, reference: str) -> Case | None:
    """The case with this reference if it belongs to ``customer``; None otherwise (→ 404)."""
    return db.session.scalar(
        select(Case).where(Case.reference == reference, Case.customer_id == customer.id)
    )


def public_events(case: Case) -> list[CaseEvent]:
    """The timeline a customer sees (internal staff notes left out)."""
    return [e for e in case.events if e.public]


def add_message(case: Case, author: User, body: str, *, from_staff: bool = False) -> CaseEvent:
    """Add a plain-text message to the case; a customer's reply to a request for information
    puts the case back in the review queue. Commits."""
    body = (body or "").strip()
    if not body:
        raise ServiceError(_l("Write a message first."), field="body")
    if len(body) > MAX_MESSAGE_LENGTH:
        raise ServiceError(
            _l("A message can have at most %(n)d characters.", n=MAX_MESSAGE_LENGTH), field="body"
        )
    if not case.is_open:
        raise ServiceError(_l("This case is closed; open a new report if you need to."))
    event = CaseEvent(
        case_id=case.id, kind="message", actor_id=author.id, from_staff=from_staff, body=body
    )
    db.session.add(event)
    before = case.state
    if not from_staff and case.state == CaseState.INFO_REQUESTED:
        # Back to the reviewer who asked (or to the queue), with the SLA clock running again.
        case.state = CaseState.IN_REVIEW if case.assignee_id else CaseState.AWAITING_REVIEW
        sla.resume(case, utcnow())
        db.session.add(CaseEvent(case_id=case.id, kind="info_added", actor_id=author.id))
    audit.record(
        "case.message",
        "case",
        case.reference,
        before={"state": before},
        after={"state": case.state, "from_staff": from_staff},
        actor=author,
    )
    db.session.commit()
    return event


def withdraw(case: Case, customer: User, reason: str = "") -> None:
    """The customer no longer needs the case. Commits."""
    if not case.is_open or case.state == CaseState.APPROVED:
        raise ServiceError(_l("This case can no longer be withdrawn."))
    before = case.state
    case.state = CaseState.WITHDRAWN
    case.resolved_at = utcnow()
    db.session.add(
        CaseEvent(
            case_id=case.id,
            kind="withdrawn",
            actor_id=customer.id,
            body=(reason or "").strip()[:MAX_MESSAGE_LENGTH],
        )
    )
    audit.record(
        "case.withdrawn",
        "case",
        case.reference,
        before={"state": before},
        after={"state": case.state},
        actor=customer,
    )
    db.session.commit()


def record_rating(
    token: str, score: int, comment: str, secret_key: str, max_age_days: int = 30
) -> Case:
    """Record the rating a resolved case's mail asked for; the link works once. Commits.

    Raises ServiceError for a tampered, expired or already used link, or a score outside 1–5.
    """
    from datetime import timedelta

    from ..mail import RatingTokenError, read_rating_token
    from ..models import Rating

    if score not in range(1, 6):
        raise ServiceError(_l("Choose a score from 1 to 5."), field="score")
    try:
        case_id, nonce = read_rating_token(
            token, secret_key, timedelta(days=max_age_days), utcnow()
        )
    except RatingTokenError:
        raise ServiceError(
            _l("This rating link is not valid or has expired."), code="bad_link"
        ) from None
    # Single use: only the request that clears the stored nonce may record the rating.
    used = db.session.execute(
        update(Case)
        .where(Case.id == case_id, Case.rating_nonce == nonce)
        .values(rating_nonce=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not used:
        db.session.rollback()
        raise ServiceError(_l("This rating link has already been used."), code="used")
    case = db.session.get(Case, case_id)
    db.session.add(
        Rating(
            case_id=case.id,
            reviewer_id=case.assignee_id,
            score=score,
            comment=(comment or "").strip()[:2000],
        )
    )
    audit.record("case.rated", "case", case.reference, after={"score": score})
    db.session.commit()
    return case
