"""The reminders worker, `casesvc reminders run`: one pass is

1. each rule of `candidates.py` inserts the reminders that are missing ("on conflict do nothing"
   on the unique rule–source–day key), with a webhook outbox row for each reminder actually
   inserted, in the same transaction;
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
twice: `X-Casesvc-Delivery` names it). SQLite has a single writer: concurrent runs are
serialised by a lock file next to the database file (`<db>.reminders.lock`), so they are safe
but not parallel.
"""

from __future__ import annotations

import fcntl
import logging
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, and_, func, or_, select, update

from casesvc.cases.models import Case
from casesvc.common.crypto import UnreadableSecret, decrypt_at_rest
from casesvc.common.db import new_id
from casesvc.common.timeutil import rfc3339, utcnow
from casesvc.extensions import db
from casesvc.reminders import isolation, rules, webhooks
from casesvc.reminders.candidates import RULES
from casesvc.reminders.models import Reminder, Webhook, WebhookAttempt, WebhookDelivery
from casesvc.reminders.store import insert_reminders, participant_kinds, reminder_row

log = logging.getLogger(__name__)

CHUNK = 500  # reminders inserted (and committed) per transaction
CLAIM_BATCH = 50  # outbox rows claimed at a time
ANALYZE_AFTER = 10_000  # reminders created in one run that call for fresh planner statistics


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


def _in_chunks(name: str, stmt, work) -> int:
    """Stream `stmt`'s rows under the lock of rule `name`, CHUNK at a time; `work(rows)` writes
    for one chunk and returns how many reminders it made. Each chunk commits on its own, so a
    large first run holds no long transaction. 0 when another worker holds the rule."""
    created = 0
    with _rule_lock(name) as conn:
        if conn is None:
            return 0
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(stmt)
        for part in result.partitions(CHUNK):
            try:
                created += work(part)
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
        result.close()
    return created


def _apply_rule(name: str, build, refresh_basis: bool, now: datetime, settings, failed: dict | None = None) -> int:
    """One rule's reminders; a source whose rows cannot be made is skipped, logged and counted in
    `failed` (reminders/isolation.py), and the rest go on."""
    stmt, to_rows = build(now, settings)
    return _in_chunks(
        name,
        stmt,
        lambda part: len(
            insert_reminders(
                isolation.rows_of(name, part, to_rows, {} if failed is None else failed),
                refresh_basis=refresh_basis,
                now=now,
            )
        ),
    )


def _escalate(now: datetime, settings) -> int:
    """Reminders still pending `reminder_escalation_days` after they fell due go, once, to the
    case's coordinator agency. The SQL narrows to the candidates the index finds (the twin of
    `rules.should_escalate`); the pure rules decide each one and who gets it."""
    days = settings.reminder_escalation_days
    cutoff = now - timedelta(days=days)
    stmt = (
        select(
            Reminder.id,
            Reminder.kind,
            Reminder.status,
            Reminder.case_id,
            Reminder.reaction_id,
            Reminder.due_at,
            Reminder.created_at,
            Case.lead_agency,
        )
        .join(Case, Case.id == Reminder.case_id)
        .where(
            Reminder.status == "pending",
            Reminder.kind != "escalation",
            Reminder.escalated_at.is_(None),
            Reminder.due_at <= cutoff,
            Reminder.created_at <= cutoff,
        )
        .order_by(Reminder.id)
    )

    def escalate(part) -> int:
        due = [r for r in part if rules.should_escalate(r.kind, r.status, r.due_at, r.created_at, now, days)]
        participants = participant_kinds({r.case_id for r in due})
        rows = [
            reminder_row(
                "escalation",
                r.case_id,
                rules.escalation_due(r.due_at, r.created_at, days),
                rules.assignee(
                    "escalation", "", coordinator=rules.coordinator_agency(r.lead_agency, participants[r.case_id])
                ),
                "reminder",
                r.id,
                reaction_id=r.reaction_id,
                dedupe_key=rules.escalation_key(r.id),
            )
            for r in due
        ]
        created = len(insert_reminders(rows, now=now))
        db.session.execute(
            update(Reminder.__table__).where(Reminder.__table__.c.id.in_([r.id for r in due])).values(escalated_at=now)
        )
        return created

    return _in_chunks("escalation", stmt, escalate)


# --- the worker: deliveries -------------------------------------------------------------------


