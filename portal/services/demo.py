"""Demo data for `make run`: three people to sign in as and a few hundred invoices.

Idempotent: users are found by e-mail and invoices by key, so running it again changes nothing.
The invoices go through the real intake and outbox, so the worker registers them with the
simulator; a few are given a delivery history (retrying, dead) so every state can be seen.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from ..domain import shanghai_date
from ..domain.taxid import uscc_check_character
from ..extensions import db
from ..models import InvoiceSource, RegistryState, Role, SubmissionState, utcnow
from . import accounts, audit, intake

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed by `make run` on purpose
DEMO_USERS = (
    ("kehu@demo.example", Role.CUSTOMER, "示例客户"),
    ("shenhe@demo.example", Role.REVIEWER, "审核员小王"),
    ("zhuguan@demo.example", Role.SUPERVISOR, "主管老李"),
)
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_BUYERS = (
    "北京星河科技有限公司",
    "北京禾丰餐饮管理有限公司",
    "北京远航物流有限公司",
    "北京明德教育咨询有限公司",
    "北京青松建筑工程有限公司",
)


def _tax_id(rng: random.Random) -> str:
    body = "91110105" + "".join(rng.choice(_ALPHABET) for _ in range(9))
    return body + uscc_check_character(body)


def _identity(rng: random.Random, n: int) -> tuple[str, str, str]:
    """(code, number, kind) for the n-th demo invoice: mostly e-普票, some 专票 and 数电票."""
    flavour = n % 10
    if flavour < 6:
        return "011002600111", f"{n + 1:08d}", "e_ordinary"
    if flavour < 8:
        return "1100261130", f"{n + 1:08d}", "special"
    return "", f"2611{rng.randint(0, 9)}{n + 1:015d}", "32"


def seed(invoice_count: int = 300, rng_seed: int = 2026) -> list[str]:
    """Create the demo users and invoices; returns lines describing what was done."""
    rng = random.Random(rng_seed)
    lines = []
    for email, role, name in DEMO_USERS:
        if accounts.find_user_by_email(email) is None:
            user = accounts.create_user(email, DEMO_PASSWORD, role, display_name=name, actor="demo")
            user.email_verified_at = utcnow()  # demo addresses count as confirmed
            db.session.commit()
            lines.append(f"created {role} {email}")
    buyers = [(_tax_id(rng), name) for name in _BUYERS]
    seller = "911101017967003199"
    today = shanghai_date(utcnow())
    created = 0
    for n in range(invoice_count):
        code, number, kind = _identity(rng, n)
        buyer_tax_id, buyer_name = buyers[n % len(buyers)]
        amount = Decimal(rng.randint(1_000, 2_000_000)) / 100
        rate = Decimal("0.06") if kind != "special" else Decimal("0.13")
        tax = (amount * rate).quantize(Decimal("0.01"))
        days_ago = 0 if n % 25 == 0 else rng.randint(1, 90)
        raw = {
            "code": code,
            "number": number,
            "kind": kind,
            "issue_date": (today - timedelta(days=days_ago)).isoformat(),
            "amount": str(amount),
            "tax": str(tax),
            "total": str(amount + tax),
            "buyer_tax_id": buyer_tax_id,
            "buyer_name": buyer_name,
            "seller_tax_id": seller,
            "check_code": "".join(rng.choice("0123456789") for _ in range(20))
            if kind == "e_ordinary"
            else "",
        }
        issued = intake.validate_issued(raw)
        result = intake.record_issued(issued, source=InvoiceSource.DEMO, actor="demo", commit=False)
        if result.outcome is intake.IntakeOutcome.CREATED:
            created += 1
            _give_history(result.invoice, n)
    db.session.commit()
    lines.append(f"invoices: {created} created, {invoice_count - created} already there")
    lines.append(f"cases: {_seed_cases()} created")
    lines.append(f"demo password for every demo user: {DEMO_PASSWORD}")
    return lines


def _give_history(invoice, n: int) -> None:
    """A few invoices show what a registry outage leaves behind: retrying, or dead."""
    submission = invoice.submissions[-1]
    now = utcnow()
    if n % 13 == 5:
        submission.state = SubmissionState.RETRY_SCHEDULED
        submission.attempts = 3
        submission.next_attempt_at = now + timedelta(minutes=10 + n % 50)
        submission.last_error_kind = "timeout"
        submission.last_error_message = "The registry did not answer in time."
    elif n % 47 == 11:
        submission.state = SubmissionState.DEAD
        submission.attempts = 12
        submission.finished_at = now
        submission.last_error_kind = "timeout"
        submission.last_error_message = "The registry did not answer in time."
        invoice.registry_state = RegistryState.FAILED
    else:
        return
    audit.record(
        "submission.demo_history",
        "submission",
        submission.id,
        before={"state": SubmissionState.QUEUED},
        after={"state": submission.state, "attempts": submission.attempts},
        actor="demo",
    )


def _seed_cases() -> int:
    """A few reports from the demo customer in different states, so the queue is not empty."""
    from sqlalchemy import func, select

    from ..extensions import db
    from ..models import Case
    from . import cases, review

    if db.session.scalar(select(func.count()).select_from(Case)):
        return 0
    customer = accounts.find_user_by_email(DEMO_USERS[0][0])
    reviewer = accounts.find_user_by_email(DEMO_USERS[1][0])
    stories = [
        ("77000001", "开票方说已开具，但查验平台查不到。", None),
        ("77000002", "发票是上周在柜台开的，到现在还查不到。", "claim"),
        ("77000003", "报销被退回，说发票不存在。", "info"),
        ("77000004", "去年的发票，一直查不到。", "late"),
    ]
    for number, story, what in stories:
        case = cases.open_case(
            cases.parse_claim({"code": "011002600111", "number": number, "check_code": "123456"}),
            customer=customer,
            description=story,
            actor=customer,
        )
        if what in ("claim", "info"):
            review.claim(case, reviewer)
        if what == "info":
            review.request_info(case, reviewer, "请上传发票的照片或 PDF 文件。")
        if what == "late":
            case.resolution_due_at = utcnow() - timedelta(hours=3)
            db.session.commit()
    return len(stories)
