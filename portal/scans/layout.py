"""Invoice fields found by where they are printed, not by the order the text came in.

A PDF's text layer comes in content-stream order (a section's labels first, its values later),
OCR in detection order, an OFD in object order. So every reader hands over the pieces of text
with their boxes, and fields are found by geometry: a value is right of its label on the same
line (or just below it), across the wide gaps of spaced labels (``合   计``); a taxpayer ID or a
name belongs to the party whose block it sits in (``购买方`` / ``销售方``, printed vertically at
the block's left or as a heading); without block labels, the buyer's block is the upper (or, on
one row, the left) one on every known layout. A label with no value (an individual buyer has no
taxpayer ID) still takes its place, so the seller's value is never given to the buyer.

Public API:

- ``Word(text, left, top, right, bottom, confidence=1.0)``: a piece of printed text (a glyph,
  a run, an OCR box) and its box, y growing downwards, in any unit.
- ``fields_from_words(words) -> dict[str, TextField]``: ``code``, ``number``, ``issue_date``,
  ``check_code``, ``amount``, ``tax``, ``total``, ``buyer_tax_id``, ``buyer_name``,
  ``seller_tax_id``, ``seller_name``; only values of the right shape.
- ``words_from_lines(lines) -> list[Word]``: text lines without positions (one line a row, one
  character a column), for readers that only have text.
- ``fields_from_text(lines) -> dict[str, TextField]``: the same for text lines without
  positions (strings or ``(text, confidence)`` pairs, top to bottom).
- ``text_lines(words) -> list[str]``: the words as lines of text (NFKC, top to bottom, wide gaps
  shown as `` | ``), for logs and tests.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portal.domain import InvoiceRuleError, parse_identity, parse_issue_date, parse_money
from portal.domain.normalize import normalize_text
from portal.scans.textfields import TextField

# Gaps, in line heights: below SAME the pieces are one word; below COLUMN, words on one line;
# wider is a column break ("|" in the line's text), which names never cross.
_SAME = 0.25
_COLUMN = 2.0
# How far right of its label a value may start (in line heights): strict shapes may be far.
_MAX_GAP_STRICT = 16.0
_MAX_GAP_NAME = 4.0
_SEP = " |:"

_S = r"[\s|]*"  # between the characters of a label, spaced or not
_MONEY = re.compile(r"[¥Y]?\s*(-?\d[\d,]*\s?\.\s?\d{2})(?![\d.])")
_DIGITS = re.compile(r"\d(?:\s?\d)*")
_DATE = re.compile(
    r"(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{8})(?!\d)"
)
_TAX_ID_VALUE = re.compile(r"([0-9A-Z]{15,20})(?![0-9A-Za-z])")

_CODE_LABEL = re.compile(r"发\s*票\s*代\s*码")
_NUMBER_LABEL = re.compile(r"发\s*票\s*号\s*码")
# Paper invoices print the number after "№" (NFKC makes it "No") and the code unlabelled.
_PAPER_NUMBER = re.compile(r"No\s*[.:]?[\s|]*(\d{8})(?!\d)")
_DATE_LABEL = re.compile(r"开\s*票\s*日\s*期")
_CHECK_LABEL = re.compile(r"校\s*验\s*码")
# 合 and 计 stand far apart on every layout; OCR sometimes finds only one of them, alone in its
# column, before the two sums.
_SUBTOTAL_LABEL = re.compile(rf"合{_S}计|(?:^|(?<=\| ))[合计](?= \|)")
_TOTAL_LABEL = re.compile(r"\(\s*小\s*写\s*\)")
_TOTAL_ROW_LABEL = re.compile(rf"价{_S}税{_S}合{_S}计")
_TAX_ID_LABEL = re.compile(
    r"统\s*一\s*社\s*会\s*信\s*用\s*代\s*码(?:\s*/\s*纳\s*税\s*人\s*识\s*别\s*号)?"
    r"|纳\s*税\s*人\s*识\s*别\s*号|识\s*别\s*号"
)
_NAME_LABEL = re.compile(rf"名{_S}称|(?<![\u4e00-\u9fff])称(?=\s*:)")
_NAME_VALUE = re.compile(r"[^|]+")
_NAME_END = re.compile(r"\s{2,}|纳税人识别号|统一社会信用代码|地\s*址|开户行|电\s*话|购买方|销售方")
_UNLABELLED_CODE = re.compile(r"(?<![\d.])(\d{12}|\d{10})(?![\d.])")
_NOT_A_CODE_BEFORE = re.compile(r"(编号|单号|账号|识别号|电话|代码|号码)[\s|:]*$")

_PARTY_WORDS = {
    "buyer": re.compile(r"购\s*买\s*方|购\s*方|购\s*货"),
    "seller": re.compile(r"销\s*售\s*方|销\s*方|销\s*货"),
}
# A vertical label read in part ("买方信息", "售方") still says whose block it is.
_VERTICAL_PARTY_WORDS = {
    "buyer": re.compile(r"购\s*买|买\s*方|购\s*方"),
    "seller": re.compile(r"销\s*售|售\s*方|销\s*方"),
}
_CHAIN = {"buyer": "购买方信息", "seller": "销售方信息"}


@dataclass(frozen=True)
class Word:
    """A piece of printed text and its box (y grows downwards)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    confidence: float = 1.0

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1e-6)

    @property
    def width(self) -> float:
        return max(self.right - self.left, 1e-6)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


