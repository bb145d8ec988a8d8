"""Events and notes: written once, read under invariant 3 (visibility, health, drug tests)."""

from __future__ import annotations

from sqlalchemy import select

from casesvc import audit, signals
from casesvc.access.case_view import CaseView
from casesvc.access.clauses import visible_entries_clause
from casesvc.cases.models import Case
from casesvc.common.connection import request_connection
from casesvc.common.direct import insert_now
from casesvc.common.messages import _
from casesvc.common.pagination import filter_equal, paginate
from casesvc.errors import Problem, field_error, not_found, validation_error
from casesvc.extensions import db
from casesvc.followups.models import Event, Note
from casesvc.policy import CaseAccess, EntryFacts, Principal, can_see_entry
from casesvc.reactions.models import Condition, Reaction

_NOT_FOUND = {Event: _("No such event."), Note: _("No such note.")}
_NOT_IN_CASE = {Event: _("No such event in this case."), Note: _("No such note in this case.")}


def entry_facts(entry) -> EntryFacts:
    return EntryFacts(
        entry.author_agency,
        entry.category,
        entry.visibility,
        getattr(entry, "kind", None),
        getattr(entry, "condition_agency", None),
    )


def entry_in(model, case: Case | CaseView, entry_id: str, principal: Principal, access: CaseAccess):
    """An entry of the case the caller may see; anything else is 404 (existence is not leaked)."""
    entry = db.session.get(model, entry_id)
    if entry is None or entry.case_id != case.id or not can_see_entry(principal, access, entry_facts(entry)):
        raise not_found(_NOT_FOUND[model])
    return entry


def list_entries(
    model, case: Case | CaseView, principal: Principal, access: CaseAccess, args: dict, filters: tuple
) -> dict:
    stmt = filter_equal(
        select(model).where(model.case_id == case.id, visible_entries_clause(model, principal, access)),
        model,
        args,
        filters,
    )
    return audit.noted_page(paginate(stmt, model, args["limit"], args.get("cursor")))


def _corrected(
    model, case: Case | CaseView, entry_id: str | None, principal: Principal, access: CaseAccess
) -> str | None:
    if entry_id is None:
        return None
    try:
        return entry_in(model, case, entry_id, principal, access).id
    except Problem as exc:
        raise field_error("corrects", _NOT_IN_CASE[model]) from exc


def _event_links(case: Case | CaseView, data: dict) -> tuple[str | None, str | None, str | None]:
    """Resolve reaction and condition; returns (reaction_id, condition_id, condition's agency)."""
    reaction_id, condition_id = data.get("reaction_id"), data.get("condition_id")
    condition = None
    if condition_id is not None:
        condition = db.session.get(Condition, condition_id)
        if condition is None or condition.reaction.case_id != case.id:
            raise field_error("condition_id", _("No such condition in this case."))
        if reaction_id is not None and reaction_id != condition.reaction_id:
            raise field_error("condition_id", _("The condition belongs to another reaction."))
        reaction_id = condition.reaction_id
    elif reaction_id is not None:
        reaction = db.session.get(Reaction, reaction_id)
        if reaction is None or reaction.case_id != case.id:
            raise field_error("reaction_id", _("No such reaction in this case."))
    return reaction_id, condition_id, condition.responsible_agency if condition else None


def log_event(principal: Principal, case: Case | CaseView, access: CaseAccess, data: dict) -> Event:
    errors: dict[str, list[str]] = {}
    if data["kind"] == "drug_test" and not data.get("result"):
        errors["result"] = [_("A drug test needs a result.")]
    if data["kind"] != "drug_test" and data.get("result"):
        errors["result"] = [_("Only a drug test has a result.")]
    if errors:
        raise validation_error(errors)
    reaction_id, condition_id, condition_agency = _event_links(case, data)
    event = Event(
        case_id=case.id,
        kind=data["kind"],
        occurred_at=data["occurred_at"],
        reaction_id=reaction_id,
        condition_id=condition_id,
        condition_agency=condition_agency,
        result=data.get("result"),
        summary=data.get("summary"),
        # drug-test results are health data whatever the request says
        category="health" if data["kind"] == "drug_test" else data["category"],
        visibility=data["visibility"],
        author_agency=principal.agency,
        author_user=principal.subject,
        corrects=_corrected(Event, case, data.get("corrects"), principal, access),
    )
    insert_now(db.session, event, request_connection())
    signals.event_logged.send(event, case=case)
    return event


def write_note(principal: Principal, case: Case | CaseView, access: CaseAccess, data: dict) -> Note:
    note = Note(
        case_id=case.id,
        body=data["body"],
        category=data["category"],
        visibility=data["visibility"],
        author_agency=principal.agency,
        author_user=principal.subject,
        corrects=_corrected(Note, case, data.get("corrects"), principal, access),
    )
    insert_now(db.session, note, request_connection())
    return note
