"""Reminders: the worker (rules, escalation, webhook delivery), settling when something happens
on a case, and the operations behind the API.

The worker, `run(now)`, is one pass:
1. each rule selects the sources whose reminder is missing — set-based SQL that skips every
   source whose current basis (last event, end date …) already has one, so a pass with nothing
   new reads little — computes the due time with the pure functions of rules.py, and inserts
   with "on conflict do nothing" on the unique (rule, source, due date) key. A webhook outbox row
   goes into the same transaction for each reminder actually inserted;
2. reminders still pending N days after they fell due (were due, and existed) are escalated to
   the case's coordinator agency, once;
3. due outbox rows are claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), POSTed
   with a hard timeout, and the outcome of every attempt recorded; failures are retried with
   exponential backoff counted from the run's `now`, then marked failed.

Concurrency. PostgreSQL: a rule is computed by one worker at a time (a session advisory lock,
tried without waiting: a worker finding it taken leaves that rule to its holder); the unique key
makes a duplicate impossible anyway; outbox rows are claimed with SKIP LOCKED, so concurrent
workers share the deliveries and none is sent twice. A worker that dies after claiming leaves
its rows to be claimed again once the lease has run out (a receiver may then see a delivery
twice: `X-Casesvc-Delivery` names it). SQLite has a single writer: concurrent
runs are serialised by a lock file next to the database file (`<db>.reminders.lock`), so they
are safe but not parallel.
"""
from __future__ import annotations

import fcntl
import logging
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from casesvc.agencies.models import Agency
from casesvc.agencies.service import get_agency
from casesvc.auth.models import User
from casesvc.cases.models import Case, Participant
from casesvc.common.crypto import UnreadableSecret, decrypt_at_rest, encrypt_at_rest
from casesvc.common.db import new_id
from casesvc.common.http import decode_cursor, encode_cursor, filter_equal
from casesvc.common.states import StateMachine
from casesvc.common.timeutil import add_years, oslo_today, rfc3339, utcnow
from casesvc.consents.models import Consent
from casesvc.errors import field_error, not_found, validation_error
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.policy import Principal, Relation, visible_cases_clause
from casesvc.reactions.models import Condition, Reaction
from casesvc.reminders import rules, webhooks
from casesvc.reminders.models import Reminder, Webhook, WebhookAttempt, WebhookDelivery
from casesvc.youths.models import Youth

log = logging.getLogger(__name__)

LIVE_CASE = ("open", "active")
OPEN = rules.OPEN_STATUSES
CHUNK = 500            # reminders inserted (and committed) per transaction
CLAIM_BATCH = 50       # outbox rows claimed at a time
ANALYZE_AFTER = 10_000  # reminders created in one run that call for fresh planner statistics
CATCH_UP_DAYS = 30     # a birthday the worker did not see (it was not run) is still announced this long after

REMINDER_STATES = StateMachine(
    "reminder",
    {"pending": ("acknowledged", "done", "dismissed"), "acknowledged": ("done", "dismissed")},
    needs_reason=frozenset(),
)
ACTIONS = {"ack": "acknowledged", "done": "done", "dismiss": "dismissed"}


def _settings():
    return current_app.config["CASESVC"]


def _dialect() -> str:
    return db.engine.dialect.name


# --- inserting reminders and their outbox rows ------------------------------------------------

def insert_reminders(rows: list[dict], refresh_basis: bool = False, now: datetime | None = None) -> list:
    """Insert what is not there yet; returns the rows inserted (id, case_id, kind, due_at,
    assignee_agency) and queues their webhook deliveries in the same transaction. With
    `refresh_basis`, a reminder that already existed under the same key takes the new basis, so
    the source is not looked at again until its basis changes. `now` is their `created_at`: the
    worker passes its run's time, so a run at --now T is the same whenever it happens."""
    unique = list({row["dedupe_key"]: row for row in rows}.values())
    if not unique:
        return []
    now = now or utcnow()
    columns = sorted({key for row in unique for key in row})
    values = [{**dict.fromkeys(columns), "id": new_id(), "created_at": now, "version": 1, "status": "pending", **row}
              for row in unique]
    table = Reminder.__table__
    if _dialect() == "postgresql":
        inserted = _insert_unnest(table, values)
    else:
        # SQLite: one statement, compiled once, run for every row; a row whose key exists is
        # skipped. The ids were made here: the rows that carry them are the ones inserted.
        db.session.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]), values)
        inserted = db.session.execute(select(*_inserted_columns(table)).where(table.c.id.in_([v["id"] for v in values]))).all()
    if refresh_basis and len(inserted) < len(values):
        done = {row.dedupe_key for row in inserted}
        stale = [{"k": v["dedupe_key"], "b": v["basis_at"]} for v in values if v["dedupe_key"] not in done]
        db.session.execute(update(table).where(table.c.dedupe_key == _bind("k", table.c.dedupe_key))
                           .values(basis_at=_bind("b", table.c.basis_at)), stale)
    enqueue_deliveries(inserted)
    return inserted


