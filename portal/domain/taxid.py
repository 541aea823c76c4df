"""Taxpayer IDs: the 统一社会信用代码 (GB 32100-2015) and the legacy 15-character form.

Public API:

- ``USCC_ALPHABET``: the 31 symbols of the unified social credit code (no I, O, Z, S, V).
- ``TaxIdForm``: ``UNIFIED`` (18 characters, checked) or ``LEGACY`` (15, accepted unchecked).
- ``TaxpayerId(value, form)`` with ``is_legacy`` and ``division_code``.
- ``uscc_check_character(first17) -> str``: the check character for 17 characters.
- ``parse_taxpayer_id(text) -> TaxpayerId``: normalise and validate, or say precisely why not.
- ``is_valid_taxpayer_id(text) -> bool``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from portal.domain.errors import InvoiceRuleError
from portal.domain.normalize import require_text, strip_separators

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_LENGTH = 18
LEGACY_LENGTH = 15
# The standard lists the weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28: powers of 3
# modulo 31. Because 31 is prime and no weight is 0, any single wrong character changes the sum.
USCC_WEIGHTS = tuple(pow(3, position, 31) for position in range(USCC_LENGTH - 1))
_VALUES = {symbol: value for value, symbol in enumerate(USCC_ALPHABET)}
# Characters 3-8 are the administrative division code: digits only.
_DIVISION = slice(2, 8)
# A 6-digit division code, an 8-character organisation code and its check digit (0-9 or X).
_LEGACY_SHAPE = re.compile(r"[0-9]{6}[0-9A-Z]{8}[0-9X]")


class TaxIdForm(StrEnum):
    """Which form a taxpayer ID takes."""

    UNIFIED = "unified"
    LEGACY = "legacy"


@dataclass(frozen=True)
class TaxpayerId:
    """A taxpayer ID in canonical form (upper case, no separators)."""

    value: str
    form: TaxIdForm

    @property
    def is_legacy(self) -> bool:
        """True for the old 15-character form, whose check digit is not verified."""
        return self.form is TaxIdForm.LEGACY

    @property
    def division_code(self) -> str:
        """The six-digit administrative division code inside the ID (Beijing starts with 11)."""
        return self.value[_DIVISION] if self.form is TaxIdForm.UNIFIED else self.value[:6]

    def __str__(self) -> str:
        return self.value


def uscc_check_character(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters of a USCC.

    s = Σ value(c)·weight over positions 1-17; check = (31 − s mod 31) mod 31, as a symbol.
    """
    if len(first17) != USCC_LENGTH - 1:
        raise InvoiceRuleError("tax_id_length", field="tax_id", length=len(first17))
    total = 0
    for position, (symbol, weight) in enumerate(zip(first17, USCC_WEIGHTS, strict=True), 1):
        value = _VALUES.get(symbol)
        if value is None:
            raise InvoiceRuleError(
                "tax_id_character", field="tax_id", position=position, char=symbol
            )
        total += value * weight
    return USCC_ALPHABET[(31 - total % 31) % 31]


def parse_taxpayer_id(text: str | None) -> TaxpayerId:
    """Return the TaxpayerId in ``text``: an 18-character USCC with a correct check character,
    or a 15-character legacy ID (accepted as legacy, unchecked).

    Lower case, full-width characters, spaces and dashes are tolerated.
    """
    value = strip_separators(require_text(text, "tax_id")).upper()
    if not value:
        raise InvoiceRuleError("required", field="tax_id")
    if len(value) == LEGACY_LENGTH:
        if not _LEGACY_SHAPE.fullmatch(value):
            raise InvoiceRuleError("tax_id_legacy_shape", field="tax_id")
        return TaxpayerId(value, TaxIdForm.LEGACY)
    if len(value) != USCC_LENGTH:
        raise InvoiceRuleError("tax_id_length", field="tax_id", length=len(value))
    for position, symbol in enumerate(value, 1):
        if symbol not in _VALUES:
            raise InvoiceRuleError(
                "tax_id_character", field="tax_id", position=position, char=symbol
            )
    for position in range(_DIVISION.start, _DIVISION.stop):
        if not "0" <= value[position] <= "9":
            raise InvoiceRuleError(
                "tax_id_division", field="tax_id", position=position + 1, char=value[position]
            )
    if uscc_check_character(value[:-1]) != value[-1]:
        raise InvoiceRuleError("tax_id_check", field="tax_id")
    return TaxpayerId(value, TaxIdForm.UNIFIED)


def is_valid_taxpayer_id(text: str | None) -> bool:
    """True when ``parse_taxpayer_id`` accepts ``text``."""
    try:
        parse_taxpayer_id(text)
    except InvoiceRuleError:
        return False
    return True