class _Line:
    """Words on one baseline, as text with each character's horizontal extent and confidence."""

    def __init__(self, words: list[Word]) -> None:
        words = sorted(words, key=lambda w: w.left)
        self.top = min(w.top for w in words)
        self.bottom = max(w.bottom for w in words)
        self.height = statistics.median(w.height for w in words)
        chars: list[str] = []
        self.lefts: list[float] = []
        self.rights: list[float] = []
        self.scores: list[float] = []
        previous: float | None = None
        for word in words:
            text = normalize_text(word.text)
            if not text:
                continue
            if previous is not None:
                gap = word.left - previous
                separator = (
                    ""
                    if gap < _SAME * self.height
                    else " "
                    if gap < _COLUMN * self.height
                    else " | "
                )
                for character in separator:
                    chars.append(character)
                    self.lefts.append(previous)
                    self.rights.append(word.left)
                    self.scores.append(1.0)
            step = word.width / len(text)
            for index, character in enumerate(text):
                chars.append(character)
                self.lefts.append(word.left + index * step)
                self.rights.append(word.left + (index + 1) * step)
                self.scores.append(word.confidence)
            previous = word.right if previous is None else max(previous, word.right)
        self.text = "".join(chars)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    def score(self, start: int, end: int) -> float:
        return min(
            (
                s
                for c, s in zip(self.text[start:end], self.scores[start:end], strict=True)
                if c not in _SEP
            ),
            default=1.0,
        )


@dataclass
class _Anchor:
    """Where a party's block is: its vertical label, or a heading above it."""

    party: str
    left: float
    top: float
    bottom: float
    vertical: bool


@dataclass
class _Label:
    kind: str  # "tax_id" or "name"
    line: int
    left: float
    middle: float
    height: float
    value: TextField | None
    party: str | None


def words_from_lines(lines: Iterable[str | tuple[str, float]]) -> list[Word]:
    """Give text lines without positions a box each character: line ``i`` is row ``i``."""
    words = []
    for row, line in enumerate(lines):
        text, score = (line, 1.0) if isinstance(line, str) else line
        for column, character in enumerate(text):
            if not character.isspace():
                words.append(Word(character, column, row * 2.0, column + 1, row * 2.0 + 1, score))
    return words


def fields_from_text(lines: Iterable[str | tuple[str, float]]) -> dict[str, TextField]:
    """Return the invoice fields in text lines that came without positions."""
    return fields_from_words(words_from_lines(lines))


