"""Retry timing for registry deliveries: exponential backoff with full jitter.

``retry_delay(attempt, policy, rand)`` gives the wait before the next try after ``attempt``
failed tries; ``should_give_up(attempt, policy)`` says when a submission becomes a dead letter.
Randomness is passed in (a number in [0, 1)), so the rules stay pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait between tries and how many tries to make.

    The defaults (30 s base, 1 h cap, 12 attempts) spread the tries over up to about five hours
    (half that on average, with full jitter), which outlasts a registry maintenance window
    without hammering it; raise ``max_attempts`` to cover a longer outage.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 12

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("backoff needs 0 < base_seconds <= cap_seconds")
        if self.max_attempts < 1:
            raise ValueError("backoff needs at least one attempt")


def ceiling_delay(attempt: int, policy: BackoffPolicy) -> float:
    """The largest wait after ``attempt`` failed tries: base × 2^(attempt-1), capped."""
    if attempt < 1:
        return 0.0
    # Cap the exponent too, so a huge attempt count cannot overflow a float.
    exponent = min(attempt - 1, 62)
    return min(policy.cap_seconds, policy.base_seconds * (2.0**exponent))


def retry_delay(
    attempt: int, policy: BackoffPolicy, rand: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before the next try ("full jitter": uniform in [0, ceiling]).

    Full jitter spreads a burst of failures (an outage) over the whole window, so the recovered
    registry is not hit by every retry at once. When the registry said ``Retry-After``, never
    come back sooner than that (up to a day).
    """
    if not 0.0 <= rand < 1.0:
        raise ValueError("rand must be in [0, 1)")
    delay = ceiling_delay(attempt, policy) * rand
    if retry_after is not None and retry_after > delay:
        # The registry knows its own load better than our schedule does; only an absurd
        # answer (more than a day) is trimmed.
        delay = min(float(retry_after), MAX_RETRY_AFTER)
    return delay


def should_give_up(attempt: int, policy: BackoffPolicy) -> bool:
    """True once ``attempt`` failed tries have used up the policy: the submission is dead."""
    return attempt >= policy.max_attempts


def expected_span(policy: BackoffPolicy) -> float:
    """The longest total wait over every retry (each at its ceiling), for documentation."""
    return sum(ceiling_delay(a, policy) for a in range(1, policy.max_attempts))
