"""What one lookup costs, counted (not timed): database statements and Redis round trips
(README "Performance": where the lookup's milliseconds went)."""

from __future__ import annotations

import pytest
from redis.connection import Connection
from sqlalchemy import event, select

from portal.extensions import db
from portal.models import LookupEvent

# A well-formed fully digital invoice the ledger does not hold: the failure path, which also
# counts the failed check.
UNKNOWN = {"number": "26112000000012345678", "issue_date": "2026-05-01", "total": "100.00"}


@pytest.fixture
def counted(app, monkeypatch):
    seen = {"sql": [], "redis": 0}
    with app.app_context():
        engine = db.engine

    def on_execute(_conn, _cursor, statement, *_args):
        seen["sql"].append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", on_execute)
    send = Connection.send_packed_command

    def counting_send(self, command, check_health=True):
        seen["redis"] += 1
        return send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting_send)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


def test_a_lookup_reads_its_counter_and_the_registry_health_in_one_round_trip(client, counted):
    answer = client.post("/lookup", data=UNKNOWN)
    assert answer.status_code == 200
    assert "finding-unknown" in answer.get_data(as_text=True)
    # One pipeline to read (failures so far + the breaker), one to count this failure.
    assert counted["redis"] == 2
    # The invoice, the lookup row; no history to read for an invoice we do not hold.
    assert counted["sql"] == ["SELECT", "INSERT"]


def test_a_found_invoice_is_read_with_its_history_in_one_statement(app, client, counted):
    from tests import factories

    with app.app_context():
        (invoice,) = factories.issued()
        fields = factories.lookup_fields(invoice)
    counted["sql"].clear()
    answer = client.post("/lookup", data=fields)
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "finding-pending_registry" in page and "timeline-queued" in page
    # The invoice joined to its submissions and their attempts, then the lookup row.
    assert counted["sql"] == ["SELECT", "INSERT"]
    with app.app_context():
        event = db.session.scalar(select(LookupEvent))
        assert (event.invoice_key, event.finding) == (invoice.key, "pending_registry")
        assert event.created_at is not None


def test_no_round_trip_to_the_database_before_each_request(app):
    assert not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping")


def test_the_api_answers_a_match_from_what_the_lookup_read(app, client, counted):
    from portal.services import accounts
    from tests import factories

    with app.app_context():
        invoice = factories.invoice()
        user = accounts.create_user("app@example.com", "Gao-Shan-Liu-Shui-42", "customer")
        token = accounts.issue_api_token(user, "mini-program")
        db.session.commit()
        fields = factories.lookup_fields(invoice)
    counted["sql"].clear()
    answer = client.post(
        "/api/v1/lookup", json=fields, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["findings"][0]["code"] in ("registered", "pending_registry")
    assert body["registry"]["state"] == "pending" and body["registry"]["attempts"] == 0
    # The token with its user, the invoice with its history (one statement each), the lookup
    # row: the registry status comes from the rows read for the lookup, not from reading them
    # again after its commit.
    assert counted["sql"] == ["SELECT", "SELECT", "INSERT"]


def test_no_text_of_the_answer_page_is_translated_twice(client, monkeypatch):
    """Form labels and descriptions are lazy strings, which translate themselves again at each
    use (a truth test, Jinja asking for ``__html__``, the text); the form translates them once."""
    import flask_babel

    looked_up: list[str] = []
    gettext = flask_babel.Domain.gettext

    def counting(self, string, **variables):
        looked_up.append(string)
        return gettext(self, string, **variables)

    monkeypatch.setattr(flask_babel.Domain, "gettext", counting)
    client.set_cookie("lang", "en")
    answer = client.post("/lookup", data=UNKNOWN)
    assert answer.status_code == 200
    assert "Invoice number" in answer.get_data(as_text=True)
    assert "Invoice number (发票号码)" in looked_up and len(looked_up) > 14
    assert [text for text in set(looked_up) if looked_up.count(text) > 1] == []
