"""Backoff: full jitter inside the exponential ceiling, Retry-After honoured, dead at the end."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.backoff import (
    BackoffPolicy,
    ceiling_delay,
    expected_span,
    retry_delay,
    should_give_up,
)

POLICY = BackoffPolicy()


def test_ceiling_doubles_then_caps():
    assert [ceiling_delay(a, POLICY) for a in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert ceiling_delay(8, POLICY) == 3600
    assert ceiling_delay(10_000, POLICY) == 3600
    assert ceiling_delay(0, POLICY) == 0


def test_defaults_spread_retries_over_hours():
    # 30 s doubling to a 1 h cap over 12 attempts: at most about 5 h 04 min of waiting.
    assert expected_span(POLICY) == 30 + 60 + 120 + 240 + 480 + 960 + 1920 + 4 * 3600


def test_give_up_after_max_attempts():
    assert not should_give_up(11, POLICY)
    assert should_give_up(12, POLICY)


def test_retry_after_is_a_floor():
    assert retry_delay(1, POLICY, 0.0, retry_after=17) == 17
    assert retry_delay(1, POLICY, 0.99, retry_after=1) == pytest.approx(29.7)
    # The registry's word beats our cap, but an absurd answer is trimmed to a day.
    assert retry_delay(1, POLICY, 0.5, retry_after=7200) == 7200
    assert retry_delay(1, POLICY, 0.5, retry_after=7 * 86400) == 86400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_seconds": 0},
        {"base_seconds": 10, "cap_seconds": 5},
        {"max_attempts": 0},
    ],
)
def test_nonsense_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_rand_outside_unit_interval_is_refused():
    with pytest.raises(ValueError):
        retry_delay(1, POLICY, 1.0)


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 200), rand=st.floats(0, 1, exclude_max=True))
def test_delay_is_within_zero_and_the_ceiling(attempt, rand):
    delay = retry_delay(attempt, POLICY, rand)
    assert 0 <= delay <= ceiling_delay(attempt, POLICY) <= POLICY.cap_seconds
