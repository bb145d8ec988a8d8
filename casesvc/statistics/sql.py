"""SQL expressions the statistics group by, the same on SQLite and PostgreSQL.

The timestamp columns hold naive UTC (casesvc/common/db.py); a business date is the Europe/Oslo
date of such an instant. PostgreSQL converts with its time zone database. SQLite has none, so
there the offset is worked out from the rule Norway has kept since 1996 (the EU's: summer time,
UTC+2, from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October;
UTC+1 otherwise); tests/test_statistics_sql.py holds the two equal to Python's zoneinfo.
Every constant is written into the SQL text (no bind parameters), so an expression in the
select list and the same one in GROUP BY are one expression to PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Date, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class oslo_date(FunctionElement):
    """The Europe/Oslo date of a naive-UTC timestamp."""

    type = Date()
    inherit_cache = True
    name = "oslo_date"


@compiles(oslo_date)
def _oslo_date_pg(element, compiler, **kw):
    ts = compiler.process(next(iter(element.clauses)), **kw)
    return f"CAST(timezone('Europe/Oslo', timezone('UTC', {ts})) AS DATE)"


@compiles(oslo_date, "sqlite")
def _oslo_date_sqlite(element, compiler, **kw):
    ts = compiler.process(next(iter(element.clauses)), **kw)
    year = f"strftime('%Y', {ts})"
    summer = (
        f"{ts} >= datetime({year} || '-03-25', 'weekday 0', '+1 hour') "
        f"AND {ts} < datetime({year} || '-10-25', 'weekday 0', '+1 hour')"
    )
    # whole seconds: SQLite's date functions round 23:59:59.9995 up to the next day
    return f"date(substr({ts}, 1, 19), CASE WHEN {summer} THEN '+2 hours' ELSE '+1 hours' END)"


class _period(FunctionElement):
    type = String()
    inherit_cache = True


class year_key(_period):
    """'2027' for a date."""

    name = "year_key"
    inherit_cache = True


class quarter_key(_period):
    """'2027-Q1' for a date."""

    name = "quarter_key"
    inherit_cache = True


class month_key(_period):
    """'2027-01' for a date."""

    name = "month_key"
    inherit_cache = True


_PG_FORMATS = {"year_key": "YYYY", "quarter_key": 'YYYY-"Q"Q', "month_key": "YYYY-MM"}


@compiles(_period)
def _period_pg(element, compiler, **kw):
    day = compiler.process(next(iter(element.clauses)), **kw)
    return f"to_char({day}, '{_PG_FORMATS[element.name]}')"


@compiles(_period, "sqlite")
def _period_sqlite(element, compiler, **kw):
    day = compiler.process(next(iter(element.clauses)), **kw)
    if element.name == "year_key":
        return f"strftime('%Y', {day})"
    if element.name == "month_key":
        return f"strftime('%Y-%m', {day})"
    return f"(strftime('%Y', {day}) || '-Q' || ((CAST(strftime('%m', {day}) AS INTEGER) + 2) / 3))"


PERIOD_KEY = {"year": year_key, "quarter": quarter_key, "month": month_key}


class years_between(FunctionElement):
    """Whole years from the first date to the second (an age)."""

    type = Integer()
    inherit_cache = True
    name = "years_between"


@compiles(years_between)
def _years_pg(element, compiler, **kw):
    born, on = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(date_part('year', age({on}, {born})) AS INTEGER)"


@compiles(years_between, "sqlite")
def _years_sqlite(element, compiler, **kw):
    born, on = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(CAST(strftime('%Y', {on}) AS INTEGER) - CAST(strftime('%Y', {born}) AS INTEGER) "
        f"- (strftime('%m-%d', {on}) < strftime('%m-%d', {born})))"
    )


class days_between(FunctionElement):
    """Days from the first date to the second (later − earlier)."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_pg(element, compiler, **kw):
    earlier, later = (compiler.process(c, **kw) for c in element.clauses)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    earlier, later = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
