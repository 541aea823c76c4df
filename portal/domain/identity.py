"""Invoice identity: which invoice a code and number name, of what kind, from where.

Two generations live side by side (fapiao.md §1): legacy invoices are a 10- or 12-digit 发票代码
plus an 8-digit 发票号码; a fully digitalised 数电票 is one 20-digit 发票号码. Their canonical
key, used by the ledger and the registry, is ``{code}-{number}`` or the 20 digits.

Public API:

- ``Generation``: ``LEGACY`` or ``DIGITAL``.
- ``InvoiceKind``: special, freight special, ordinary, e-ordinary, toll, roll, e-special, and
  the 数电票 kinds; ``type_code``, ``generation`` and ``label(locale)`` on each.
- ``InvoiceIdentity``: ``code``, ``number``, ``kind``, ``year``, ``region_code``, ``region``;
  ``key``, ``generation``, ``type_code``, ``region_name``, ``is_beijing``, ``is_blockchain``.
  Two identities are equal when their code and number are.
- ``parse_identity(code, number, *, type_code=None) -> InvoiceIdentity``.
- ``parse_key(key) -> InvoiceIdentity``.
- ``canonical_key(code, number) -> str``: the key rule itself, for a code and number already
  in canonical form (ASCII digits, nothing else); the ledger and the registry client use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from portal.domain.errors import InvoiceRuleError
from portal.domain.messages import DEFAULT_LOCALE, resolve_locale
from portal.domain.normalize import (
    DASHES,
    first_non_digit,
    is_ascii_digits,
    normalize_text,
    require_text,
    strip_separators,
)
from portal.domain.regions import Region, region_for_digital, region_for_division


class Generation(StrEnum):
    """Legacy (code + number) or fully digitalised (数电票, one 20-digit number)."""

    LEGACY = "legacy"
    DIGITAL = "digital"


class InvoiceKind(StrEnum):
    """What sort of invoice it is; the value is what the ledger and registry store."""

    SPECIAL = "special"
    FREIGHT_SPECIAL = "freight_special"
    ORDINARY = "ordinary"
    E_ORDINARY = "e_ordinary"
    TOLL = "toll"
    ROLL = "roll"
    E_SPECIAL = "e_special"
    DIGITAL_SPECIAL = "digital_special"
    DIGITAL_ORDINARY = "digital_ordinary"
    # A 数电票 number does not say whether it is special or ordinary; the QR type does.
    DIGITAL = "digital"

    @property
    def type_code(self) -> str | None:
        """The invoice type code used by QR codes and verification (None for bare 数电票)."""
        return _TYPE_CODES[self]

    @property
    def generation(self) -> Generation:
        """Whether invoices of this kind are legacy or 数电票."""
        if self in _DIGITAL_KINDS:
            return Generation.DIGITAL
        return Generation.LEGACY

    def label(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the kind's name in ``locale`` (Chinese by default)."""
        zh, en = _LABELS[self]
        return en if resolve_locale(locale) == "en" else zh


_TYPE_CODES: dict[InvoiceKind, str | None] = {
    InvoiceKind.SPECIAL: "01",
    InvoiceKind.FREIGHT_SPECIAL: "02",
    InvoiceKind.ORDINARY: "04",
    InvoiceKind.E_SPECIAL: "08",
    InvoiceKind.E_ORDINARY: "10",
    InvoiceKind.ROLL: "11",
    InvoiceKind.TOLL: "14",
    InvoiceKind.DIGITAL_SPECIAL: "31",
    InvoiceKind.DIGITAL_ORDINARY: "32",
    InvoiceKind.DIGITAL: None,
}

_DIGITAL_KINDS = frozenset(
    {InvoiceKind.DIGITAL_SPECIAL, InvoiceKind.DIGITAL_ORDINARY, InvoiceKind.DIGITAL}
)

_LABELS: dict[InvoiceKind, tuple[str, str]] = {
    InvoiceKind.SPECIAL: ("增值税专用发票", "VAT special invoice"),
    InvoiceKind.FREIGHT_SPECIAL: (
        "货物运输业增值税专用发票",
        "freight transport VAT special invoice",
    ),
    InvoiceKind.ORDINARY: ("增值税普通发票", "VAT ordinary invoice"),
    InvoiceKind.E_ORDINARY: ("增值税电子普通发票", "VAT electronic ordinary invoice"),
    InvoiceKind.TOLL: (
        "增值税电子普通发票（通行费）",
        "VAT electronic ordinary invoice (road toll)",
    ),
    InvoiceKind.ROLL: ("增值税普通发票（卷票）", "VAT ordinary invoice (roll)"),
    InvoiceKind.E_SPECIAL: ("增值税电子专用发票", "VAT electronic special invoice"),
    InvoiceKind.DIGITAL_SPECIAL: (
        "数电票（增值税专用发票）",
        "fully digitalised e-invoice (special)",
    ),
    InvoiceKind.DIGITAL_ORDINARY: ("数电票（普通发票）", "fully digitalised e-invoice (ordinary)"),
    InvoiceKind.DIGITAL: ("数电票", "fully digitalised e-invoice"),
}

