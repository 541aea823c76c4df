"""What the simulated registry accepts: ``validate_invoice`` and the invoice's field rules.

Deliberately independent of the portal's own rules (``portal.domain``), so the simulator can
disagree with the portal the way the real registry sometimes does; only the protocol's field
names (``portal.domain.fields``) are shared, because they are the contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from portal.domain.fields import MONEY_FIELDS, OPTIONAL_WIRE_FIELDS, WIRE_FIELDS

# The registry is in Beijing: "in the future" means after today there. China has no daylight
# saving time, so a fixed offset is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# [0-9], never \d: \d and Decimal() both accept full-width and other Unicode digits.
_CODE = re.compile(r"[0-9]{10}|[0-9]{12}")
_LEGACY_NUMBER = re.compile(r"[0-9]{8}")
_DIGITAL_NUMBER = re.compile(r"[0-9]{20}")
_CHECK_CODE = re.compile(r"[0-9]{20}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONEY = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
# 18-character unified social credit codes and the older 15-20 character taxpayer IDs. Only the
# shape is checked: the registry does not know every taxpayer either.
_TAX_ID = re.compile(r"[0-9A-Z]{15,20}")
_CENT = Decimal("0.01")
_MAX_MONEY_DIGITS = 15
_MAX_NAME_LENGTH = 200
_MAX_KIND_LENGTH = 32


def validate_invoice(body: Mapping[str, Any]) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """Check an invoice as the registry does.

    Returns ``(key, canonical_fields, errors)``. ``key`` is derived from ``code`` and ``number``
    and is None when they are malformed; ``canonical_fields`` holds every invoice field with
    money written with exactly two decimals (so "6.2" and "6.20" are the same invoice) and is
    only meaningful when ``errors`` is empty. Unknown fields are ignored.
    """
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name in WIRE_FIELDS:
        raw = body.get(name)
        if raw is None or raw == "":
            if name not in OPTIONAL_WIRE_FIELDS:
                errors[name] = "is required"
            values[name] = ""
        elif not isinstance(raw, str):
            errors[name] = "must be a string"
        else:
            values[name] = raw

    key = _check_identity(values, errors)
    _check_issue_date(values, errors)
    _check_money(values, errors)
    _check_parties(values, errors)
    if values.get("kind") and len(values["kind"]) > _MAX_KIND_LENGTH:
        errors["kind"] = f"must be at most {_MAX_KIND_LENGTH} characters"
    check_code = values.get("check_code")
    if check_code and not _CHECK_CODE.fullmatch(check_code):
        errors["check_code"] = "must be empty or 20 digits"
    return key, values, errors


def _check_identity(values: dict[str, str], errors: dict[str, str]) -> str | None:
    if "code" in errors or "number" in errors:
        return None
    code, number = values["code"], values["number"]
    if code and not _CODE.fullmatch(code):
        errors["code"] = "must be empty (数电票) or 10 or 12 digits"
        return None
    if code and not _LEGACY_NUMBER.fullmatch(number):
        errors["number"] = "must be 8 digits for an invoice with a code"
        return None
    if not code and not _DIGITAL_NUMBER.fullmatch(number):
        errors["number"] = "must be 20 digits for a 数电票 (an invoice without a code)"
        return None
    return f"{code}-{number}" if code else number


def _check_issue_date(values: dict[str, str], errors: dict[str, str]) -> None:
    text = values.get("issue_date")
    if not text:
        return
    if not _ISO_DATE.fullmatch(text):
        errors["issue_date"] = "must be a date written YYYY-MM-DD"
        return
    try:
        issued = date.fromisoformat(text)
    except ValueError:
        errors["issue_date"] = "is not a valid calendar date"
        return
    if issued > datetime.now(BEIJING).date():
        errors["issue_date"] = "must not be in the future"


def _check_money(values: dict[str, str], errors: dict[str, str]) -> None:
    amounts: dict[str, Decimal] = {}
    for name in MONEY_FIELDS:
        text = values.get(name)
        if not text:
            continue
        match = _MONEY.fullmatch(text)
        if match is None:
            errors[name] = "must be a decimal number written like 123.45"
            continue
        sign, whole, fraction = match.groups()
        if sign:
            errors[name] = "must not be negative"
        elif fraction is not None and len(fraction) > 2:
            errors[name] = "must have at most 2 decimal places"
        elif len(whole.lstrip("0")) > _MAX_MONEY_DIGITS:
            errors[name] = "is too large"
        else:
            amounts[name] = Decimal(text).quantize(_CENT)
            values[name] = str(amounts[name])
    if len(amounts) == len(MONEY_FIELDS) and amounts["amount"] + amounts["tax"] != amounts["total"]:
        errors["total"] = (
            f"must equal amount + tax ({amounts['amount'] + amounts['tax']}), "
            f"got {amounts['total']}"
        )


def _check_parties(values: dict[str, str], errors: dict[str, str]) -> None:
    for name in ("buyer_tax_id", "seller_tax_id"):
        tax_id = values.get(name)
        if tax_id and not _TAX_ID.fullmatch(tax_id):
            errors[name] = "must be 15 to 20 capital letters and digits"
    buyer_name = values.get("buyer_name")
    if buyer_name and not buyer_name.strip():
        errors["buyer_name"] = "is required"
    elif buyer_name and len(buyer_name) > _MAX_NAME_LENGTH:
        errors["buyer_name"] = f"must be at most {_MAX_NAME_LENGTH} characters"
