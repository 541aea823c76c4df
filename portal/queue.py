"""Redis and RQ wiring: connections made lazily from ``REDIS_URL``, queues by name.

The database row is always committed before its job is enqueued; see DESIGN.md §5.

Every client has connect and read timeouts well under a second (``REDIS_CONNECT_TIMEOUT``,
``REDIS_SOCKET_TIMEOUT``) and no automatic retries, so a Redis that hangs costs a caller at most
one timeout. Callers that can do without Redis (counters, the breaker shown on pages) go through
``try_redis``: once a call failed, this process skips Redis for ``REDIS_RETRY_AFTER`` seconds
and answers their default at once, instead of every request waiting out its own timeout.
The worker's blocking dequeue has a connection of its own (``worker_connection``), with the
long read timeout RQ needs for BLPOP, so jobs keep the short one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from workers import queues as names

log = logging.getLogger(__name__)
T = TypeVar("T")


def redis_options(config) -> dict:
    """Keyword arguments for a Redis client built from these settings (also given to
    Flask-Limiter's storage): short timeouts, no retries."""
    return {
        "socket_connect_timeout": config["REDIS_CONNECT_TIMEOUT"],
        "socket_timeout": config["REDIS_SOCKET_TIMEOUT"],
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
    }


def redis_connection() -> Redis:
    """The app's Redis client, created on first use and then reused."""
    state = current_app.extensions.setdefault("portal.redis", {})
    if "client" not in state:
        state["client"] = Redis.from_url(
            current_app.config["REDIS_URL"], **redis_options(current_app.config)
        )
    return state["client"]


def worker_connection() -> Redis:
    """A client for an RQ worker's own use (its blocking dequeue and heartbeats).

    RQ raises the read timeout of the connection it is given to outlast BLPOP (minutes); on the
    shared client that would let every job's Redis call hang that long.
    """
    options = redis_options(current_app.config)
    options.pop("socket_timeout")
    return Redis.from_url(current_app.config["REDIS_URL"], **options)


class _Sickness:
    """When Redis last failed in this process (one float, assigned atomically)."""

    failed_at = 0.0


def _sickness() -> _Sickness:
    state = current_app.extensions.setdefault("portal.redis", {})
    if "sickness" not in state:
        state["sickness"] = _Sickness()
    return state["sickness"]


def redis_recently_failed(now: float | None = None) -> bool:
    """Did a Redis call of this process fail within the last ``REDIS_RETRY_AFTER`` seconds?"""
    now = time.monotonic() if now is None else now
    failed_at = _sickness().failed_at
    return bool(failed_at) and now - failed_at < current_app.config["REDIS_RETRY_AFTER"]


def note_redis_failure() -> None:
    """Remember that Redis just failed, so that ``try_redis`` callers skip it for a while."""
    _sickness().failed_at = time.monotonic()


def try_redis(what: str, call: Callable[[Redis], T], default: T) -> T:
    """``call(client)``, or ``default`` when Redis fails (logged) or failed moments ago.

    For uses that have a stated behaviour without Redis (the lookup's daily count, sign-in
    delays, the breaker state shown on a page): they never wait on a Redis that is away.
    """
    if redis_recently_failed():
        return default
    try:
        return call(redis_connection())
    except Exception:
        note_redis_failure()
        log.warning("%s: Redis unavailable; going on without it", what, exc_info=True)
        return default


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """The RQ queue called ``name`` (one of ``workers.queues.ALL``)."""
    if name not in names.ALL:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(
        name,
        connection=connection or redis_connection(),
        default_timeout=names.JOB_TIMEOUTS[name],
    )


def all_queues() -> list[Queue]:
    """Every queue, in priority order."""
    return [get_queue(name) for name in names.ALL]


# ------------------------------------------------------------------ enqueue after commit

# Every job a service hands to RQ, by the function it runs: the queue it goes to. Services name
# jobs by these paths and never import ``workers`` (jobs call services, not the other way).
JOB_QUEUES = {
    "workers.registry.deliver": names.REGISTRY,
    "workers.scans.extract_upload": names.SCANS,
    "workers.notify.send": names.NOTIFY,
    "workers.registry_view.refresh": names.MAINTENANCE,
}
# Finished jobs are kept a little for `rq info`; failed ones a day, for people to look at.
_JOB_OPTIONS = {"result_ttl": 600, "failure_ttl": 86400}
_AFTER_COMMIT = "portal.queue.after_commit"


def enqueue_after_commit(session, job: str, *args, job_id: str) -> None:
    """Enqueue ``job(*args)`` as ``job_id`` once ``session``'s transaction commits.

    The row that describes the work is in that transaction, so a job never runs before its
    row exists; a rollback forgets the job. If Redis is away at the commit, the job is not
    enqueued (logged) and the row stays due: the sweepers find it. ``job_id`` is
    deterministic, so a job enqueued twice is one job in Redis (a second run finds its work
    done).
    """
    if job not in JOB_QUEUES:
        raise ValueError(f"unknown job {job!r}: add it to JOB_QUEUES")
    session.info.setdefault(_AFTER_COMMIT, []).append((job, args, job_id))


def enqueue_now(planned: list[tuple[str, tuple, str]]) -> int:
    """Hand (job, args, job id) triples to RQ in one round trip; returns how many were
    enqueued (0 when Redis is away: logged, the sweepers will)."""
    if not planned:
        return 0
    if redis_recently_failed():  # a page never waits on a Redis that just failed
        log.warning("Redis failed moments ago: %d jobs left to the sweepers", len(planned))
        return 0
    try:
        connection = redis_connection()
        queues = {}
        with connection.pipeline() as pipe:
            for job, args, job_id in planned:
                name = JOB_QUEUES[job]
                if name not in queues:
                    queues[name] = get_queue(name, connection=connection)
                queues[name].enqueue(job, *args, job_id=job_id, pipeline=pipe, **_JOB_OPTIONS)
            pipe.execute()
    except Exception:  # Redis away or flushed: the rows are due, the sweepers dispatch them
        note_redis_failure()
        log.warning("could not enqueue %d jobs; the sweepers will", len(planned), exc_info=True)
        return 0
    return len(planned)


def _enqueue_planned(session) -> None:
    enqueue_now(session.info.pop(_AFTER_COMMIT, None) or [])


def _forget_planned(session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def init_app(app: Flask) -> None:
    """Enqueue planned jobs after each commit of the app's sessions (once per process)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "after_commit", _enqueue_planned):
        event.listen(Session, "after_commit", _enqueue_planned)
        event.listen(Session, "after_rollback", _forget_planned)
