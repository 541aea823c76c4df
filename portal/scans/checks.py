"""The domain's rules applied to what was read from the evidence, as checks a person can read.

Each check says whether one rule holds, in zh_CN and en: the totals add up, the buyer's
taxpayer ID is well formed, the invoice is a Beijing one, the QR code is an invoice's, the
sources agree. The rules themselves live in ``portal.domain``; this module only asks them.

Public API:

- ``Check(code, ok, message_zh, message_en)`` with ``message(locale)`` and ``to_json()``.
- ``evidence_checks(values, *, qr=None, conflicts=()) -> list[Check]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portal.domain import (
    InvoiceRuleError,
    TaxIdForm,
    check_totals,
    parse_identity,
    parse_money,
    parse_taxpayer_id,
)
from portal.domain.fields import EXTRACTED_FIELDS, MONEY_FIELDS
from portal.domain.messages import DEFAULT_LOCALE, field_label, resolve_locale
from portal.scans.qr import QrReading


@dataclass(frozen=True)
class Check:
    """One rule applied to the evidence: ``code`` is stable, ``ok`` says whether it holds."""

    code: str
    ok: bool
    message_zh: str
    message_en: str

    def message(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the message in ``locale`` (zh_CN by default, ``en`` for English)."""
        return self.message_en if resolve_locale(locale) == "en" else self.message_zh

    def to_json(self) -> dict[str, object]:
        """Return the check as plain JSON values."""
        return {
            "code": self.code,
            "ok": self.ok,
            "message": {"zh_CN": self.message_zh, "en": self.message_en},
        }


def evidence_checks(
    values: Mapping[str, str],
    *,
    qr: QrReading | None = None,
    conflicts: Iterable[str] = (),
) -> list[Check]:
    """Apply the domain rules to the extracted ``values`` (field name -> canonical text).

    A rule is only checked when the fields it needs were found; ``found`` fails when not even
    the invoice number was. ``conflicts`` names fields the sources disagreed on.
    """
    checks: list[Check] = []
    if qr is not None and not qr.ok and qr.error is not None:
        checks.append(
            _failed("qr", qr.error, "发票二维码内容有误：", "The invoice QR code is wrong: ")
        )
    if not values.get("number"):
        checks.append(
            Check(
                "found",
                False,
                "我们无法读取这个文件，请手动填写发票信息。文件已保存，审核人员会查看原件。",
                "We could not read this file; please type the fields. The file is kept for the "
                "reviewer to look at.",
            )
        )
    else:
        checks.extend(_identity_checks(values))
    checks.extend(_totals_check(values))
    checks.extend(_tax_id_check(values))
    conflicted = [name for name in EXTRACTED_FIELDS if name in set(conflicts)]
    if conflicted:
        zh = "、".join(field_label(name, "zh_CN") for name in conflicted)
        en = ", ".join(field_label(name, "en") for name in conflicted)
        checks.append(
            Check(
                "sources_agree",
                False,
                f"二维码与票面文字读出的{zh}不一致，请以发票原件为准核对。",
                f"The QR code and the printed text disagree on the {en}; please check against the "
                f"invoice itself.",
            )
        )
    return checks


def _identity_checks(values: Mapping[str, str]) -> list[Check]:
    try:
        identity = parse_identity(values.get("code", ""), values["number"])
    except InvoiceRuleError as error:
        return [
            _failed(
                "identity", error, "发票代码或号码有误：", "The invoice code or number is wrong: "
            )
        ]
    if identity.is_beijing:
        return [
            Check("beijing", True, "这是北京开具的发票。", "The invoice was issued in Beijing.")
        ]
    return [
        Check(
            "beijing",
            False,
            f"这张发票由{identity.region.name('zh_CN')}开具，不是北京的发票，"
            f"北京的系统中不会有它的记录；请向开具地的税务系统查询。",
            f"This invoice was issued in {identity.region.name('en')}, not Beijing, so Beijing's "
            f"systems hold no record of it; please check with the region that issued it.",
        )
    ]


def _totals_check(values: Mapping[str, str]) -> list[Check]:
    if not all(values.get(name) for name in MONEY_FIELDS):
        return []
    try:
        amount, tax, total = (
            parse_money(values[name], field=name, allow_negative=True) for name in MONEY_FIELDS
        )
        check_totals(amount, tax, total)
    except InvoiceRuleError as error:
        return [_failed("totals", error, "", "")]
    return [
        Check(
            "totals",
            True,
            f"金额 {amount} 加税额 {tax} 等于价税合计 {total}。",
            f"Amount {amount} plus tax {tax} equals the total {total}.",
        )
    ]


def _tax_id_check(values: Mapping[str, str]) -> list[Check]:
    text = values.get("buyer_tax_id")
    if not text:
        return []
    try:
        tax_id = parse_taxpayer_id(text)
    except InvoiceRuleError as error:
        return [
            _failed(
                "buyer_tax_id",
                error,
                "购买方纳税人识别号有误：",
                "The buyer's taxpayer ID is wrong: ",
            )
        ]
    if tax_id.form is TaxIdForm.LEGACY:
        return [
            Check(
                "buyer_tax_id",
                True,
                "购买方纳税人识别号为旧版 15 位号码，格式正确（旧版号码没有校验位）。",
                "The buyer's taxpayer ID is an old 15-character ID of the right shape "
                "(old IDs have no check character).",
            )
        ]
    return [
        Check(
            "buyer_tax_id",
            True,
            "购买方纳税人识别号（统一社会信用代码）校验通过。",
            "The buyer's taxpayer ID (unified social credit code) passes its check.",
        )
    ]


def _failed(code: str, error: InvoiceRuleError, prefix_zh: str, prefix_en: str) -> Check:
    return Check(code, False, prefix_zh + error.message("zh_CN"), prefix_en + error.message("en"))
