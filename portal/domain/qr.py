"""The QR code printed on every invoice (fapiao.md §2): parsed into typed fields, or refused.

A QR payload is a claim, not proof: compare it with what the customer typed and staff see.

Layouts, comma-separated, with or without a trailing comma:

- standard: ``01,<type>,<code|empty>,<number>,<amount>,<date>,<check code|empty>,<token>``
- seven fields (2025 ride-hailing 数电票 and others): the check code or the token is left out:
  ``01,<type>,<code|empty>,<number>,<amount>,<date>,<check code|token|empty>``
- blockchain (12-digit code starting with 1): the seller's taxpayer ID comes fifth and shifts
  the rest: ``01,<type>,<code>,<number>,<seller tax ID>,<amount>,<date>,<check code>[,<token>]``

The date is ``YYYYMMDD`` or, on some 2025 数电票, ``YYYY-MM-DD``. The token is opaque: real codes
carry ``8BDD``, ``41758``, ``758``, ``C16``; only "short and alphanumeric" is checked. The amount
excludes tax on legacy invoices and includes it on 数电票.

Public API:

- ``QR_TYPE_CODES``: invoice type codes a QR code may carry, with their Chinese names.
- ``QrLayout``: ``STANDARD`` or ``BLOCKCHAIN``.
- ``QrPayload``: ``type_code``, ``identity``, ``amount``, ``amount_meaning``, ``issue_date``,
  ``check_code``, ``token``, ``seller_tax_id``, ``layout``; ``amount_excluding_tax``,
  ``total`` and ``lookup_query()``.
- ``parse_qr(text) -> QrPayload``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from portal.domain.checkcode import parse_check_code
from portal.domain.errors import InvoiceRuleError, excerpt
from portal.domain.identity import Generation, InvoiceIdentity, parse_identity
from portal.domain.money import AmountMeaning, parse_money
from portal.domain.normalize import normalize_text, require_text
from portal.domain.taxid import TaxpayerId, parse_taxpayer_id
from portal.domain.verification import LookupQuery, parse_issue_date

QR_TYPE_CODES: Mapping[str, str] = {
    "01": "增值税专用发票",
    "02": "货物运输业增值税专用发票",
    "03": "机动车销售统一发票",
    "04": "增值税普通发票",
    "08": "增值税电子专用发票",
    "10": "增值税电子普通发票",
    "11": "增值税普通发票（卷票）",
    "14": "增值税电子普通发票（通行费）",
    "15": "二手车销售统一发票",
    "31": "数电票（增值税专用发票）",
    "32": "数电票（普通发票）",
    "51": "铁路电子客票",
    "61": "航空运输电子客票行程单",
}
# Types issued with a 20-digit 数电票 number rather than a code and an 8-digit number.
_DIGITAL_TYPE_CODES = frozenset({"31", "32", "51", "61"})

_QR_VERSION = "01"
_STANDARD_FIELD_COUNT = 8
_SHORT_FIELD_COUNT = 7
_BLOCKCHAIN_FIELD_COUNTS = (8, 9)
_DATE = re.compile(r"[0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOKEN = re.compile(r"[0-9A-Za-z]{1,16}")
_CHECK_CODE_LIKE = re.compile(r"[0-9]{20}")
_HEX = re.compile(r"[0-9A-Fa-f]{1,64}")
# A plain amount: at most 12 integer digits. A seller tax ID is 15-20 letters and digits, so a
# fifth field that is not an amount but looks like this means the blockchain layout.
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]*)?")
_TAX_ID_LIKE = re.compile(r"[0-9A-Za-z]{15,20}")


class QrLayout(StrEnum):
    """Which of the two QR layouts a payload used."""

    STANDARD = "standard"
    BLOCKCHAIN = "blockchain"


@dataclass(frozen=True)
class QrPayload:
    """The typed fields of an invoice QR code.

    ``type_code`` is what the QR says; the invoice's kind is ``identity.kind``, derived from the
    code (toll invoices carry QR type 10 but are type 14). ``check_code`` is None when the QR
    has none (专票, 数电票); on blockchain invoices it is hexadecimal. ``token`` is the opaque last
    field (None when a blockchain QR omits it).
    """

    type_code: str
    identity: InvoiceIdentity
    amount: Decimal
    amount_meaning: AmountMeaning
    issue_date: date
    check_code: str | None
    token: str | None
    layout: QrLayout = QrLayout.STANDARD
    seller_tax_id: TaxpayerId | None = None

    @property
    def amount_excluding_tax(self) -> Decimal | None:
        """The amount excluding tax, when that is what the QR carries (legacy invoices)."""
        return self.amount if self.amount_meaning is AmountMeaning.EXCLUDING_TAX else None

    @property
    def total(self) -> Decimal | None:
        """The total including tax, when that is what the QR carries (数电票)."""
        return self.amount if self.amount_meaning is AmountMeaning.TOTAL else None

    def lookup_query(self) -> LookupQuery:
        """Return the LookupQuery this QR code claims, for the customer to confirm.

        Raises ``required`` when the QR lacks a field verification needs for this kind.
        """
        return LookupQuery(
            identity=self.identity,
            issue_date=self.issue_date,
            amount=self.amount_excluding_tax,
            total=self.total,
            check_code_last6=self.check_code[-6:] if self.check_code else None,
        )


def parse_qr(text: str | None) -> QrPayload:
    """Parse the text of an invoice QR code, or raise InvoiceRuleError saying what is wrong.

    Accepts the layouts above, with or without one trailing comma, amounts without trailing
    zeros (``6.2``), negative amounts (red-letter invoices) and both date spellings.
    """
    normalized = normalize_text(require_text(text, "qr"))
    if not normalized:
        raise InvoiceRuleError("qr_empty", field="qr")
    fields = [part.strip() for part in normalized.split(",")]
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()
    if fields[0] != _QR_VERSION:
        raise InvoiceRuleError("qr_version", field="qr", text=excerpt(fields[0]))
    if len(fields) in _BLOCKCHAIN_FIELD_COUNTS and _is_seller_tax_id(fields[4]):
        layout = QrLayout.BLOCKCHAIN
        _, type_code, code, number, tax_id, amount, issue_date, check_code = fields[:8]
        token = fields[8] if len(fields) == 9 else None
    elif len(fields) == _STANDARD_FIELD_COUNT:
        layout = QrLayout.STANDARD
        _, type_code, code, number, amount, issue_date, check_code, token = fields
        tax_id = None
    elif len(fields) == _SHORT_FIELD_COUNT:
        # One of the last two fields is left out: 20 digits are a check code, else a token.
        layout = QrLayout.STANDARD
        _, type_code, code, number, amount, issue_date, last = fields
        is_check_code = _CHECK_CODE_LIKE.fullmatch(last) is not None
        check_code, token = (last, None) if is_check_code else ("", last or None)
        tax_id = None
    else:
        raise InvoiceRuleError("qr_field_count", field="qr", count=len(fields))

    if type_code not in QR_TYPE_CODES:
        raise InvoiceRuleError("qr_type_unknown", field="qr", type_code=excerpt(type_code))
    identity = parse_identity(code, number, type_code=type_code)
    if (type_code in _DIGITAL_TYPE_CODES) != (identity.generation is Generation.DIGITAL):
        raise InvoiceRuleError("qr_type_mismatch", field="qr", type_code=type_code)
    if (layout is QrLayout.BLOCKCHAIN) != identity.is_blockchain:
        raise InvoiceRuleError("qr_layout_mismatch", field="qr")

    meaning = (
        AmountMeaning.TOTAL
        if identity.generation is Generation.DIGITAL
        else AmountMeaning.EXCLUDING_TAX
    )
    return QrPayload(
        type_code=type_code,
        identity=identity,
        amount=parse_money(amount, field=meaning.value, allow_negative=True),
        amount_meaning=meaning,
        issue_date=_parse_qr_date(issue_date),
        check_code=_parse_qr_check_code(check_code, identity, layout),
        token=_parse_token(token),
        layout=layout,
        seller_tax_id=parse_taxpayer_id(tax_id) if tax_id is not None else None,
    )


def _is_seller_tax_id(field: str) -> bool:
    return _TAX_ID_LIKE.fullmatch(field) is not None and _PLAIN_AMOUNT.fullmatch(field) is None


def _parse_qr_date(text: str) -> date:
    # Real QR codes write YYYYMMDD or YYYY-MM-DD; anything else is not what it claims.
    if _DATE.fullmatch(text) is None:
        raise InvoiceRuleError("date_format", field="issue_date", text=excerpt(text))
    return parse_issue_date(text)


def _parse_qr_check_code(text: str, identity: InvoiceIdentity, layout: QrLayout) -> str | None:
    if not text:
        return None
    if identity.generation is Generation.DIGITAL:
        raise InvoiceRuleError("qr_digital_check_code", field="check_code")
    if layout is QrLayout.BLOCKCHAIN:
        if _HEX.fullmatch(text) is None:
            raise InvoiceRuleError("qr_check_code", field="check_code", text=excerpt(text))
        return text.lower()
    return parse_check_code(text)


def _parse_token(text: str | None) -> str | None:
    if text is None:
        return None
    if _TOKEN.fullmatch(text) is None:
        raise InvoiceRuleError("qr_token", field="qr", text=excerpt(text))
    return text
