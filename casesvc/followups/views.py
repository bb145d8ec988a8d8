from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.access import readable_case, writes_under_case_view
from casesvc.auth.principal import current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.followups import service
from casesvc.followups.models import Event, Note
from casesvc.followups.schemas import EventQuery, EventSchema, NoteQuery, NoteSchema
from casesvc.policy import Action
from casesvc.web import etag_header, transactional

blp = Blueprint(
    "followups",
    __name__,
    url_prefix="/api/v1/cases/<case_id>",
    description="Events and notes: written once, corrected by new entries",
)


@blp.route("/events", methods=["POST"])
@writes_under_case_view
@transactional(idempotent=True)
@requires(Action.WRITE_EVENT)
@blp.arguments(EventSchema())
@blp.response(201, EventSchema)
def create_event(data, case_id):
    """Log a follow-up that happened (a drug test is always stored as health data)"""
    principal = current_principal()
    # the case itself does not change; a correction must see the event it corrects
    case, access = readable_case(principal, case_id, Action.WRITE_EVENT, sees_entries=data.get("corrects") is not None)
    event = service.log_event(principal, case, access, data)
    return (
        event,
        201,
        {"Location": url_for("followups.get_event", case_id=case.id, event_id=event.id), **etag_header(event)},
    )


@blp.route("/events", methods=["GET"])
@requires(Action.READ_EVENTS)
@blp.arguments(EventQuery(), location="query")
@blp.response(200, page_schema(EventSchema))
def list_events(args, case_id):
    """The events the caller may see, newest first"""
    principal = current_principal()
    case, access = readable_case(principal, case_id, Action.READ_EVENTS)
    return service.list_entries(Event, case, principal, access, args, ("kind", "reaction_id", "condition_id"))


@blp.route("/events/<event_id>", methods=["GET"])
@requires(Action.READ_EVENTS)
@blp.response(200, EventSchema)
def get_event(case_id, event_id):
    """One event"""
    principal = current_principal()
    case, access = readable_case(principal, case_id, Action.READ_EVENTS)
    event = service.entry_in(Event, case, event_id, principal, access)
    return event, 200, etag_header(event)


@blp.route("/notes", methods=["POST"])
@writes_under_case_view
@transactional(idempotent=True)
@requires(Action.WRITE_NOTE)
@blp.arguments(NoteSchema())
@blp.response(201, NoteSchema)
def create_note(data, case_id):
    """Write a note"""
    principal = current_principal()
    # the case itself does not change; a correction must see the note it corrects
    case, access = readable_case(principal, case_id, Action.WRITE_NOTE, sees_entries=data.get("corrects") is not None)
    note = service.write_note(principal, case, access, data)
    return note, 201, {"Location": url_for("followups.get_note", case_id=case.id, note_id=note.id), **etag_header(note)}


@blp.route("/notes", methods=["GET"])
@requires(Action.READ_NOTES)
@blp.arguments(NoteQuery(), location="query")
@blp.response(200, page_schema(NoteSchema))
def list_notes(args, case_id):
    """The notes the caller may see, newest first"""
    principal = current_principal()
    case, access = readable_case(principal, case_id, Action.READ_NOTES)
    return service.list_entries(Note, case, principal, access, args, ("category",))


@blp.route("/notes/<note_id>", methods=["GET"])
@requires(Action.READ_NOTES)
@blp.response(200, NoteSchema)
def get_note(case_id, note_id):
    """One note"""
    principal = current_principal()
    case, access = readable_case(principal, case_id, Action.READ_NOTES)
    note = service.entry_in(Note, case, note_id, principal, access)
    return note, 200, etag_header(note)
