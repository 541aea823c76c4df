"""The test-data builders every test module shares (test modules import helpers from here,
not from each other): ledger rows, a case with evidence, the evidence sample invoice,
``run_workers`` to drain the queues in-process, a wire record (``GOOD``) and CSV import files,
and a customer's report and lookup as the browser sends them."""

from __future__ import annotations

import io
import itertools
from datetime import date, timedelta
from decimal import Decimal

from PIL import Image
from rq import SimpleWorker
from sqlalchemy import select

from portal.domain.fields import WIRE_FIELDS
from portal.domain.identity import canonical_key
from portal.extensions import db
from portal.models import Case, Invoice, User, utcnow
from portal.queue import get_queue, worker_connection
from portal.services import cases, evidence
from tests.conftest import csrf_token_from
from tests.scans.corpus import InvoiceSample
from workers import queues

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
        "key": canonical_key(code, number),
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


def run_workers() -> None:
    """Drain every queue in this process (SimpleWorker, burst mode), the worker on a connection
    of its own as `flask worker` has (its pubsub thread must not inherit the jobs' short read
    timeout)."""
    dequeue = worker_connection()
    worker = SimpleWorker(
        [get_queue(q, connection=dequeue) for q in queues.ALL], connection=dequeue
    )
    worker.work(burst=True)
    # Jobs ran in their own sessions: forget what this one had loaded.
    db.session.expire_all()


def png(shade: int) -> bytes:
    """A small PNG, different for every ``shade``."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (shade % 256, 80, 160)).save(buffer, "PNG")
    return buffer.getvalue()


_numbers = iter(range(10_000_000, 99_999_999))


def case_with_evidence(
    email: str, *, files: int = 1, closed_days_ago: int | None = None, derived: bool = True
) -> Case:
    """A customer's case with evidence (original, plus preview and thumbnail when ``derived``);
    withdrawn ``closed_days_ago`` days ago when given. Needs an app context."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        from portal.services import accounts

        user = accounts.create_user(email, "Gao-Shan-Liu-Shui-42", "customer")
    claim = cases.parse_claim({"code": "011001900111", "number": str(next(_numbers))})
    case = cases.open_case(claim, customer=user, contact_phone="13812345678")
    for n in range(files):
        upload = evidence.add_upload(case, user, f"发票-{n}.png", png(case.id * 10 + n))
        if derived:
            store = evidence.storage()
            upload.preview_key = store.save(b"preview-" + upload.sha256.encode()).key
            upload.thumbnail_key = store.save(b"thumb-" + upload.sha256.encode()).key
            upload.state = "extracted"
            upload.extracted = {"fields": [{"name": "number", "value": case.claimed_number}]}
            db.session.commit()
    if closed_days_ago is not None:
        cases.withdraw(case, user, "不需要了")
        case.resolved_at = utcnow() - timedelta(days=closed_days_ago)
        db.session.commit()
    return case


# The invoice the evidence tests draw (tests/scans/corpus.py renders it).
EVIDENCE_SAMPLE = InvoiceSample(
    title="北京增值税电子普通发票",
    type_code="10",
    code="011001900111",
    number="51142414",
    issue_date=date(2026, 5, 1),
    check_code="65431824771847114698",
    buyer_name="北京示例科技有限公司",
    buyer_tax_id="911101017967003199",
    seller_name="北京销售方有限公司",
    seller_tax_id="91320621MA1MRHG205",
    amount=Decimal("47.26"),
    tax=Decimal("2.84"),
    total=Decimal("50.10"),
)


# --- wire records, CSV imports, customer requests -------------------------------------

# One valid issued invoice as the API and the CSV import take it.
GOOD = {
    "code": "011001900111",
    "number": "51142414",
    "kind": "e_ordinary",
    "issue_date": "2026-05-01",
    "amount": "47.26",
    "tax": "2.84",
    "total": "50.10",
    "buyer_tax_id": "911101017967003199",
    "buyer_name": "北京示例科技有限公司",
    "seller_tax_id": "91320621MA1MRHG205",
    "check_code": "65431824771847114698",
}


def csv_bytes(rows: list[dict], encoding="utf-8", bom=False) -> bytes:
    """Rows (dicts of the wire fields) as a CSV import file."""
    lines = [",".join(WIRE_FIELDS)]
    lines += [",".join(r[c] for c in WIRE_FIELDS) for r in rows]
    text = "\n".join(lines) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


# What a customer types into the report form.
REPORT = {
    "code": "011001900111",
    "number": "12345678",
    "issue_date": "2026-05-01",
    "amount": "100.00",
    "total": "106.00",
    "check_code": "123456",
    "contact_preference": "email",
    "description": "开票方说已经开了，但查验不到。",
}


def report(client, **fields):
    """Report a missing invoice as a signed-in customer does: the form, then its POST."""
    token = csrf_token_from(client.get("/cases/new").get_data(as_text=True))
    return client.post("/cases/new", data={"csrf_token": token, **REPORT, **fields})


def lookup_fields(invoice: Invoice) -> dict[str, str]:
    """What the holder of ``invoice`` (a legacy one with a check code) types into the lookup."""
    return {
        "code": invoice.code,
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "check_code_last6": invoice.check_code[-6:],
    }


def look_up(client, **fields):
    """As a browser does: the page, then the form (sessionless: no token to send)."""
    client.get("/lookup")
    return client.post("/lookup", data=fields)
