"""Cases: opening, participants, the state machine, and the access loader every entry under a
case goes through."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import flag_modified

from casesvc import audit
from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.auth.principal import enforce
from casesvc.cases.models import Case, Participant
from casesvc.common.http import filter_equal, paginate
from casesvc.common.states import StateMachine
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.errors import Problem, conflict, field_error, not_found
from casesvc.extensions import db
from casesvc.policy import (Action, CaseAccess, CaseFacts, ConsentFacts, Principal, authorize, case_access,
                            check_role, visible_cases_clause)

CASE_STATES = StateMachine(
    "case",
    {"open": ("active", "withdrawn"), "active": ("completed", "breached", "withdrawn")},
    needs_reason=frozenset({"completed", "breached", "withdrawn"}),
)
CLOSED = frozenset({"completed", "breached", "withdrawn"})


def consent_facts_for(case_id: str, agency: str | None) -> tuple[ConsentFacts, ...]:
    """The consents of a case that name `agency`: all the policy needs to judge that agency."""
    if agency is None:
        return ()
    rows = db.session.execute(
        select(Consent.given_on, Consent.expires_on, Consent.withdrawn_at, Consent.covers_health)
        .join(ConsentAgency, ConsentAgency.consent_id == Consent.id)
        .where(Consent.case_id == case_id, ConsentAgency.agency_code == agency))
    return tuple(ConsentFacts(frozenset({agency}), bool(health), given, expires, withdrawn is not None)
                 for given, expires, withdrawn, health in rows)


def facts_of(case: Case, agency: str | None, with_consents: bool = True) -> CaseFacts:
    return CaseFacts(case.municipality, case.lead_agency, frozenset(case.participant_codes),
                     consent_facts_for(case.id, agency) if with_consents else ())


def access_to(principal: Principal, case: Case, with_consents: bool = True) -> CaseAccess:
    return case_access(principal, facts_of(case, principal.agency, with_consents), oslo_today())


# Actions that read or write entries, where `health` (a consent covering health) matters.
ENTRY_ACTIONS = frozenset({Action.READ_EVENTS, Action.WRITE_EVENT, Action.READ_NOTES, Action.WRITE_NOTE})


def _consents_matter(principal: Principal, case: Case, action: Action) -> bool:
    """Skip the consent query where its answer cannot change the decision: an outsider is hidden
    whatever the consents say, and the lead needs them only to know whether health entries reach
    it. (The policy matrix tests hold this equal to always asking.)"""
    if principal.agency not in case.participant_codes or case.municipality not in principal.municipalities:
        return False
    return principal.agency != case.lead_agency or action in ENTRY_ACTIONS


def case_for(principal: Principal, case_id: str, action: Action) -> tuple[Case, CaseAccess]:
    """Load a case for an action, or raise what the caller may learn (404, 403)."""
    enforce(check_role(principal, action))
    case = db.session.get(Case, case_id, options=[joinedload(Case.participants)])
    if case is None:
        raise not_found("case")
    audit.note(case_id=case.id, youth_id=case.youth_id)  # recorded whether allowed or refused
    access = access_to(principal, case, _consents_matter(principal, case, action))
    enforce(authorize(principal, action, access))
    return case, access


def _participating_agencies(codes: list[str], municipality: str, lead: str) -> list[str]:
    wanted = list(dict.fromkeys([lead, *codes]))
    agencies = {a.code: a for a in db.session.scalars(select(Agency).where(Agency.code.in_(wanted)))}
    for index, code in enumerate(wanted):
        agency = agencies.get(code)
        if agency is None:
            raise field_error("participants", f"Unknown agency {code!r}.")
        if not agency.serves(municipality):
            raise field_error("participants", f"Agency {code!r} does not serve municipality {municipality}.")
    return wanted


def _check_coordinator(user_id: str | None, participants: list[str]) -> None:
    if user_id is None:
        return
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.agency_code not in participants:
        raise field_error("coordinator", "Must be an active user of a participating agency.")


def open_case(principal: Principal, data: dict) -> Case:
    from casesvc.youths.service import youth_for

    enforce(check_role(principal, Action.CREATE_CASE))
    try:
        youth = youth_for(principal, data["youth_id"], Action.READ_YOUTH)
    except Problem as exc:  # an unknown or hidden youth is a bad field here, not a missing page
        if exc.status != 404:
            raise
        raise field_error("youth_id", "No such youth.") from exc
    if data.get("lead_agency") not in (None, principal.agency):
        raise field_error("lead_agency", "A case is opened by its lead agency: this must be your own agency.")
    municipality = data.get("municipality") or youth.municipality
    if municipality not in principal.municipalities:
        raise field_error("municipality", "Your agency does not serve this municipality.")
    participants = _participating_agencies(data.get("participant_codes") or [], municipality, principal.agency)
    _check_coordinator(data.get("coordinator"), participants)
    case = Case(youth_id=youth.id, municipality=municipality, origin=data["origin"], summary=data.get("summary"),
                lead_agency=principal.agency, coordinator=data.get("coordinator"), status="open",
                opened_at=utcnow())
    case.participants = [Participant(agency_code=code) for code in participants]
    db.session.add(case)
    db.session.flush()
    audit.note(case_id=case.id, youth_id=youth.id)
    return case


def get_case(principal: Principal, case_id: str) -> Case:
    return case_for(principal, case_id, Action.READ_CASE)[0]


def list_cases(principal: Principal, args: dict) -> dict:
    enforce(check_role(principal, Action.READ_CASE))
    stmt = filter_equal(select(Case).where(visible_cases_clause(principal, oslo_today())), Case, args,
                        ("status", "municipality", "youth_id"))
    if args.get("participant"):
        stmt = stmt.where(Case.participants.any(Participant.agency_code == args["participant"]))
    if args.get("due_before"):
        from casesvc.reminders.service import cases_due_before_clause
        stmt = stmt.where(cases_due_before_clause(principal, args["due_before"]))
    return audit.noted_page(paginate(stmt, Case, args["limit"], args.get("cursor")))


def update_case(principal: Principal, case: Case, data: dict) -> Case:
    if "summary" in data:
        case.summary = data["summary"]
    if "legal_hold" in data:
        case.legal_hold = data["legal_hold"]
    participants = case.participant_codes
    if "participants" in data:
        if case.lead_agency not in data["participants"]:
            raise field_error("participants", "The lead agency cannot leave its own case.")
        participants = _participating_agencies(data["participants"], case.municipality, case.lead_agency)
        current = {p.agency_code: p for p in case.participants}
        case.participants = [current.get(code) or Participant(agency_code=code) for code in participants]
        flag_modified(case, "status")  # the participants are part of the case: its version (ETag) moves on
    if "coordinator" in data:
        _check_coordinator(data["coordinator"], participants)
        case.coordinator = data["coordinator"]
    elif "participants" in data and case.coordinator:
        _check_coordinator(case.coordinator, participants)
    db.session.flush()
    return case


def transition_case(principal: Principal, case: Case, to: str, reason: str | None) -> Case:
    CASE_STATES.check(case.status, to, reason)
    case.status = to
    case.status_reason = reason
    if to in CLOSED:
        case.closed_at = utcnow()
        case.outcome = to
    db.session.flush()
    if to in CLOSED:
        from casesvc.reminders.service import on_case_closed
        on_case_closed(case)  # its open reminders are dismissed
    return case


def require_open(case: Case) -> None:
    if case.status in CLOSED:
        raise conflict("case-closed", f"The case is {case.status}; nothing more can be planned on it.")
