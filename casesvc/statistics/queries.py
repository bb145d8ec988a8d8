"""The aggregates, one statement per measure whatever the number of periods: each groups the
rows it counts by a period key computed in SQL (casesvc/statistics/sql.py), so what comes back
is bounded by periods × dimension values (the waits: periods × distinct day counts), never by
the number of cases.

The population is the cases of the chosen municipalities *opened* in the window; what each
measure counts of them is dated by its own date and counted only when that date falls in the
window too (README: Statistics)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, exists, func, select, text

from casesvc.cases.models import Case
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.reactions.models import Reaction
from casesvc.statistics.models import ReactionSpan
from casesvc.statistics.periods import oslo_midnight_utc
from casesvc.statistics.sql import PERIOD_KEY, days_between, oslo_date, years_between
from casesvc.youths.models import Youth

cases, reactions, spans, events, youths = (
    Case.__table__,
    Reaction.__table__,
    ReactionSpan.__table__,
    Event.__table__,
    Youth.__table__,
)


@dataclass(frozen=True)
class Scope:
    municipalities: tuple[str, ...] | None  # None: every municipality
    first: date
    last: date
    unit: str

    @property
    def start_utc(self):
        return oslo_midnight_utc(self.first)

    @property
    def end_utc(self):
        return oslo_midnight_utc(self.last + timedelta(days=1))

    def key(self, day_expression):
        return PERIOD_KEY[self.unit](day_expression)


def _population(scope: Scope):
    clauses = [cases.c.opened_at >= scope.start_utc, cases.c.opened_at < scope.end_utc]
    if scope.municipalities is not None:
        clauses.append(cases.c.municipality.in_(scope.municipalities))
    return and_(*clauses)


_connection: ContextVar = ContextVar("casesvc_statistics_connection")


@contextmanager
def snapshot():
    """One read-only transaction for all the statements of an answer, so that its figures agree
    with one another (PostgreSQL: REPEATABLE READ). These are a few large aggregates, not the
    service's many small reads: on PostgreSQL they get the memory to hash rather than sort on
    disk, and no JIT compilation, which costs more than it saves at this size."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION READ ONLY"))
                conn.execute(text("SET LOCAL jit = off"))
                conn.execute(text("SET LOCAL work_mem = '32MB'"))
            token = _connection.set(conn)
            try:
                yield
            finally:
                _connection.reset(token)


def _rows(stmt) -> list[tuple]:
    return [tuple(row) for row in _connection.get().execute(stmt).all()]


def cases_opened(scope: Scope) -> list[tuple[str, str, int, int]]:
    """(period, origin, age at opening, count)."""
    opened = oslo_date(cases.c.opened_at)
    period, age = scope.key(opened), years_between(youths.c.birth_date, opened)
    return _rows(
        select(period, cases.c.origin, age, func.count())
        .select_from(cases.join(youths, youths.c.id == cases.c.youth_id))
        .where(_population(scope))
        .group_by(period, cases.c.origin, age)
    )


def reactions_started(scope: Scope) -> list[tuple[str, str, str, int]]:
    """(period of starts_on, type, legal basis, count) of reactions that were made active."""
    period = scope.key(reactions.c.starts_on)
    return _rows(
        select(period, reactions.c.type, reactions.c.legal_basis, func.count())
        .select_from(
            spans.join(reactions, reactions.c.id == spans.c.reaction_id).join(cases, cases.c.id == reactions.c.case_id)
        )
        .where(_population(scope), reactions.c.starts_on >= scope.first, reactions.c.starts_on <= scope.last)
        .group_by(period, reactions.c.type, reactions.c.legal_basis)
    )


def reactions_ended(scope: Scope) -> list[tuple[str, str, str, int]]:
    """(period it ended, type, status it ended in, count) of reactions that ended after being active."""
    period = scope.key(spans.c.ended_on)
    return _rows(
        select(period, reactions.c.type, spans.c.ended_status, func.count())
        .select_from(
            spans.join(reactions, reactions.c.id == spans.c.reaction_id).join(cases, cases.c.id == reactions.c.case_id)
        )
        .where(_population(scope), spans.c.ended_on >= scope.first, spans.c.ended_on <= scope.last)
        .group_by(period, reactions.c.type, spans.c.ended_status)
    )


def drug_tests(scope: Scope) -> list[tuple[str, str, int]]:
    """(period, result, count) of drug-test events; an entry that a later one corrects is not counted."""
    period = scope.key(oslo_date(events.c.occurred_at))
    correction = events.alias("correction")
    corrected = exists(select(correction.c.id).where(correction.c.corrects == events.c.id))
    return _rows(
        select(period, events.c.result, func.count())
        .select_from(events.join(cases, cases.c.id == events.c.case_id))
        .where(
            _population(scope),
            events.c.kind == "drug_test",
            ~corrected,
            events.c.occurred_at >= scope.start_utc,
            events.c.occurred_at < scope.end_utc,
        )
        .group_by(period, events.c.result)
    )


def openings_and_closings(scope: Scope) -> list[tuple[str, str | None, int]]:
    """(period opened, period closed or None when not closed within the window, count)."""
    opened = scope.key(oslo_date(cases.c.opened_at))
    closed = case((cases.c.closed_at < scope.end_utc, scope.key(oslo_date(cases.c.closed_at))), else_=None)
    return _rows(select(opened, closed, func.count()).where(_population(scope)).group_by(opened, closed))


def _waits(scope: Scope, first_per_case) -> Counter:
    """{(period opened, days): cases} over one row per case: days from the Oslo opening date to
    the first of `first_per_case` (a subquery of the case's opening and its first), 0 where the
    first came before the opening."""
    opened = oslo_date(first_per_case.c.opened_at)
    period, days = scope.key(opened), days_between(opened, first_per_case.c.first)
    rows = _rows(select(period, days, func.count()).select_from(first_per_case).group_by(period, days))
    histogram: Counter = Counter()
    for key, value, count in rows:
        histogram[(key, max(0, int(value)))] += count
    return histogram


def days_to_first_reaction(scope: Scope) -> Counter:
    first = (
        select(cases.c.opened_at, func.min(reactions.c.starts_on).label("first"))
        .select_from(
            cases.join(reactions, reactions.c.case_id == cases.c.id).join(spans, spans.c.reaction_id == reactions.c.id)
        )
        .where(_population(scope))
        .group_by(cases.c.id, cases.c.opened_at)
        .subquery()
    )
    return _waits(scope, first)


def days_to_first_event(scope: Scope) -> Counter:
    first = (
        select(cases.c.opened_at, oslo_date(func.min(events.c.occurred_at)).label("first"))
        .select_from(cases.join(events, events.c.case_id == cases.c.id))
        .where(_population(scope))
        .group_by(cases.c.id, cases.c.opened_at)
        .subquery()
    )
    return _waits(scope, first)