def _inserted_columns(table):
    return (table.c.id, table.c.case_id, table.c.kind, table.c.due_at, table.c.assignee_agency, table.c.dedupe_key)


def _insert_unnest(table, values: list[dict]) -> list:
    """PostgreSQL: the whole batch as one statement over arrays (one per column), "on conflict do
    nothing", RETURNING what was inserted — set-based on the server, a handful of parameters
    for the driver, however many rows."""
    columns = list(values[0])
    arrays = []
    params = {}
    for name in columns:
        column_type = table.c[name].type
        sql_type = column_type.impl if hasattr(column_type, "impl") else column_type
        pg_type = sql_type.compile(dialect=db.engine.dialect)
        arrays.append(f"CAST(:{name} AS {pg_type}[])")
        params[name] = [column_type.process_bind_param(v[name], None) if hasattr(column_type, "process_bind_param")
                        else v[name] for v in values]
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)}) "
        f"ON CONFLICT (dedupe_key) DO NOTHING "
        f"RETURNING id, case_id, kind, due_at, assignee_agency, dedupe_key"
    ).columns(*_inserted_columns(table))
    return db.session.execute(statement, params).all()


def _bind(name, column):
    return bindparam(name, type_=column.type)


def enqueue_deliveries(reminders) -> int:
    """Outbox rows for reminders whose agency has a webhook: sent once the reminder is due."""
    agencies = {r.assignee_agency for r in reminders}
    if not agencies:
        return 0
    hooked = set(db.session.scalars(select(Webhook.agency_code).where(Webhook.agency_code.in_(sorted(agencies)))))
    now = utcnow()
    rows = [{"id": new_id(), "created_at": now, "reminder_id": r.id, "agency_code": r.assignee_agency,
             "body": webhooks.payload(r.id, r.case_id, r.kind, r.due_at), "state": "pending", "attempts": 0,
             "next_attempt_at": r.due_at, "lease_until": None, "claim_token": None, "finished_at": None}
            for r in reminders if r.assignee_agency in hooked]
    if rows:
        db.session.execute(insert(WebhookDelivery.__table__), rows)
    return len(rows)


# --- settling ---------------------------------------------------------------------------------

def settle(reminders: list[Reminder], status: str, by: str) -> int:
    """Close open reminders (done or dismissed), and the escalations they raised with them."""
    now = utcnow()
    open_ones = [r for r in reminders if r.status in OPEN]
    for reminder in open_ones:
        reminder.status = status
        reminder.settled_at = now
        reminder.settled_by = by
    ids = [r.id for r in open_ones]
    if ids:
        escalations = db.session.scalars(select(Reminder).where(
            Reminder.kind == "escalation", Reminder.source_id.in_(ids), Reminder.status.in_(OPEN))).all()
        for escalation in escalations:
            escalation.status = status
            escalation.settled_at = now
            escalation.settled_by = by
    db.session.flush()
    return len(ids)


def _open(*conditions) -> list[Reminder]:
    return list(db.session.scalars(select(Reminder).where(Reminder.status.in_(OPEN), *conditions)
                                   .order_by(Reminder.id)))


def _last_answer(condition_id: str, case_id: str) -> datetime | None:
    return db.session.scalar(select(func.max(Event.occurred_at)).where(
        Event.case_id == case_id, Event.condition_id == condition_id, _answers_clause()))


def _answers_clause():
    """rules.answers_condition as SQL."""
    return or_(Event.kind != "drug_test", Event.result.not_in(sorted(rules.UNANSWERED_RESULTS)))


def on_event_logged(event: Event, case: Case) -> None:
    """An event answers the reminders it settles and schedules what follows from it."""
    settings = _settings()
    by = f"event:{event.id}"
    # contact: the case has been seen since the reminder's basis
    stale = [r for r in _open(Reminder.case_id == case.id, Reminder.kind == "no_recent_contact")
             if event.occurred_at > (r.basis_at or case.opened_at)]
    settle(stale, "done", by)
    if event.condition_id is not None and rules.answers_condition(event.kind, event.result):
        _condition_answered(event, case, settings, by)
    if event.reaction_id is not None and event.kind in ("conversation", "meeting"):
        settle(_open(Reminder.reaction_id == event.reaction_id, Reminder.kind == "conversation_scheduled"),
               "done", by)
    if event.kind == "drug_test" and event.result == "missed":
        due = rules.missed_test(event.occurred_at)
        insert_reminders([{
            "case_id": case.id, "reaction_id": event.reaction_id, "kind": "missed_test", "due_at": due,
            "assignee_agency": rules.assignee("missed_test", case.lead_agency), "source_type": "event",
            "source_id": event.id, "basis_at": event.occurred_at,
            "dedupe_key": rules.dedupe_key("missed_test", event.id, due)}])


