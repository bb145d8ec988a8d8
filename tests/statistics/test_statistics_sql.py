"""The SQL the statistics group by (casesvc/statistics/sql.py) agrees with Python on the
database under test: Oslo dates of UTC instants (summer time included), period keys, ages and
day counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Date, literal, select

from casesvc.common.db import UTCDateTime
from casesvc.common.timeutil import OSLO, age_on
from casesvc.extensions import db
from casesvc.statistics.periods import key_of, periods
from casesvc.statistics.sql import PERIOD_KEY, days_between, oslo_date, years_between


def _sql_oslo_date(instant: datetime) -> date:
    value = db.session.scalar(select(oslo_date(literal(instant, UTCDateTime))))
    return value if isinstance(value, date) else date.fromisoformat(value)


def _edges():
    """A minute either side of every change to and from summer time, 2026-2032, and midnights."""
    out = []
    for year in range(2026, 2033):
        for month in (3, 10):
            last_sunday = max(date(year, month, d) for d in range(25, 32) if date(year, month, d).weekday() == 6)
            change = datetime(last_sunday.year, month, last_sunday.day, 1, 0, tzinfo=UTC)
            out += [change - timedelta(minutes=1), change, change + timedelta(minutes=1)]
        out += [
            datetime(year, 12, 31, 22, 59, tzinfo=UTC),
            datetime(year, 12, 31, 23, 0, tzinfo=UTC),
            datetime(year, 6, 30, 21, 59, 59, 999999, tzinfo=UTC),
            datetime(year, 6, 30, 22, 0, tzinfo=UTC),
        ]
    return out


def test_oslo_dates_at_every_change_of_summer_time(app):
    with app.app_context():
        for instant in _edges():
            assert _sql_oslo_date(instant) == instant.astimezone(OSLO).date(), instant


# hypothesis takes naive bounds and adds the time zone itself
EARLIEST, LATEST = datetime(1996, 1, 1), datetime(2099, 12, 31)  # noqa: DTZ001


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC)))
def test_oslo_dates_of_any_instant(app, instant):
    with app.app_context():
        assert _sql_oslo_date(instant) == instant.astimezone(OSLO).date()


@pytest.mark.parametrize("unit", ["year", "quarter", "month"])
def test_period_keys_in_sql_are_the_python_ones(app, unit):
    days = [date(2027, 1, 1) + timedelta(days=n) for n in range(0, 800, 13)]
    with app.app_context():
        for day in days:
            assert db.session.scalar(select(PERIOD_KEY[unit](literal(day, Date)))) == key_of(day, unit)


def test_ages_and_day_counts(app):
    pairs = [
        (date(2011, 1, 15), date(2027, 1, 15)),
        (date(2011, 1, 15), date(2027, 1, 14)),
        (date(2008, 2, 29), date(2027, 2, 28)),
        (date(2008, 2, 29), date(2027, 3, 1)),
        (date(2012, 12, 31), date(2027, 1, 1)),
    ]
    with app.app_context():
        for born, on in pairs:
            assert db.session.scalar(select(years_between(literal(born, Date), literal(on, Date)))) == age_on(born, on)
            assert db.session.scalar(select(days_between(literal(born, Date), literal(on, Date)))) == (on - born).days


def test_periods_are_clipped_to_the_window():
    assert [(p.key, p.first, p.last) for p in periods(date(2027, 2, 15), date(2027, 7, 3), "quarter")] == [
        ("2027-Q1", date(2027, 2, 15), date(2027, 3, 31)),
        ("2027-Q2", date(2027, 4, 1), date(2027, 6, 30)),
        ("2027-Q3", date(2027, 7, 1), date(2027, 7, 3)),
    ]
    assert [p.key for p in periods(date(2027, 11, 30), date(2028, 1, 1), "month")] == ["2027-11", "2027-12", "2028-01"]
    assert len(periods(date(2027, 1, 1), date(2036, 12, 31), "month")) == 120
