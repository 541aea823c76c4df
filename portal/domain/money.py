"""Money on invoices: exact Decimal yuan with two decimals, never float.

Public API:

- ``CENT``: ``Decimal("0.01")``, one fen.
- ``AmountMeaning``: what an amount on its own stands for, ``EXCLUDING_TAX`` (value
  ``"amount"``) or ``TOTAL`` (``"total"``); the values are the verification field names.
- ``VAT_RATES``: the VAT rates and collection rates an invoice line can carry (0 covers exempt).
- ``parse_money(value, *, field="amount", allow_negative=False) -> Decimal``: what people type
  (``¥1,234.5``, ``１２３４．５０元``) as a Decimal with two decimals.
- ``format_money(amount) -> str``: ``¥1,234.56``, the way the portal shows money.
- ``check_totals(amount, tax, total)``: amount + tax must equal total, exactly.
- ``tax_plausible(amount, tax, rate, *, lines=1) -> bool``: tax ≈ amount × rate within what
  rounding each line to the fen can explain.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

from portal.domain.errors import InvoiceRuleError, excerpt
from portal.domain.normalize import normalize_text

CENT = Decimal("0.01")
_HALF_FEN = Decimal("0.005")
# No invoice reaches a trillion yuan; the bound keeps Decimal arithmetic far from its limits.
_MAX_INTEGER_DIGITS = 12

VAT_RATES: frozenset[Decimal] = frozenset(
    Decimal(rate) for rate in ("0.13", "0.09", "0.06", "0.05", "0.03", "0.02", "0.015", "0.01", "0")
)

# Either plain digits or digits grouped by three with commas; then up to any number of
# decimals, so that "1.234" can be refused for its precision rather than its shape.
_AMOUNT = re.compile(r"(?P<integer>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.(?P<decimals>[0-9]+))?")


class AmountMeaning(StrEnum):
    """Whether a single amount is the amount excluding tax or the total including tax."""

    EXCLUDING_TAX = "amount"
    TOTAL = "total"


def parse_money(
    value: str | Decimal | int | None, *, field: str = "amount", allow_negative: bool = False
) -> Decimal:
    """Return ``value`` as a Decimal quantized to the fen.

    Text may carry ¥ or ￥, 元, spaces, thousands separators and full-width digits. More than two
    decimals are refused unless they are zeros (``1.500``), never rounded away. Negative amounts
    (red-letter credit invoices) only with ``allow_negative``. ``field`` names the form field in
    errors. Floats are refused: they cannot hold most amounts exactly.
    """
    if isinstance(value, float):
        raise InvoiceRuleError("money_float", field=field)
    if isinstance(value, Decimal):
        amount = value
        if not amount.is_finite():
            raise InvoiceRuleError("money_format", field=field, text=str(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif value is None or isinstance(value, str):
        amount = _parse_money_text(value or "", field)
    else:
        raise InvoiceRuleError("not_text", field=field)
    if amount.is_signed() and amount != 0 and not allow_negative:
        raise InvoiceRuleError("money_negative", field=field)
    if amount != 0 and amount.adjusted() >= _MAX_INTEGER_DIGITS:
        raise InvoiceRuleError("money_too_large", field=field)
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise InvoiceRuleError("money_precision", field=field)
    # Decimal keeps the sign of -0; nobody wants to read "-0.00".
    return quantized.copy_abs() if quantized == 0 else quantized


def format_money(amount: Decimal) -> str:
    """Return ``amount`` as the portal shows money: ``¥1,234.56`` (``-¥5.00`` when negative)."""
    quantized = amount.quantize(CENT)
    sign = "-" if quantized < 0 else ""
    return f"{sign}¥{abs(quantized):,.2f}"


def check_totals(amount: Decimal, tax: Decimal, total: Decimal) -> None:
    """Raise ``totals_mismatch`` unless amount + tax == total exactly (价税合计 is their sum)."""
    if amount + tax != total:
        raise InvoiceRuleError(
            "totals_mismatch", amount=str(amount), tax=str(tax), total=str(total)
        )


def tax_plausible(amount: Decimal, tax: Decimal, rate: Decimal, *, lines: int = 1) -> bool:
    """True when ``tax`` is what ``amount`` at ``rate`` gives, up to per-line rounding.

    Tax is rounded to the fen on each line, so an invoice of ``lines`` lines may differ from
    amount × rate by up to half a fen per line; issuers that start from tax-inclusive prices
    derive the amount from the rounded tax, which stretches that by a factor (1 + rate).
    ``rate`` must be one of VAT_RATES.
    """
    if rate not in VAT_RATES:
        raise InvoiceRuleError("vat_rate_unknown", field="rate", rate=str(rate))
    if lines < 1:
        raise InvoiceRuleError("tax_lines_invalid", lines=lines)
    tolerance = _HALF_FEN * lines * (1 + rate)
    return abs(tax - amount * rate) <= tolerance


def _parse_money_text(text: str, field: str) -> Decimal:
    compact = "".join(normalize_text(text).split()).replace("\u2212", "-")
    if not compact:
        raise InvoiceRuleError("required", field=field)
    negative = False
    if compact.startswith("-"):
        negative, compact = True, compact[1:]
    compact = compact.removeprefix("¥")
    if not negative and compact.startswith("-"):
        # "¥-12.00" as well as "-¥12.00".
        negative, compact = True, compact[1:]
    compact = compact.removesuffix("元")
    match = _AMOUNT.fullmatch(compact)
    if match is None:
        raise InvoiceRuleError("money_format", field=field, text=excerpt(text.strip()))
    integer = match["integer"].replace(",", "")
    if len(integer.lstrip("0")) > _MAX_INTEGER_DIGITS:
        raise InvoiceRuleError("money_too_large", field=field)
    amount = Decimal(f"{integer}.{match['decimals'] or '0'}")
    return -amount if negative else amount
