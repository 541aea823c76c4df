"""SLA promises: when a case must get its first reply and its resolution, in business time.

The calendar comes from ``portal/data/holidays/<year>.json`` (public holidays and make-up
working days, as published each year); a year without a file counts weekends only.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources

from flask import current_app

from ..domain.sla import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
)


@cache
def _calendar_data() -> tuple[frozenset[date], frozenset[date]]:
    holidays: set[date] = set()
    makeup: set[date] = set()
    folder = resources.files("portal.data").joinpath("holidays")
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            holidays.update(date.fromisoformat(d) for d in data["holidays"])
            makeup.update(date.fromisoformat(d) for d in data["makeup_workdays"])
    return frozenset(holidays), frozenset(makeup)


def calendar() -> BusinessCalendar:
    """The business calendar: Beijing working hours, holidays and make-up days from data files."""
    holidays, makeup = _calendar_data()
    return BusinessCalendar(holidays, makeup)


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
    return add_business_time(opened_at, timedelta(hours=hours), calendar())


def resolution_due(opened_at: datetime, channel: str = "web", priority: str = "normal") -> datetime:
    """When a case opened at ``opened_at`` must be resolved."""
    _hours, days = targets(channel, priority)
    cal = calendar()
    return add_business_time(opened_at, cal.hours_per_day * days, cal)


def resume(case, now: datetime) -> None:
    """Restart a paused SLA clock: deadlines move later by the working time spent paused."""
    if case.sla_paused_at is None:
        return
    cal = calendar()
    paused = business_time_between(case.sla_paused_at, now, cal)
    for name in ("first_response_due_at", "resolution_due_at"):
        due = getattr(case, name)
        if due is not None:
            setattr(case, name, add_business_time(due, paused, cal))
    case.sla_paused_at = None
