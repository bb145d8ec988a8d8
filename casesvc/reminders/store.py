"""Reminder rows: inserting them (with their webhook outbox rows, in the same transaction),
settling them, the open ones, and the SQL twins of the pure rules in `rules.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from casesvc.agencies.models import Agency
from casesvc.cases.models import Participant
from casesvc.common.connection import request_connection
from casesvc.common.db import new_id
from casesvc.common.direct import DirectStatement, change_now
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.reminders import rules, webhooks
from casesvc.reminders.models import Reminder, Webhook, WebhookDelivery

LIVE_CASE = ("open", "active")
OPEN = rules.OPEN_STATUSES


def _dialect() -> str:
    return db.engine.dialect.name


def reminder_row(
    kind: str,
    case_id: str,
    due_at: datetime,
    assignee_agency: str,
    source_type: str,
    source_id: str,
    *,
    reaction_id: str | None = None,
    basis_at: datetime | None = None,
    basis_on=None,
    dedupe_key: str | None = None,
) -> dict:
    """One reminder to insert: what it is, when it is due, who gets it, what caused it, and the
    basis that made it (a source is looked at again only when its basis changes). The dedupe
    key — one per rule, source and due day — defaults to the rule's own."""
    return {
        "case_id": case_id,
        "reaction_id": reaction_id,
        "kind": kind,
        "due_at": due_at,
        "assignee_agency": assignee_agency,
        "source_type": source_type,
        "source_id": source_id,
        "basis_at": basis_at,
        "basis_on": basis_on,
        "dedupe_key": dedupe_key or rules.dedupe_key(kind, source_id, due_at),
    }


def insert_reminders(rows: list[dict], refresh_basis: bool = False, now: datetime | None = None) -> Sequence[Row]:
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
    values = [
        {**dict.fromkeys(columns), "id": new_id(), "created_at": now, "version": 1, "status": "pending", **row}
        for row in unique
    ]
    table = Reminder.__table__
    if _dialect() == "postgresql":
        inserted = _insert_unnest(table, values)
    else:
        # SQLite: one statement, compiled once, run for every row; a row whose key exists is
        # skipped. The ids were made here: the rows that carry them are the ones inserted.
        db.session.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]), values)
        inserted = db.session.execute(
            select(*_inserted_columns(table)).where(table.c.id.in_([v["id"] for v in values]))
        ).all()
    if refresh_basis and len(inserted) < len(values):
        done = {row.dedupe_key for row in inserted}
        stale = [{"k": v["dedupe_key"], "b": v["basis_at"]} for v in values if v["dedupe_key"] not in done]
        db.session.execute(
            update(table)
            .where(table.c.dedupe_key == _bind("k", table.c.dedupe_key))
            .values(basis_at=_bind("b", table.c.basis_at)),
            stale,
        )
    enqueue_deliveries(inserted)
    return inserted


def _inserted_columns(table):
    return (table.c.id, table.c.case_id, table.c.kind, table.c.due_at, table.c.assignee_agency, table.c.dedupe_key)


def _insert_unnest(table, values: list[dict]) -> Sequence[Row]:
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
        params[name] = [
            column_type.process_bind_param(v[name], None) if hasattr(column_type, "process_bind_param") else v[name]
            for v in values
        ]
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)}) "  # noqa: S608 (the model's names)
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
    rows = [
        {
            "id": new_id(),
            "created_at": now,
            "reminder_id": r.id,
            "agency_code": r.assignee_agency,
            "body": webhooks.payload(r.id, r.case_id, r.kind, r.due_at),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": r.due_at,
            "lease_until": None,
            "claim_token": None,
            "finished_at": None,
        }
        for r in reminders
        if r.assignee_agency in hooked
    ]
    if rows:
        db.session.execute(insert(WebhookDelivery.__table__), rows)
    return len(rows)


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
        escalations = db.session.scalars(
            select(Reminder).where(
                Reminder.kind == "escalation", Reminder.source_id.in_(ids), Reminder.status.in_(OPEN)
            )
        ).all()
        for escalation in escalations:
            escalation.status = status
            escalation.settled_at = now
            escalation.settled_by = by
    db.session.flush()
    return len(ids)


