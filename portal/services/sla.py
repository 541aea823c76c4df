"""SLA promises: when a case must get its first reply and its resolution, in business time.

The business calendar, per year, from the first of these that has the official arrangement
(public holidays and make-up working days, as the State Council publishes them each autumn):

1. our data files, ``portal/data/holidays/<year>.json``, then ``HOLIDAYS_DIR/<year>.json``
   (a folder of the same files, for an arrangement published after the release: restart the
   web and worker processes after adding one);
2. the ``holidays`` package (``holidays.China``), whose releases carry each year's arrangement
   once it is published (a year counts as official there when it has make-up working days);

and, for a year none of them knows, an estimate: the statutory holidays of that year as the
``holidays`` package computes them from the lunar calendar (New Year's Day, Spring Festival
eve to the third day, Qingming, Labour Day, Dragon Boat, Mid-Autumn, National Day), with no
make-up working days. ``portal/services/monitoring.py`` raises the ``holiday_calendar`` alert
while this year's official arrangement, or from 1 November next year's, is missing.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

import holidays as holiday_data
from flask import current_app

from ..domain.shanghai_time import SHANGHAI
from ..domain.sla import (
    BusinessCalendar,
    YearArrangement,
    add_business_time,
    arrangement_due,
    business_time_between,
    merge_arrangements,
)
from ..models import utcnow

# Years around the moment asked about that the calendar holds (a promise falls due within days;
# a paused clock may span a year's end).
YEARS_AROUND = 1


def _read_file(path, year: int) -> YearArrangement:
    data = json.loads(path.read_text(encoding="utf-8"))
    return YearArrangement(
        year=year,
        holidays=frozenset(date.fromisoformat(d) for d in data["holidays"]),
        makeup_workdays=frozenset(date.fromisoformat(d) for d in data["makeup_workdays"]),
        official=True,
        source=data.get("source") or str(path),
    )


@cache
def _file_arrangements(extra_dir: str | None) -> dict[int, YearArrangement]:
    """Our data files, then those of ``HOLIDAYS_DIR`` (which win for the same year)."""
    found: dict[int, YearArrangement] = {}
    folders = [resources.files("portal.data").joinpath("holidays")]
    if extra_dir:
        folders.append(Path(extra_dir))
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            stem = entry.name.removesuffix(".json")
            if entry.name.endswith(".json") and stem.isdigit():
                found[int(stem)] = _read_file(entry, int(stem))
    return found


@cache
def package_arrangement(year: int) -> YearArrangement:
    """What the ``holidays`` package knows of ``year``: the official arrangement, or the
    statutory holidays alone (from its lunar calendar) when it has none."""
    published = holiday_data.China(years=year)
    makeup = frozenset(d for d in published.weekend_workdays if d.year == year)
    version = f"holidays {holiday_data.__version__}"
    if makeup:
        days = frozenset(d for d in published if d.year == year)
        return YearArrangement(year, days, makeup, True, f"{version}: official arrangement")
    statutory = frozenset(d for d in holiday_data.China(years=year, observed=False))
    return YearArrangement(
        year, statutory, frozenset(), False, f"{version}: statutory holidays only (estimate)"
    )


def arrangement(year: int) -> YearArrangement:
    """The arrangement the SLA clock uses for ``year`` (see the module's docstring)."""
    files = _file_arrangements(current_app.config.get("HOLIDAYS_DIR"))
    candidates = {year: files[year]} if year in files else {}
    return merge_arrangements(candidates, {year: package_arrangement(year)})[year]


@cache
def _calendar(years: tuple[YearArrangement, ...]) -> BusinessCalendar:
    return BusinessCalendar.from_years(years)


def calendar(around: datetime | None = None) -> BusinessCalendar:
    """The business calendar for the years around ``around`` (default: now): Beijing working
    hours, the holidays and make-up working days of each year."""
    year = (around or utcnow()).astimezone(SHANGHAI).year
    span = range(year - YEARS_AROUND, year + YEARS_AROUND + 1)
    return _calendar(tuple(arrangement(y) for y in span))


def missing_arrangement(today: date) -> YearArrangement | None:
    """The estimated arrangement of the year whose official one staff should load now, if any."""
    years = (today.year, today.year + 1)
    official = {y for y in years if arrangement(y).official}
    due = arrangement_due(today, official)
    return None if due is None else arrangement(due)


def targets(channel: str = "web", priority: str = "normal") -> tuple[float, float]:
    """(first-response hours, resolution days) for a channel and priority: the most specific
    entry of ``SLA_POLICY`` ("counter:urgent", then "counter"), else the global defaults."""
    config = current_app.config
    policy = config.get("SLA_POLICY") or {}
    entry = policy.get(f"{channel}:{priority}") or policy.get(channel) or {}
    return (
        float(entry.get("first_response_hours", config["SLA_FIRST_RESPONSE_HOURS"])),
        float(entry.get("resolution_days", config["SLA_RESOLUTION_DAYS"])),
    )


def first_response_due(
    opened_at: datetime, channel: str = "web", priority: str = "normal"
) -> datetime:
    """When a case opened at ``opened_at`` must have had its first reply."""
    hours, _days = targets(channel, priority)
    return add_business_time(opened_at, timedelta(hours=hours), calendar(opened_at))


def resolution_due(opened_at: datetime, channel: str = "web", priority: str = "normal") -> datetime:
    """When a case opened at ``opened_at`` must be resolved."""
    _hours, days = targets(channel, priority)
    cal = calendar(opened_at)
    return add_business_time(opened_at, cal.hours_per_day * days, cal)


def resume(case, now: datetime) -> None:
    """Restart a paused SLA clock: deadlines move later by the working time spent paused."""
    if case.sla_paused_at is None:
        return
    cal = calendar(now)
    paused = business_time_between(case.sla_paused_at, now, cal)
    for name in ("first_response_due_at", "resolution_due_at"):
        due = getattr(case, name)
        if due is not None:
            setattr(case, name, add_business_time(due, paused, cal))
    case.sla_paused_at = None
