"""Dead letters as staff work them (issue 20): a retried one leaves the list, the dashboard's
count and the alert once its new submission succeeds; every state in staff words."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import Alert
from portal.services import accounts, dashboard, dead_letters, monitoring
from tests import factories
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import run_workers

RAW_CODES = ("invalid", "rejected", "dead", "succeeded", "registered", "HTTP", "dead letter")


def _dead_letter_alert():
    return db.session.scalar(
        select(Alert).where(Alert.kind == "dead_letters", Alert.cleared_at.is_(None))
    )


def test_dead_letter_retried_successfully_clears_list_count_and_alert(sim_app, registry_sim):
    registry_sim.state.set_faults({"reject_rate": 1.0})
    with sim_app.app_context():
        accounts.create_user("s@example.com", "Gao-Shan-Liu-Shui-42", "supervisor")
        (invoice,) = factories.issued()
        key = invoice.key
        run_workers()
        assert dead_letters.open_count() == 1
        monitoring.run_checks()
        assert _dead_letter_alert() is not None
        assert dashboard.build().registry["dead_waiting"] == 1
    registry_sim.state.set_faults({"reject_rate": 0.0})

    staff = AuthActions(sim_app.test_client())
    staff.login("s@example.com")
    page = staff.client.get("/staff/dead-letters").get_data(as_text=True)
    assert key in page and "登记系统拒绝了此发票" in page
    for raw in RAW_CODES:
        assert f">{raw}<" not in page, raw
    with sim_app.app_context():
        (letter,) = dead_letters.open_letters()
        submission_id = letter.submission.id
    answer = staff.client.post(
        "/staff/dead-letters",
        data={"csrf_token": csrf_token_from(page), "submission": str(submission_id)},
        follow_redirects=True,
    )
    page = answer.get_data(as_text=True)
    assert "已重新提交 1 张发票" in page and "已重新提交，等待登记系统答复" in page
    with sim_app.app_context():
        assert dead_letters.open_count(waiting_only=True) == 0
        run_workers()  # the new submission is accepted
        assert dead_letters.open_count() == 0
        assert dashboard.build().registry["dead"] == 0
        monitoring.run_checks()
        assert _dead_letter_alert() is None
    page = staff.client.get("/staff/dead-letters").get_data(as_text=True)
    assert key not in page
    invoice_page = staff.client.get(f"/staff/invoices/{key}").get_data(as_text=True)
    assert "登记系统已接受" in invoice_page and "尚未尝试" not in invoice_page
    assert "success" not in invoice_page and "HTTP 201" not in invoice_page