# Digit 8 of a 10-digit code.
_TEN_DIGIT_KINDS = {
    "1": InvoiceKind.SPECIAL,
    "5": InvoiceKind.SPECIAL,
    "3": InvoiceKind.ORDINARY,
    "6": InvoiceKind.ORDINARY,
    "2": InvoiceKind.FREIGHT_SPECIAL,
    "7": InvoiceKind.FREIGHT_SPECIAL,
}
# Digits 11-12 of a 12-digit code that starts with 0.
_TWELVE_DIGIT_KINDS = {
    "04": InvoiceKind.ORDINARY,
    "05": InvoiceKind.ORDINARY,
    "06": InvoiceKind.ROLL,
    "07": InvoiceKind.ROLL,
    "11": InvoiceKind.E_ORDINARY,
    "12": InvoiceKind.TOLL,
    "13": InvoiceKind.E_SPECIAL,
}
# Only a 数电票's flavour comes from its type code; see parse_identity.
_DIGITAL_KINDS_BY_TYPE = {"31": InvoiceKind.DIGITAL_SPECIAL, "32": InvoiceKind.DIGITAL_ORDINARY}

# Public validators' shape for 10-digit codes: digit 9 (copies) 2-9, digit 10 (version) 0-4.
_TEN_DIGIT_SHAPE = re.compile(r"[0-9]{8}[2-9][0-4]")


@dataclass(frozen=True)
class InvoiceIdentity:
    """One invoice's identity. Build it with ``parse_identity`` or ``parse_key``.

    ``code`` is "" for a 数电票. ``region_code`` is the division code as it appears in the
    identity (``1100``, ``3702``, or two digits for a 数电票); ``region`` is what it names.
    """

    code: str
    number: str
    kind: InvoiceKind = field(compare=False)
    year: int = field(compare=False)
    region_code: str = field(compare=False)
    region: Region = field(compare=False)

    @property
    def key(self) -> str:
        """The canonical key: ``{code}-{number}``, or the 20-digit number of a 数电票."""
        return canonical_key(self.code, self.number)

    @property
    def generation(self) -> Generation:
        """Legacy or 数电票."""
        return Generation.LEGACY if self.code else Generation.DIGITAL

    @property
    def type_code(self) -> str | None:
        """The invoice type code of the kind (``01``, ``10``, ``31`` ...), None if unknown."""
        return self.kind.type_code

    @property
    def region_name(self) -> str:
        """The Chinese name of the region that issued the invoice."""
        return self.region.name_zh

    @property
    def is_beijing(self) -> bool:
        """True when the invoice was issued in Beijing, so the Beijing registry can hold it."""
        return self.region.is_beijing

    @property
    def is_blockchain(self) -> bool:
        """True for blockchain invoices (12-digit code starting with 1)."""
        return self.code.startswith("1") and len(self.code) == 12

    def __str__(self) -> str:
        return self.key


def parse_identity(
    code: str | None, number: str | None, *, type_code: str | None = None
) -> InvoiceIdentity:
    """Parse what was typed as 发票代码 and 发票号码 into an InvoiceIdentity.

    Full-width digits, spaces, dashes and Chinese punctuation are ignored. An 8-digit number
    needs a code; a 20-digit number (数电票) must come without one. ``type_code`` (from a QR code
    or a form) only tells a 数电票's special/ordinary flavour: a legacy invoice's kind always
    comes from its code, because toll invoices carry QR type 10 although they are type 14.
    Raises InvoiceRuleError with the precise reason otherwise.
    """
    code_digits = _digits(code, "code")
    number_digits = _digits(number, "number")
    if not number_digits:
        raise InvoiceRuleError("required", field="number")
    if len(number_digits) == 20:
        if code_digits:
            raise InvoiceRuleError("code_unexpected", field="code")
        return _digital_identity(number_digits, type_code)
    if len(number_digits) != 8:
        raise InvoiceRuleError("number_length", field="number", length=len(number_digits))
    if not code_digits:
        raise InvoiceRuleError("code_missing", field="code")
    return _legacy_identity(code_digits, number_digits)


