"""The audit trail: hash-chained, verified by `flask audit verify`, append-only on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import accounts, audit


def make_events(n=5):
    for i in range(n):
        audit.record("test.event", "thing", i, before={"n": i}, after={"n": i + 1}, actor="test")
    db.session.commit()


def tamper(sql: str) -> None:
    """Change the table behind the application's back, as someone with database access might."""
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        db.session.execute(
            text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        )
    db.session.execute(text(sql))
    if postgres:
        db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
    db.session.commit()


def test_an_intact_chain_verifies(ctx, runner):
    make_events()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "5 events" in result.output


def test_an_edited_row_is_caught(ctx, runner):
    make_events()
    third = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()[2]
    tamper(f"UPDATE audit_events SET actor = 'someone-else' WHERE id = {third}")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"event {third}" in result.output
    assert "edited" in result.output


def test_a_deleted_row_is_caught(ctx, runner):
    make_events()
    ids = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    tamper(f"DELETE FROM audit_events WHERE id = {ids[1]}")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"event {ids[2]}" in result.output
    assert "deleted" in result.output


def test_postgresql_refuses_updates_and_deletes(ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    make_events(1)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("UPDATE audit_events SET actor = 'x'"))
    db.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM audit_events"))
    db.session.rollback()


def test_each_row_records_who_what_and_before_after(app, auth, client):
    auth.register("who@example.com")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.registered"))
        assert event.actor == "who@example.com" and event.after["role"] == "customer"
        assert event.request_id and event.ip == "127.0.0.1"
        assert len(event.hash) == 64 and event.prev_hash


def test_staff_audit_viewer_filters_and_exports(app, make_user):
    from tests.conftest import AuthActions

    make_user("boss@example.com", "supervisor")
    with app.app_context():
        make_events(3)
        accounts.create_user("x@example.com", "Gao-Shan-Liu-Shui-42", "reviewer")
    boss = AuthActions(app.test_client())
    boss.login("boss@example.com")
    page = boss.client.get("/staff/audit?action=test.event").get_data(as_text=True)
    assert page.count('class="audit-row"') == 3
    csv_text = boss.client.get("/staff/audit.csv?action=test.event").get_data(as_text=True)
    assert csv_text.count("test.event") == 3 and csv_text.startswith("\ufeffid,")
    reviewer = AuthActions(app.test_client())
    make_user("r@example.com", "reviewer")
    reviewer.login("r@example.com")
    assert reviewer.client.get("/staff/audit").status_code == 403


def test_rows_of_one_request_share_its_id_and_requests_differ(app):
    from portal.services import audit

    ids = []
    for _ in range(2):
        with app.test_request_context("/"):
            rows = audit.record_many(
                [("test.one", "thing", 1, None, {}), ("test.two", "thing", 1, None, {})],
                actor="system",
            )
            db.session.commit()
            ids.append({row.request_id for row in rows})
    assert all(len(one) == 1 and None not in one for one in ids)
    assert ids[0] != ids[1]
    with app.app_context():  # outside a request (jobs, CLI) there is no request id
        (row,) = audit.record_many([("test.job", "thing", 1, None, {})], actor="system")
        assert row.request_id is None
        db.session.rollback()
