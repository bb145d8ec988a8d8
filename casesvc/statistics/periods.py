"""Periods of a statistics window, in Europe/Oslo dates. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from casesvc.common.timeutil import OSLO

UNITS = ("month", "quarter", "year")
ALL = "all"


@dataclass(frozen=True)
class Period:
    key: str  # "2027", "2027-Q1", "2027-01", or "all"
    first: date  # clipped to the window
    last: date


def key_of(day: date, unit: str) -> str:
    """The same keys as the SQL period expression (casesvc/statistics/sql.py) makes."""
    if unit == "year":
        return f"{day.year:04d}"
    if unit == "quarter":
        return f"{day.year:04d}-Q{(day.month + 2) // 3}"
    return f"{day.year:04d}-{day.month:02d}"


def _next_start(day: date, unit: str) -> date:
    if unit == "year":
        return date(day.year + 1, 1, 1)
    months = 3 if unit == "quarter" else 1
    first_month = day.month if unit == "month" else 3 * ((day.month - 1) // 3) + 1
    month = first_month + months
    return date(day.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def periods(first: date, last: date, unit: str) -> list[Period]:
    """The periods of `unit` that meet the window [first, last], clipped to it, in order."""
    out, day = [], first
    while day <= last:
        following = _next_start(day, unit)
        out.append(Period(key_of(day, unit), day, min(last, following - timedelta(days=1))))
        day = following
    return out


def oslo_midnight_utc(day: date) -> datetime:
    """The instant Oslo's `day` begins, in UTC (what the UTC timestamp columns are compared with)."""
    return datetime.combine(day, time(0), tzinfo=OSLO).astimezone(UTC)
