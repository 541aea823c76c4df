"""`flask demo seed`: users that can sign in, invoices in every state, idempotent."""

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Invoice, Submission, User
from portal.services.demo import DEMO_PASSWORD


def test_seed_is_idempotent_and_varied(ctx, runner):
    first = runner.invoke(args=["demo", "seed", "--invoices", "120"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo", "seed", "--invoices", "120"])
    assert "0 created, 120 already there" in second.output and "cases: 0 created" in second.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 3
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 120
    from portal.models import Case

    assert set(db.session.scalars(select(Case.state))) == {
        "awaiting_review",
        "in_review",
        "info_requested",
    }
    states = set(db.session.scalars(select(Submission.state)))
    assert {"queued", "retry_scheduled", "dead"} <= states
    kinds = set(db.session.scalars(select(Invoice.kind)))
    assert {"e_ordinary", "special", "digital_ordinary"} <= kinds


def test_demo_logins_work(app, runner, auth):
    with app.app_context():
        runner.invoke(args=["demo", "seed", "--invoices", "1"])
    response = auth.login("shenhe@demo.example", DEMO_PASSWORD)
    assert response.status_code == 302
