"""Sync monitors raise and clear alerts; SLA warnings and escalation; dashboard; metrics."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Alert, Case, Notification, Submission, SubmissionAttempt, utcnow
from portal.queue import redis_connection
from portal.services import accounts, cases, monitoring, review
from tests import factories
from tests.conftest import AuthActions
from tests.factories import run_workers


def open_kinds() -> set[str]:
    db.session.expire_all()
    return {a.kind for a in db.session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))}


def test_breaker_alert_raises_and_clears(delivery_app, registry_sim):
    accounts.create_user("boss@example.com", "Gao-Shan-Liu-Shui-42", "supervisor")
    redis_connection().set("portal:registry:open_until", time.time() + 60)
    monitoring.run_checks()
    assert "breaker_open" in open_kinds()
    assert db.session.scalar(select(Notification.kind)) == "registry_down"
    redis_connection().delete("portal:registry:open_until")
    monitoring.run_checks()
    assert "breaker_open" not in open_kinds()


def test_stuck_submissions_raise_and_clear(delivery_app):
    (invoice,) = factories.issued()
    submission = invoice.submissions[0]
    submission.next_attempt_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    monitoring.run_checks()
    assert "stuck_submissions" in open_kinds()
    run_workers()
    monitoring.run_checks()
    assert "stuck_submissions" not in open_kinds()


def test_failure_rate_and_backlog_and_dead_letters(delivery_app):
    delivery_app.config.update(MONITOR_MIN_ATTEMPTS=2, MONITOR_BACKLOG_MAX=1)
    invoices = factories.issued(2)
    for s in (i.submissions[0] for i in invoices):
        db.session.add(SubmissionAttempt(submission_id=s.id, outcome="transient"))
    invoices[0].submissions[0].state = "dead"
    db.session.commit()
    monitoring.run_checks()
    assert {"failure_rate", "dead_letters"} <= open_kinds()
    assert "backlog" not in open_kinds()  # one waiting, limit one
    factories.issued(1)
    monitoring.run_checks()
    assert "backlog" in open_kinds()
    # Healthy again: every one of them clears itself.
    db.session.query(SubmissionAttempt).delete()
    for s in db.session.scalars(select(Submission)):
        s.state = "succeeded"
    db.session.commit()
    monitoring.run_checks()
    assert not {"failure_rate", "dead_letters", "backlog"} & open_kinds()


def test_missing_worker_heartbeat_raises_and_clears(delivery_app):
    monitoring.run_checks()
    assert "worker_heartbeat" in open_kinds()  # no worker runs during this test
    from rq import SimpleWorker

    from portal.queue import get_queue

    worker = SimpleWorker([get_queue("maintenance")], connection=redis_connection())
    worker.register_birth()
    try:
        worker.heartbeat()
        monitoring.run_checks()
        assert "worker_heartbeat" not in open_kinds()
    finally:
        worker.register_death()


def test_sla_warning_then_escalation_once_each(delivery_app):
    reviewer = accounts.create_user("r@example.com", "Gao-Shan-Liu-Shui-42", "reviewer")
    accounts.create_user("boss@example.com", "Gao-Shan-Liu-Shui-42", "supervisor")
    case = cases.open_case(
        cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
    )
    review.claim(case, reviewer)
    case.resolution_due_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert monitoring.warn_sla() == (1, 0)
    assert monitoring.warn_sla() == (0, 0)
    case.resolution_due_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert monitoring.warn_sla() == (0, 1)
    assert monitoring.warn_sla() == (0, 0)
    kinds = [n.kind for n in db.session.scalars(select(Notification))]
    assert kinds.count("sla_at_risk") == 1 and kinds.count("sla_breached") == 1


def test_dashboard_and_banner_for_supervisors(app, make_user):
    make_user("boss@example.com", "supervisor")
    with app.app_context():
        db.session.add(Alert(kind="breaker_open", message="registry breaker is open"))
        cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
    boss = AuthActions(app.test_client())
    boss.login("boss@example.com")
    page = boss.client.get("/staff/dashboard")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html and "等待审核" in html
    assert 'class="alert-banner"' in html and "登记系统无法访问" in html
    make_user("c@example.com", "customer")
    customer = AuthActions(app.test_client())
    customer.login("c@example.com")
    assert 'class="alert-banner"' not in customer.client.get("/").get_data(as_text=True)


def test_metrics_in_prometheus_format(app, client):
    client.get("/")
    body = client.get("/metrics").get_data(as_text=True)
    assert "portal_http_requests_total{" in body and 'endpoint="customer.home"' in body
    assert "portal_http_request_duration_seconds_bucket" in body
    assert 'portal_queue_jobs{queue="registry"}' in body
    assert "portal_sla_breached_cases 0" in body


def _histogram(body: str, endpoint: str) -> dict[str, float]:
    """Bucket counts (by their ``le`` label, quoted), count and sum of one endpoint's GETs."""
    found = {}
    for line in body.splitlines():
        if not line.startswith("portal_http_request_duration_seconds"):
            continue
        name, value = line.rsplit(" ", 1)
        labels = dict(re.findall(r'(\w+)="([^"]*)"', name))
        if labels.get("endpoint") == endpoint and labels.get("method") == "GET":
            key = f'"{labels["le"]}"' if "le" in labels else name.split("{")[0]
            found[key] = float(value)
    return found


def test_request_durations_land_in_cumulative_buckets(app, client, monkeypatch):
    from portal.ops import metrics

    with app.app_context():
        before = _histogram(metrics.render(), "customer.lookup_fields")
    clock = iter([100.0, 100.03, 200.0, 207.0])  # a 30 ms request, then a 7 s one
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
    client.get("/lookup/fields?number=12345678")
    client.get("/lookup/fields?number=12345678")
    monkeypatch.undo()
    with app.app_context():
        after = _histogram(metrics.render(), "customer.lookup_fields")
    added = {key: after[key] - before.get(key, 0) for key in after}
    assert added['"0.025"'] == 0 and added['"0.05"'] == 1 and added['"5.0"'] == 1
    assert added['"+Inf"'] == 2 and added["portal_http_request_duration_seconds_count"] == 2
    assert abs(added["portal_http_request_duration_seconds_sum"] - 7.03) < 1e-6
    buckets = [after[f'"{bound}"'] for bound in metrics.BUCKETS]
    assert buckets == sorted(buckets)  # cumulative


def test_metrics_can_require_a_token(app_factory):
    app = app_factory(METRICS_TOKEN="scrape-me")
    client = app.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_the_monitor_job_runs(delivery_app):
    from workers.maintenance import monitor

    result = monitor()
    assert "worker_heartbeat" in result["unhealthy"]
    assert db.session.scalar(select(Case)) is None and db.session.scalar(select(Submission)) is None
