"""Reminders through the API: the caller's agency's reminders on cases they may see, acting on
them (ack, done, dismiss, snooze), manual reminders, and the calendar feed."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
from sqlalchemy import and_, select

from casesvc import audit
from casesvc.access import access_to
from casesvc.access.clauses import visible_cases_clause
from casesvc.auth import feeds
from casesvc.auth.models import User
from casesvc.cases.models import Case
from casesvc.cases.states import require_open
from casesvc.common.db import new_id
from casesvc.common.messages import _
from casesvc.common.pagination import Keyset, filter_equal
from casesvc.common.states import StateMachine
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.errors import Problem, field_error, not_found, validation_error
from casesvc.extensions import db
from casesvc.policy import Principal, Relation
from casesvc.reminders import webhooks
from casesvc.reminders.models import Reminder, WebhookDelivery
from casesvc.reminders.store import OPEN, enqueue_deliveries, settle

REMINDER_STATES = StateMachine(
    "reminder",
    {"pending": ("acknowledged", "done", "dismissed"), "acknowledged": ("done", "dismissed")},
    needs_reason=frozenset(),
)
ACTIONS = {"ack": "acknowledged", "done": "done", "dismiss": "dismissed"}
SOONEST_FIRST = Keyset(Reminder.due_at, Reminder.id, descending=False)


def _visible(principal: Principal, now: datetime):
    return and_(Reminder.assignee_agency == principal.agency, visible_cases_clause(principal, oslo_today(now)))


def list_reminders(principal: Principal, args: dict) -> dict:
    """The caller's agency's reminders on cases its users may see, soonest first."""
    stmt = filter_equal(
        select(Reminder).join(Case, Case.id == Reminder.case_id).where(_visible(principal, utcnow())),
        Reminder,
        args,
        ("status", "kind", "case_id"),
    )
    if args.get("due_before"):
        stmt = stmt.where(Reminder.due_at < args["due_before"])
    return SOONEST_FIRST.fetch(stmt, args["limit"], args.get("cursor"))


def _noted(reminder: Reminder) -> None:
    audit.note(resource_type="reminder", resource_id=reminder.id, case_id=reminder.case_id)


def reminder_for(principal: Principal, reminder_id: str) -> Reminder:
    """A reminder of the caller's agency on a case they may see; anything else is 404."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.assignee_agency != principal.agency:
        raise not_found(_("No such reminder."))
    case = db.session.get_one(Case, reminder.case_id)
    if access_to(principal, case).relation not in (Relation.LEAD, Relation.SHARED):
        raise not_found(_("No such reminder."))
    _noted(reminder)
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
        raise field_error("until", _("Must be in the future."))
    reminder.status = "pending"
    reminder.due_at = until
    waiting = db.session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.reminder_id == reminder.id,
            WebhookDelivery.state == "pending",
            WebhookDelivery.attempts == 0,
        )
    ).all()
    body = webhooks.payload(reminder.id, reminder.case_id, reminder.kind, until)
    for delivery in waiting:
        delivery.next_attempt_at = until
        delivery.body = body
    db.session.flush()
    if not waiting:
        enqueue_deliveries([reminder])
    return reminder


def create_manual(principal: Principal, case: Case, data: dict) -> Reminder:
    require_open(case)
    agency = data.get("assignee_agency") or principal.agency
    errors: dict[str, list[str]] = {}
    if agency not in case.participant_codes:
        errors["assignee_agency"] = [_("Must be an agency participating in the case.")]
    user_id = data.get("assignee_user")
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or not user.active or user.agency_code != agency:
            errors["assignee_user"] = [_("Must be an active user of the assignee agency.")]
    if errors:
        raise validation_error(errors)
    reminder_id = new_id()
    reminder = Reminder(
        id=reminder_id,
        case_id=case.id,
        kind="manual",
        due_at=data["due_at"],
        assignee_agency=agency,
        assignee_user=user_id,
        status="pending",
        source_type="user",
        source_id=principal.subject,
        dedupe_key=f"manual:{reminder_id}",
        text=data.get("text"),
        created_by=principal.subject,
    )
    db.session.add(reminder)
    db.session.flush()
    enqueue_deliveries([reminder])
    _noted(reminder)
    return reminder


def calendar(principal: Principal) -> bytes:
    """The caller's pending reminders as RFC 5545: ids and kinds only — a calendar is often synced
    to phones, so no names, summaries or text."""
    now = utcnow()
    cal = icalendar.Calendar()
    cal.add("prodid", "-//casesvc//reminders//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "casesvc reminders")
    stmt = (
        select(Reminder.id, Reminder.case_id, Reminder.kind, Reminder.due_at, Reminder.version)
        .join(Case, Case.id == Reminder.case_id)
        .where(_visible(principal, now), Reminder.status == "pending")
        .order_by(Reminder.due_at, Reminder.id)
    )
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


def open_feed(principal: Principal) -> str:
    """A new secret address for the caller's calendar (it replaces the previous one); the token
    to put in it."""
    if principal.kind != "user":
        raise Problem(403, "users-only", "Forbidden", _("Calendar addresses are for users, not API clients."))
    token = feeds.new_feed(principal)
    audit.note(resource_type="calendar_feed", resource_id=principal.subject)
    return token


def close_feed(principal: Principal) -> None:
    """End the caller's calendar address (404 when there is none)."""
    audit.note(resource_type="calendar_feed", resource_id=principal.subject)
    if not feeds.end_feed(principal):
        raise not_found(_("No such calendar address."))
