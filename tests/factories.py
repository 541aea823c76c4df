"""Factories for ledger rows used across tests."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from portal.extensions import db
from portal.models import Invoice

_serial = itertools.count(1)

BEIJING_CODE = "011001900111"  # a Beijing 12-digit e-普票 code
BUYER_TAX_ID = "911101017967003199"
SELLER_TAX_ID = "91320621MA1MRHG205"


def invoice(**overrides) -> Invoice:
    """An issued Beijing invoice (not yet committed). Keyword arguments override fields."""
    serial = next(_serial)
    code = overrides.pop("code", BEIJING_CODE)
    number = overrides.pop("number", f"{serial:08d}")
    values = {
        "code": code,
        "number": number,
        "key": f"{code}-{number}" if code else number,
        "kind": "e_ordinary",
        "issue_date": date(2026, 5, 1),
        "amount": Decimal("100.00"),
        "tax": Decimal("6.00"),
        "total": Decimal("106.00"),
        "buyer_tax_id": BUYER_TAX_ID,
        "buyer_name": "北京示例科技有限公司",
        "seller_tax_id": SELLER_TAX_ID,
        "check_code": "65431824771847114698",
    }
    values.update(overrides)
    row = Invoice(**values)
    db.session.add(row)
    return row


def issued(count: int = 1, **overrides) -> list[Invoice]:
    """Issue ``count`` invoices with their outbox rows, committed (jobs enqueued after commit)."""
    from portal.services import outbox

    rows = [invoice(**overrides) for _ in range(count)]
    db.session.flush()
    for row in rows:
        outbox.queue_delivery(row)
    db.session.commit()
    return rows
