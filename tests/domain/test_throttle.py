"""Sign-in delays: growing per source, a soft limit per account the owner's browser ignores."""

import pytest

from portal.domain.throttle import FailureCount, SignInPolicy, sign_in_wait, source_delay

POLICY = SignInPolicy(threshold=5, base_seconds=60, cap_seconds=3600, soft_limit=50)


def test_no_delay_below_the_threshold_then_doubling_up_to_the_cap():
    assert [source_delay(n, POLICY) for n in (0, 4)] == [0.0, 0.0]
    assert [source_delay(n, POLICY) for n in (5, 6, 7, 8)] == [60, 120, 240, 480]
    assert source_delay(11, POLICY) == 3600
    assert source_delay(10**9, POLICY) == 3600  # no overflow


def test_the_wait_counts_from_the_latest_failure():
    source = FailureCount(failures=6, last_at=1000.0)
    none = FailureCount()
    assert sign_in_wait(source, none, known_browser=False, now=1000.0, policy=POLICY) == 120
    assert sign_in_wait(source, none, known_browser=False, now=1100.0, policy=POLICY) == 20
    assert sign_in_wait(source, none, known_browser=False, now=5000.0, policy=POLICY) == 0


def test_the_soft_limit_holds_strangers_back_but_not_the_owners_browser():
    quiet = FailureCount()
    busy = FailureCount(failures=50, last_at=1000.0)
    assert sign_in_wait(quiet, busy, known_browser=False, now=1010.0, policy=POLICY) == 20
    assert sign_in_wait(quiet, busy, known_browser=True, now=1010.0, policy=POLICY) == 0
    below = FailureCount(failures=49, last_at=1000.0)
    assert sign_in_wait(quiet, below, known_browser=False, now=1010.0, policy=POLICY) == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"threshold": 0},
        {"soft_limit": 0},
        {"base_seconds": 0},
        {"base_seconds": 100, "cap_seconds": 10},
    ],
)
def test_nonsense_policies_are_refused(settings):
    with pytest.raises(ValueError):
        SignInPolicy(**settings)
