"""Staff search across cases, invoices and customers.

Every query is an exact or prefix match on an indexed column (reference, key, number, tax ID,
e-mail), so it stays fast on a million-row ledger; free text matches buyer names by prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import Case, Invoice, User

LIMIT = 50
_REFERENCE = re.compile(r"^BJ-\d{4}-\d{6}$", re.IGNORECASE)


@dataclass
class SearchResults:
    cases: list[Case] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    users: list[User] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.cases or self.invoices or self.users)


def everything(q: str) -> SearchResults:
    """Cases, invoices and people matching ``q`` (a reference, number, key, tax ID, e-mail or
    name)."""
    q = q.strip()
    results = SearchResults()
    if not q:
        return results
    if _REFERENCE.match(q):
        results.cases = db.session.scalars(select(Case).where(Case.reference == q.upper())).all()
        return results
    compact = re.sub(r"[\s\u3000]", "", q).upper()
    looks_like_tax_id = len(compact) in (15, 18) and compact.isalnum()
    if compact.replace("-", "").isdigit() and not looks_like_tax_id:
        results.invoices = db.session.scalars(
            select(Invoice)
            .where(or_(Invoice.key == compact, Invoice.number == compact))
            .limit(LIMIT)
        ).all()
        results.cases = db.session.scalars(
            select(Case)
            .where(or_(Case.claimed_key == compact, Case.claimed_number == compact))
            .order_by(Case.id.desc())
            .limit(LIMIT)
        ).all()
        return results
    if looks_like_tax_id:
        results.invoices = db.session.scalars(
            select(Invoice)
            .where(Invoice.buyer_tax_id == compact)
            .order_by(Invoice.issue_date.desc())
            .limit(LIMIT)
        ).all()
        results.cases = db.session.scalars(
            select(Case).where(Case.claimed_buyer_tax_id == compact).limit(LIMIT)
        ).all()
        return results
    if "@" in q:
        results.users = db.session.scalars(
            select(User).where(func.lower(User.email).startswith(q.lower())).limit(LIMIT)
        ).all()
        results.cases = db.session.scalars(
            select(Case).where(func.lower(Case.contact_email) == q.lower()).limit(LIMIT)
        ).all()
        return results
    results.invoices = db.session.scalars(
        select(Invoice).where(Invoice.buyer_name.startswith(q)).limit(LIMIT)
    ).all()
    results.users = db.session.scalars(
        select(User).where(User.display_name.startswith(q)).limit(LIMIT)
    ).all()
    return results
