"""Locales and message rendering shared by domain errors and diagnosis findings.

Every message the domain produces exists in Simplified Chinese (the default) and English.

Public API:

- ``DEFAULT_LOCALE`` (``"zh_CN"``) and ``SUPPORTED_LOCALES``.
- ``resolve_locale(locale) -> str``: map whatever locale the web layer holds to one we have.
- ``FIELD_LABELS``: human labels, per locale, of the fields people type (``code``, ``amount`` ...).
- ``field_label(field, locale) -> str``.
- ``render_message(templates, locale, params) -> str``: fill the template of that locale.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_LOCALE = "zh_CN"
SUPPORTED_LOCALES = ("zh_CN", "en")

# (zh_CN, en) labels for the fields a customer, a reviewer or a machine client fills in.
FIELD_LABELS: Mapping[str, tuple[str, str]] = {
    "code": ("发票代码", "invoice code"),
    "number": ("发票号码", "invoice number"),
    "key": ("发票标识", "invoice key"),
    "issue_date": ("开票日期", "issue date"),
    "amount": ("不含税金额", "amount excluding tax"),
    "tax": ("税额", "tax"),
    "total": ("价税合计（含税金额）", "total including tax"),
    "check_code": ("校验码", "check code"),
    "check_code_last6": ("校验码后六位", "last 6 digits of the check code"),
    "tax_id": ("纳税人识别号", "taxpayer ID"),
    "rate": ("税率", "tax rate"),
    "qr": ("二维码内容", "QR code text"),
    "moment": ("时间", "time"),
    "kind": ("发票种类", "invoice kind"),
    "buyer_tax_id": ("购买方纳税人识别号", "buyer taxpayer ID"),
    "buyer_name": ("购买方名称", "buyer name"),
    "seller_tax_id": ("销售方纳税人识别号", "seller taxpayer ID"),
    "seller_name": ("销售方名称", "seller name"),
}


def resolve_locale(locale: str | None) -> str:
    """Return ``"en"`` for any English locale (``en``, ``en_US``, ``en-GB``), else ``"zh_CN"``.

    Chinese is the portal's default language, so anything unknown falls back to it.
    """
    if isinstance(locale, str) and locale.strip().lower()[:2] == "en":
        return "en"
    return DEFAULT_LOCALE


def field_label(field: str, locale: str | None = DEFAULT_LOCALE) -> str:
    """Return the human label of a field in the given locale (the field name if unknown)."""
    labels = FIELD_LABELS.get(field)
    if labels is None:
        return field
    return labels[1] if resolve_locale(locale) == "en" else labels[0]


def render_message(
    templates: tuple[str, str], locale: str | None, params: Mapping[str, object]
) -> str:
    """Fill the (zh_CN, en) ``templates`` for ``locale`` with ``params``.

    A ``field`` parameter also provides ``{field_label}`` in the right language, so templates
    can name the field the way a person reads it.
    """
    resolved = resolve_locale(locale)
    values = dict(params)
    if isinstance(values.get("field"), str):
        values.setdefault("field_label", field_label(values["field"], resolved))
    template = templates[1] if resolved == "en" else templates[0]
    return template.format_map(values)
