from __future__ import annotations

from flask import Response, current_app, request, url_for
from flask_smorest import Blueprint

from casesvc.access import case_for
from casesvc.auth import feeds
from casesvc.auth.principal import admin_only, current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.errors import problem_documented
from casesvc.extensions import db
from casesvc.policy import Action
from casesvc.reminders import service, webhook_admin
from casesvc.reminders.schemas import (
    AttemptQuery,
    AttemptSchema,
    CalendarFeedSchema,
    ManualReminderSchema,
    ReminderQuery,
    ReminderSchema,
    SnoozeSchema,
    WebhookSchema,
)
from casesvc.web import etag_header, transactional

blp = Blueprint(
    "reminders",
    __name__,
    url_prefix="/api/v1",
    description="Reminders: due tasks of the caller's agency, and the calendar feed",
)
hooks_blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/agencies/<code>/webhook",
    description="Where an agency's due reminders are POSTed (admin)",
)


def reminder_response(reminder, status: int = 200):
    headers = etag_header(reminder)
    if status == 201:
        headers["Location"] = url_for("reminders.get_reminder", reminder_id=reminder.id)
    return reminder, status, headers


@blp.route("/reminders", methods=["GET"])
@requires(Action.READ_REMINDERS)
@blp.arguments(ReminderQuery(), location="query")
@blp.response(200, page_schema(ReminderSchema))
def list_reminders(args):
    """The caller's agency's reminders on cases they may see, soonest due first"""
    return service.list_reminders(current_principal(), args)