def _condition_answered(event: Event, case: Case, settings, by: str) -> None:
    condition = db.session.get(Condition, event.condition_id)
    reaction = condition.reaction
    last = _last_answer(condition.id, case.id)
    pending = _open(Reminder.source_id == condition.id, Reminder.kind == "condition_due")
    if condition.every_days is None or reaction.status != "active" or case.status not in LIVE_CASE:
        settle(pending, "done", by)
        return
    due = rules.condition_due(condition.every_days, reaction.starts_on, last)
    key = rules.dedupe_key("condition_due", condition.id, due)
    # the reminder for the same date stays (an older event logged late changes nothing)
    keep = [r for r in pending if r.dedupe_key == key]
    for reminder in keep:
        reminder.basis_at = last
    settle([r for r in pending if r.dedupe_key != key], "done", by)
    if not keep:
        insert_reminders([{
            "case_id": case.id, "reaction_id": reaction.id, "kind": "condition_due", "due_at": due,
            "assignee_agency": condition.responsible_agency, "source_type": "condition",
            "source_id": condition.id, "basis_at": last, "dedupe_key": key}], refresh_basis=True)


def on_case_closed(case: Case) -> None:
    settle(_open(Reminder.case_id == case.id), "dismissed", "case-closed")


def on_reaction_closed(reaction: Reaction) -> None:
    settle(_open(Reminder.reaction_id == reaction.id), "dismissed", "reaction-closed")


def on_reaction_changed(reaction: Reaction) -> None:
    """A PATCH moved the reaction's dates: open reminders made for the old dates no longer hold.
    An end reminder whose end (or end of probation) moved is dismissed, and the worker reminds
    of the new date when it is due. A conversation reminder is done once the conversation has
    been held; if the conversation moved within the reminder's day it follows it, and if it
    moved to another day it is dismissed (reminders are one per rule, source and day)."""
    ends = {reaction.ends_on, reaction.probation_ends_on} - {None}
    days = _settings().reminder_conversation_days
    for reminder in _open(Reminder.reaction_id == reaction.id,
                          Reminder.kind.in_(("reaction_ending", "conversation_scheduled"))):
        if reminder.kind == "reaction_ending":
            if reminder.basis_on not in ends:
                settle([reminder], "dismissed", "reaction-rescheduled")
        elif reaction.held_at is not None:
            settle([reminder], "done", "conversation-held")
        elif reminder.basis_at != reaction.scheduled_at:
            due = rules.conversation_scheduled(reaction.scheduled_at, days) if reaction.scheduled_at else None
            if due is not None and rules.dedupe_key(reminder.kind, reaction.id, due) == reminder.dedupe_key:
                reminder.due_at, reminder.basis_at = due, reaction.scheduled_at
            else:
                settle([reminder], "dismissed", "reaction-rescheduled")
    db.session.flush()


def on_consent_withdrawn(consent: Consent) -> None:
    settle(_open(Reminder.source_id == consent.id, Reminder.kind == "consent_expiring"), "dismissed",
           "consent-withdrawn")


# --- the worker: rules ------------------------------------------------------------------------

def _no_reminder(kind: str, source_column, *conditions):
    return ~exists().where(Reminder.source_id == source_column, Reminder.kind == kind, *conditions)


def _condition_due_candidates(now: datetime, settings):
    # the last answering event of every condition, aggregated once (hash joins, not a probe per row)
    last = (select(Event.condition_id, func.max(Event.occurred_at).label("last_at"))
            .where(Event.condition_id.is_not(None), _answers_clause())
            .group_by(Event.condition_id).subquery())
    inner = (select(Condition.id.label("source_id"), Condition.every_days, Condition.responsible_agency,
                    Reaction.id.label("reaction_id"), Reaction.starts_on, Reaction.case_id, last.c.last_at)
             .join(Reaction, Reaction.id == Condition.reaction_id)
             .join(Case, Case.id == Reaction.case_id)
             .outerjoin(last, last.c.condition_id == Condition.id)
             .where(Condition.every_days.is_not(None), Reaction.status == "active", Case.status.in_(LIVE_CASE))
             .subquery())
    stmt = select(inner).where(_no_reminder("condition_due", inner.c.source_id,
                                            Reminder.basis_at.is_not_distinct_from(inner.c.last_at)))

    def rows(c):
        due = rules.condition_due(c.every_days, c.starts_on, c.last_at)
        return [{"case_id": c.case_id, "reaction_id": c.reaction_id, "kind": "condition_due", "due_at": due,
                 "assignee_agency": rules.assignee("condition_due", "", responsible_agency=c.responsible_agency),
                 "source_type": "condition", "source_id": c.source_id, "basis_at": c.last_at,
                 "dedupe_key": rules.dedupe_key("condition_due", c.source_id, due)}]
    return stmt, rows


def _no_recent_contact_candidates(now: datetime, settings):
    days = settings.reminder_no_contact_days
    last = (select(Event.case_id, func.max(Event.occurred_at).label("last_at"))
            .group_by(Event.case_id).subquery())
    inner = (select(Case.id.label("case_id"), Case.lead_agency, Case.opened_at, last.c.last_at)
             .outerjoin(last, last.c.case_id == Case.id)
             .where(Case.status == "active").subquery())
    # the Oslo day boundary is at most a day from the instant: two days of slack, exact in Python
    stmt = select(inner).where(
        func.coalesce(inner.c.last_at, inner.c.opened_at) <= now - timedelta(days=days - 2),
        _no_reminder("no_recent_contact", inner.c.case_id, Reminder.basis_at.is_not_distinct_from(inner.c.last_at)))

    def rows(c):
        due = rules.no_recent_contact(c.opened_at, c.last_at, days)
        if due > now:
            return []
        return [{"case_id": c.case_id, "kind": "no_recent_contact", "due_at": due,
                 "assignee_agency": rules.assignee("no_recent_contact", c.lead_agency), "source_type": "case",
                 "source_id": c.case_id, "basis_at": c.last_at,
                 "dedupe_key": rules.dedupe_key("no_recent_contact", c.case_id, due)}]
    return stmt, rows


