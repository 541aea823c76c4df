"""Business time across weekends, holidays and make-up working days."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.shanghai_time import SHANGHAI
from portal.domain.sla import (
    BusinessCalendar,
    YearArrangement,
    add_business_time,
    arrangement_due,
    business_days,
    business_time_between,
    merge_arrangements,
    next_working_moment,
)

# 2026: National Day 1–7 October, make-up working days Sunday 20 September and Saturday 10 October.
CAL = BusinessCalendar.from_dates(
    [date(2026, 10, d) for d in range(1, 8)], [date(2026, 9, 20), date(2026, 10, 10)]
)


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_within_a_working_day():
    assert add_business_time(bj(2026, 11, 26, 10), timedelta(hours=4), CAL) == bj(2026, 11, 26, 14)


def test_friday_evening_rolls_to_monday():
    # Friday 27 November 2026, 17:00 + 4 h → Monday 30 November, 12:00.
    assert add_business_time(bj(2026, 11, 27, 17), timedelta(hours=4), CAL) == bj(2026, 11, 30, 12)


def test_reported_at_night_counts_from_next_opening():
    assert add_business_time(bj(2026, 11, 26, 22), timedelta(hours=1), CAL) == bj(2026, 11, 27, 10)


def test_national_day_is_skipped_and_makeup_saturday_counts():
    # Wednesday 30 September 17:00 + 2 h: 1–7 October are holidays, Thursday 8 October opens.
    assert add_business_time(bj(2026, 9, 30, 17), timedelta(hours=2), CAL) == bj(2026, 10, 8, 10)
    # Friday 9 October 17:00 + 2 h: Saturday 10 October is a make-up working day.
    assert add_business_time(bj(2026, 10, 9, 17), timedelta(hours=2), CAL) == bj(2026, 10, 10, 10)
    assert CAL.is_working_day(date(2026, 9, 20))  # a Sunday, made a working day


def test_two_business_days():
    due = add_business_time(bj(2026, 11, 26, 9), business_days(2, CAL), CAL)
    assert due == bj(2026, 11, 27, 18)


def test_utc_input_gives_beijing_answer():
    start = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    assert add_business_time(start, timedelta(hours=1), CAL) == bj(2026, 11, 26, 10, 30)


def test_measuring_business_time():
    assert business_time_between(bj(2026, 11, 27, 17), bj(2026, 11, 30, 12), CAL) == timedelta(
        hours=4
    )
    assert business_time_between(bj(2026, 11, 30), bj(2026, 11, 27), CAL) == timedelta(0)


def test_refusals():
    with pytest.raises(InvoiceRuleError):
        BusinessCalendar(opens=time(18), closes=time(9))
    with pytest.raises(InvoiceRuleError):
        add_business_time(datetime(2026, 11, 26, 10), timedelta(hours=1), CAL)
    with pytest.raises(InvoiceRuleError):
        add_business_time(bj(2026, 11, 26, 10), timedelta(hours=-1), CAL)
    everything_off = BusinessCalendar(
        holidays=frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(800))
    )
    with pytest.raises(InvoiceRuleError):
        next_working_moment(bj(2026, 1, 1), everything_off)


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(SHANGHAI)
)
durations = st.integers(0, 60 * 60 * 9 * 10).map(lambda s: timedelta(seconds=s))


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations)
def test_adding_then_measuring_gives_the_duration_back(start, duration):
    due = add_business_time(start, duration, CAL)
    assert due >= start
    assert business_time_between(start, due, CAL) == duration
    local = due.astimezone(SHANGHAI)
    assert CAL.is_working_day(local.date()) or duration == timedelta(0)


@settings(max_examples=100, deadline=None)
@given(start=moments, a=durations, b=durations)
def test_adding_is_additive(start, a, b):
    assert add_business_time(add_business_time(start, a, CAL), b, CAL) == add_business_time(
        start, a + b, CAL
    )


# ------------------------------------------------------------------ yearly arrangements


def _year(year, holidays=(), makeup=(), official=True, source="test"):
    return YearArrangement(year, frozenset(holidays), frozenset(makeup), official, source)


def test_a_calendar_joins_the_years_it_is_given():
    cal = BusinessCalendar.from_years(
        [_year(2026, [date(2026, 10, 1)], [date(2026, 10, 10)]), _year(2027, [date(2027, 2, 8)])]
    )
    assert not cal.is_working_day(date(2026, 10, 1)) and cal.is_working_day(date(2026, 10, 10))
    assert not cal.is_working_day(date(2027, 2, 8))  # a Monday, a holiday
    assert cal.is_working_day(date(2027, 2, 9))


def test_the_first_official_arrangement_wins_then_the_first_estimate():
    override = {2026: _year(2026, source="file")}
    package = {
        2026: _year(2026, source="package"),
        2027: _year(2027, official=False, source="estimate"),
        2028: _year(2028, source="package"),
    }
    later = {2027: _year(2027, source="later official"), 2028: _year(2028, source="later")}
    merged = merge_arrangements(override, package, later)
    assert {year: a.source for year, a in merged.items()} == {
        2026: "file",
        2027: "later official",  # an official one beats an earlier estimate
        2028: "package",  # but not an earlier official one
    }
    estimates = merge_arrangements(
        {2031: _year(2031, official=False, source="a")},
        {2031: _year(2031, official=False, source="b")},
    )
    assert estimates[2031].source == "a"


@pytest.mark.parametrize(
    ("today", "official", "due"),
    [
        (date(2026, 10, 31), {2026}, None),  # next year's not expected yet
        (date(2026, 11, 1), {2026}, 2027),  # from 1 November it is
        (date(2026, 12, 2), {2026, 2027}, None),
        (date(2027, 1, 4), {2026}, 2027),  # a new year without its arrangement
        (date(2031, 3, 1), set(), 2031),
        (date(2031, 12, 31), {2031}, 2032),
    ],
)
def test_which_arrangement_staff_should_load(today, official, due):
    assert arrangement_due(today, official) == due
