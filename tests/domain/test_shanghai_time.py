"""Asia/Shanghai dates and times from moments the caller passes in."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from portal.domain.errors import InvoiceRuleError
from portal.domain.shanghai_time import SHANGHAI, format_shanghai, shanghai_date, to_shanghai


def test_the_shanghai_day_starts_at_16_utc():
    assert shanghai_date(datetime(2026, 3, 9, 15, 59, tzinfo=UTC)) == date(2026, 3, 9)
    assert shanghai_date(datetime(2026, 3, 9, 16, 0, tzinfo=UTC)) == date(2026, 3, 10)


def test_conversion_and_display():
    new_york = timezone(timedelta(hours=-5))
    moment = datetime(2026, 3, 9, 21, 5, tzinfo=new_york)
    assert to_shanghai(moment).utcoffset() == timedelta(hours=8)
    assert to_shanghai(moment).tzinfo is SHANGHAI
    assert format_shanghai(moment) == "2026-03-10 10:05"


def test_naive_moments_are_refused():
    with pytest.raises(InvoiceRuleError) as caught:
        shanghai_date(datetime(2026, 3, 9, 12, 0))
    assert caught.value.code == "naive_datetime"
    assert caught.value.message("en") == "The time must carry its time zone."