def _reaction_ending_candidates(column):
    def build(now: datetime, settings):
        days = settings.reminder_reaction_ending_days
        today = oslo_today(now)
        stmt = (select(Reaction.id, Reaction.case_id, column.label("ends_on"), Case.lead_agency)
                .join(Case, Case.id == Reaction.case_id)
                .where(Reaction.status == "active", Case.status.in_(LIVE_CASE),
                       column.between(today, today + timedelta(days=days)),
                       _no_reminder("reaction_ending", Reaction.id, Reminder.basis_on == column)))

        def rows(r):
            due = rules.reaction_ending(r.ends_on, days)
            if due > now:
                return []
            return [{"case_id": r.case_id, "reaction_id": r.id, "kind": "reaction_ending", "due_at": due,
                     "assignee_agency": rules.assignee("reaction_ending", r.lead_agency), "source_type": "reaction",
                     "source_id": r.id, "basis_on": r.ends_on,
                     "dedupe_key": rules.dedupe_key("reaction_ending", r.id, due)}]
        return stmt, rows
    return build


def _consent_expiring_candidates(now: datetime, settings):
    days = settings.reminder_consent_expiring_days
    today = oslo_today(now)
    stmt = (select(Consent.id, Consent.case_id, Consent.expires_on, Case.lead_agency)
            .join(Case, Case.id == Consent.case_id)
            .where(Consent.withdrawn_at.is_(None), Consent.decision == "given", Case.status.in_(LIVE_CASE),
                   Consent.expires_on.between(today, today + timedelta(days=days)),
                   _no_reminder("consent_expiring", Consent.id, Reminder.basis_on == Consent.expires_on)))

    def rows(c):
        due = rules.consent_expiring(c.expires_on, days)
        if due > now:
            return []
        return [{"case_id": c.case_id, "kind": "consent_expiring", "due_at": due,
                 "assignee_agency": rules.assignee("consent_expiring", c.lead_agency), "source_type": "consent",
                 "source_id": c.id, "basis_on": c.expires_on,
                 "dedupe_key": rules.dedupe_key("consent_expiring", c.id, due)}]
    return stmt, rows


def _conversation_candidates(now: datetime, settings):
    days = settings.reminder_conversation_days
    stmt = (select(Reaction.id, Reaction.case_id, Reaction.scheduled_at, Case.lead_agency)
            .join(Case, Case.id == Reaction.case_id)
            .where(Reaction.type == "concern_conversation", Reaction.status.in_(("draft", "active")),
                   Reaction.held_at.is_(None), Case.status.in_(LIVE_CASE),
                   Reaction.scheduled_at > now, Reaction.scheduled_at <= now + timedelta(days=days),
                   _no_reminder("conversation_scheduled", Reaction.id,
                                Reminder.basis_at == Reaction.scheduled_at)))

    def rows(r):
        due = rules.conversation_scheduled(r.scheduled_at, days)
        return [{"case_id": r.case_id, "reaction_id": r.id, "kind": "conversation_scheduled", "due_at": due,
                 "assignee_agency": rules.assignee("conversation_scheduled", r.lead_agency),
                 "source_type": "reaction", "source_id": r.id, "basis_at": r.scheduled_at,
                 "dedupe_key": rules.dedupe_key("conversation_scheduled", r.id, due)}]
    return stmt, rows


def _age_threshold_candidates(now: datetime, settings):
    today = oslo_today(now)
    earliest = today - timedelta(days=CATCH_UP_DAYS)
    # youths whose 16th or 18th birthday falls in [earliest, today] (a day of slack for 29 February)
    bands = [Youth.birth_date.between(add_years(earliest, -age) - timedelta(days=1), add_years(today, -age))
             for age in rules.AGE_THRESHOLDS]
    stmt = (select(Case.id.label("case_id"), Case.lead_agency, Case.opened_at, Youth.id.label("youth_id"),
                   Youth.birth_date)
            .join(Youth, Youth.id == Case.youth_id)
            .where(Case.status.in_(LIVE_CASE), or_(*bands),
                   ~exists().where(Reminder.case_id == Case.id, Reminder.kind == "age_threshold",
                                   Reminder.basis_on >= earliest)))

    def rows(c):
        found = rules.age_threshold(c.birth_date, rules.oslo_date(c.opened_at), today)
        if found is None:
            return []
        _, due = found
        birthday = rules.oslo_date(due)
        if birthday < earliest:
            return []
        return [{"case_id": c.case_id, "kind": "age_threshold", "due_at": due,
                 "assignee_agency": rules.assignee("age_threshold", c.lead_agency), "source_type": "youth",
                 "source_id": c.youth_id, "basis_on": birthday,
                 "dedupe_key": rules.dedupe_key("age_threshold", c.case_id, due)}]
    return stmt, rows


