import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, BusinessInstant, Code, Instant
from casesvc.reminders.rules import KINDS, STATUSES
from casesvc.reminders.webhooks import MAX_URL_LENGTH, MIN_SECRET_LENGTH

OUTCOMES = ("delivered", "retrying", "failed")


class SourceSchema(ma.Schema):
    type = ma.fields.String(
        metadata={
            "description": "condition, reaction, consent, case, event, youth, reminder (escalation) or user (manual)"
        }
    )
    id = ma.fields.String()


class ReminderSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    case_id = ma.fields.String(dump_only=True)
    kind = ma.fields.String(dump_only=True, metadata={"enum": list(KINDS)})
    due_at = Instant(dump_only=True)
    assignee_agency = ma.fields.String(dump_only=True)
    assignee_user = ma.fields.String(dump_only=True, allow_none=True)
    status = ma.fields.String(dump_only=True, metadata={"enum": list(STATUSES)})
    source = ma.fields.Nested(SourceSchema, dump_only=True, metadata={"description": "What caused it"})
    reaction_id = ma.fields.String(dump_only=True, allow_none=True)
    text = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Manual reminders only; never in webhooks or the calendar"},
    )
    escalated_at = Instant(dump_only=True, allow_none=True)
    settled_at = Instant(dump_only=True, allow_none=True)
    created_at = Instant(dump_only=True)
    version = ma.fields.Integer(dump_only=True)


class ManualReminderSchema(Body):
    due_at = BusinessInstant(required=True)
    assignee_agency = ma.fields.String(metadata={"description": "A participating agency; default: the caller's"})
    assignee_user = ma.fields.String(
        allow_none=True, metadata={"description": "A user of the assignee agency (optional)"}
    )
    text = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "Shown in the API to the assignee agency only"},
    )


class SnoozeSchema(Body):
    until = BusinessInstant(required=True, metadata={"description": "The reminder is pending again, due then"})


class ReminderQuery(PageArgs):
    status = Code(STATUSES)
    kind = Code(KINDS)
    case_id = ma.fields.String()
    due_before = Instant(metadata={"description": "Due strictly before this instant"})


class WebhookSchema(Body):
    agency = ma.fields.String(dump_only=True, attribute="agency_code")
    url = ma.fields.String(
        required=True,
        metadata={
            "description": "http(s); in production not a loopback or private address",
            "minLength": 1,
            "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
            "maxLength": MAX_URL_LENGTH,
        },
    )
    secret = ma.fields.String(
        required=True,
        load_only=True,
        metadata={
            "description": "1-255 characters (a long random one is recommended); "
            "signs every delivery; never shown again",
            "minLength": MIN_SECRET_LENGTH,
            "maxLength": 255,
        },
    )
    secret_set = ma.fields.Constant(True, dump_only=True)
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)


class AttemptSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    delivery_id = ma.fields.String(dump_only=True)
    reminder_id = ma.fields.String(dump_only=True)
    attempt = ma.fields.Integer(dump_only=True)
    attempted_at = Instant(dump_only=True)
    status_code = ma.fields.Integer(dump_only=True, allow_none=True)
    outcome = ma.fields.String(dump_only=True, metadata={"enum": list(OUTCOMES)})
    error = ma.fields.String(dump_only=True, allow_none=True)
    next_attempt_at = Instant(dump_only=True, allow_none=True)


class AttemptQuery(PageArgs):
    outcome = Code(OUTCOMES)
    reminder_id = ma.fields.String()


class CalendarFeedSchema(ma.Schema):
    url = ma.fields.String(
        dump_only=True,
        metadata={
            "description": "The secret address of the caller's reminders calendar (shown once; it holds the token)"
        },
    )
