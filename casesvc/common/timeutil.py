"""Time: instants are UTC, business dates are Europe/Oslo."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def utcnow() -> datetime:
    return datetime.now(UTC)


def oslo_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(OSLO).date()


def rfc3339(value: datetime | None) -> str | None:
    """An instant as `2026-12-03T09:30:15Z`. The columns give aware UTC datetimes: those skip the
    conversion (a list of 50 cases writes some 200 instants)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:-6] + "Z"  # "+00:00" off the end


def age_on(birth_date: date, on: date) -> int:
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def add_years(day: date, years: int) -> date:
    """The same day `years` later (28 February for 29 February); past year 9999, the last day
    there is, so a far-off date still compares instead of failing."""
    if day.year + years > date.max.year:
        return date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)