@blp.route("/reminders.ics", methods=["GET"])
@requires(Action.READ_REMINDERS)
@blp.doc(
    security=[{"bearerAuth": []}, {"calendarFeed": []}],
    responses={
        "200": {
            "description": "RFC 5545 calendar: one event per pending reminder, with its id, case id and kind only "
            "(no names or content)",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        "401": {"description": "No valid bearer token, and no `feed` address that is still open (`unauthorized`)"},
        "403": {"description": "The token lacks `reminders:read`"},
    },
)
def reminders_calendar():
    """The caller's pending reminders as an iCalendar feed (with a bearer token, or at the secret
    address of `POST /reminders/feed`: `?feed=…`, no Authorization header)"""
    return Response(
        service.calendar(current_principal()),
        mimetype="text/calendar",
        headers={"Content-Disposition": 'inline; filename="reminders.ics"'},
    )


@blp.route("/reminders/feed", methods=["POST"])
@transactional()
@requires(Action.READ_REMINDERS)
@blp.response(201, CalendarFeedSchema)
def create_calendar_feed():
    """A secret address for the caller's reminders calendar, for a calendar program (which sends
    no bearer token). It replaces the caller's previous address; keep it like a password"""
    token = service.open_feed(current_principal())
    address = url_for("reminders.reminders_calendar", **{feeds.FEED_PARAM: token})  # type: ignore[arg-type]
    return {"url": public_address(address)}, 201


def public_address(path: str) -> str:
    """An address given out to be used elsewhere: on CASESVC_PUBLIC_URL (required in production),
    never on the request's Host header, which the caller chooses. Without the setting (development,
    tests) the request's own base address is used."""
    base = current_app.config["CASESVC"].public_url
    return (base + path) if base else (request.host_url.rstrip("/") + path)


@blp.route("/reminders/feed", methods=["DELETE"])
@transactional()
@requires(Action.READ_REMINDERS)
@blp.response(204)
@problem_documented(blp, 404, "The caller has no calendar address to end (`not-found`)")
def delete_calendar_feed():
    """End the caller's calendar address: calendars subscribed to it get 401 from then on"""
    service.close_feed(current_principal())
    return Response(status=204)


@blp.route("/reminders/<reminder_id>", methods=["GET"])
@requires(Action.READ_REMINDERS)
@blp.response(200, ReminderSchema)
def get_reminder(reminder_id):
    """One reminder"""
    return reminder_response(service.reminder_for(current_principal(), reminder_id))


def _act(reminder_id: str, action: str):
    principal = current_principal()
    reminder = service.reminder_for(principal, reminder_id)
    return reminder_response(service.act(principal, reminder, action))


@blp.route("/reminders/<reminder_id>/ack", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REMINDER)
@blp.response(200, ReminderSchema)
@problem_documented(
    blp,
    409,
    "A move the reminder's states do not allow: `current`, `to` and `allowed` name them (`transition-not-allowed`)",
)
def ack_reminder(reminder_id):
    """Acknowledge: someone has it in hand (it no longer escalates)"""
    return _act(reminder_id, "ack")


@blp.route("/reminders/<reminder_id>/done", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REMINDER)
@blp.response(200, ReminderSchema)
@problem_documented(
    blp,
    409,
    "A move the reminder's states do not allow: `current`, `to` and `allowed` name them (`transition-not-allowed`)",
)
def done_reminder(reminder_id):
    """Mark done"""
    return _act(reminder_id, "done")


@blp.route("/reminders/<reminder_id>/dismiss", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REMINDER)
@blp.response(200, ReminderSchema)
@problem_documented(
    blp,
    409,
    "A move the reminder's states do not allow: `current`, `to` and `allowed` name them (`transition-not-allowed`)",
)
def dismiss_reminder(reminder_id):
    """Dismiss: nothing to do"""
    return _act(reminder_id, "dismiss")


@blp.route("/reminders/<reminder_id>/snooze", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REMINDER)
@blp.arguments(SnoozeSchema())
@blp.response(200, ReminderSchema)
@problem_documented(
    blp,
    409,
    "A move the reminder's states do not allow: `current`, `to` and `allowed` name them (`transition-not-allowed`)",
)
def snooze_reminder(data, reminder_id):
    """Snooze: pending again, due at `until` (its webhook goes out then)"""
    principal = current_principal()
    reminder = service.reminder_for(principal, reminder_id)
    return reminder_response(service.snooze(principal, reminder, data["until"]))


@blp.route("/cases/<case_id>/reminders", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_REMINDER)
@blp.arguments(ManualReminderSchema())
@blp.response(201, ReminderSchema)
@problem_documented(blp, 409, "The case is closed (`case-closed`)")
def create_reminder(data, case_id):
    """A manual reminder for a participating agency (its text is never sent in webhooks or feeds)"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.WRITE_REMINDER)
    return reminder_response(service.create_manual(principal, case, data), 201)


# --- webhooks (admin) ---------------------------------------------------------------------------


@hooks_blp.route("", methods=["PUT"])
@transactional()
@admin_only
@hooks_blp.arguments(WebhookSchema)
@hooks_blp.response(200, WebhookSchema)
@hooks_blp.alt_response(201, schema=WebhookSchema, description="Created")
def put_webhook(data, code):
    """Set or replace the agency's webhook (url and signing secret)"""
    webhook, created = webhook_admin.put_webhook(code, data)
    db.session.flush()  # the new version, for the ETag
    if created:
        return webhook, 201, {"Location": url_for("webhooks.get_webhook", code=code), **etag_header(webhook)}
    return webhook, 200, etag_header(webhook)


@hooks_blp.route("", methods=["GET"])
@admin_only
@hooks_blp.response(200, WebhookSchema)
def get_webhook(code):
    """The agency's webhook (the secret is never shown)"""
    webhook = webhook_admin.get_webhook(code)
    return webhook, 200, etag_header(webhook)


@hooks_blp.route("", methods=["DELETE"])
@transactional()
@admin_only
@hooks_blp.response(204)
def delete_webhook(code):
    """Remove the agency's webhook; deliveries not yet made are cancelled"""
    webhook_admin.delete_webhook(code)
    return Response(status=204)


@hooks_blp.route("/deliveries", methods=["GET"])
@admin_only
@hooks_blp.arguments(AttemptQuery, location="query")
@hooks_blp.response(200, page_schema(AttemptSchema))
def list_deliveries(args, code):
    """Every delivery attempt to the agency's webhook, newest first"""
    return webhook_admin.list_attempts(code, args)