def _plan_review_candidates(now: datetime, settings):
    months = settings.reminder_plan_review_months
    today = oslo_today(now)
    stmt = (select(Reaction.id, Reaction.case_id, Reaction.starts_on, Case.lead_agency)
            .join(Case, Case.id == Reaction.case_id)
            .where(Reaction.type == "follow_up_plan", Reaction.status == "active", Case.status.in_(LIVE_CASE),
                   Reaction.starts_on <= rules.add_months(today, -months),
                   # a month has at least 28 days: a review within that is this period's
                   _no_reminder("plan_review", Reaction.id,
                                Reminder.basis_on > today - timedelta(days=28 * months))))

    def rows(r):
        due = rules.plan_review(r.starts_on, today, months)
        if due is None:
            return []
        return [{"case_id": r.case_id, "reaction_id": r.id, "kind": "plan_review", "due_at": due,
                 "assignee_agency": rules.assignee("plan_review", r.lead_agency), "source_type": "reaction",
                 "source_id": r.id, "basis_on": rules.oslo_date(due),
                 "dedupe_key": rules.dedupe_key("plan_review", r.id, due)}]
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


@contextmanager
def _rule_lock(name: str):
    """Yields a connection to read candidates on, or None when another worker holds the rule
    (PostgreSQL advisory lock, tried without waiting)."""
    with db.engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            yield conn
            return
        lock = rules.advisory_lock_id(name)
        if not conn.execute(select(func.pg_try_advisory_lock(lock))).scalar():
            conn.rollback()
            yield None
            return
        try:
            # The candidates are read through a cursor while this worker inserts reminders on
            # another connection. A nested-loop anti-join against `reminders` — what the planner
            # picks while the table is new or small — would rescan the growing table for every
            # candidate (quadratic); hash joins read it once. Plan for reading every row (a
            # cursor's default favours the first ones), and skip JIT, which costs more than it saves.
            conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
            conn.exec_driver_sql("SET LOCAL jit = off")
            yield conn
        finally:
            conn.rollback()
            conn.execute(select(func.pg_advisory_unlock(lock)))
            conn.commit()


def _apply_rule(name: str, build, refresh_basis: bool, now: datetime, settings) -> int:
    stmt, to_rows = build(now, settings)
    created = 0
    with _rule_lock(name) as conn:
        if conn is None:
            return 0
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(stmt)
        for part in result.partitions(CHUNK):
            rows = [row for candidate in part for row in to_rows(candidate)]
            try:
                created += len(insert_reminders(rows, refresh_basis=refresh_basis, now=now))
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
        result.close()
    return created


def _escalate(now: datetime, settings) -> int:
    days = settings.reminder_escalation_days
    coordinator = (select(func.min(Participant.agency_code))
                   .join(Agency, Agency.code == Participant.agency_code)
                   .where(Participant.case_id == Case.id, Agency.kind == "coordinator").scalar_subquery())
    cutoff = now - timedelta(days=days)
    stmt = (select(Reminder.id, Reminder.case_id, Reminder.reaction_id, Reminder.due_at, Reminder.created_at,
                   func.coalesce(coordinator, Case.lead_agency).label("coordinator"))
            .join(Case, Case.id == Reminder.case_id)
            # rules.should_escalate: max(due_at, created_at) + days <= now
            .where(Reminder.status == "pending", Reminder.kind != "escalation", Reminder.escalated_at.is_(None),
                   Reminder.due_at <= cutoff, Reminder.created_at <= cutoff)
            .order_by(Reminder.id))
    created = 0
    with _rule_lock("escalation") as conn:
        if conn is None:
            return 0
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(stmt)
        for part in result.partitions(CHUNK):
            rows = [{"case_id": r.case_id, "reaction_id": r.reaction_id, "kind": "escalation",
                     "due_at": rules.escalation_due(r.due_at, r.created_at, days),
                     "assignee_agency": rules.assignee("escalation", "", coordinator=r.coordinator),
                     "source_type": "reminder", "source_id": r.id, "dedupe_key": rules.escalation_key(r.id)}
                    for r in part]
            try:
                created += len(insert_reminders(rows, now=now))
                db.session.execute(update(Reminder.__table__)
                                   .where(Reminder.__table__.c.id.in_([r.id for r in part]))
                                   .values(escalated_at=now))
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
        result.close()
    return created


# --- the worker: deliveries -------------------------------------------------------------------

def _claimable(now: datetime):
    return and_(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now))


