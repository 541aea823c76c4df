"""The one error type the invoice rules raise, with a stable code and messages in zh_CN and en.

Public API:

- ``InvoiceRuleError(code, **params)``: a ``ValueError`` whose ``code`` is stable (logs, API
  responses, tests match on it), whose ``params`` are plain values, and whose
  ``message(locale)`` is a sentence fit for the person who typed the value. ``field`` names the
  form field at fault when there is one.
- ``ERROR_MESSAGES``: every error code with its (zh_CN, en) message templates.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from portal.domain.messages import DEFAULT_LOCALE, render_message

ERROR_MESSAGES: Mapping[str, tuple[str, str]] = {
    # Business calendar (SLA clocks).
    "calendar_hours": (
        "工作时间的开始必须早于结束。",
        "Working hours must open before they close.",
    ),
    "calendar_no_workdays": (
        "日历中一年内没有工作日。",
        "The calendar has no working day in a year.",
    ),
    "negative_duration": ("时长不能为负数。", "A duration cannot be negative."),
    # Generic input problems.
    "not_text": ("{field_label}应为文本。", "The {field_label} must be text."),
    "required": ("请填写{field_label}。", "Please enter the {field_label}."),
    "not_digits": (
        "{field_label}只能包含数字，其中有“{char}”。",
        "The {field_label} may contain digits only; it contains “{char}”.",
    ),
    # Invoice identity.
    "code_length": (
        "发票代码应为 10 位或 12 位数字，您填写了 {length} 位。",
        "An invoice code has 10 or 12 digits; you entered {length}.",
    ),
    "code_shape": (
        "10 位发票代码的第 9 位应为 2–9、第 10 位应为 0–4，请核对发票代码。",
        "Digit 9 of a 10-digit invoice code is 2–9 and digit 10 is 0–4; please check the code.",
    ),
    "code_prefix": (
        "12 位发票代码以 0 开头（区块链发票以 1 开头），您填写的以 {digit} 开头。",
        "A 12-digit invoice code starts with 0 (1 for blockchain invoices); yours starts "
        "with {digit}.",
    ),
    "code_kind_unknown": (
        "发票代码中表示发票种类的“{digits}”不对应任何已知的发票种类，请核对发票代码。",
        "The kind digits “{digits}” of the invoice code match no known invoice kind; please "
        "check the code.",
    ),
    "region_unknown": (
        "{field_label}中的地区代码“{region_code}”不是有效的省级行政区划，请核对。",
        "The region code “{region_code}” in the {field_label} is not a province-level "
        "division; please check it.",
    ),
    "number_length": (
        "发票号码应为 8 位（与发票代码一起）或 20 位（数电票），您填写了 {length} 位。",
        "An invoice number has 8 digits (with an invoice code) or 20 digits (数电票); you "
        "entered {length}.",
    ),
    "code_missing": (
        "8 位发票号码需要同时填写发票代码。",
        "An 8-digit invoice number needs its invoice code as well.",
    ),
    "code_unexpected": (
        "20 位的数电票号码没有发票代码，请清空发票代码一栏。",
        "A 20-digit 数电票 number has no invoice code; please leave the code empty.",
    ),
    "key_shape": (
        "发票标识应为“发票代码-发票号码”，或 20 位数电票号码。",
        "An invoice key is “code-number”, or a 20-digit 数电票 number.",
    ),
    # Check code (校验码).
    "check_code_length": (
        "校验码应为 20 位数字，您填写了 {length} 位。",
        "A check code has 20 digits; you entered {length}.",
    ),
    "check_code_last6_length": (
        "请填写校验码的后 6 位数字（也可填写完整的 20 位），您填写了 {length} 位。",
        "Enter the last 6 digits of the check code (or all 20); you entered {length}.",
    ),
    # Taxpayer IDs.
    "tax_id_length": (
        "纳税人识别号应为 18 位统一社会信用代码（旧版为 15 位），您填写了 {length} 位。",
        "A taxpayer ID is an 18-character unified social credit code (15 characters on old "
        "invoices); you entered {length}.",
    ),
    "tax_id_character": (
        "统一社会信用代码第 {position} 位的“{char}”不是允许的字符（代码中没有 I、O、Z、S、V）。",
        "Character {position} of the unified social credit code, “{char}”, is not allowed "
        "(the code never uses I, O, Z, S or V).",
    ),
    "tax_id_division": (
        "统一社会信用代码第 3–8 位是行政区划码，只能是数字，第 {position} 位却是“{char}”。",
        "Characters 3–8 of the unified social credit code are a division code and must be "
        "digits; character {position} is “{char}”.",
    ),
    "tax_id_check": (
        "统一社会信用代码的最后一位校验码不正确，请核对是否有输入错误。",
        "The check character (last character) of the unified social credit code is wrong; "
        "please look for a typing mistake.",
    ),
    "tax_id_legacy_shape": (
        "15 位纳税人识别号应由 6 位数字的行政区划码和 9 位组织机构代码组成。",
        "A 15-character taxpayer ID is a 6-digit division code followed by a 9-character "
        "organisation code.",
    ),
    # Money.
    "money_format": (
        "{field_label}“{text}”不是有效的金额，请按 1234.56 或 ¥1,234.56 的形式填写。",
        "The {field_label} “{text}” is not an amount; write it like 1234.56 or ¥1,234.56.",
    ),
    "money_precision": (
        "{field_label}最多两位小数（精确到分）。",
        "The {field_label} has at most two decimals (fen).",
    ),
    "money_negative": ("{field_label}不能为负数。", "The {field_label} cannot be negative."),
    "money_too_large": (
        "{field_label}超出了允许的范围。",
        "The {field_label} is larger than any invoice allows.",
    ),
    "money_float": (
        "金额必须以精确的十进制数或文本传入，不能使用浮点数。",
        "Money must be given as a Decimal or as text, never as a float.",
    ),
    "totals_mismatch": (
        "金额 {amount} 加税额 {tax} 应等于价税合计 {total}。",
        "Amount {amount} plus tax {tax} must equal the total {total}.",
    ),
    "vat_rate_unknown": (
        "“{rate}”不是有效的增值税税率或征收率。",
        "“{rate}” is not a VAT rate or collection rate.",
    ),
    "tax_lines_invalid": (
        "发票明细行数应至少为 1，收到的是 {lines}。",
        "An invoice has at least one line; got {lines}.",
    ),
    # Dates and times.
    "date_format": (
        "无法识别{field_label}“{text}”，请按 2024-05-14 的形式填写。",
        "The {field_label} “{text}” is not a date; write it like 2024-05-14.",
    ),
    "date_invalid": (
        "{field_label}“{text}”不是日历上存在的日期。",
        "The {field_label} “{text}” is not a calendar date.",
    ),
    "date_out_of_range": (
        "{field_label}“{text}”不在合理范围内，应在 {earliest} 至 {latest} 之间。",
        "The {field_label} “{text}” is out of range; it must be from {earliest} to {latest}.",
    ),
    "naive_datetime": (
        "{field_label}必须带时区。",
        "The {field_label} must carry its time zone.",
    ),
    # QR payloads.
    "qr_empty": ("二维码内容为空。", "The QR code is empty."),
    "qr_version": (
        "这不是增值税发票的二维码：第一个字段应为“01”，读到的是“{text}”。",
        "This is not a VAT invoice QR code: its first field should be “01”, not “{text}”.",
    ),
    "qr_field_count": (
        "发票二维码应有 7 或 8 个字段（区块链发票 8 或 9 个），读到了 {count} 个。",
        "An invoice QR code has 7 or 8 fields (8 or 9 on blockchain invoices); this one has "
        "{count}.",
    ),
    "qr_type_unknown": (
        "二维码中的发票类型“{type_code}”不是已知的发票类型。",
        "The invoice type “{type_code}” in the QR code is not a known invoice type.",
    ),
    "qr_type_mismatch": (
        "二维码中的发票类型 {type_code} 与发票代码和号码的形式不一致。",
        "The invoice type {type_code} in the QR code does not fit the shape of its code and "
        "number.",
    ),
    "qr_layout_mismatch": (
        "二维码格式与发票代码不一致：只有区块链发票（代码以 1 开头）的二维码带销方税号。",
        "The QR layout does not fit the invoice code: only blockchain invoices (code starting "
        "with 1) carry the seller's tax ID in their QR code.",
    ),
    "qr_digital_check_code": (
        "数电票没有校验码，但二维码中带有校验码。",
        "A 数电票 has no check code, yet the QR code carries one.",
    ),
    "qr_check_code": (
        "区块链发票二维码中的校验码“{text}”不是十六进制字符。",
        "The check code “{text}” in the blockchain invoice QR code is not hexadecimal.",
    ),
    "qr_token": (
        "二维码最后一个字段应为不超过 16 位的字母或数字，读到的是“{text}”。",
        "The last field of the QR code is up to 16 letters or digits, not “{text}”.",
    ),
    # Programming guards: a service passed values that cannot belong together.
    "ledger_key_mismatch": (
        "内部错误：台账记录 {ledger_key} 不是所查询的发票 {key}。",
        "Internal error: ledger record {ledger_key} is not the invoice looked up, {key}.",
    ),
}

_EXCERPT_LENGTH = 40


def excerpt(text: str) -> str:
    """Shorten text echoed back in a message so a pasted essay does not become the message."""
    if len(text) <= _EXCERPT_LENGTH:
        return text
    return text[: _EXCERPT_LENGTH - 1] + "…"


class InvoiceRuleError(ValueError):
    """A value breaks an invoice rule; ``code`` says which, ``message(locale)`` says it to a person.

    ``params`` hold plain values (str, int) that the messages use and that an API can return
    as they are. The web layer attaches the error to ``field`` when there is one.
    """

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params: dict[str, object] = params

    @property
    def field(self) -> str | None:
        """The form field at fault (``code``, ``amount`` ...), or None if not about one field."""
        field = self.params.get("field")
        return field if isinstance(field, str) else None

    def message(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the message in ``locale`` (zh_CN by default, ``en`` for English)."""
        return render_message(ERROR_MESSAGES[self.code], locale, self.params)

    def __str__(self) -> str:
        return f"{self.code}: {self.message('en')}"

    def __reduce__(self):
        # Exceptions cross process boundaries (RQ job failures); keep the params when pickled.
        return (functools.partial(type(self), self.code, **self.params), ())
