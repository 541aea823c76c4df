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

from flask import current_app
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