def claim(now: datetime, settings, limit: int = CLAIM_BATCH) -> tuple[str, list, int]:
    """Lease up to `limit` due outbox rows to this worker and commit; rows whose reminder is no
    longer pending, or whose agency dropped its webhook, are cancelled instead. Returns the
    lease token, the rows to send, and how many rows were taken in all."""
    token = new_id()
    ids = list(db.session.scalars(
        select(WebhookDelivery.id).where(_claimable(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
        .with_for_update(skip_locked=True)))
    if not ids:
        db.session.commit()
        return token, [], 0
    table = WebhookDelivery.__table__
    db.session.execute(update(table).where(table.c.id.in_(ids))
                       .values(lease_until=now + timedelta(seconds=settings.webhook_lease_seconds),
                               claim_token=token))
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.reminder_id, WebhookDelivery.agency_code, WebhookDelivery.body,
               WebhookDelivery.attempts, Reminder.status.label("reminder_status"), Webhook.url, Webhook.secret)
        .join(Reminder, Reminder.id == WebhookDelivery.reminder_id)
        .outerjoin(Webhook, Webhook.agency_code == WebhookDelivery.agency_code)
        .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)).all()
    cancelled = [r.id for r in rows if r.reminder_status != "pending" or r.url is None]
    if cancelled:
        db.session.execute(update(table).where(table.c.id.in_(cancelled))
                           .values(state="cancelled", finished_at=now, lease_until=None, claim_token=None))
    db.session.commit()
    return token, [r for r in rows if r.id not in set(cancelled)], len(ids)


def deliver(now: datetime, settings, token: str, batch: list) -> dict:
    """POST a claimed batch and record each attempt; only the lease holder moves a row on."""
    production = settings.env == "production"
    stamp = int(utcnow().timestamp())
    jobs, sent = [], []
    results: list[webhooks.Attempt | None] = [None] * len(batch)
    for index, row in enumerate(batch):
        try:
            secret = decrypt_at_rest(row.secret)
        except UnreadableSecret:  # nothing unsigned ever leaves: the attempt fails, set the webhook again
            results[index] = webhooks.Attempt(False, None, "the webhook's secret cannot be read: set the webhook again")
            continue
        body, headers = webhooks.signed_request(secret, row.body.encode(), row.id, stamp)
        jobs.append((row.url, body, headers))
        sent.append(index)
    # the target is checked again at each attempt (in production a name may come to point inward)
    for index, result in zip(sent, webhooks.send_all(jobs, settings.webhook_timeout, settings.webhook_concurrency,
                                                     vetting=lambda url: webhooks.vet(url, production))):
        results[index] = result
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    table = WebhookDelivery.__table__
    for row, result in zip(batch, results):
        attempts = row.attempts + 1
        outcome = webhooks.outcome_after(result.ok, attempts, settings.webhook_max_attempts)
        next_at = (now + timedelta(seconds=webhooks.backoff_seconds(
            attempts, settings.webhook_backoff_seconds, settings.webhook_backoff_max_seconds))
            if outcome == "retrying" else None)
        values = {"attempts": attempts, "lease_until": None, "claim_token": None,
                  "state": "pending" if outcome == "retrying" else outcome}
        if next_at is not None:
            values["next_attempt_at"] = next_at
        else:
            values["finished_at"] = now
        moved = db.session.execute(update(table).where(table.c.id == row.id, table.c.claim_token == token)
                                   .values(**values)).rowcount
        db.session.add(WebhookAttempt(delivery_id=row.id, reminder_id=row.reminder_id, agency_code=row.agency_code,
                                      attempt=attempts, attempted_at=now, status_code=result.status_code,
                                      outcome=outcome, error=result.error, next_attempt_at=next_at))
        if not moved:  # the lease ran out and another worker took the row: it decides what happens next
            log.warning("webhook delivery %s: lease lost before the outcome was recorded", row.id)
        counts[outcome] += 1
    db.session.commit()
    return counts


def deliver_due(now: datetime, settings) -> dict:
    totals = {"delivered": 0, "retrying": 0, "failed": 0}
    while True:
        token, batch, taken = claim(now, settings)
        if not taken:
            return totals
        if batch:
            for outcome, n in deliver(now, settings, token, batch).items():
                totals[outcome] += n


@contextmanager
def _run_lock():
    """SQLite: one run at a time, machine-wide, through a lock file beside the database."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        yield
        return
    database = url.database
    path = (Path(database + ".reminders.lock") if database and database != ":memory:"
            else Path(tempfile.gettempdir()) / "casesvc-reminders.lock")
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(now: datetime | None = None, settings=None) -> dict:
    """One pass of the worker at `now` (default: the current time)."""
    now = now or utcnow()
    settings = settings or _settings()
    created: dict[str, int] = {}
    with _run_lock():
        for name, build, refresh in RULES:
            kind = "reaction_ending" if name.startswith("reaction_ending") else name
            created[kind] = created.get(kind, 0) + _apply_rule(name, build, refresh, now, settings)
        created["escalation"] = _escalate(now, settings)
        deliveries = deliver_due(now, settings)
    if sum(created.values()) >= ANALYZE_AFTER:
        _analyze()
    return {"now": rfc3339(now), "created": created, "deliveries": deliveries}


def _analyze() -> None:
    """After a large batch (the first run on existing data), fresh planner statistics: the next
    run's anti-joins are planned for the table as it now is, not as it was before."""
    if _dialect() != "postgresql":
        return
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE reminders, webhook_deliveries")
            conn.commit()
    except Exception:  # statistics are an optimisation; autovacuum gets there too
        log.warning("ANALYZE after the reminders run failed", exc_info=True)


