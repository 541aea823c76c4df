"""Invoice field values as text: the type readers hand over and the canonical forms.

Fields are found by position (``portal.scans.layout``); this module holds the value type and
the canonical forms values are kept in.

Public API:

- ``TextField(value, confidence)``: a value as text in canonical form (digits, ``YYYY-MM-DD``,
  ``123.45``) and the confidence of the text it came from (1.0 for a text layer).
- ``canonical_value(name, raw) -> str | None``: one value given by name (an XML tag, an OFD
  CustomData) in the same canonical form, or None when it does not have the field's shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal.domain import InvoiceRuleError, parse_issue_date, parse_money
from portal.domain.fields import MONEY_FIELDS
from portal.domain.normalize import normalize_text, strip_separators

_DATE_VALUE = r"(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{8})"
_ANY_DATE = re.compile(_DATE_VALUE)


@dataclass(frozen=True)
class TextField:
    """A field read from printed text, in canonical form, with the confidence of its source."""

    value: str
    confidence: float


def _date(text: str) -> str | None:
    try:
        return parse_issue_date("".join(text.split())).isoformat()
    except InvoiceRuleError:
        return None


def _money(text: str) -> str | None:
    try:
        return str(parse_money(text, allow_negative=True))
    except InvoiceRuleError:
        return None


_DIGIT_LENGTHS = {"code": (10, 12), "number": (8, 20), "check_code": (20,)}
_MAX_NAME_LENGTH = 100


def canonical_value(name: str, raw: str | None) -> str | None:
    """Return ``raw`` (a value given with its field name, as in XML or OFD) in canonical form:
    digits for identities, ``YYYY-MM-DD`` (a time after the date is dropped), ``123.45``,
    upper-case taxpayer IDs, names with whitespace collapsed. None when it has not the shape.
    """
    text = normalize_text(raw or "")
    if not text:
        return None
    if name in _DIGIT_LENGTHS:
        digits = strip_separators(text)
        shaped = digits.isascii() and digits.isdigit() and len(digits) in _DIGIT_LENGTHS[name]
        return digits if shaped else None
    if name == "issue_date":
        match = _ANY_DATE.search(text)
        return _date(match[1]) if match else None
    if name in MONEY_FIELDS:
        return _money(text)
    if name.endswith("_tax_id"):
        value = strip_separators(text).upper()
        return value if 15 <= len(value) <= 20 and value.isalnum() and value.isascii() else None
    return text[:_MAX_NAME_LENGTH]
