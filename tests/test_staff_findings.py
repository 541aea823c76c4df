"""The reconciliation findings screen (issue 20): list, filters, ledger and registry side by
side, and each way to resolve a finding; open findings counted on the dashboard."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, ReconciliationFinding, ReconciliationRun, Submission
from portal.services import findings
from tests import factories
from tests.conftest import AuthActions, csrf_token_from


def _findings() -> dict[str, int]:
    run = ReconciliationRun(kind="full", state="succeeded")
    db.session.add(run)
    mismatch, missing = factories.issued(2)
    for submission in db.session.scalars(select(Submission)):
        submission.state = "succeeded"  # delivered once; the registry has lost it since
    db.session.flush()
    rows = {
        "mismatch": ReconciliationFinding(
            run_id=run.id,
            kind="mismatch",
            invoice_key=mismatch.key,
            details={
                "registry_id": "REG-1",
                "invoice_id": mismatch.id,
                "fields": ["buyer_name"],
                "ledger": {"buyer_name": mismatch.buyer_name},
                "registry": {"buyer_name": "北京别的公司"},
            },
        ),
        "missing": ReconciliationFinding(
            run_id=run.id, kind="missing", invoice_key=missing.key, details={"registry_id": None}
        ),
        "unknown": ReconciliationFinding(
            run_id=run.id,
            kind="unknown",
            invoice_key="011001900111-99999999",
            details={"registry_id": "REG-9", "registry": {"number": "99999999"}},
        ),
    }
    db.session.add_all(rows.values())
    db.session.commit()
    return {k: f.id for k, f in rows.items()}


def _staff(app, make_user):
    make_user("s@example.com", "supervisor")
    staff = AuthActions(app.test_client())
    staff.login("s@example.com")
    return staff.client


def test_findings_are_listed_side_by_side_and_counted_on_the_dashboard(app, make_user):
    with app.app_context():
        _findings()
    client = _staff(app, make_user)
    page = client.get("/staff/findings").get_data(as_text=True)
    assert "北京别的公司" in page and "北京示例科技有限公司" in page  # registry beside ledger
    assert "登记系统中有、本系统台账中没有" in page and ">mismatch<" not in page
    only = client.get("/staff/findings?kind=unknown").get_data(as_text=True)
    assert "99999999" in only and "北京别的公司" not in only
    dashboard = client.get("/staff/dashboard").get_data(as_text=True)
    assert "3 个对账问题待处理" in dashboard


def test_each_way_of_resolving_a_finding(app, make_user):
    with app.app_context():
        ids = _findings()
        missing_invoice = db.session.get(ReconciliationFinding, ids["missing"]).invoice_key
    client = _staff(app, make_user)
    token = csrf_token_from(client.get("/staff/findings").get_data(as_text=True))

    answer = client.post(f"/staff/findings/{ids['missing']}/resubmit", data={"csrf_token": token})
    assert answer.status_code == 302
    answer = client.post(f"/staff/findings/{ids['mismatch']}/reenter", data={"csrf_token": token})
    assert "/staff/cases/BJ-" in answer.headers["Location"]
    refused = client.post(
        f"/staff/findings/{ids['unknown']}/explain",
        data={"csrf_token": token, "note": ""},
        follow_redirects=True,
    )
    assert "请说明为什么无需处理" in refused.get_data(as_text=True)
    client.post(
        f"/staff/findings/{ids['unknown']}/explain",
        data={"csrf_token": token, "note": "测试发票，已作废"},
    )
    with app.app_context():
        resolved = {
            f.kind: f.resolved_at is not None
            for f in db.session.scalars(select(ReconciliationFinding))
        }
        assert resolved == {"missing": True, "unknown": True, "mismatch": False}
        reasons = [s.reason for s in db.session.scalars(select(Submission))]
        assert "reconcile" in reasons
        case = db.session.scalar(select(Case).where(Case.channel == "reconciliation"))
        assert case is not None and "购买方名称" in case.description
        assert findings.open_count() == 1  # the mismatch, until its correction is decided
    page = client.get("/staff/findings?resolved=1").get_data(as_text=True)
    assert missing_invoice in page and "99999999" in page


def test_a_finding_sent_to_reentry_closes_when_its_correction_is_registered(app, make_user):
    from portal.models import AuditEvent, CaseState, Invoice
    from portal.services import cases, review

    with app.app_context():
        ids = _findings()
        supervisor = make_user("boss@example.com", "supervisor")
        missing = db.session.get(ReconciliationFinding, ids["missing"])
        # A customer's ordinary case about the missing invoice: registering it does not
        # settle that finding (only a correction opened from the finding does).
        code, number = missing.invoice_key.split("-")
        ordinary = cases.open_case(
            cases.parse_claim({"code": code, "number": number}), customer=None
        )
        correction = findings.reenter(ids["mismatch"], supervisor)
        for case in (ordinary, correction):
            invoice = db.session.scalar(select(Invoice).where(Invoice.key == case.claimed_key))
            case.state, case.invoice_id = CaseState.APPROVED, invoice.id
        db.session.commit()
        assert findings.open_count() == 3

        assert review.resolve_registered([c.invoice_id for c in (ordinary, correction)]) == 2
        mismatch = db.session.get(ReconciliationFinding, ids["mismatch"])
        assert mismatch.resolved_at is not None
        assert findings.open_count() == 2  # the missing and the unknown ones stay open
        audited = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "reconcile.finding_resolved")
        ).all()
        assert [a.object_id for a in audited] == [str(mismatch.id)]
        assert correction.reference in audited[0].after["note"]
