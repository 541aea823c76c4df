"""Asia/Shanghai time without reading a clock: callers pass the moment, the domain converts it.

China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for every
invoice date and needs no time-zone database.

Public API:

- ``SHANGHAI``: the Asia/Shanghai time zone (UTC+8).
- ``to_shanghai(moment) -> datetime``: an aware datetime in Shanghai time.
- ``shanghai_date(moment) -> date``: the calendar day in Shanghai at ``moment``, i.e. the
  ``today`` that diagnosis needs.
- ``format_shanghai(moment) -> str``: ``2026-03-01 14:05``, the way pages show times.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from portal.domain.errors import InvoiceRuleError

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def to_shanghai(moment: datetime) -> datetime:
    """Return ``moment`` in Shanghai time; a naive datetime is refused, its zone unknowable."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvoiceRuleError("naive_datetime", field="moment")
    return moment.astimezone(SHANGHAI)


def shanghai_date(moment: datetime) -> date:
    """Return the calendar date in Shanghai at ``moment`` (an aware datetime)."""
    return to_shanghai(moment).date()


def format_shanghai(moment: datetime) -> str:
    """Return ``moment`` as ``YYYY-MM-DD HH:MM`` in Shanghai time."""
    return to_shanghai(moment).strftime("%Y-%m-%d %H:%M")
