"""How long a sign-in must wait after failed attempts: delays that grow, and a soft limit.

Failures are counted twice: per account *and* source address (the attacker's own counter, which
grows the delay from ``threshold`` failures on, doubling each time up to ``cap_seconds``), and per
account from every source together (a soft limit: past ``soft_limit`` failures, browsers the
account never signed in from wait ``soft_delay_seconds`` after the latest failure). The owner's
own browser ignores the soft limit, so an attacker elsewhere can slow strangers down but never
keep the owner out; the owner can also reset the password by mail, which forgets every count.

Times are plain numbers of seconds (the caller reads the clock).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignInPolicy:
    """The thresholds and delays of sign-in throttling."""

    threshold: int = 5
    base_seconds: float = 60.0
    cap_seconds: float = 3600.0
    soft_limit: int = 50
    soft_delay_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.soft_limit < 1:
            raise ValueError("sign-in throttling needs thresholds of at least 1")
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("sign-in throttling needs 0 < base_seconds <= cap_seconds")


@dataclass(frozen=True)
class FailureCount:
    """Failures counted for one key and the time of the latest one (0 failures: no time)."""

    failures: int = 0
    last_at: float = 0.0


def source_delay(failures: int, policy: SignInPolicy) -> float:
    """The delay after ``failures`` failures from one source: none below the threshold, then
    base, 2 × base, 4 × base … up to the cap."""
    if failures < policy.threshold:
        return 0.0
    exponent = min(failures - policy.threshold, 40)  # no float overflow for huge counts
    return min(policy.base_seconds * 2.0**exponent, policy.cap_seconds)


def sign_in_wait(
    source: FailureCount,
    account: FailureCount,
    *,
    known_browser: bool,
    now: float,
    policy: SignInPolicy,
) -> float:
    """Seconds until this source may try this account again (0: it may try now)."""
    waits = [source.last_at + source_delay(source.failures, policy) - now]
    if not known_browser and account.failures >= policy.soft_limit:
        waits.append(account.last_at + policy.soft_delay_seconds - now)
    return max(0.0, *waits)
