"""portal/queue.py: jobs enqueued after the commit of the rows they work on, one helper for
every service (issue #17 §3), and Redis clients with short timeouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.queue import JOB_QUEUES, enqueue_after_commit, get_queue
from tests.conftest import free_port
from workers import queues

ROOT = Path(__file__).resolve().parent.parent


def test_a_job_is_enqueued_only_when_its_transaction_commits(ctx):
    enqueue_after_commit(db.session, "workers.notify.send", 41, job_id="notify-41-0")
    assert get_queue(queues.NOTIFY).count == 0
    db.session.commit()
    job = get_queue(queues.NOTIFY).jobs[0]
    assert (job.id, job.func_name, job.args) == ("notify-41-0", "workers.notify.send", (41,))


def test_a_rollback_forgets_the_job(ctx):
    db.session.execute(text("SELECT 1"))  # the transaction the job's row would be written in
    enqueue_after_commit(db.session, "workers.scans.extract_upload", 7, job_id="extract-7-0")
    db.session.rollback()
    db.session.commit()
    assert get_queue(queues.SCANS).count == 0


def test_the_same_job_id_twice_is_one_job(ctx):
    """(Its id may be listed twice; the second run finds its rows already done.)"""
    for _ in range(2):
        enqueue_after_commit(db.session, "workers.registry.deliver", [1, 2], job_id="deliver-1-x")
        db.session.commit()
    assert set(get_queue(queues.REGISTRY).job_ids) == {"deliver-1-x"}


def test_an_unknown_job_is_refused(ctx):
    with pytest.raises(ValueError, match="JOB_QUEUES"):
        enqueue_after_commit(db.session, "workers.nothing", job_id="x")
    assert set(JOB_QUEUES.values()) <= set(queues.ALL)


def test_redis_away_at_the_commit_loses_nothing_but_the_job(app_factory, caplog):
    app = app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        enqueue_after_commit(db.session, "workers.notify.send", 1, job_id="notify-1-0")
        db.session.commit()  # does not raise: the row is committed, the sweeper will enqueue
    assert "could not enqueue 1 jobs; the sweepers will" in caplog.text


def test_services_do_not_import_workers():
    found = subprocess.run(
        ["grep", "-rn", "import workers\\|from workers", "portal/services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.stdout == ""


def test_after_a_redis_failure_jobs_are_left_to_the_sweepers_at_once(app_factory, caplog):
    from portal.queue import enqueue_now, redis_recently_failed

    app = app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        assert enqueue_now([("workers.notify.send", (1,), "notify-1-0")]) == 0
        assert redis_recently_failed()
        caplog.clear()
        assert enqueue_now([("workers.notify.send", (2,), "notify-2-0")]) == 0
    assert "Redis failed moments ago: 1 jobs left to the sweepers" in caplog.text
    assert "could not enqueue" not in caplog.text  # no second try against the dead Redis
