"""What goes wrong, on purpose: the fault settings and the draws that apply them.

``Faults`` is the settings (all off by default), validated field by field; ``FaultInjector``
holds the current settings and the run-time parts (the random draws, the rate-limit token
bucket, the sleeps of latency and timeouts). The order in which the HTTP API applies them is
in ``protocol``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


class FaultSettingError(ValueError):
    """A fault setting was refused; ``errors`` maps each bad field to a reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Faults:
    """The failures the simulator injects; all off by default.

    Rates are probabilities in 0..1. ``rate_limit`` is requests per second across the whole
    simulator (0 or None: unlimited). ``timeout_seconds`` is how long a timed-out request hangs
    (None: the client timeout hint + 1 s). ``seed`` makes the random draws reproducible.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_after_store_rate: float = 0.0
    reject_rate: float = 0.0
    latency_ms: float = 0.0
    outage: bool = False
    rate_limit: float | None = None
    timeout_seconds: float | None = None
    seed: int | None = None

    def merged(self, changes: Mapping[str, Any]) -> Faults:
        """Return these faults with ``changes`` applied; raise FaultSettingError if any is bad."""
        known = {spec.name for spec in fields(self)}
        errors: dict[str, str] = {}
        accepted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                errors[name] = "is not a known fault"
                continue
            reason = _fault_value_error(name, value)
            if reason:
                errors[name] = reason
            else:
                accepted[name] = value
        if errors:
            raise FaultSettingError(errors)
        return replace(self, **accepted)


def _is_number(value: Any) -> bool:
    # bool is an int subclass; "true" is not a rate.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fault_value_error(name: str, value: Any) -> str | None:
    if name.endswith("_rate"):
        return None if _is_number(value) and 0 <= value <= 1 else "must be a number from 0 to 1"
    if name == "latency_ms":
        ok = _is_number(value) and 0 <= value <= 60_000
        return None if ok else "must be a number of milliseconds from 0 to 60000"
    if name == "outage":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "rate_limit":
        ok = value is None or (_is_number(value) and value >= 0)
        return None if ok else "must be null or a number of requests per second (0: unlimited)"
    if name == "timeout_seconds":
        ok = value is None or (_is_number(value) and 0 < value <= 300)
        return None if ok else "must be null or a number of seconds from 0 to 300"
    if name == "seed":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else "must be null or an integer"
    return "is not a known fault"


class FaultInjector:
    """The current fault settings and their random draws; safe to share between threads.

    ``client_timeout_hint`` is the read timeout clients are expected to use: an injected
    timeout hangs one second longer unless ``timeout_seconds`` says otherwise.
    """

    def __init__(self, client_timeout_hint: float = 5.0) -> None:
        self.client_timeout_hint = client_timeout_hint
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Every fault off, a fresh random generator and an empty rate-limit bucket."""
        with self._lock:
            self.faults = Faults()
            self._rng = random.Random()
            self._tokens = 0.0
            self._tokens_at = time.monotonic()

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Merge ``changes`` into the fault settings and return them (FaultSettingError if bad)."""
        with self._lock:
            self.faults = self.faults.merged(changes)
            if "seed" in changes:
                self._rng.seed(self.faults.seed)
            if "rate_limit" in changes:
                self._tokens = _bucket_capacity(self.faults.rate_limit)
                self._tokens_at = time.monotonic()
            return self.faults

    def chance(self, rate: float) -> bool:
        """Draw once: True with probability ``rate``."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._rng.random() < rate

    def pick_error_status(self) -> int:
        """The status of an injected error: 500 or 503, as a real registry varies."""
        with self._lock:
            return self._rng.choice((500, 503))

    def take_rate_token(self) -> int | None:
        """Admit one request under ``rate_limit``; return None, or the whole seconds to wait.

        A token bucket holding one second's worth of requests: bursts up to the rate pass,
        a sustained excess is refused.
        """
        rate = self.faults.rate_limit
        if not rate:
            return None
        with self._lock:
            now = time.monotonic()
            capacity = _bucket_capacity(rate)
            self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            # Retry-After carries whole seconds; never tell a client to retry at once.
            return max(1, math.ceil((1 - self._tokens) / rate))

    def timeout_seconds(self) -> float:
        """How long an injected timeout hangs: longer than the client waits, unless configured."""
        configured = self.faults.timeout_seconds
        return configured if configured is not None else self.client_timeout_hint + 1

    def delay(self, faults: Faults) -> None:
        """Sleep the latency ``faults`` inject, if any."""
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)

    def hang(self) -> None:
        """Sleep as an injected timeout does; by then a client with a shorter read timeout has
        given up."""
        time.sleep(self.timeout_seconds())


def _bucket_capacity(rate: float | None) -> float:
    return max(1.0, rate or 0.0)
