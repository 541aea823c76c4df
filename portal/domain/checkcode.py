"""The 校验码 (check code): 20 digits printed on 普票 kinds, and the last 6 that verification asks.

专票 and 数电票 have no check code (fapiao.md §1). Verification of types 04, 10, 11 and 14 asks for
its last 6 digits.

Public API:

- ``parse_check_code(text) -> str``: the 20 digits, however they were grouped.
- ``parse_check_code_last6(text) -> str``: the 6 digits verification asks for; the full 20
  digits are accepted too, and their last 6 taken.
- ``format_check_code(check_code) -> str``: four groups of five, as printed.
"""

from __future__ import annotations

from portal.domain.errors import InvoiceRuleError
from portal.domain.normalize import first_non_digit, require_text, strip_separators

CHECK_CODE_LENGTH = 20
LAST6_LENGTH = 6


def parse_check_code(text: str | None) -> str:
    """Return the 20-digit check code in ``text`` (spaces, dashes and full-width digits allowed)."""
    digits = _digits(text, "check_code")
    if len(digits) != CHECK_CODE_LENGTH:
        raise InvoiceRuleError("check_code_length", field="check_code", length=len(digits))
    return digits


def parse_check_code_last6(text: str | None) -> str:
    """Return the last 6 digits of the check code from ``text``.

    Customers sometimes paste the whole check code where the last 6 were asked; its last 6
    digits are what verification compares, so both are accepted.
    """
    digits = _digits(text, "check_code_last6")
    if len(digits) in (LAST6_LENGTH, CHECK_CODE_LENGTH):
        return digits[-LAST6_LENGTH:]
    raise InvoiceRuleError("check_code_last6_length", field="check_code_last6", length=len(digits))


def format_check_code(check_code: str) -> str:
    """Return ``check_code`` in groups of five separated by spaces, the way e-普票 print it."""
    return " ".join(check_code[start : start + 5] for start in range(0, len(check_code), 5))


def _digits(text: str | None, field: str) -> str:
    digits = strip_separators(require_text(text, field))
    if not digits:
        raise InvoiceRuleError("required", field=field)
    bad = first_non_digit(digits)
    if bad is not None:
        raise InvoiceRuleError("not_digits", field=field, char=bad)
    return digits