# --- the API: reminders -----------------------------------------------------------------------

def _visible(principal: Principal, now: datetime):
    return and_(Reminder.assignee_agency == principal.agency, visible_cases_clause(principal, oslo_today(now)))


def _page(stmt, column, limit: int, cursor: str | None, descending: bool) -> dict:
    """Keyset pagination on (column, id)."""
    if cursor:
        at, ident = decode_cursor(cursor)
        after = (or_(column < at, and_(column == at, Reminder.id < ident)) if descending
                 else or_(column > at, and_(column == at, Reminder.id > ident)))
        stmt = stmt.where(after)
    id_column = Reminder.id
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    rows = list(db.session.scalars(stmt.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(getattr(last, column.key), last.id)
    return {"items": rows[:limit], "next_cursor": next_cursor}


def list_reminders(principal: Principal, args: dict) -> dict:
    """The caller's agency's reminders on cases its users may see, soonest first."""
    stmt = filter_equal(select(Reminder).join(Case, Case.id == Reminder.case_id).where(_visible(principal, utcnow())),
                        Reminder, args, ("status", "kind", "case_id"))
    if args.get("due_before"):
        stmt = stmt.where(Reminder.due_at < args["due_before"])
    return _page(stmt, Reminder.due_at, args["limit"], args.get("cursor"), descending=False)


def reminder_for(principal: Principal, reminder_id: str) -> Reminder:
    """A reminder of the caller's agency on a case they may see; anything else is 404."""
    from casesvc.cases.service import access_to

    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.assignee_agency != principal.agency:
        raise not_found("reminder")
    case = db.session.get(Case, reminder.case_id)
    if access_to(principal, case).relation not in (Relation.LEAD, Relation.SHARED):
        raise not_found("reminder")
    return reminder


def act(principal: Principal, reminder: Reminder, action: str) -> Reminder:
    """ack, done or dismiss (409 with the allowed moves otherwise)."""
    target = ACTIONS[action]
    REMINDER_STATES.check(reminder.status, target, None)
    if target == "acknowledged":
        reminder.status = target
        reminder.assignee_user = reminder.assignee_user or principal.subject
        db.session.flush()
        return reminder
    settle([reminder], target, principal.subject)
    return reminder


def snooze(principal: Principal, reminder: Reminder, until: datetime) -> Reminder:
    """Pending again, due at `until`; its webhook goes out then."""
    if reminder.status not in OPEN:
        REMINDER_STATES.check(reminder.status, "pending", None)
    if until <= utcnow():
        raise field_error("until", "Must be in the future.")
    reminder.status = "pending"
    reminder.due_at = until
    waiting = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.reminder_id == reminder.id, WebhookDelivery.state == "pending",
        WebhookDelivery.attempts == 0)).all()
    body = webhooks.payload(reminder.id, reminder.case_id, reminder.kind, until)
    for delivery in waiting:
        delivery.next_attempt_at = until
        delivery.body = body
    db.session.flush()
    if not waiting:
        enqueue_deliveries([reminder])
    return reminder


def create_manual(principal: Principal, case: Case, data: dict) -> Reminder:
    from casesvc.cases.service import require_open

    require_open(case)
    agency = data.get("assignee_agency") or principal.agency
    errors: dict[str, list[str]] = {}
    if agency not in case.participant_codes:
        errors["assignee_agency"] = ["Must be an agency participating in the case."]
    user_id = data.get("assignee_user")
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or not user.active or user.agency_code != agency:
            errors["assignee_user"] = ["Must be an active user of the assignee agency."]
    if errors:
        raise validation_error(errors)
    reminder_id = new_id()
    reminder = Reminder(id=reminder_id, case_id=case.id, kind="manual", due_at=data["due_at"], assignee_agency=agency,
                        assignee_user=user_id, status="pending", source_type="user", source_id=principal.subject,
                        dedupe_key=f"manual:{reminder_id}", text=data.get("text"), created_by=principal.subject)
    db.session.add(reminder)
    db.session.flush()
    enqueue_deliveries([reminder])
    return reminder


