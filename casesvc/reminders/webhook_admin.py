"""An agency's webhook (admin): set, replace, remove, and the record of delivery attempts."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import exists, select, update

from casesvc.agencies.service import get_agency
from casesvc.audit import note
from casesvc.common.crypto import encrypt_at_rest
from casesvc.common.messages import _
from casesvc.common.pagination import Keyset
from casesvc.common.timeutil import utcnow
from casesvc.errors import not_found, validation_error
from casesvc.extensions import db
from casesvc.reminders import webhooks
from casesvc.reminders.models import Reminder, Webhook, WebhookAttempt, WebhookDelivery
from casesvc.reminders.store import enqueue_deliveries

NEWEST_FIRST = Keyset(WebhookAttempt.attempted_at, WebhookAttempt.id)


def _webhook_of(code: str) -> None:
    """The agency must exist; the request's audit event names its webhook."""
    get_agency(code)
    note(resource_type="webhook", resource_id=code)


def get_webhook(code: str) -> Webhook:
    _webhook_of(code)
    webhook = db.session.get(Webhook, code)
    if webhook is None:
        raise not_found(_("No such webhook."))
    return webhook


def put_webhook(code: str, data: dict) -> tuple[Webhook, bool]:
    """Set or replace the agency's webhook; returns (webhook, created). Reminders already waiting
    for a future due time are queued for it, so a webhook set today hears of next week's tests."""
    _webhook_of(code)
    settings = current_app.config["CASESVC"]
    problem = webhooks.url_problem(data["url"], settings.env == "production")
    errors: dict[str, list[str]] = {}
    if problem:
        errors["url"] = [problem]
    if not webhooks.MIN_SECRET_LENGTH <= len(data["secret"]) <= 255:
        errors["secret"] = [_("Must be %(least)s to %(most)s characters.", least=webhooks.MIN_SECRET_LENGTH, most=255)]
    if errors:
        raise validation_error(errors)
    now = utcnow()
    existing = db.session.get(Webhook, code)
    created = existing is None
    if existing is None:
        webhook = Webhook(
            agency_code=code, url=data["url"], secret=encrypt_at_rest(data["secret"]), created_at=now, updated_at=now
        )
        db.session.add(webhook)
        db.session.flush()
        upcoming = db.session.execute(
            select(Reminder.id, Reminder.case_id, Reminder.kind, Reminder.due_at, Reminder.assignee_agency).where(
                Reminder.assignee_agency == code,
                Reminder.status == "pending",
                Reminder.due_at > now,
                ~exists().where(WebhookDelivery.reminder_id == Reminder.id, WebhookDelivery.state == "pending"),
            )
        ).all()
        enqueue_deliveries(upcoming)
    else:
        webhook = existing
        webhook.url = data["url"]
        webhook.secret = encrypt_at_rest(data["secret"])
        webhook.updated_at = now
        db.session.flush()
    return webhook, created


def delete_webhook(code: str) -> None:
    webhook = get_webhook(code)
    table = WebhookDelivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.agency_code == code, table.c.state == "pending")
        .values(state="cancelled", finished_at=utcnow(), lease_until=None, claim_token=None)
    )
    db.session.delete(webhook)
    db.session.flush()


def list_attempts(code: str, args: dict) -> dict:
    _webhook_of(code)
    stmt = select(WebhookAttempt).where(WebhookAttempt.agency_code == code)
    if args.get("outcome"):
        stmt = stmt.where(WebhookAttempt.outcome == args["outcome"])
    if args.get("reminder_id"):
        stmt = stmt.where(WebhookAttempt.reminder_id == args["reminder_id"])
    return NEWEST_FIRST.fetch(stmt, args["limit"], args.get("cursor"))
