"""The worker's rules: for each kind of reminder, the set-based SQL that selects the sources
whose reminder is missing (every source whose current basis — last event, end date … — already
has one is skipped, so a pass with nothing new reads little), and the rows to insert, their
due times from the pure functions of `rules.py`. Escalation is in `worker.py`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select

from casesvc.cases.models import Case
from casesvc.common.timeutil import add_years, oslo_today
from casesvc.consents.models import Consent
from casesvc.followups.models import Event
from casesvc.reactions.models import Condition, Reaction
from casesvc.reminders import rules
from casesvc.reminders.models import Reminder
from casesvc.reminders.store import LIVE_CASE, answers_clause, reminder_row
from casesvc.youths.models import Youth

CATCH_UP_DAYS = 30  # a birthday the worker did not see (it was not run) is still announced this long after


def _no_reminder(kind: str, source_column, *conditions):
    return ~exists().where(Reminder.source_id == source_column, Reminder.kind == kind, *conditions)


def _condition_due_candidates(now: datetime, settings):
    # the last answering event of every condition, aggregated once (hash joins, not a probe per row)
    last = (
        select(Event.condition_id, func.max(Event.occurred_at).label("last_at"))
        .where(Event.condition_id.is_not(None), answers_clause())
        .group_by(Event.condition_id)
        .subquery()
    )
    inner = (
        select(
            Condition.id.label("source_id"),
            Condition.every_days,
            Condition.responsible_agency,
            Reaction.id.label("reaction_id"),
            Reaction.starts_on,
            Reaction.case_id,
            last.c.last_at,
        )
        .join(Reaction, Reaction.id == Condition.reaction_id)
        .join(Case, Case.id == Reaction.case_id)
        .outerjoin(last, last.c.condition_id == Condition.id)
        .where(Condition.every_days.is_not(None), Reaction.status == "active", Case.status.in_(LIVE_CASE))
        .subquery()
    )
    stmt = select(inner).where(
        _no_reminder("condition_due", inner.c.source_id, Reminder.basis_at.is_not_distinct_from(inner.c.last_at))
    )

    def rows(c):
        due = rules.condition_due(c.every_days, c.starts_on, c.last_at)
        agency = rules.assignee("condition_due", "", responsible_agency=c.responsible_agency)
        return [
            reminder_row(
                "condition_due",
                c.case_id,
                due,
                agency,
                "condition",
                c.source_id,
                reaction_id=c.reaction_id,
                basis_at=c.last_at,
            )
        ]

    return stmt, rows


def _no_recent_contact_candidates(now: datetime, settings):
    days = settings.reminder_no_contact_days
    last = select(Event.case_id, func.max(Event.occurred_at).label("last_at")).group_by(Event.case_id).subquery()
    inner = (
        select(Case.id.label("case_id"), Case.lead_agency, Case.opened_at, last.c.last_at)
        .outerjoin(last, last.c.case_id == Case.id)
        .where(Case.status == "active")
        .subquery()
    )
    # the Oslo day boundary is at most a day from the instant: two days of slack, exact in Python
    stmt = select(inner).where(
        func.coalesce(inner.c.last_at, inner.c.opened_at) <= now - timedelta(days=days - 2),
        _no_reminder("no_recent_contact", inner.c.case_id, Reminder.basis_at.is_not_distinct_from(inner.c.last_at)),
    )

    def rows(c):
        due = rules.no_recent_contact(c.opened_at, c.last_at, days)
        if due > now:
            return []
        return [
            reminder_row(
                "no_recent_contact",
                c.case_id,
                due,
                rules.assignee("no_recent_contact", c.lead_agency),
                "case",
                c.case_id,
                basis_at=c.last_at,
            )
        ]

    return stmt, rows


def _reaction_ending_candidates(column):
    def build(now: datetime, settings):
        days = settings.reminder_reaction_ending_days
        today = oslo_today(now)
        stmt = (
            select(Reaction.id, Reaction.case_id, column.label("ends_on"), Case.lead_agency)
            .join(Case, Case.id == Reaction.case_id)
            .where(
                Reaction.status == "active",
                Case.status.in_(LIVE_CASE),
                column.between(today, today + timedelta(days=days)),
                _no_reminder("reaction_ending", Reaction.id, Reminder.basis_on == column),
            )
        )

        def rows(r):
            due = rules.reaction_ending(r.ends_on, days)
            if due > now:
                return []
            return [
                reminder_row(
                    "reaction_ending",
                    r.case_id,
                    due,
                    rules.assignee("reaction_ending", r.lead_agency),
                    "reaction",
                    r.id,
                    reaction_id=r.id,
                    basis_on=r.ends_on,
                )
            ]

        return stmt, rows

    return build


def _consent_expiring_candidates(now: datetime, settings):
    days = settings.reminder_consent_expiring_days
    today = oslo_today(now)
    stmt = (
        select(Consent.id, Consent.case_id, Consent.expires_on, Case.lead_agency)
        .join(Case, Case.id == Consent.case_id)
        .where(
            Consent.withdrawn_at.is_(None),
            Consent.decision == "given",
            Case.status.in_(LIVE_CASE),
            Consent.expires_on.between(today, today + timedelta(days=days)),
            _no_reminder("consent_expiring", Consent.id, Reminder.basis_on == Consent.expires_on),
        )
    )

    def rows(c):
        due = rules.consent_expiring(c.expires_on, days)
        if due > now:
            return []
        return [
            reminder_row(
                "consent_expiring",
                c.case_id,
                due,
                rules.assignee("consent_expiring", c.lead_agency),
                "consent",
                c.id,
                basis_on=c.expires_on,
            )
        ]

    return stmt, rows


def _conversation_candidates(now: datetime, settings):
    days = settings.reminder_conversation_days
    stmt = (
        select(Reaction.id, Reaction.case_id, Reaction.scheduled_at, Case.lead_agency)
        .join(Case, Case.id == Reaction.case_id)
        .where(
            Reaction.type == "concern_conversation",
            Reaction.status.in_(("draft", "active")),
            Reaction.held_at.is_(None),
            Case.status.in_(LIVE_CASE),
            Reaction.scheduled_at > now,
            Reaction.scheduled_at <= now + timedelta(days=days),
            _no_reminder("conversation_scheduled", Reaction.id, Reminder.basis_at == Reaction.scheduled_at),
        )
    )

    def rows(r):
        due = rules.conversation_scheduled(r.scheduled_at, days)
        return [
            reminder_row(
                "conversation_scheduled",
                r.case_id,
                due,
                rules.assignee("conversation_scheduled", r.lead_agency),
                "reaction",
                r.id,
                reaction_id=r.id,
                basis_at=r.scheduled_at,
            )
        ]

    return stmt, rows


def _age_threshold_candidates(now: datetime, settings):
    today = oslo_today(now)
    earliest = today - timedelta(days=CATCH_UP_DAYS)
    # youths whose 16th or 18th birthday falls in [earliest, today] (a day of slack for 29 February)
    bands = [
        Youth.birth_date.between(add_years(earliest, -age) - timedelta(days=1), add_years(today, -age))
        for age in rules.AGE_THRESHOLDS
    ]
    stmt = (
        select(Case.id.label("case_id"), Case.lead_agency, Case.opened_at, Youth.id.label("youth_id"), Youth.birth_date)
        .join(Youth, Youth.id == Case.youth_id)
        .where(
            Case.status.in_(LIVE_CASE),
            or_(*bands),
            ~exists().where(
                Reminder.case_id == Case.id, Reminder.kind == "age_threshold", Reminder.basis_on >= earliest
            ),
        )
    )

    def rows(c):
        found = rules.age_threshold(c.birth_date, rules.oslo_date(c.opened_at), today)
        if found is None:
            return []
        _, due = found
        birthday = rules.oslo_date(due)
        if birthday < earliest:
            return []
        return [
            reminder_row(
                "age_threshold",
                c.case_id,
                due,
                rules.assignee("age_threshold", c.lead_agency),
                "youth",
                c.youth_id,
                basis_on=birthday,
                dedupe_key=rules.dedupe_key("age_threshold", c.case_id, due),
            )
        ]

    return stmt, rows


def _plan_review_candidates(now: datetime, settings):
    months = settings.reminder_plan_review_months
    today = oslo_today(now)
    stmt = (
        select(Reaction.id, Reaction.case_id, Reaction.starts_on, Case.lead_agency)
        .join(Case, Case.id == Reaction.case_id)
        .where(
            Reaction.type == "follow_up_plan",
            Reaction.status == "active",
            Case.status.in_(LIVE_CASE),
            Reaction.starts_on <= rules.add_months(today, -months),
            # a month has at least 28 days: a review within that is this period's
            _no_reminder("plan_review", Reaction.id, Reminder.basis_on > today - timedelta(days=28 * months)),
        )
    )

    def rows(r):
        due = rules.plan_review(r.starts_on, today, months)
        if due is None:
            return []
        return [
            reminder_row(
                "plan_review",
                r.case_id,
                due,
                rules.assignee("plan_review", r.lead_agency),
                "reaction",
                r.id,
                reaction_id=r.id,
                basis_on=rules.oslo_date(due),
            )
        ]

    return stmt, rows


RULES = (
    ("condition_due", _condition_due_candidates, True),
    ("reaction_ending", _reaction_ending_candidates(Reaction.ends_on), False),
    ("reaction_ending_probation", _reaction_ending_candidates(Reaction.probation_ends_on), False),
    ("consent_expiring", _consent_expiring_candidates, False),
    ("no_recent_contact", _no_recent_contact_candidates, True),
    ("conversation_scheduled", _conversation_candidates, False),
    ("age_threshold", _age_threshold_candidates, False),
    ("plan_review", _plan_review_candidates, False),
)
