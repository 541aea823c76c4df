"""数电票 XML (the national platform's export) read exactly, tag by tag, namespaces ignored.

Public API:

- ``XML_TAGS``: tag (local name, case-insensitive) -> field name. The platform's English tags
  (``InvoiceNumber``, ``TotalTax-includedAmount`` ...) and the pinyin tags of older exports
  (``Fphm``, ``Jshj`` ...).
- ``read_invoice_xml(data, limits) -> DocumentReading``: or raise ``EvidenceRefused``.
"""

from __future__ import annotations

from collections.abc import Mapping

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import ScanLimits, megabytes
from portal.scans.reading import DocumentReading, candidates
from portal.scans.safexml import local_name, parse_xml
from portal.scans.textfields import TextField, canonical_value

XML_TAGS: Mapping[str, str] = {
    tag.lower(): field
    for tag, field in {
        "InvoiceNumber": "number",
        "IssueTime": "issue_date",
        "SellerName": "seller_name",
        "SellerIdNum": "seller_tax_id",
        "BuyerName": "buyer_name",
        "BuyerIdNum": "buyer_tax_id",
        "TotalAmWithoutTax": "amount",
        "TotalTaxAm": "tax",
        "TotalTax-includedAmount": "total",
        # Older exports name fields by pinyin initials: 发票代码, 发票号码, 开票日期, 校验码,
        # 合计金额, 合计税额, 价税合计.
        "Fpdm": "code",
        "Fphm": "number",
        "Kprq": "issue_date",
        "Jym": "check_code",
        "Hjje": "amount",
        "Hjse": "tax",
        "Jshj": "total",
    }.items()
}


def read_invoice_xml(data: bytes, limits: ScanLimits | None = None) -> DocumentReading:
    """Read the invoice fields of a 数电票 XML file: the first element of each known tag wins.

    Refuses with ``too_large`` (above ``limits.max_xml_bytes``), ``xml_entities`` (any DTD,
    entity or external reference) or ``corrupt`` (not well-formed).
    """
    limits = limits or ScanLimits()
    if len(data) > limits.max_xml_bytes:
        raise EvidenceRefused("too_large", limit_mb=megabytes(limits.max_xml_bytes))
    root = parse_xml(data)
    fields: dict[str, TextField] = {}
    for element in root.iter():
        field = XML_TAGS.get(local_name(element.tag).lower())
        if field is None or field in fields:
            continue
        value = canonical_value(field, element.text)
        if value is not None:
            fields[field] = TextField(value, 1.0)
    return DocumentReading(
        source="xml", candidates=tuple(candidates(fields, "xml", "xml")), pages=1
    )
