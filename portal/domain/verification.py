"""What a lookup needs: the fields verification asks for each kind of invoice (fapiao.md §3).

The lookup form, the JSON API and the upload confirmation all ask ``required_fields`` which
fields to show and demand, and build a ``LookupQuery`` the same way. Asking several fields, not
the number alone, is what stops one customer from enumerating other people's invoices.

Public API:

- ``VerificationField``: ``issue_date``, ``amount`` (excluding tax), ``total`` (including
  tax), ``check_code_last6``.
- ``required_fields(identity_or_kind) -> tuple[VerificationField, ...]``.
- ``parse_issue_date(value) -> date``: ``2024-05-14``, ``2024/5/14``, ``20240514``,
  ``2024年5月14日`` or a ``date``.
- ``check_issue_date_range(issued, today) -> date``: the one plausibility rule for issue dates
  everywhere (API, forms, CSV, lookups): from ``EARLIEST_ISSUE_DATE`` (2000-01-01) to the day
  after ``today`` (a Beijing "today" ahead of the caller's clock is not refused).
- ``LookupQuery``: what a customer typed, parsed; refuses to exist without its required fields.
- ``build_lookup_query(values) -> LookupQuery``: from a mapping of form or JSON fields
  (``code``, ``number`` and the verification fields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from portal.domain.checkcode import parse_check_code_last6
from portal.domain.errors import InvoiceRuleError, excerpt
from portal.domain.identity import InvoiceIdentity, InvoiceKind, parse_identity
from portal.domain.money import parse_money
from portal.domain.normalize import normalize_text, require_text


class VerificationField(StrEnum):
    """A field that verification compares; the value is the form and API field name."""

    ISSUE_DATE = "issue_date"
    AMOUNT = "amount"
    TOTAL = "total"
    CHECK_CODE_LAST6 = "check_code_last6"


_SPECIAL = (VerificationField.ISSUE_DATE, VerificationField.AMOUNT)
_BY_TOTAL = (VerificationField.ISSUE_DATE, VerificationField.TOTAL)
_ORDINARY = (VerificationField.ISSUE_DATE, VerificationField.CHECK_CODE_LAST6)

_FIELDS_BY_KIND: Mapping[InvoiceKind, tuple[VerificationField, ...]] = {
    InvoiceKind.SPECIAL: _SPECIAL,
    InvoiceKind.E_SPECIAL: _SPECIAL,
    InvoiceKind.FREIGHT_SPECIAL: _BY_TOTAL,
    InvoiceKind.ORDINARY: _ORDINARY,
    InvoiceKind.E_ORDINARY: _ORDINARY,
    InvoiceKind.ROLL: _ORDINARY,
    InvoiceKind.TOLL: _ORDINARY,
    InvoiceKind.DIGITAL_SPECIAL: _BY_TOTAL,
    InvoiceKind.DIGITAL_ORDINARY: _BY_TOTAL,
    InvoiceKind.DIGITAL: _BY_TOTAL,
}

_DATE_PATTERNS = (
    re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"),
    re.compile(r"(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})"),
    re.compile(r"(?P<y>[0-9]{4})年(?P<m>[0-9]{1,2})月(?P<d>[0-9]{1,2})日?"),
)


def required_fields(subject: InvoiceIdentity | InvoiceKind) -> tuple[VerificationField, ...]:
    """Return the fields a lookup of this invoice (or kind of invoice) needs, besides its identity.

    专票 (01, 08): issue date and amount excluding tax. Freight 专票 (02) and 数电票 (31, 32):
    issue date and total including tax. 普票 kinds (04, 10, 11, 14): issue date and the last 6
    digits of the check code.
    """
    kind = subject.kind if isinstance(subject, InvoiceIdentity) else subject
    return _FIELDS_BY_KIND[kind]


def parse_issue_date(value: date | str | None) -> date:
    """Return the issue date in ``value``: a ``date``, or text such as ``2024-05-14``,
    ``2024/5/14``, ``2024.05.14``, ``20240514`` or ``2024年5月14日`` (full-width digits too).
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = require_text(value, "issue_date")
    compact = "".join(normalize_text(text).split())
    if not compact:
        raise InvoiceRuleError("required", field="issue_date")
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(compact)
        if match is not None:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                raise InvoiceRuleError(
                    "date_invalid", field="issue_date", text=excerpt(compact)
                ) from None
    raise InvoiceRuleError("date_format", field="issue_date", text=excerpt(compact))


EARLIEST_ISSUE_DATE = date(2000, 1, 1)


def check_issue_date_range(issued: date, today: date) -> date:
    """Return ``issued`` if it lies from 2000-01-01 to the day after ``today``; raise
    InvoiceRuleError ``date_out_of_range`` (field ``issue_date``) otherwise."""
    latest = today + timedelta(days=1)
    if not EARLIEST_ISSUE_DATE <= issued <= latest:
        raise InvoiceRuleError(
            "date_out_of_range",
            field="issue_date",
            text=issued.isoformat(),
            earliest=EARLIEST_ISSUE_DATE.isoformat(),
            latest=latest.isoformat(),
        )
    return issued


@dataclass(frozen=True)
class LookupQuery:
    """What a customer typed to find one invoice, parsed. Fields the kind does not need may be
    None, or present when the customer gave more (an uploaded QR code carries an amount even
    for a 普票); every required field must be present.
    """

    identity: InvoiceIdentity
    issue_date: date | None = None
    amount: Decimal | None = None
    total: Decimal | None = None
    check_code_last6: str | None = None

    def __post_init__(self) -> None:
        for field in required_fields(self.identity):
            if self.value(field) is None:
                raise InvoiceRuleError("required", field=field.value)

    def value(self, field: VerificationField) -> date | Decimal | str | None:
        """Return what was typed for ``field`` (None if nothing)."""
        return getattr(self, field.value)

    @property
    def supplied_fields(self) -> tuple[VerificationField, ...]:
        """The verification fields the customer gave, required or not, in a stable order."""
        return tuple(field for field in VerificationField if self.value(field) is not None)


_PARSERS: Mapping[VerificationField, Callable[[Any], object]] = {
    VerificationField.ISSUE_DATE: parse_issue_date,
    VerificationField.AMOUNT: lambda value: parse_money(value, field="amount"),
    VerificationField.TOTAL: lambda value: parse_money(value, field="total"),
    VerificationField.CHECK_CODE_LAST6: parse_check_code_last6,
}


def build_lookup_query(values: Mapping[str, object]) -> LookupQuery:
    """Parse a lookup from form or JSON ``values``: ``code`` and ``number``, then the
    verification fields by their names. Blank values count as not given; other keys (a CSRF
    token, say) are ignored. Raises the first InvoiceRuleError met, whose ``field`` says where.
    """
    identity = parse_identity(
        require_text(values.get("code"), "code"), require_text(values.get("number"), "number")
    )
    parsed: dict[str, Any] = {}
    for field, parse in _PARSERS.items():
        raw = values.get(field.value)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        parsed[field.value] = parse(raw)
    return LookupQuery(identity=identity, **parsed)