def _claimable(now: datetime):
    return and_(
        WebhookDelivery.state == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
    )


def claim(now: datetime, settings, limit: int = CLAIM_BATCH) -> tuple[str, list, int]:
    """Lease up to `limit` due outbox rows to this worker and commit; rows whose reminder is no
    longer pending, or whose agency dropped its webhook, are cancelled instead. Returns the
    lease token, the rows to send, and how many rows were taken in all."""
    token = new_id()
    ids = list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(_claimable(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        db.session.commit()
        return token, [], 0
    table = WebhookDelivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id.in_(ids))
        .values(lease_until=now + timedelta(seconds=settings.webhook_lease_seconds), claim_token=token)
    )
    rows = db.session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.reminder_id,
            WebhookDelivery.agency_code,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
            Reminder.status.label("reminder_status"),
            Webhook.url,
            Webhook.secret,
        )
        .join(Reminder, Reminder.id == WebhookDelivery.reminder_id)
        .outerjoin(Webhook, Webhook.agency_code == WebhookDelivery.agency_code)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
    ).all()
    cancelled = [r.id for r in rows if r.reminder_status != "pending" or r.url is None]
    if cancelled:
        db.session.execute(
            update(table)
            .where(table.c.id.in_(cancelled))
            .values(state="cancelled", finished_at=now, lease_until=None, claim_token=None)
        )
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
    for index, result in zip(
        sent,
        webhooks.send_all(
            jobs,
            settings.webhook_timeout,
            settings.webhook_concurrency,
            vetting=lambda url: webhooks.vet(url, production),
        ),
        strict=True,
    ):
        results[index] = result
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    table = WebhookDelivery.__table__
    for row, result in zip(batch, cast("list[webhooks.Attempt]", results), strict=True):  # each one set by now
        attempts = row.attempts + 1
        outcome = webhooks.outcome_after(result.ok, attempts, settings.webhook_max_attempts)
        next_at = (
            now
            + timedelta(
                seconds=webhooks.backoff_seconds(
                    attempts, settings.webhook_backoff_seconds, settings.webhook_backoff_max_seconds
                )
            )
            if outcome == "retrying"
            else None
        )
        values = {
            "attempts": attempts,
            "lease_until": None,
            "claim_token": None,
            "state": "pending" if outcome == "retrying" else outcome,
        }
        if next_at is not None:
            values["next_attempt_at"] = next_at
        else:
            values["finished_at"] = now
        moved = cast(
            "CursorResult[Any]",
            db.session.execute(
                update(table).where(table.c.id == row.id, table.c.claim_token == token).values(**values)
            ),
        ).rowcount
        db.session.add(
            WebhookAttempt(
                delivery_id=row.id,
                reminder_id=row.reminder_id,
                agency_code=row.agency_code,
                attempt=attempts,
                attempted_at=now,
                status_code=result.status_code,
                outcome=outcome,
                error=result.error,
                next_attempt_at=next_at,
            )
        )
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
    path = (
        Path(database + ".reminders.lock")
        if database and database != ":memory:"
        else Path(tempfile.gettempdir()) / "casesvc-reminders.lock"
    )
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(now: datetime | None = None, settings=None) -> dict:
    """One pass of the worker at `now` (default: the current time)."""
    now = now or utcnow()
    settings = settings or current_app.config["CASESVC"]
    created: dict[str, int] = {}
    failed: dict[str, int] = {}  # sources skipped, by rule (reminders/isolation.py)
    with _run_lock():
        for name, build, refresh in RULES:
            kind = "reaction_ending" if name.startswith("reaction_ending") else name
            created[kind] = created.get(kind, 0) + _apply_rule(name, build, refresh, now, settings, failed)
        created["escalation"] = _escalate(now, settings)
        deliveries = deliver_due(now, settings)
    if sum(created.values()) >= ANALYZE_AFTER:
        _analyze()
    return {"now": rfc3339(now), "created": created, "deliveries": deliveries, "failed": failed}


def _analyze() -> None:
    """After a large batch (the first run on existing data), fresh planner statistics: the next
    run's anti-joins are planned for the table as it now is, not as it was before."""
    if db.engine.dialect.name != "postgresql":
        return
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE reminders, webhook_deliveries")
            conn.commit()
    except Exception:  # statistics are an optimisation; autovacuum gets there too
        log.warning("ANALYZE after the reminders run failed", exc_info=True)