def text_lines(words: Iterable[Word]) -> list[str]:
    """The words as lines of text, top to bottom (vertical labels left out)."""
    flat = [w for w in words if normalize_text(w.text)]
    return [line.text for line in _lines(flat)] if flat else []


def fields_from_words(words: Iterable[Word]) -> dict[str, TextField]:
    """Return the invoice fields printed in ``words`` (see the module docstring)."""
    flat, tall = [], []
    for word in words:
        text = normalize_text(word.text)
        if not text:
            continue
        (tall if len(text) > 1 and word.height > 1.8 * word.width else flat).append(word)
    if not flat:
        return {}
    lines = _lines(flat)
    found: dict[str, TextField] = {}

    def put(name: str, value: str | None, line: _Line, match: re.Match[str], group: int = 1):
        if value is not None and name not in found:
            found[name] = TextField(value, line.score(*match.span(group)))

    _header(lines, found, put)
    _money(lines, put)
    _paper_code(lines, flat, found)
    _parties(lines, _anchors(lines, flat, tall), found)
    return found


def _lines(words: list[Word]) -> list[_Line]:
    """Words grouped by baseline: each joins the recent line whose mean middle is nearest, if
    near enough for its height (a stray glyph in between does not split a line)."""
    groups: list[list[Word]] = []
    middles: list[float] = []
    heights: list[float] = []
    for word in sorted(words, key=lambda w: w.middle):
        best = None
        for index in range(max(0, len(groups) - 4), len(groups)):
            distance = abs(word.middle - middles[index])
            if distance <= 0.45 * max(heights[index], word.height) and (
                best is None or distance < best[1]
            ):
                best = (index, distance)
        if best is None:
            groups.append([word])
            middles.append(word.middle)
            heights.append(word.height)
            continue
        group = groups[best[0]]
        group.append(word)
        middles[best[0]] += (word.middle - middles[best[0]]) / len(group)
    lines = [_Line(group) for group in groups]
    return sorted((line for line in lines if line.text), key=lambda line: line.middle)


_HEADER = (
    ("code", _CODE_LABEL, _DIGITS, (10, 12)),
    ("number", _NUMBER_LABEL, _DIGITS, (8, 20)),
    ("check_code", _CHECK_LABEL, _DIGITS, (20,)),
    ("issue_date", _DATE_LABEL, _DATE, None),
)


def _header(lines: list[_Line], found: dict[str, TextField], put) -> None:
    for name, label, pattern, lengths in _HEADER:
        for index, line in enumerate(lines):
            for match in label.finditer(line.text):
                hit = _value_after(line, match.end(), pattern, _MAX_GAP_STRICT)
                target = line
                if hit is None:
                    target, hit = _value_below(lines, index, match, pattern)
                if hit is not None:
                    raw = hit.group(0)
                    value = _date(raw) if lengths is None else _digits(raw, lengths)
                    put(name, value, target, hit, 0)
    for line in lines:
        for match in _PAPER_NUMBER.finditer(line.text):
            put("number", _digits(match[1], (8,)), line, match)


def _money(lines: list[_Line], put) -> None:
    for line in lines:
        for match in _SUBTOTAL_LABEL.finditer(line.text):
            before = re.sub(r"[\s|]", "", line.text[: match.start()])
            after = re.sub(r"[\s|:]", "", line.text[match.end() : match.end() + 8])
            if before.endswith("税"):
                continue  # 价税合计: the total, read below
            amounts = list(_MONEY.finditer(line.text, match.end()))
            if after.startswith("税额"):
                if amounts:
                    put("tax", _amount(amounts[0][1]), line, amounts[0])
                continue
            if amounts:
                put("amount", _amount(amounts[0][1]), line, amounts[0])
            if len(amounts) > 1 and not after.startswith("金额"):
                put("tax", _amount(amounts[1][1]), line, amounts[1])
        for match in _TOTAL_LABEL.finditer(line.text):
            hit = _value_after(line, match.end(), _MONEY, _MAX_GAP_STRICT)
            if hit is not None:
                put("total", _amount(hit[1]), line, hit)
    for line in lines:
        for match in _TOTAL_ROW_LABEL.finditer(line.text):
            amounts = list(_MONEY.finditer(line.text, match.end()))
            if amounts:
                put("total", _amount(amounts[-1][1]), line, amounts[-1])


