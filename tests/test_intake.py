"""Billing intake: the JSON API and the CSV import, both validated by the domain rules."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Invoice, Submission
from portal.queue import get_queue
from portal.services import accounts, intake
from tests.factories import GOOD, csv_bytes
from workers import queues


def token_for(app, role="reviewer", email="billing@example.com") -> str:
    with app.app_context():
        user = accounts.create_user(email, "Gao-Shan-Liu-Shui-42", role)
        return accounts.issue_api_token(user, "billing")


def post(client, token, body, **headers):
    return client.post(
        "/api/v1/invoices", json=body, headers={"Authorization": f"Bearer {token}", **headers}
    )


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_api_records_an_invoice_with_its_outbox_row(app, client):
    token = token_for(app)
    response = post(client, token, GOOD)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["key"] == "011001900111-51142414"
    assert body["registry"]["state"] == "pending"
    with app.app_context():
        assert count(Invoice) == 1 and count(Submission) == 1
        assert get_queue(queues.REGISTRY).count == 1
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert {"invoice.issued", "submission.queued"} <= actions


def test_api_is_idempotent_on_the_key(app, client):
    token = token_for(app)
    assert post(client, token, GOOD).status_code == 201
    again = post(client, token, GOOD | {"amount": "47.260", "total": "50.1"})
    assert again.status_code == 200
    with app.app_context():
        assert count(Invoice) == 1 and count(Submission) == 1


def test_api_refuses_the_same_key_with_other_fields(app, client):
    token = token_for(app)
    post(client, token, GOOD)
    response = post(client, token, GOOD | {"buyer_name": "另一家公司"})
    assert response.status_code == 409
    assert response.get_json()["error"]["differences"] == ["buyer_name"]


def test_api_names_every_bad_field(app, client):
    token = token_for(app)
    bad = GOOD | {"amount": "abc", "buyer_tax_id": "91320621MA1MRHG207", "issue_date": "2026-13-01"}
    response = post(client, token, bad, **{"Accept-Language": "en"})
    assert response.status_code == 422
    errors = response.get_json()["error"]["errors"]
    assert set(errors) == {"amount", "buyer_tax_id", "issue_date"}
    assert all(e["code"] and e["message"] for e in errors.values())
    with app.app_context():
        assert count(Invoice) == 0


def test_api_checks_that_amount_and_tax_make_the_total(app, client):
    response = post(client, token_for(app), GOOD | {"total": "50.11"})
    assert response.status_code == 422
    assert "total" in response.get_json()["error"]["errors"]


def test_api_refuses_invoices_from_other_regions(app, client):
    shanghai = GOOD | {"code": "031001900111"}
    response = post(client, token_for(app), shanghai)
    assert response.status_code == 422
    assert response.get_json()["error"]["errors"]["code"]["code"] == "not_beijing"


def test_api_accepts_a_digital_invoice(app, client):
    digital = GOOD | {"code": "", "number": "25117000001115703415", "kind": "32", "check_code": ""}
    response = post(client, token_for(app), digital)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["kind"] == "digital_ordinary"


def test_api_needs_a_valid_token_of_staff(app, client):
    assert post(client, "nonsense", GOOD).status_code == 401
    customer_token = token_for(app, role="customer", email="c@example.com")
    assert post(client, customer_token, GOOD).status_code == 403


def test_a_revoked_token_or_a_disabled_account_is_refused_at_once(app, client):
    from portal.models import ApiToken, User, utcnow

    token = token_for(app)
    assert post(client, token, GOOD).status_code in (200, 201)
    with app.app_context():
        db.session.execute(ApiToken.__table__.update().values(revoked_at=utcnow()))
        db.session.commit()
    assert post(client, token, {**GOOD, "number": "12345679"}).status_code == 401
    other = token_for(app, email="billing2@example.com")
    with app.app_context():
        db.session.execute(
            User.__table__.update().where(User.email == "billing2@example.com").values(active=False)
        )
        db.session.commit()
    assert post(client, other, {**GOOD, "number": "12345679"}).status_code == 401


def test_api_refuses_a_body_that_is_not_an_object(app, client):
    response = client.post(
        "/api/v1/invoices",
        data="[1,2]",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(app)}"},
    )
    assert response.status_code == 400


def test_api_invoice_status(app, client):
    token = token_for(app)
    post(client, token, GOOD)
    response = client.get(
        "/api/v1/invoices/011001900111-51142414", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.get_json()["registry"]["attempts"] == 0
    missing = client.get(
        "/api/v1/invoices/011001900111-00000000", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404


def test_openapi_document_describes_the_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/invoices", "/invoices/{key}"} <= set(doc["paths"])


def numbered(n: int) -> dict:
    return GOOD | {"number": f"{n:08d}"}


def test_csv_import_is_idempotent(ctx):
    data = csv_bytes([numbered(i) for i in range(1, 8)], bom=True)
    first = intake.import_csv(data, batch_size=3)
    assert (first.created, first.unchanged, first.problems) == (7, 0, [])
    second = intake.import_csv(data, batch_size=3)
    assert (second.created, second.unchanged) == (0, 7)
    assert count(Invoice) == 7 and count(Submission) == 7


def test_csv_import_reads_gb18030(ctx):
    report = intake.import_csv(csv_bytes([numbered(1)], encoding="gb18030"))
    assert report.encoding == "gb18030" and report.created == 1
    assert db.session.scalar(select(Invoice.buyer_name)) == "北京示例科技有限公司"


def test_csv_import_reports_bad_rows_by_line_and_keeps_the_good(ctx):
    rows = [
        numbered(1),
        numbered(2) | {"amount": "x"},
        numbered(3),
        numbered(1) | {"buyer_name": "别的公司"},
    ]
    report = intake.import_csv(csv_bytes(rows))
    assert report.created == 2 and report.invalid == 1 and report.conflicts == 1
    lines = {(line, name) for line, name, _ in report.problems}
    assert (3, "amount") in lines and (5, "key") in lines


def test_csv_with_the_wrong_header_is_refused_whole(ctx):
    import pytest

    with pytest.raises(intake.ImportRefused, match="header"):
        intake.import_csv(b"number,amount\n1,2\n")
    assert count(Invoice) == 0


def test_cli_import_prints_counts_and_fails_on_bad_rows(ctx, runner, tmp_path):
    path = tmp_path / "issued.csv"
    path.write_bytes(csv_bytes([numbered(1), numbered(2) | {"tax": "-1"}]))
    result = runner.invoke(args=["invoices", "import", str(path)])
    assert result.exit_code == 1
    assert "1 created" in result.output and "1 invalid" in result.output
    assert "line 3" in result.output