def calendar(principal: Principal) -> bytes:
    """The caller's pending reminders as RFC 5545: ids and kinds only — a calendar is often synced
    to phones, so no names, summaries or text."""
    import icalendar

    now = utcnow()
    cal = icalendar.Calendar()
    cal.add("prodid", "-//casesvc//reminders//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "casesvc reminders")
    stmt = (select(Reminder.id, Reminder.case_id, Reminder.kind, Reminder.due_at, Reminder.version)
            .join(Case, Case.id == Reminder.case_id)
            .where(_visible(principal, now), Reminder.status == "pending").order_by(Reminder.due_at, Reminder.id))
    for row in db.session.execute(stmt):
        event = icalendar.Event()
        event.add("uid", f"{row.id}@casesvc")
        event.add("dtstamp", now)
        event.add("dtstart", row.due_at)
        event.add("duration", timedelta(minutes=30))
        event.add("summary", f"casesvc: {row.kind}")
        event.add("description", f"reminder {row.id}\ncase {row.case_id}")
        event.add("categories", [row.kind])
        event.add("sequence", row.version)
        cal.add_component(event)
    return cal.to_ical()


def cases_due_before_template():
    """For GET /cases?due_before=: the case has a pending reminder due before `due_before` (a bind
    parameter), whichever agency it is assigned to (CONTRACT §4). Which cases the caller sees is
    the access policy's business, not this filter's."""
    reminders = Reminder.__table__.c
    return exists().where(reminders.case_id == Case.__table__.c.id, reminders.status == "pending",
                          reminders.due_at < bindparam("due_before", type_=reminders.due_at.type))


# --- the API: webhooks (admin) ----------------------------------------------------------------

def get_webhook(code: str) -> Webhook:
    get_agency(code)
    webhook = db.session.get(Webhook, code)
    if webhook is None:
        raise not_found("webhook")
    return webhook


def put_webhook(code: str, data: dict) -> tuple[Webhook, bool]:
    """Set or replace the agency's webhook; returns (webhook, created). Reminders already waiting
    for a future due time are queued for it, so a webhook set today hears of next week's tests."""
    get_agency(code)
    settings = _settings()
    problem = webhooks.url_problem(data["url"], settings.env == "production")
    errors: dict[str, list[str]] = {}
    if problem:
        errors["url"] = [problem]
    if not webhooks.MIN_SECRET_LENGTH <= len(data["secret"]) <= 255:
        errors["secret"] = [f"Must be {webhooks.MIN_SECRET_LENGTH} to 255 characters."]
    if errors:
        raise validation_error(errors)
    now = utcnow()
    webhook = db.session.get(Webhook, code)
    created = webhook is None
    if created:
        webhook = Webhook(agency_code=code, url=data["url"], secret=encrypt_at_rest(data["secret"]), created_at=now,
                          updated_at=now)
        db.session.add(webhook)
        db.session.flush()
        upcoming = db.session.execute(
            select(Reminder.id, Reminder.case_id, Reminder.kind, Reminder.due_at, Reminder.assignee_agency)
            .where(Reminder.assignee_agency == code, Reminder.status == "pending", Reminder.due_at > now,
                   ~exists().where(WebhookDelivery.reminder_id == Reminder.id,
                                   WebhookDelivery.state == "pending"))).all()
        enqueue_deliveries(upcoming)
    else:
        webhook.url = data["url"]
        webhook.secret = encrypt_at_rest(data["secret"])
        webhook.updated_at = now
        db.session.flush()
    return webhook, created


def delete_webhook(code: str) -> None:
    webhook = get_webhook(code)
    table = WebhookDelivery.__table__
    db.session.execute(update(table).where(table.c.agency_code == code, table.c.state == "pending")
                       .values(state="cancelled", finished_at=utcnow(), lease_until=None, claim_token=None))
    db.session.delete(webhook)
    db.session.flush()


def list_attempts(code: str, args: dict) -> dict:
    get_agency(code)
    stmt = select(WebhookAttempt).where(WebhookAttempt.agency_code == code)
    if args.get("outcome"):
        stmt = stmt.where(WebhookAttempt.outcome == args["outcome"])
    if args.get("reminder_id"):
        stmt = stmt.where(WebhookAttempt.reminder_id == args["reminder_id"])
    cursor = args.get("cursor")
    if cursor:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(WebhookAttempt.attempted_at < at,
                              and_(WebhookAttempt.attempted_at == at, WebhookAttempt.id < ident)))
    limit = args["limit"]
    rows = list(db.session.scalars(stmt.order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
                                   .limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].attempted_at, rows[limit - 1].id) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


# --- metrics ----------------------------------------------------------------------------------

def metric_counts(now: datetime | None = None) -> dict:
    now = now or utcnow()
    pending = db.session.scalar(select(func.count()).select_from(Reminder).where(Reminder.status == "pending"))
    overdue = db.session.scalar(select(func.count()).select_from(Reminder).where(
        Reminder.status == "pending", Reminder.due_at <= now))
    escalated = db.session.scalar(select(func.count()).select_from(Reminder).where(
        Reminder.kind == "escalation", Reminder.status == "pending"))
    outcomes = dict(db.session.execute(select(WebhookAttempt.outcome, func.count())
                                       .group_by(WebhookAttempt.outcome)).all())
    return {"pending": pending, "overdue": overdue, "escalated": escalated, "attempts": outcomes}


def on_emergency_access_opened(access, case) -> None:
    """An emergency access asks the lead agency to review it: due at once (CONTRACT §10)."""
    kind = "emergency_access_review"
    insert_reminders([{"case_id": case.id, "kind": kind, "due_at": access.started_at,
                       "assignee_agency": rules.assignee(kind, case.lead_agency), "source_type": "emergency_access",
                       "source_id": access.id, "basis_at": access.started_at,
                       "dedupe_key": rules.dedupe_key(kind, access.id, access.started_at)}])