def _paper_code(lines: list[_Line], words: list[Word], found: dict[str, TextField]) -> None:
    """A paper invoice prints its code unlabelled near the top: take a 10- or 12-digit group in
    the top third that makes a valid identity with the number (or alone)."""
    if "code" in found:
        return
    top = min(w.top for w in words)
    bottom = max(w.bottom for w in words)
    number = found["number"].value if "number" in found else None
    for line in lines:
        if line.top > top + (bottom - top) / 3:
            break
        for match in _UNLABELLED_CODE.finditer(line.text):
            if _NOT_A_CODE_BEFORE.search(line.text[: match.start()]):
                continue
            if _is_code(match[1], number):
                found["code"] = TextField(match[1], line.score(*match.span(1)))
                return


def _is_code(code: str, number: str | None) -> bool:
    try:
        parse_identity(code, number if number and len(number) == 8 else "00000000")
    except InvoiceRuleError:
        return False
    return True


def _value_after(line: _Line, end: int, pattern: re.Pattern[str], max_gap: float):
    """The value right of a label that ends at ``end``, if it starts close enough."""
    start = end
    while start < len(line.text) and line.text[start] in _SEP:
        start += 1
    if start >= len(line.text):
        return None
    if line.lefts[start] - line.rights[end - 1] > max_gap * line.height:
        return None
    return pattern.match(line.text, start)


def _value_below(lines: list[_Line], index: int, label: re.Match[str], pattern: re.Pattern[str]):
    """The value on the next line, starting under the label (OCR often splits them)."""
    line = lines[index]
    left, right = line.lefts[label.start()], line.rights[label.end() - 1]
    for below in lines[index + 1 : index + 3]:
        if below.top - line.bottom > 1.5 * line.height:
            break
        for start, character in enumerate(below.text):
            starts_word = start == 0 or below.text[start - 1] in _SEP
            window = left - 2 * line.height <= below.lefts[start] <= right + 4 * line.height
            if character not in _SEP and starts_word and window:
                hit = pattern.match(below.text, start)
                if hit is not None:
                    return below, hit
    return None, None


def _anchors(lines: list[_Line], flat: list[Word], tall: list[Word]) -> list[_Anchor]:
    anchors = []
    for word in tall:  # a vertical label read as one box (OCR)
        text = normalize_text(word.text)
        for party, pattern in _VERTICAL_PARTY_WORDS.items():
            if pattern.search(text):
                anchors.append(_Anchor(party, word.left, word.top, word.bottom, True))
    singles = [w for w in flat if len(normalize_text(w.text)) == 1]
    for party, chain in _CHAIN.items():  # a vertical label printed one character a line
        for first in (w for w in singles if normalize_text(w.text) == chain[0]):
            last, length = first, 1
            for character in chain[1:]:
                below = [
                    w
                    for w in singles
                    if normalize_text(w.text) == character
                    and abs(w.left - last.left) < last.width
                    and last.bottom - 0.2 * last.height < w.top < last.bottom + 3 * last.height
                ]
                if not below:
                    break
                last, length = min(below, key=lambda w: w.top), length + 1
            if length >= 2:
                anchors.append(_Anchor(party, first.left, first.top, last.bottom, True))
    for line in lines:  # a heading ("购买方信息", "销 售 方") above its block
        for party, pattern in _PARTY_WORDS.items():
            for match in pattern.finditer(line.text):
                anchors.append(
                    _Anchor(party, line.lefts[match.start()], line.top, line.bottom, False)
                )
    return anchors


