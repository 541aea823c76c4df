"""Chinese pages show no English and no raw codes (issue 20): every staff page and the main
customer pages, rendered in zh_CN over data that has something in every state, are searched
for message ids left untranslated and for internal codes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po

from portal.extensions import db
from portal.models import ReconciliationFinding, ReconciliationRun, Submission
from portal.services import accounts, audit, cases, review
from tests import factories
from tests.conftest import AuthActions

CATALOG = Path(__file__).parents[1] / "portal/translations/zh_CN/LC_MESSAGES/messages.po"
# Codes the code uses internally; none may reach a Chinese page as a word of its own.
RAW_CODES = re.compile(
    r"\b(awaiting_review|in_review|info_requested|approved|resolved|rejected|withdrawn|merged|"
    r"registered|pending|conflict|succeeded|dead|queued|retry_scheduled|in_flight|success|"
    r"transient|permanent|invalid|timeout|mismatch|unknown|missing|incremental|full|running|"
    r"failed|issued|reentry|correction|retry|reconcile|qr|ocr|urgent|normal|dead letters?|"
    r"[a-z]+_[a-z_]+|[a-z_]+\.[a-z_]+|HTTP \d{3})\b"
)


class _VisibleText(HTMLParser):
    """The text a reader sees: no tags, scripts, styles, or values people typed (.mono,
    inputs), which may be anything."""

    SKIP = frozenset({"script", "style", "code", "kbd", "textarea", "option"})

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class") or ""
        if tag in self.SKIP or "mono" in classes.split() or "pre" in classes.split():
            self._skip.append(tag)
        elif tag in ("br", "img", "input", "meta", "link"):
            return
        elif self._skip:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return EMAIL.sub("", "\n".join(parser.parts))


def english_msgids() -> list[str]:
    """Message ids of two words or more (a single word may be a name: 'API', 'CSV')."""
    catalog = read_po(CATALOG.open("rb"))
    ids = [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]
    return [i for i in ids if len(re.findall(r"[A-Za-z]{2,}", i)) >= 2 and "%" not in i]


def test_every_zh_cn_message_is_translated():
    catalog = read_po(CATALOG.open("rb"))
    untranslated = [
        m.id
        for m in catalog
        if m.id and not (m.string if isinstance(m.string, str) else all(m.string))
    ]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []


def _world(app):
    """A case in most states, a dead letter, findings, audit rows, a registered invoice."""
    with app.app_context():
        supervisor = accounts.create_user("s@example.com", "Gao-Shan-Liu-Shui-42", "supervisor")
        refs = []
        for number, state in [
            ("00000001", None),
            ("00000002", "in_review"),
            ("00000003", "info_requested"),
            ("00000004", "rejected"),
        ]:
            case = cases.open_case(
                cases.parse_claim({"code": "011001900111", "number": number}), customer=None
            )
            refs.append(case.reference)
            if state:
                review.claim(case, supervisor)
            if state == "info_requested":
                review.request_info(case, supervisor, "请上传发票照片")
            if state == "rejected":
                review.reject(case, supervisor, "duplicate", "")
        review.set_priority(review.case_by_reference(refs[1]), supervisor, "urgent")
        dead, registered = factories.issued(2)
        submission = db.session.scalar(
            db.select(Submission).where(Submission.invoice_id == dead.id)
        )
        submission.state, submission.attempts = "dead", 12
        submission.last_error_kind = "invalid"
        registered.registry_state, registered.registry_id = "registered", "REG-1"
        run = ReconciliationRun(kind="full", state="succeeded")
        db.session.add(run)
        db.session.flush()
        db.session.add(
            ReconciliationFinding(
                run_id=run.id,
                kind="mismatch",
                invoice_key=registered.key,
                details={"registry": {"buyer_name": "别的公司"}, "registry_id": "REG-1"},
            )
        )
        audit.record("case.priority", "case", refs[1], {"priority": "normal"}, {"priority": "x"})
        db.session.commit()
        return refs, dead.key, registered.key


def test_staff_pages_in_chinese_show_no_english_and_no_raw_codes(app, make_user):
    refs, dead_key, registered_key = _world(app)
    staff = AuthActions(app.test_client())
    staff.login("s@example.com")
    pages = [
        "/staff/",
        "/staff/?state=info_requested",
        *[f"/staff/cases/{ref}" for ref in refs],
        "/staff/cases/new",
        "/staff/dead-letters",
        f"/staff/invoices/{dead_key}",
        f"/staff/invoices/{registered_key}",
        "/staff/findings",
        "/staff/dashboard",
        "/staff/audit",
        "/staff/search?q=011001900111",
        "/staff/buyer-links",
        "/staff/mail",
    ]
    msgids = english_msgids()
    problems = {}
    for url in pages:
        response = staff.client.get(url, headers={"Accept-Language": "zh-CN"})
        assert response.status_code == 200, url
        text = visible_text(response.get_data(as_text=True))
        found = [m for m in msgids if m in text]
        found += sorted({m.group(0) for m in RAW_CODES.finditer(text)})
        if found:
            problems[url] = found
    assert problems == {}


def test_customer_pages_in_chinese_show_no_english_and_no_raw_codes(app, client):
    msgids = english_msgids()
    problems = {}
    for url in ["/", "/lookup", "/auth/login", "/auth/register", "/auth/reset"]:
        text = visible_text(client.get(url).get_data(as_text=True))
        found = [m for m in msgids if m in text]
        found += sorted({m.group(0) for m in RAW_CODES.finditer(text)})
        if found:
            problems[url] = found
    assert problems == {}