def canonical_key(code: str | None, number: str) -> str:
    """Return the key of a canonical code and number: ``{code}-{number}`` for a legacy invoice
    (10- or 12-digit code, 8-digit number), the bare 20-digit number of a 数电票 (no code).

    Nothing is tidied: a value typed by a person goes through ``parse_identity`` first. Raises
    InvoiceRuleError (``field`` ``code`` or ``number``) when the pair has neither shape.
    """
    code = "" if code is None else code
    for name, value in (("code", code), ("number", number)):
        if not isinstance(value, str):
            raise InvoiceRuleError("not_text", field=name)
        if value and not is_ascii_digits(value):
            raise InvoiceRuleError("not_digits", field=name, char=first_non_digit(value))
    if not code:
        if len(number) != 20:
            raise InvoiceRuleError("number_length", field="number", length=len(number))
        return number
    if len(code) not in (10, 12):
        raise InvoiceRuleError("code_length", field="code", length=len(code))
    if len(number) != 8:
        raise InvoiceRuleError("number_length", field="number", length=len(number))
    return f"{code}-{number}"


def parse_key(key: str | None) -> InvoiceIdentity:
    """Parse a canonical key (``{code}-{number}`` or 20 digits) into an InvoiceIdentity.

    The key may be typed loosely (full-width, spaces inside groups). A legacy key needs its
    dash: 12 + 8 digits run together cannot be told from a 20-digit 数电票 number.
    """
    text = normalize_text(require_text(key, "key"))
    parts = [strip_separators(part) for part in re.split(f"[{DASHES}]+", text)]
    if len(parts) == 2 and len(parts[0]) in (10, 12) and len(parts[1]) == 8:
        return parse_identity(parts[0], parts[1])
    digits = "".join(parts)
    if len(digits) == 20 and is_ascii_digits(digits):
        return parse_identity("", digits)
    raise InvoiceRuleError("key_shape", field="key")


def _digits(value: str | None, field_name: str) -> str:
    text = strip_separators(require_text(value, field_name))
    bad = first_non_digit(text)
    if bad is not None:
        raise InvoiceRuleError("not_digits", field=field_name, char=bad)
    return text


def _legacy_identity(code: str, number: str) -> InvoiceIdentity:
    if len(code) == 10:
        if not _TEN_DIGIT_SHAPE.fullmatch(code):
            raise InvoiceRuleError("code_shape", field="code")
        region_code, year_digits = code[0:4], code[4:6]
        kind_digits, kind = code[7], _TEN_DIGIT_KINDS.get(code[7])
    elif len(code) == 12:
        if code[0] not in "01":
            raise InvoiceRuleError("code_prefix", field="code", digit=code[0])
        region_code, year_digits = code[1:5], code[5:7]
        kind_digits = code[10:12]
        # Blockchain invoices (leading 1) are e-普票 whatever their last digits say.
        kind = InvoiceKind.E_ORDINARY if code[0] == "1" else _TWELVE_DIGIT_KINDS.get(kind_digits)
    else:
        raise InvoiceRuleError("code_length", field="code", length=len(code))
    region = _region(region_code, "code")
    if kind is None:
        raise InvoiceRuleError("code_kind_unknown", field="code", digits=kind_digits)
    return InvoiceIdentity(
        code=code,
        number=number,
        kind=kind,
        year=_year(year_digits),
        region_code=region_code,
        region=region,
    )


def _digital_identity(number: str, type_code: str | None) -> InvoiceIdentity:
    region_code = number[2:4]
    return InvoiceIdentity(
        code="",
        number=number,
        kind=_DIGITAL_KINDS_BY_TYPE.get(type_code or "", InvoiceKind.DIGITAL),
        year=_year(number[0:2]),
        region_code=region_code,
        # A bureau code we cannot name is still a real invoice: its region is just unknown.
        region=region_for_digital(region_code),
    )


def _region(region_code: str, field_name: str) -> Region:
    region = region_for_division(region_code)
    if region is None:
        raise InvoiceRuleError("region_unknown", field=field_name, region_code=region_code)
    return region


def _year(two_digits: str) -> int:
    # Invoice codes date from the 1990s; nothing before 1990 is still in circulation.
    value = int(two_digits)
    return 1900 + value if value >= 90 else 2000 + value