def _parties(lines: list[_Line], anchors: list[_Anchor], found: dict[str, TextField]) -> None:
    labels: list[_Label] = []
    for index, line in enumerate(lines):
        for kind, label, pattern, gap in (
            ("tax_id", _TAX_ID_LABEL, _TAX_ID_VALUE, _MAX_GAP_STRICT),
            ("name", _NAME_LABEL, None, _MAX_GAP_NAME),
        ):
            for match in label.finditer(line.text):
                value = _party_value(line, match, kind, pattern, gap)
                if value is None and kind == "tax_id":
                    _, below = _value_below(lines, index, match, _TAX_ID_VALUE)
                    if below is not None:
                        value = TextField(below[1], 1.0)
                labels.append(
                    _Label(
                        kind,
                        index,
                        line.lefts[match.start()],
                        line.middle,
                        line.height,
                        value,
                        _named_party(line, match) or _party_of(anchors, line, match),
                    )
                )
    for kind in ("tax_id", "name"):
        mine = sorted((label for label in labels if label.kind == kind), key=_reading_order)
        # One block has one label of a kind: when two land in one block (the other block's
        # label was not recognised), only the first keeps it; the next is placed by order.
        taken: set[str] = set()
        for label in mine:
            if label.party in taken:
                label.party = None
            elif label.party:
                taken.add(label.party)
        unplaced = [label for label in mine if label.party is None]
        # Without block labels: the buyer's block is the upper one, or the left one on a row.
        if unplaced and len(mine) >= 2:
            free = [party for party in ("buyer", "seller") if party not in taken]
            for label, party in zip(unplaced, free, strict=False):
                label.party = party
        for label in mine:
            if label.party and label.value and f"{label.party}_{kind}" not in found:
                found[f"{label.party}_{kind}"] = label.value


def _reading_order(label: _Label) -> tuple[int, float]:
    return label.line, label.left


def _party_value(line: _Line, match: re.Match[str], kind: str, pattern, gap: float):
    if kind == "tax_id":
        hit = _value_after(line, match.end(), pattern, gap)
        if hit is None:
            return None
        return TextField(hit[1], line.score(*hit.span(1)))
    hit = _value_after(line, match.end(), _NAME_VALUE, gap)
    if hit is None:
        return None
    name = _NAME_END.split(hit[0], maxsplit=1)[0].strip(" :;,")
    if len(name) < 2 or _TAX_ID_LABEL.match(name) or _NAME_LABEL.match(name):
        return None
    return TextField(name, line.score(hit.start(), hit.start() + len(name)))


def _named_party(line: _Line, match: re.Match[str]) -> str | None:
    """The party a label names itself ("购买方名称", "销售方 纳税人识别号")."""
    before = line.text[: match.start()].rsplit("|", 1)[-1]
    for party, pattern in _PARTY_WORDS.items():
        if pattern.search(before[-8:]):
            return party
    return None


def _party_of(anchors: Sequence[_Anchor], line: _Line, match: re.Match[str]) -> str | None:
    """The block a label sits in: a vertical label at its left whose height covers it (the
    nearest such), else the nearest heading above it."""
    x, y, h = line.lefts[match.start()], line.middle, line.height
    beside = [
        a
        for a in anchors
        if a.vertical and a.left <= x + h and a.top - 1.5 * h <= y <= a.bottom + 1.5 * h
    ]
    if beside:
        return max(beside, key=lambda a: a.left).party
    above = [a for a in anchors if not a.vertical and a.top <= y + 0.5 * h and a.left <= x + 4 * h]
    if above:
        return max(above, key=lambda a: (a.top, a.left)).party
    return None


def _digits(text: str, lengths: tuple[int, ...]) -> str | None:
    digits = "".join(text.split())
    return digits if len(digits) in lengths else None


def _date(text: str) -> str | None:
    try:
        return parse_issue_date("".join(text.split())).isoformat()
    except InvoiceRuleError:
        return None


def _amount(text: str) -> str | None:
    try:
        return str(parse_money("".join(text.split()), allow_negative=True))
    except InvoiceRuleError:
        return None
