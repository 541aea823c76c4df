"""Business time in Beijing: working hours, weekends, public holidays and make-up working days.

``BusinessCalendar`` knows which days are working days; ``add_business_time(start, duration,
calendar)`` gives the moment a promise made at ``start`` falls due, counting only working hours;
``business_time_between(a, b, calendar)`` measures how much of a span counted. China moves
weekend days around public holidays (调休): a Saturday can be a working day, a Wednesday a holiday,
so the calendar takes both lists explicitly, per year, from data the portal loads elsewhere.

``YearArrangement`` is one year's holidays and make-up working days, official (the State
Council's arrangement, published each autumn for the next year) or estimated (the statutory
holidays alone, no make-up days); ``merge_arrangements`` picks, per year, the first source that
has the official one; ``BusinessCalendar.from_years`` joins years; ``arrangement_due(today,
official_years)`` says which year's official arrangement staff should load now.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from portal.domain.errors import InvoiceRuleError
from portal.domain.shanghai_time import SHANGHAI


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours on working days, in Asia/Shanghai.

    A day is a working day when it is a make-up working day, or a Monday–Friday that is not a
    public holiday. ``opens``/``closes`` bound the working hours of every working day.
    """

    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_workdays: frozenset[date] = field(default_factory=frozenset)
    opens: time = time(9, 0)
    closes: time = time(18, 0)

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise InvoiceRuleError("calendar_hours")

    @classmethod
    def from_dates(
        cls, holidays: Iterable[date], makeup_workdays: Iterable[date], **hours: time
    ) -> BusinessCalendar:
        """Build a calendar from lists of dates (e.g. read from a yearly data file)."""
        return cls(frozenset(holidays), frozenset(makeup_workdays), **hours)

    @classmethod
    def from_years(cls, years: Iterable[YearArrangement], **hours: time) -> BusinessCalendar:
        """Build a calendar from the arrangements of several years."""
        holidays: set[date] = set()
        makeup: set[date] = set()
        for arrangement in years:
            holidays |= arrangement.holidays
            makeup |= arrangement.makeup_workdays
        return cls(frozenset(holidays), frozenset(makeup), **hours)

    def is_working_day(self, day: date) -> bool:
        """True when people work on ``day``."""
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    @property
    def hours_per_day(self) -> timedelta:
        """The length of one working day."""
        return _at(date(2000, 1, 3), self.closes) - _at(date(2000, 1, 3), self.opens)


@dataclass(frozen=True)
class YearArrangement:
    """One year's public holidays and make-up working days, and where they come from.

    ``official``: the published arrangement (with its make-up working days); otherwise an
    estimate, the statutory holidays of that year only. ``source`` says which, for people.
    """

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]
    official: bool
    source: str


def merge_arrangements(*sources: Mapping[int, YearArrangement]) -> dict[int, YearArrangement]:
    """Per year, the official arrangement of the first source that has one, else the first
    source's estimate. Earlier sources win (pass overrides first)."""
    merged: dict[int, YearArrangement] = {}
    for source in sources:
        for year, arrangement in source.items():
            known = merged.get(year)
            if known is None or (arrangement.official and not known.official):
                merged[year] = arrangement
    return merged


# The State Council publishes the next year's arrangement in the autumn (early November, lately
# late October): from this day of the year before, its absence is worth telling staff about.
ARRANGEMENT_EXPECTED_FROM = (11, 1)


def arrangement_due(today: date, official_years: Collection[int]) -> int | None:
    """The year whose official arrangement should be loaded but is not, if any: this year's at
    any time, next year's from 1 November."""
    if today.year not in official_years:
        return today.year
    month, day = ARRANGEMENT_EXPECTED_FROM
    if today >= date(today.year, month, day) and today.year + 1 not in official_years:
        return today.year + 1
    return None


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=SHANGHAI)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvoiceRuleError("naive_datetime", field="moment")
    return moment.astimezone(SHANGHAI)


def next_working_moment(moment: datetime, calendar: BusinessCalendar) -> datetime:
    """``moment`` if it falls in working hours, else when working hours next begin."""
    local = _require_aware(moment)
    day = local.date()
    for _ in range(400):  # no calendar has a year without working days; stop looping if so
        if calendar.is_working_day(day):
            opens, closes = _at(day, calendar.opens), _at(day, calendar.closes)
            if local < opens:
                return opens
            if local < closes:
                return local
        day += timedelta(days=1)
        local = _at(day, time(0, 0))
    raise InvoiceRuleError("calendar_no_workdays")


def add_business_time(start: datetime, duration: timedelta, calendar: BusinessCalendar) -> datetime:
    """The moment ``duration`` of working time after ``start`` (in Beijing time, aware)."""
    if duration < timedelta(0):
        raise InvoiceRuleError("negative_duration", field="moment")
    moment = next_working_moment(start, calendar)
    remaining = duration
    while True:
        closes = _at(moment.date(), calendar.closes)
        available = closes - moment
        if remaining <= available:
            return moment + remaining
        remaining -= available
        moment = next_working_moment(closes, calendar)


def business_time_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> timedelta:
    """How much working time lies between ``start`` and ``end`` (zero if end is earlier)."""
    start, end = _require_aware(start), _require_aware(end)
    total = timedelta(0)
    day = start.date()
    while day <= end.date():
        if calendar.is_working_day(day):
            lo = max(start, _at(day, calendar.opens))
            hi = min(end, _at(day, calendar.closes))
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def business_days(days: int, calendar: BusinessCalendar) -> timedelta:
    """``days`` working days expressed as working time (days × hours per day)."""
    return calendar.hours_per_day * days
