"""Shared state of the link to the registry, kept in Redis so every worker on every host agrees:
the circuit breaker and the cap on requests per second.

Losing this state (Redis flushed) is harmless: the breaker starts closed and the rate window
starts empty; the outbox in the database still says what must be delivered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app
from redis import Redis

from ..queue import redis_connection

_PREFIX = "portal:registry:"


@dataclass(frozen=True)
class BreakerStatus:
    """What the breaker says right now, for dashboards and the customer's "registry health"."""

    state: str  # closed | open | half_open
    consecutive_failures: int
    open_until: float | None  # epoch seconds


class CircuitBreaker:
    """Stops calling the registry after repeated failures, then lets one probe through.

    closed: requests flow; each failed request counts, each success resets the count.
    open: after ``threshold`` consecutive failures, for ``cooldown`` seconds nothing is sent;
    the backlog waits in the database. half_open: once the cooldown is over, exactly one
    worker wins the probe (SET NX); its success closes the breaker, its failure reopens it.

    It also tells when the registry is well again after being unwell (any failed request
    marks it unwell): when a probe closes the breaker, or after ``recovery_successes``
    successful requests in a row. ``record_success`` then returns True to exactly one worker,
    which brings forward the retries the trouble scheduled (``outbox.recover``).
    """

    def __init__(
        self, redis: Redis, threshold: int, cooldown: float, recovery_successes: int = 20
    ) -> None:
        self.redis = redis
        self.threshold = threshold
        self.cooldown = cooldown
        self.recovery_successes = recovery_successes

    # The keys ``status`` reads, for a caller reading them in a pipeline with its own.
    STATUS_KEYS = (_PREFIX + "failures", _PREFIX + "open_until")

    def status(self, now: float | None = None) -> BreakerStatus:
        """The breaker's state as seen from Redis."""
        return self.status_from(self.redis.mget(*self.STATUS_KEYS), now)

    @staticmethod
    def status_from(values, now: float | None = None) -> BreakerStatus:
        """The breaker's state from the values of ``STATUS_KEYS``."""
        now = time.time() if now is None else now
        failures, open_until = values
        failures = int(failures or 0)
        if open_until is None:
            return BreakerStatus("closed", failures, None)
        open_until = float(open_until)
        return BreakerStatus("open" if now < open_until else "half_open", failures, open_until)

    def allow_request(self, now: float | None = None) -> bool:
        """May this worker call the registry now? In half-open state only the probe winner may."""
        status = self.status(now)
        if status.state == "closed":
            return True
        if status.state == "open":
            return False
        # One probe per cooldown period, whichever worker asks first.
        return bool(self.redis.set(_PREFIX + "probe", "1", nx=True, ex=max(1, int(self.cooldown))))

    def unwell(self) -> bool:
        """Has a request failed since the registry was last known to be well?"""
        return bool(self.redis.exists(_PREFIX + "unwell"))

    def record_success(self) -> bool:
        """The registry answered: close the breaker. True (to one caller only) when this
        success ends a spell of trouble: the breaker was open, or enough successes in a row
        followed a failure."""
        pipe = self.redis.pipeline()
        pipe.get(_PREFIX + "open_until")
        pipe.delete(_PREFIX + "failures", _PREFIX + "open_until", _PREFIX + "probe")
        pipe.incr(_PREFIX + "successes")
        pipe.exists(_PREFIX + "unwell")
        was_open, _, successes, unwell = pipe.execute()
        if not unwell or (was_open is None and successes < self.recovery_successes):
            return False
        return bool(self.redis.delete(_PREFIX + "unwell"))  # one worker wins the recovery

    def record_failure(self, now: float | None = None) -> bool:
        """The registry did not answer; returns True when this failure opened the breaker."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline()
        pipe.incr(_PREFIX + "failures")
        pipe.set(_PREFIX + "unwell", now, nx=True)
        pipe.delete(_PREFIX + "successes")
        failures, _, _ = pipe.execute()
        status = self.status(now)
        if status.state == "half_open" or (status.state == "closed" and failures >= self.threshold):
            pipe = self.redis.pipeline()
            pipe.set(_PREFIX + "open_until", now + self.cooldown)
            pipe.delete(_PREFIX + "probe")
            pipe.execute()
            return status.state == "closed"
        return False


class RequestRateLimiter:
    """A cap on registry requests per second across all workers (a fixed one-second window).

    ``acquire`` blocks until the current second has room, so a drained backlog arrives at the
    registry at a bounded rate instead of as a flood.
    """

    def __init__(self, redis: Redis, per_second: int) -> None:
        self.redis = redis
        self.per_second = per_second

    def acquire(self, max_wait: float = 30.0) -> bool:
        """Wait for a slot; False if none came within ``max_wait`` seconds."""
        if self.per_second <= 0:
            return True
        deadline = time.monotonic() + max_wait
        while True:
            now = time.time()
            window = int(now)
            key = f"{_PREFIX}rate:{window}"
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 3)
            count, _ = pipe.execute()
            if count <= self.per_second:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(max(0.001, window + 1 - now))


def breaker() -> CircuitBreaker:
    """The breaker configured for this app."""
    config = current_app.config
    return CircuitBreaker(
        redis_connection(),
        config["BREAKER_FAILURE_THRESHOLD"],
        config["BREAKER_COOLDOWN_SECONDS"],
        config["BREAKER_RECOVERY_SUCCESSES"],
    )


def rate_limiter() -> RequestRateLimiter:
    """The request cap configured for this app."""
    return RequestRateLimiter(redis_connection(), current_app.config["REGISTRY_RATE_LIMIT"])


def client():
    """A registry client for this process, reused so its HTTP connections are kept alive."""
    from ..registry.client import RegistryClient

    state = current_app.extensions.setdefault("portal.registry", {})
    url = current_app.config["REGISTRY_URL"]
    if state.get("url") != url:
        state["client"] = RegistryClient(
            url,
            connect_timeout=current_app.config["REGISTRY_CONNECT_TIMEOUT"],
            read_timeout=current_app.config["REGISTRY_READ_TIMEOUT"],
        )
        state["url"] = url
    return state["client"]
