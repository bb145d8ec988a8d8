"""The aggregates, one statement per measure whatever the number of periods: each groups the
rows it counts by a period key computed in SQL (casesvc/statistics/sql.py), so what comes back
is bounded by periods × dimension values (the waits: periods × distinct day counts), never by
the number of cases.

The population is the cases of the chosen municipalities *opened* in the window; what each
measure counts of them is dated by its own date and counted only when that date falls in the
window too (README: Statistics)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import aliased

from casesvc.cases.models import Case
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.reactions.models import Reaction
from casesvc.statistics.models import ReactionSpan
from casesvc.statistics.periods import oslo_midnight_utc
from casesvc.statistics.sql import PERIOD_KEY, days_between, oslo_date, years_between
from casesvc.youths.models import Youth

cases, reactions, spans, events, youths = (Case.__table__, Reaction.__table__, ReactionSpan.__table__,
                                           Event.__table__, Youth.__table__)


@dataclass(frozen=True)
class Scope:
    municipalities: tuple[str, ...] | None   # None: every municipality
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


def _rows(stmt) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(stmt).all()]


def cases_opened(scope: Scope) -> list[tuple[str, str, int, int]]:
    """(period, origin, age at opening, count)."""
    opened = oslo_date(cases.c.opened_at)
    period, age = scope.key(opened), years_between(youths.c.birth_date, opened)
    return _rows(select(period, cases.c.origin, age, func.count())
                 .select_from(cases.join(youths, youths.c.id == cases.c.youth_id))
                 .where(_population(scope)).group_by(period, cases.c.origin, age))


def reactions_started(scope: Scope) -> list[tuple[str, str, str, int]]:
    """(period of starts_on, type, legal basis, count) of reactions that were made active."""
    period = scope.key(reactions.c.starts_on)
    return _rows(select(period, reactions.c.type, reactions.c.legal_basis, func.count())
                 .select_from(spans.join(reactions, reactions.c.id == spans.c.reaction_id)
                              .join(cases, cases.c.id == reactions.c.case_id))
                 .where(_population(scope), reactions.c.starts_on >= scope.first, reactions.c.starts_on <= scope.last)
                 .group_by(period, reactions.c.type, reactions.c.legal_basis))


def reactions_ended(scope: Scope) -> list[tuple[str, str, str, int]]:
    """(period it ended, type, status it ended in, count) of reactions that ended after being active."""
    period = scope.key(spans.c.ended_on)
    return _rows(select(period, reactions.c.type, spans.c.ended_status, func.count())
                 .select_from(spans.join(reactions, reactions.c.id == spans.c.reaction_id)
                              .join(cases, cases.c.id == reactions.c.case_id))
                 .where(_population(scope), spans.c.ended_on >= scope.first, spans.c.ended_on <= scope.last)
                 .group_by(period, reactions.c.type, spans.c.ended_status))


def drug_tests(scope: Scope) -> list[tuple[str, str, int]]:
    """(period, result, count) of drug-test events; an entry that a later one corrects is not counted."""
    period = scope.key(oslo_date(events.c.occurred_at))
    correction = aliased(events)
    corrected = exists(select(correction.c.id).where(correction.c.corrects == events.c.id))
    return _rows(select(period, events.c.result, func.count())
                 .select_from(events.join(cases, cases.c.id == events.c.case_id))
                 .where(_population(scope), events.c.kind == "drug_test", ~corrected,
                        events.c.occurred_at >= scope.start_utc, events.c.occurred_at < scope.end_utc)
                 .group_by(period, events.c.result))


def openings_and_closings(scope: Scope) -> list[tuple[str, str | None, int]]:
    """(period opened, period closed or None when not closed within the window, count)."""
    opened = scope.key(oslo_date(cases.c.opened_at))
    closed = case((cases.c.closed_at < scope.end_utc, scope.key(oslo_date(cases.c.closed_at))), else_=None)
    return _rows(select(opened, closed, func.count()).where(_population(scope)).group_by(opened, closed))


def _waits(scope: Scope, first_by_case) -> Counter:
    """{(period opened, days): cases} over one row per case: days from the Oslo opening date to
    `first_by_case` (a subquery of case_id, first), 0 where the first came before the opening."""
    opened = oslo_date(cases.c.opened_at)
    period, days = scope.key(opened), days_between(opened, first_by_case.c.first)
    rows = _rows(select(period, days, func.count())
                 .select_from(cases.join(first_by_case, first_by_case.c.case_id == cases.c.id))
                 .where(_population(scope)).group_by(period, days))
    histogram: Counter = Counter()
    for key, value, count in rows:
        histogram[(key, max(0, int(value)))] += count
    return histogram


def days_to_first_reaction(scope: Scope) -> Counter:
    first = (select(reactions.c.case_id.label("case_id"), func.min(reactions.c.starts_on).label("first"))
             .select_from(spans.join(reactions, reactions.c.id == spans.c.reaction_id)
                          .join(cases, cases.c.id == reactions.c.case_id))
             .where(_population(scope)).group_by(reactions.c.case_id).subquery())
    return _waits(scope, first)


def days_to_first_event(scope: Scope) -> Counter:
    first = (select(events.c.case_id.label("case_id"), oslo_date(func.min(events.c.occurred_at)).label("first"))
             .select_from(events.join(cases, cases.c.id == events.c.case_id))
             .where(_population(scope)).group_by(events.c.case_id).subquery())
    return _waits(scope, first)
