"""What reminders do when the domains report something (`casesvc.signals`): settle what an
event answers and schedule what follows it, dismiss what a closed case or reaction leaves
without purpose, follow a reaction's new dates. `connect()` subscribes them once, from
`create_app`; each runs in the publisher's session and transaction, so a reminder change
commits (or rolls back) with the work that caused it."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from casesvc import signals
from casesvc.cases.models import Case
from casesvc.common.timeutil import utcnow
from casesvc.consents.models import Consent
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.reactions.models import Condition, Reaction
from casesvc.reminders import rules
from casesvc.reminders.models import Reminder, WebhookDelivery
from casesvc.reminders.store import (
    LIVE_CASE,
    enqueue_deliveries,
    insert_reminders,
    last_answer,
    open_reminders,
    participant_kinds,
    reminder_row,
    settle,
    settle_contact,
)


def on_event_logged(event: Event, case: Case) -> None:
    """An event answers the reminders it settles and schedules what follows from it."""
    settings = current_app.config["CASESVC"]
    by = f"event:{event.id}"
    # contact: the case has been seen since the reminder's basis
    settle_contact(case.id, event.occurred_at, case.opened_at, by)
    if event.condition_id is not None and rules.answers_condition(event.kind, event.result):
        _condition_answered(event, case, settings, by)
    if event.reaction_id is not None and event.kind in ("conversation", "meeting"):
        settle(
            open_reminders(Reminder.reaction_id == event.reaction_id, Reminder.kind == "conversation_scheduled"),
            "done",
            by,
        )
    if event.kind == "drug_test" and event.result == "missed":
        due = rules.missed_test(event.occurred_at)
        insert_reminders(
            [
                reminder_row(
                    "missed_test",
                    case.id,
                    due,
                    rules.assignee("missed_test", case.lead_agency),
                    "event",
                    event.id,
                    reaction_id=event.reaction_id,
                    basis_at=event.occurred_at,
                )
            ]
        )


def _condition_answered(event: Event, case: Case, settings, by: str) -> None:
    condition = db.session.get_one(Condition, event.condition_id)
    reaction = condition.reaction
    last = last_answer(condition.id, case.id)
    pending = open_reminders(Reminder.source_id == condition.id, Reminder.kind == "condition_due")
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
        insert_reminders(
            [
                reminder_row(
                    "condition_due",
                    case.id,
                    due,
                    condition.responsible_agency,
                    "condition",
                    condition.id,
                    reaction_id=reaction.id,
                    basis_at=last,
                    dedupe_key=key,
                )
            ],
            refresh_basis=True,
        )


def on_case_closed(case: Case) -> None:
    settle(open_reminders(Reminder.case_id == case.id), "dismissed", "case-closed")


def on_reaction_closed(reaction: Reaction) -> None:
    settle(open_reminders(Reminder.reaction_id == reaction.id), "dismissed", "reaction-closed")


def on_reaction_changed(reaction: Reaction) -> None:
    """A PATCH moved the reaction's dates: open reminders made for the old dates no longer hold.
    An end reminder whose end (or end of probation) moved is dismissed, and the worker reminds
    of the new date when it is due. A conversation reminder is done once the conversation has
    been held; if the conversation moved within the reminder's day it follows it, and if it
    moved to another day it is dismissed (reminders are one per rule, source and day)."""
    ends = {reaction.ends_on, reaction.probation_ends_on} - {None}
    days = current_app.config["CASESVC"].reminder_conversation_days
    for reminder in open_reminders(
        Reminder.reaction_id == reaction.id, Reminder.kind.in_(("reaction_ending", "conversation_scheduled"))
    ):
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
    settle(
        open_reminders(Reminder.source_id == consent.id, Reminder.kind == "consent_expiring"),
        "dismissed",
        "consent-withdrawn",
    )


def on_case_moved(case: Case, from_agency: str, departed: frozenset[str] = frozenset(), **_) -> int:
    """The case has a new lead (and, after a transfer, lost the `departed` agencies): its open
    reminders go to whoever the assignee rules name now (README "Reminders and webhooks"). What
    went to the old lead as lead goes to the new lead; a condition's reminder to the condition's
    responsible agency (the old lead keeps those of its own conditions); an escalation to the
    coordinator agency; a manual reminder of an agency that left is dismissed. Webhook deliveries
    not yet made follow."""
    coordinator = rules.coordinator_agency(case.lead_agency, participant_kinds({case.id})[case.id])
    responsible = dict(
        db.session.execute(
            select(Condition.id, Condition.responsible_agency)
            .join(Reaction, Reaction.id == Condition.reaction_id)
            .where(Reaction.case_id == case.id)
        ).all()
    )
    former = {from_agency, *departed}
    moved, dropped = [], []
    for reminder in open_reminders(Reminder.case_id == case.id):
        target = reminder.assignee_agency
        if reminder.kind == "condition_due":
            target = responsible.get(reminder.source_id, target)
        elif reminder.kind == "escalation":
            target = coordinator
        elif reminder.kind == "manual":
            if target in departed:
                dropped.append(reminder)
        elif target in former:  # the kinds assigned to the lead
            target = case.lead_agency
        if target != reminder.assignee_agency and reminder not in dropped:
            reminder.assignee_agency = target
            reminder.assignee_user = None  # a user of the agency it left
            moved.append(reminder)
    settle(dropped, "dismissed", "case-transferred")
    if moved:
        deliveries = WebhookDelivery.__table__
        db.session.execute(
            update(deliveries)
            .where(deliveries.c.reminder_id.in_([r.id for r in moved]), deliveries.c.state == "pending")
            .values(state="cancelled", finished_at=utcnow(), lease_until=None, claim_token=None)
        )
        db.session.flush()
        enqueue_deliveries([r for r in moved if r.status == "pending"])
    return len(moved)


def on_emergency_access_opened(access, case) -> None:
    """An emergency access asks the lead agency to review it: due at once (README "Emergency access")."""
    kind = "emergency_access_review"
    insert_reminders(
        [
            reminder_row(
                kind,
                case.id,
                access.started_at,
                rules.assignee(kind, case.lead_agency),
                "emergency_access",
                access.id,
                basis_at=access.started_at,
            )
        ]
    )


def connect() -> None:
    """Subscribe once per process (blinker keeps one connection per receiver, so a second call
    changes nothing)."""
    signals.event_logged.connect(on_event_logged)
    signals.case_closed.connect(on_case_closed)
    signals.reaction_closed.connect(on_reaction_closed)
    signals.reaction_changed.connect(on_reaction_changed)
    signals.consent_withdrawn.connect(on_consent_withdrawn)
    signals.case_handed_over.connect(on_case_moved)
    signals.case_transferred.connect(on_case_moved)
    signals.emergency_access_opened.connect(on_emergency_access_opened)
