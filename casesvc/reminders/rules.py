"""The reminder rules: small pure functions from facts to a due time (README "Reminders and webhooks", docs/domain.md).

Nothing here touches the database or the clock: the worker (service.py) gathers the facts and
calls these, and the tests call them directly. Business dates are Europe/Oslo; a reminder that
falls on a date is due at the start of that day in Oslo (00:00 local time), returned in UTC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

from casesvc.common.timeutil import OSLO, add_years
from casesvc.vocabulary import REMINDER_KINDS, REMINDER_STATUSES

KINDS = REMINDER_KINDS
STATUSES = REMINDER_STATUSES
OPEN_STATUSES = ("pending", "acknowledged")
AGE_THRESHOLDS = (16, 18)  # health-law majority; majority: consent rules change (docs/domain.md)
# A drug test that was missed or invalid does not answer the condition: the test is still owed.
UNANSWERED_RESULTS = frozenset({"missed", "invalid"})


def day_start(day: date) -> datetime:
    """The first instant of `day` in Oslo, in UTC (23:00 or 22:00 UTC the day before)."""
    return datetime.combine(day, time(0), tzinfo=OSLO).astimezone(UTC)


def oslo_date(instant: datetime) -> date:
    return instant.astimezone(OSLO).date()


def add_months(day: date, months: int) -> date:
    """Calendar months; the 31st becomes the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --- the rules ----------------------------------------------------------------------------


def answers_condition(kind: str, result: str | None) -> bool:
    """Does an event linked to a condition count as the condition being met?"""
    return not (kind == "drug_test" and result in UNANSWERED_RESULTS)


def condition_due(every_days: int, starts_on: date, last_event_at: datetime | None) -> datetime:
    """`every_days` after the last matching event (its Oslo date), or after `starts_on`."""
    basis = oslo_date(last_event_at) if last_event_at is not None else starts_on
    return day_start(basis + timedelta(days=every_days))


def reaction_ending(ends_on: date, days_before: int) -> datetime:
    """`days_before` (14) before a contract's `ends_on`, or before `probation_ends_on`."""
    return day_start(ends_on - timedelta(days=days_before))


def consent_expiring(expires_on: date, days_before: int) -> datetime:
    return day_start(expires_on - timedelta(days=days_before))


def no_recent_contact(opened_at: datetime, last_event_at: datetime | None, days: int) -> datetime:
    """`days` (30) after the last event on the case, or after it was opened."""
    basis = last_event_at if last_event_at is not None and last_event_at > opened_at else opened_at
    return day_start(oslo_date(basis) + timedelta(days=days))


def conversation_scheduled(scheduled_at: datetime, days_before: int) -> datetime:
    """A concern conversation: `days_before` (1) before the time it is scheduled for."""
    return scheduled_at - timedelta(days=days_before)


def missed_test(occurred_at: datetime) -> datetime:
    """A missed drug test: due the same day (its start in Oslo), to the lead agency."""
    return day_start(oslo_date(occurred_at))


def age_threshold(birth_date: date, case_opened_on: date, today: date) -> tuple[int, datetime] | None:
    """The latest of the youth's 16th and 18th birthdays that has come (today included) since the
    case was opened, with its due time; None when neither has."""
    for age in sorted(AGE_THRESHOLDS, reverse=True):
        birthday = add_years(birth_date, age)
        if case_opened_on <= birthday <= today:
            return age, day_start(birthday)
    return None


def plan_review(starts_on: date, today: date, every_months: int) -> datetime | None:
    """A follow-up plan is reviewed every `every_months` (3) months from its start: the latest
    review date on or before today, or None before the first."""
    latest = None
    n = 1
    while (review := add_months(starts_on, n * every_months)) <= today:
        latest = review
        n += 1
    return day_start(latest) if latest is not None else None


def escalation_due(due_at: datetime, created_at: datetime, days: int) -> datetime:
    """A reminder still pending `days` (3) after it fell due is escalated, at that moment. A
    reminder falls due for its assignee when it is due and exists: one created already overdue
    (the worker had not run, or a backlog on the first run) gives the assignee the same `days`
    before the coordinator is told."""
    return max(due_at, created_at) + timedelta(days=days)


def should_escalate(kind: str, status: str, due_at: datetime, created_at: datetime, now: datetime, days: int) -> bool:
    return kind != "escalation" and status == "pending" and escalation_due(due_at, created_at, days) <= now


# --- who gets it ----------------------------------------------------------------------------


def coordinator_agency(lead_agency: str, participants: list[tuple[str, str]]) -> str:
    """A participant of kind `coordinator` (the first by code), else the lead agency.
    `participants` holds (agency code, agency kind)."""
    coordinators = sorted(code for code, kind in participants if kind == "coordinator")
    return coordinators[0] if coordinators else lead_agency


def assignee(
    kind: str,
    lead_agency: str,
    *,
    responsible_agency: str | None = None,
    coordinator: str | None = None,
    named: str | None = None,
) -> str:
    chosen = {"condition_due": responsible_agency, "escalation": coordinator, "manual": named}.get(kind, lead_agency)
    if chosen is None:  # a caller's mistake: every reminder is some agency's
        raise ValueError(f"a {kind} reminder needs the agency it is for")
    return chosen


# --- identity: what makes a reminder "the same" ----------------------------------------------


def dedupe_key(kind: str, source_id: str, due_at: datetime) -> str:
    """One reminder per (rule, source, due date): a second creation is refused by the database's
    unique index on this key. The date is Oslo's."""
    return f"{kind}:{source_id}:{oslo_date(due_at).isoformat()}"


def escalation_key(reminder_id: str) -> str:
    """An escalation happens once per reminder, whatever its date."""
    return f"escalation:{reminder_id}"


def advisory_lock_id(name: str) -> int:
    """A stable signed 64-bit id for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(f"casesvc.reminders.{name}".encode()).digest()[:8], "big", signed=True)