def open_reminders(*conditions) -> list[Reminder]:
    return list(
        db.session.scalars(select(Reminder).where(Reminder.status.in_(OPEN), *conditions).order_by(Reminder.id))
    )


def _contact_answered():
    """The open `no_recent_contact` reminders of case `contact_case_id` whose basis (or the case's
    opening, `contact_opened_at`) is older than the contact at `contact_seen_at`: rules.py's
    `seen_at > (basis_at or opened_at)` as SQL. The open statuses are constants (a list expanded
    at execution cannot be sent directly)."""
    table = Reminder.__table__
    return (
        table.c.case_id == bindparam("contact_case_id"),
        table.c.kind == "no_recent_contact",
        or_(*(table.c.status == status for status in OPEN)),
        func.coalesce(table.c.basis_at, bindparam("contact_opened_at", type_=table.c.basis_at.type))
        < bindparam("contact_seen_at", type_=table.c.basis_at.type),
    )


def _settled_by_contact(*where) -> DirectStatement:
    table = Reminder.__table__
    return DirectStatement(
        update(table)
        .where(*where)
        .values(
            status="done",
            settled_at=bindparam("contact_now", type_=table.c.settled_at.type),
            settled_by=bindparam("contact_by", type_=table.c.settled_by.type),
            version=table.c.version + 1,  # as the ORM's version counter would
        )
    )


# every event logged sends these two, as `settle` would (the escalations, then what they escalate),
# on the driver's cursor: held for the event's own statement on PostgreSQL (common/direct.py), which
# runs both on one snapshot, so the first finds what the second settles
_CONTACT_ESCALATIONS_SETTLED = _settled_by_contact(
    Reminder.__table__.c.kind == "escalation",
    or_(*(Reminder.__table__.c.status == status for status in OPEN)),
    Reminder.__table__.c.source_id.in_(select(Reminder.__table__.c.id).where(*_contact_answered())),
)
_CONTACT_SETTLED = _settled_by_contact(*_contact_answered())


def settle_contact(case_id: str, seen_at: datetime, opened_at: datetime, by: str) -> None:
    """Contact with the case at `seen_at` settles its open `no_recent_contact` reminders that it
    answers, and their escalations (`settle`, "done"), in SQL: most events answer none, and none
    is loaded to find that out."""
    params = {
        "contact_case_id": case_id,
        "contact_seen_at": seen_at,
        "contact_opened_at": opened_at,
        "contact_now": utcnow(),
        "contact_by": by,
    }
    conn = request_connection()
    change_now(db.session, _CONTACT_ESCALATIONS_SETTLED, params, conn)
    change_now(db.session, _CONTACT_SETTLED, params, conn)


def last_answer(condition_id: str, case_id: str) -> datetime | None:
    return db.session.scalar(
        select(func.max(Event.occurred_at)).where(
            Event.case_id == case_id, Event.condition_id == condition_id, answers_clause()
        )
    )


def answers_clause():
    """rules.answers_condition as SQL."""
    return or_(Event.kind != "drug_test", Event.result.not_in(sorted(rules.UNANSWERED_RESULTS)))


def participant_kinds(cases: set[str]) -> dict[str, list[tuple[str, str]]]:
    """The (agency code, agency kind) of each case's participants, for `rules.coordinator_agency`."""
    found: dict[str, list[tuple[str, str]]] = {case_id: [] for case_id in cases}
    if cases:
        for case_id, code, kind in db.session.execute(
            select(Participant.case_id, Participant.agency_code, Agency.kind)
            .join(Agency, Agency.code == Participant.agency_code)
            .where(Participant.case_id.in_(sorted(cases)))
        ):
            found[case_id].append((code, kind))
    return found
