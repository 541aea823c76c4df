"""The invoice's fields, named once for the ledger, the registry, the forms and the pages.

Public API:

- ``WIRE_FIELDS``: the invoice's fields in the registry protocol's order (DESIGN.md §6). They
  are also the CSV import's header and what makes two records "the same invoice" (import,
  review, reconciliation).
- ``MONEY_FIELDS``: the fields that hold yuan (``amount``, ``tax``, ``total``).
- ``OPTIONAL_WIRE_FIELDS``: the fields that may be empty: a 数电票 has no code and no check
  code, an individual buyer no taxpayer ID.
- ``NOT_ON_DIGITAL``: what a 数电票 does not have (no invoice code, no check code).
- ``DISPLAY_ORDER``: the wire fields in the order people compare them, the check code beside
  the money it guards (staff review table, fields read from evidence).
- ``EXTRACTED_FIELDS``: ``DISPLAY_ORDER`` plus what evidence shows but the registry does not
  take (the seller's name).
- ``CLAIM_FIELDS``: what a customer states when reporting a missing invoice.
- ``CONFIRM_FIELDS``: what a customer confirms after seeing what was read from the evidence.
- ``LOOKUP_FIELDS``: what the public lookup asks for (the check code only by its last six).
- ``wire_text(value) -> str | None``: a field's value as the protocol writes it (money with two
  decimals, dates ``YYYY-MM-DD``, None as None), for comparing and showing records side by side.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

WIRE_FIELDS = (
    "code",
    "number",
    "kind",
    "issue_date",
    "amount",
    "tax",
    "total",
    "buyer_tax_id",
    "buyer_name",
    "seller_tax_id",
    "check_code",
)
MONEY_FIELDS = ("amount", "tax", "total")
OPTIONAL_WIRE_FIELDS = frozenset({"code", "check_code", "buyer_tax_id"})
NOT_ON_DIGITAL = ("code", "check_code")

DISPLAY_ORDER = (
    "code",
    "number",
    "kind",
    "issue_date",
    "amount",
    "tax",
    "total",
    "check_code",
    "buyer_tax_id",
    "buyer_name",
    "seller_tax_id",
)
EXTRACTED_FIELDS = (*DISPLAY_ORDER, "seller_name")

CLAIM_FIELDS = ("code", "number", "issue_date", "amount", "total", "check_code", "buyer_tax_id")
CONFIRM_FIELDS = (
    "code",
    "number",
    "issue_date",
    "amount",
    "tax",
    "total",
    "check_code",
    "buyer_tax_id",
)
LOOKUP_FIELDS = ("code", "number", "issue_date", "amount", "total", "check_code_last6")


def wire_text(value: object) -> str | None:
    """``value`` (text, Decimal money, a date) as the registry protocol writes it; None stays
    None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
