"""Invoice fields from printed text: a PDF's text layer, an OFD page, or what OCR read.

The labels are the ones every invoice prints (发票代码, 发票号码, 开票日期, 校验码, 合计, 价税合计
(小写), 纳税人识别号, 名称); values are normalised the way the domain rules read them. Text is
matched across line breaks, because OCR often returns a label and its value as separate lines.

Public API:

- ``TextField(value, confidence)``: a value as text in canonical form (digits, ``YYYY-MM-DD``,
  ``123.45``) and the confidence of the text it came from (1.0 for a text layer).
- ``fields_from_text(lines) -> dict[str, TextField]``: ``lines`` are strings or
  ``(text, confidence)`` pairs in reading order. Field names are those of the registry protocol:
  ``code``, ``number``, ``issue_date``, ``check_code``, ``amount``, ``tax``, ``total``,
  ``buyer_tax_id``, ``buyer_name``, ``seller_tax_id``, ``seller_name``.
- ``canonical_value(name, raw) -> str | None``: one value given by name (an XML tag, an OFD
  CustomData) in the same canonical form, or None when it does not have the field's shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from portal.domain import InvoiceRuleError, parse_issue_date, parse_money
from portal.domain.normalize import normalize_text, strip_separators

_SPACE = r"[ \t]*"
_MONEY = r"(-?\d[\d,]*\.\d{2})"
_CODE = re.compile(r"发票代码\s*:?\s*((?:\d[ \t]*){10,12})")
_NUMBER = re.compile(r"发票号码\s*:?\s*((?:\d[ \t]*){8,20})")
_DATE_VALUE = r"(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{8})"
_DATE = re.compile(rf"开票日期\s*:?\s*{_DATE_VALUE}")
_ANY_DATE = re.compile(_DATE_VALUE)
_CHECK_CODE = re.compile(r"校\s*验\s*码\s*:?\s*((?:\d[ \t]*){20})")
# "合计" but not the "合计" inside "价税合计": the amount excluding tax, then the tax.
_SUBTOTALS = re.compile(rf"(?<!税)合{_SPACE}计\s*:?\s*¥?\s*{_MONEY}\s*¥?\s*{_MONEY}")
_TOTAL = re.compile(rf"\(小写\)\s*:?\s*¥?\s*{_MONEY}")
_TOTAL_FALLBACK = re.compile(rf"价税合计[^\n]*?¥\s*{_MONEY}")
_TAX_ID = re.compile(
    r"(?:纳税人识别号|统一社会信用代码)[^:\n]{0,16}:?\s*([0-9A-Z]{15,20})(?![0-9A-Z])"
)
_NAME = re.compile(r"名\s*称\s*:\s*([^\n:]{2,60})")
_SELLER_LABEL = re.compile(r"销售方|销方|销货单位")
_BUYER_LABEL = re.compile(r"购买方|购方|购货单位")
# Where a name printed on the same line as another label stops.
_NAME_END = re.compile(r"\s{2,}|纳税人识别号|统一社会信用代码|地址|开户行|销售方|购买方")


@dataclass(frozen=True)
class TextField:
    """A field read from printed text, in canonical form, with the confidence of its source."""

    value: str
    confidence: float


class _Text:
    """The joined text, and the confidence of the line each character came from."""

    def __init__(self, lines: Iterable[str | tuple[str, float]]) -> None:
        texts, scores = [], []
        for line in lines:
            text, score = (line, 1.0) if isinstance(line, str) else line
            texts.append(normalize_text(text))
            scores.append(float(score))
        self.text = "\n".join(texts)
        self._line_starts = []
        position = 0
        for text in texts:
            self._line_starts.append(position)
            position += len(text) + 1
        self._scores = scores

    def confidence(self, start: int, end: int) -> float:
        lines = [
            index
            for index, line_start in enumerate(self._line_starts)
            if line_start <= end
            and (index + 1 == len(self._line_starts) or self._line_starts[index + 1] > start)
        ]
        return min((self._scores[index] for index in lines), default=1.0)

    def line_before(self, label: int, value: int) -> str:
        """The text from the start of the label's line up to the value."""
        return self.text[self.text.rfind("\n", 0, label) + 1 : value]


def fields_from_text(lines: Iterable[str | tuple[str, float]]) -> dict[str, TextField]:
    """Return the invoice fields found in ``lines`` (text in reading order, with confidences).

    Only values of the right shape are returned (a code of 10 or 12 digits, a number of 8 or
    20, a real date, an amount with fen); a taxpayer ID is returned even when its check
    character is wrong, so that the check can say so.
    """
    source = _Text(lines)
    text = source.text
    found: dict[str, TextField] = {}

    def put(name: str, value: str | None, match: re.Match[str], group: int = 1) -> None:
        if value is not None and name not in found:
            found[name] = TextField(value, source.confidence(*match.span(group)))

    for match in _CODE.finditer(text):
        put("code", _digits(match[1], (10, 12)), match)
    for match in _NUMBER.finditer(text):
        put("number", _digits(match[1], (8, 20)), match)
    for match in _DATE.finditer(text):
        put("issue_date", _date(match[1]), match)
    for match in _CHECK_CODE.finditer(text):
        put("check_code", _digits(match[1], (20,)), match)
    for match in _SUBTOTALS.finditer(text):
        put("amount", _money(match[1]), match, 1)
        put("tax", _money(match[2]), match, 2)
    for match in (*_TOTAL.finditer(text), *_TOTAL_FALLBACK.finditer(text)):
        put("total", _money(match[1]), match)
    _parties(source, found)
    return found


def _parties(source: _Text, found: dict[str, TextField]) -> None:
    """Taxpayer IDs and names: a label on the same line says whose; otherwise the buyer's block
    comes first (top, or left on 数电票).
    """
    for kind, pattern in (("tax_id", _TAX_ID), ("name", _NAME)):
        unassigned = []
        for match in pattern.finditer(source.text):
            value = match[1] if kind == "tax_id" else _name(match[1])
            if not value:
                continue
            field = TextField(value, source.confidence(*match.span(1)))
            before = source.line_before(match.start(), match.start(1))
            if _SELLER_LABEL.search(before):
                found.setdefault(f"seller_{kind}", field)
            elif _BUYER_LABEL.search(before):
                found.setdefault(f"buyer_{kind}", field)
            else:
                unassigned.append(field)
        for field in unassigned:
            for party in ("buyer", "seller"):
                if f"{party}_{kind}" not in found:
                    found[f"{party}_{kind}"] = field
                    break


def _digits(text: str, lengths: tuple[int, ...]) -> str | None:
    digits = "".join(text.split())
    return digits if len(digits) in lengths else None


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


def _name(text: str) -> str | None:
    name = _NAME_END.split(text, maxsplit=1)[0].strip(" :;,")
    return name if len(name) >= 2 else None


_DIGIT_LENGTHS = {"code": (10, 12), "number": (8, 20), "check_code": (20,)}
_MONEY_FIELDS = frozenset({"amount", "tax", "total"})
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
    if name in _MONEY_FIELDS:
        return _money(text)
    if name.endswith("_tax_id"):
        value = strip_separators(text).upper()
        return value if 15 <= len(value) <= 20 and value.isalnum() and value.isascii() else None
    return text[:_MAX_NAME_LENGTH]
