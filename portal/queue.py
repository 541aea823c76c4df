"""Redis and RQ wiring: connections made lazily from ``REDIS_URL``, queues by name.

The database row is always committed before its job is enqueued; see DESIGN.md §5.
"""

from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

from workers import queues as names


def redis_connection() -> Redis:
    """The app's Redis client, created on first use and then reused."""
    state = current_app.extensions.setdefault("portal.redis", {})
    if "client" not in state:
        state["client"] = Redis.from_url(
            current_app.config["REDIS_URL"],
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=30,
        )
    return state["client"]


def get_queue(name: str) -> Queue:
    """The RQ queue called ``name`` (one of ``workers.queues.ALL``)."""
    if name not in names.ALL:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection(), default_timeout=names.JOB_TIMEOUTS[name])


def all_queues() -> list[Queue]:
    """Every queue, in priority order."""
    return [get_queue(name) for name in names.ALL]
