"""The business calendar by year: our files, the holidays package, the lunar estimate, the alert.

Which years the pinned `holidays` release knows officially is part of what these tests check:
when a lock refresh brings a release with the 2027 arrangement, the 2027 tests below say so
and must be updated (the 2027 Spring Festival stays a holiday either way).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.domain.shanghai_time import SHANGHAI
from portal.domain.sla import add_business_time
from portal.extensions import db
from portal.models import Alert
from portal.services import monitoring, sla


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def _days(year: int) -> list[date]:
    day, days = date(year, 1, 1), []
    while day.year == year:
        days.append(day)
        day += timedelta(days=1)
    return days


@pytest.fixture(autouse=True)
def _fresh_caches():
    # HOLIDAYS_DIR differs between tests; the files are read once per folder.
    sla._file_arrangements.cache_clear()
    yield
    sla._file_arrangements.cache_clear()


def test_2026_comes_from_our_file_and_the_package_agrees(ctx):
    used = sla.arrangement(2026)
    assert used.official and "国务院办公厅" in used.source
    package = sla.package_arrangement(2026)
    assert package.official  # the holidays package carries the 2026 arrangement too
    cal_file = sla.calendar(bj(2026, 6, 1))
    from portal.domain.sla import BusinessCalendar

    cal_package = BusinessCalendar.from_years([package])
    assert [
        d for d in _days(2026) if cal_file.is_working_day(d) != cal_package.is_working_day(d)
    ] == []
    # Spring Festival 2026: 15–23 February off, Saturday 14 and 28 February worked.
    assert not cal_file.is_working_day(date(2026, 2, 16))
    assert cal_file.is_working_day(date(2026, 2, 14)) and cal_file.is_working_day(date(2026, 2, 28))


def test_a_2026_promise_skips_national_day(ctx):
    # Wednesday 30 September 2026, 17:00 + 4 business hours: 1–7 October are holidays.
    due = sla.first_response_due(bj(2026, 9, 30, 17))
    assert due.astimezone(SHANGHAI) == bj(2026, 10, 8, 12)


def test_spring_festival_2027_is_not_a_working_day(ctx):
    cal = sla.calendar(bj(2027, 2, 1))
    # New Year's Eve (Friday 5 February) to the third day (Monday 8 February) are statutory.
    for day in (date(2027, 2, 5), date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8)):
        assert not cal.is_working_day(day), day
    # A report on Thursday 4 February at 16:00 with 4 business hours: 2 that day, 2 after.
    due = sla.first_response_due(bj(2027, 2, 4, 16))
    assert due.astimezone(SHANGHAI) == bj(2027, 2, 9, 11)


def test_2027_is_an_estimate_until_its_arrangement_is_loaded(ctx):
    arrangement = sla.arrangement(2027)
    assert not arrangement.official, (
        "the holidays package now has 2027's official arrangement: update this test"
    )
    assert arrangement.makeup_workdays == frozenset()
    assert "statutory holidays only" in arrangement.source
    assert sorted(arrangement.holidays) == [
        date(2027, 1, 1),
        date(2027, 2, 5),
        date(2027, 2, 6),
        date(2027, 2, 7),
        date(2027, 2, 8),
        date(2027, 4, 5),  # Qingming
        date(2027, 5, 1),
        date(2027, 5, 2),
        date(2027, 6, 9),  # Dragon Boat
        date(2027, 9, 15),  # Mid-Autumn
        date(2027, 10, 1),
        date(2027, 10, 2),
        date(2027, 10, 3),
    ]


def test_an_unknown_year_counts_its_lunar_holidays_without_makeup_days(ctx):
    arrangement = sla.arrangement(2031)
    assert not arrangement.official and arrangement.makeup_workdays == frozenset()
    # 2031: Spring Festival 23 January (eve 22nd), Dragon Boat 24 June, Mid-Autumn 1 October.
    assert {date(2031, 1, 22), date(2031, 1, 23), date(2031, 1, 24), date(2031, 1, 25)} <= (
        arrangement.holidays
    )
    assert {date(2031, 6, 24), date(2031, 10, 1), date(2031, 4, 5)} <= arrangement.holidays
    cal = sla.calendar(bj(2031, 1, 20))
    # Tuesday 21 January 17:00 + 2 business hours: Wednesday 22 to Friday 24 are holidays.
    assert add_business_time(bj(2031, 1, 21, 17), timedelta(hours=2), cal) == bj(2031, 1, 27, 10)
    assert not cal.is_working_day(date(2031, 1, 25))  # a Saturday stays a weekend day


def _arrangement_file(folder, year, holidays, makeup):
    folder.mkdir(exist_ok=True)
    (folder / f"{year}.json").write_text(
        json.dumps(
            {
                "year": year,
                "source": f"test notice {year}",
                "holidays": holidays,
                "makeup_workdays": makeup,
            }
        ),
        encoding="utf-8",
    )


def test_a_file_in_holidays_dir_is_the_official_arrangement(app_factory, tmp_path):
    # As if the State Council had announced: 5–13 February 2027 off, Sunday 14 February worked.
    folder = tmp_path / "holidays"
    spring = [f"2027-02-{d:02d}" for d in range(5, 14)]
    _arrangement_file(folder, 2027, ["2027-01-01", *spring], ["2027-02-14"])
    with app_factory(HOLIDAYS_DIR=str(folder)).app_context():
        arrangement = sla.arrangement(2027)
        assert arrangement.official and arrangement.source == "test notice 2027"
        cal = sla.calendar(bj(2027, 2, 1))
        assert not cal.is_working_day(date(2027, 2, 10))  # a Wednesday off
        assert cal.is_working_day(date(2027, 2, 14))  # a Sunday worked
        due = sla.first_response_due(bj(2027, 2, 4, 16))
        assert due.astimezone(SHANGHAI) == bj(2027, 2, 14, 11)


def _open_alert(kind):
    return db.session.scalar(select(Alert).where(Alert.kind == kind, Alert.cleared_at.is_(None)))


def test_staff_are_alerted_from_1_november_until_the_arrangement_is_loaded(app_factory, tmp_path):
    october = datetime(2026, 10, 30, 4, 0, tzinfo=UTC)
    december = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    app = app_factory()
    with app.app_context():
        assert monitoring.check_holiday_calendar(october).healthy
        result = monitoring.check_holiday_calendar(december)
        assert not result.healthy and "2027" in result.message
        monitoring.run_checks(december)
        alert = _open_alert("holiday_calendar")
        assert alert is not None and "HOLIDAYS_DIR/2027.json" in alert.message
    # The arrangement arrives: the next run clears the alert.
    folder = tmp_path / "holidays"
    _arrangement_file(folder, 2027, ["2027-01-01"], ["2027-02-14"])
    sla._file_arrangements.cache_clear()
    with app_factory(HOLIDAYS_DIR=str(folder)).app_context():
        assert monitoring.check_holiday_calendar(december).healthy
        monitoring.run_checks(december)
        assert _open_alert("holiday_calendar") is None


def test_a_year_without_any_arrangement_alerts_all_year(ctx):
    result = monitoring.check_holiday_calendar(datetime(2031, 3, 1, 4, 0, tzinfo=UTC))
    assert not result.healthy and "no official 2031 holiday arrangement" in result.message


def test_the_staff_banner_names_the_alert_in_chinese(app, make_user):
    from tests.conftest import AuthActions

    make_user("boss@example.com", "supervisor")
    with app.app_context():
        monitoring.run_checks(datetime(2026, 12, 2, 4, 0, tzinfo=UTC))
    boss = AuthActions(app.test_client())
    boss.login("boss@example.com")
    html = boss.client.get("/staff/dashboard").get_data(as_text=True)
    assert 'class="alert-banner"' in html and "官方节假日安排未载入" in html
    assert "holiday_calendar" not in html
