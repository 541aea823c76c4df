"""Pure invoice rules: no Flask, no database, no I/O, no clock.

Everything here takes plain values and returns plain values; every refusal is an
``InvoiceRuleError`` with a stable ``code`` and a message in zh_CN and en.

- ``identity``: ``parse_identity(code, number)``, ``parse_key(key)`` -> ``InvoiceIdentity``
  (key, kind, type code, year, region, ``is_beijing``).
- ``qr``: ``parse_qr(text)`` -> ``QrPayload``.
- ``checkcode``: ``parse_check_code``, ``parse_check_code_last6``, ``format_check_code``.
- ``taxid``: ``parse_taxpayer_id``, ``is_valid_taxpayer_id``, ``uscc_check_character``.
- ``money``: ``parse_money``, ``format_money``, ``VAT_RATES``, ``check_totals``,
  ``tax_plausible``, ``AmountMeaning``.
- ``verification``: ``required_fields(identity)``, ``build_lookup_query(values)``,
  ``LookupQuery``, ``parse_issue_date``, ``check_issue_date_range``.
- ``throttle``: ``sign_in_wait``, ``SignInPolicy``, ``FailureCount`` (sign-in delays).
- ``diagnosis``: ``diagnose(query, today=..., ledger=..., registry=...)`` -> ``Finding``s.
- ``fields``: ``WIRE_FIELDS`` (the registry protocol's invoice fields), ``MONEY_FIELDS``, the
  display order and the fields each form asks for.
- ``regions``, ``shanghai_time``, ``normalize``, ``messages``, ``errors``: the supporting pieces.
"""

from portal.domain.checkcode import format_check_code, parse_check_code, parse_check_code_last6
from portal.domain.diagnosis import (
    Finding,
    FindingCode,
    LedgerRecord,
    RegistryState,
    diagnose,
)
from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import (
    Generation,
    InvoiceIdentity,
    InvoiceKind,
    parse_identity,
    parse_key,
)
from portal.domain.money import (
    VAT_RATES,
    AmountMeaning,
    check_totals,
    format_money,
    parse_money,
    tax_plausible,
)
from portal.domain.qr import QrLayout, QrPayload, parse_qr
from portal.domain.regions import BEIJING, Region, region_for_digital, region_for_division
from portal.domain.shanghai_time import SHANGHAI, shanghai_date
from portal.domain.taxid import TaxIdForm, TaxpayerId, is_valid_taxpayer_id, parse_taxpayer_id
from portal.domain.verification import (
    EARLIEST_ISSUE_DATE,
    LookupQuery,
    VerificationField,
    build_lookup_query,
    check_issue_date_range,
    parse_issue_date,
    required_fields,
)

__all__ = [
    "BEIJING",
    "EARLIEST_ISSUE_DATE",
    "SHANGHAI",
    "VAT_RATES",
    "AmountMeaning",
    "Finding",
    "FindingCode",
    "Generation",
    "InvoiceIdentity",
    "InvoiceKind",
    "InvoiceRuleError",
    "LedgerRecord",
    "LookupQuery",
    "QrLayout",
    "QrPayload",
    "Region",
    "RegistryState",
    "TaxIdForm",
    "TaxpayerId",
    "VerificationField",
    "build_lookup_query",
    "check_issue_date_range",
    "check_totals",
    "diagnose",
    "format_check_code",
    "format_money",
    "is_valid_taxpayer_id",
    "parse_check_code",
    "parse_check_code_last6",
    "parse_identity",
    "parse_issue_date",
    "parse_key",
    "parse_money",
    "parse_qr",
    "parse_taxpayer_id",
    "region_for_digital",
    "region_for_division",
    "required_fields",
    "shanghai_date",
    "tax_plausible",
]
