"""Cases: opening, participants, the state machine, and the access loader every entry under a
case goes through."""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone

from sqlalchemy import DateTime, bindparam, exists, select, type_coerce
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import flag_modified

from casesvc import audit, signals
from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.auth.principal import enforce
from casesvc.cases.models import Case, Participant
from casesvc.common.db import UTCDateTime
from casesvc.common.http import keyset_page_template, keyset_params, page_of
from casesvc.common.states import StateMachine
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.emergency.facts import emergency_facts_for
from casesvc.errors import Problem, conflict, field_error, not_found
from casesvc.extensions import db
from casesvc.policy import (Action, CaseAccess, CaseFacts, ConsentFacts, Principal, Relation, authorize, case_access,
                            check_role, visible_cases_params, visible_cases_template)

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
        select(Consent.given_on, Consent.expires_on, Consent.withdrawn_at, Consent.covers_health, Consent.decision)
        .join(ConsentAgency, ConsentAgency.consent_id == Consent.id)
        .where(Consent.case_id == case_id, ConsentAgency.agency_code == agency))
    return tuple(ConsentFacts(frozenset({agency}), bool(health), given, expires, withdrawn is not None,
                              refused=decision == "refused")
                 for given, expires, withdrawn, health, decision in rows)


def facts_of(case: Case, agency: str | None, with_consents: bool = True) -> CaseFacts:
    return CaseFacts(case.municipality, case.lead_agency, frozenset(case.participant_codes),
                     consent_facts_for(case.id, agency) if with_consents else ())


def access_to(principal: Principal, case: Case, with_consents: bool = True) -> CaseAccess:
    facts, today = facts_of(case, principal.agency, with_consents), oslo_today()
    access = case_access(principal, facts, today)
    if access.relation is Relation.CONSENT_REQUIRED:
        # only a participant the consents leave out can be under an emergency access (CONTRACT §10)
        facts = replace(facts, emergency=emergency_facts_for(case.id, principal.subject))
        access = case_access(principal, facts, today, utcnow())
    return access


# Actions that read or write entries, where `health` (a consent covering health) matters.
ENTRY_ACTIONS = frozenset({Action.READ_EVENTS, Action.WRITE_EVENT, Action.READ_NOTES, Action.WRITE_NOTE})


def _consents_matter(principal: Principal, case: Case, action: Action) -> bool:
    """Skip the consent query where its answer cannot change the decision: an outsider is hidden
    whatever the consents say, and the lead needs them only to know whether health entries reach
    it. (The policy matrix tests hold this equal to always asking.)"""
    if principal.agency not in case.participant_codes or case.municipality not in principal.municipalities:
        return False
    return principal.agency != case.lead_agency or action in ENTRY_ACTIONS


def _authorized(principal: Principal, case: Case | CaseView, action: Action) -> CaseAccess:
    audit.note(case_id=case.id, youth_id=case.youth_id)  # recorded whether allowed or refused
    access = access_to(principal, case, _consents_matter(principal, case, action))
    decision = authorize(principal, action, access)
    if decision and access.relation is Relation.EMERGENCY:
        audit.note(basis="emergency")  # a read under an emergency access is marked as such
    enforce(decision)
    return access


def case_for(principal: Principal, case_id: str, action: Action) -> tuple[Case, CaseAccess]:
    """Load a case to change it or what hangs under it (the ORM object), or raise what the
    caller may learn (404, 403)."""
    enforce(check_role(principal, action))
    case = db.session.get(Case, case_id, options=[joinedload(Case.participants)])
    if case is None:
        raise not_found("case")
    return case, _authorized(principal, case, action)


# --- Reading: plain rows, no ORM ----------------------------------------------------------------
# Reads are most of the traffic, and each one loads its case: they get the case as a plain
# record, from statements built once, with the same access decision as `case_for`.

_CASES, _PARTICIPANTS = Case.__table__, Participant.__table__


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as read: its columns and its participants' agency codes, in the order they joined."""

    id: str
    youth_id: str
    municipality: str
    origin: str
    summary: str | None
    lead_agency: str
    coordinator: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    status_reason: str | None
    legal_hold: bool
    created_at: datetime
    version: int
    participant_codes: tuple[str, ...] = ()


# the case's columns in CaseView's order: a row unpacks straight into a CaseView
CASE_VIEW_COLUMNS = tuple(_CASES.c[f.name] for f in fields(CaseView) if f.name != "participant_codes")
_JOINING_ORDER = (_PARTICIPANTS.c.added_at, _PARTICIPANTS.c.agency_code)
# A joined row repeats the case's columns for each participant, and UTCDateTime would make every
# repeated instant aware one value at a time: the instants are read as the plain (naive UTC)
# values they are stored as, and made aware once per case in `_grouped`.
_INSTANTS = tuple(i for i, c in enumerate(CASE_VIEW_COLUMNS) if isinstance(c.type, UTCDateTime))


def _case_row_columns(columns):
    return [type_coerce(c, DateTime()) if i in _INSTANTS else c for i, c in enumerate(columns)]


_ONE_CASE = (select(*_case_row_columns(CASE_VIEW_COLUMNS), _PARTICIPANTS.c.agency_code)
             .outerjoin(_PARTICIPANTS, _PARTICIPANTS.c.case_id == _CASES.c.id)
             .where(_CASES.c.id == bindparam("case_id")).order_by(*_JOINING_ORDER))


def load_case_view(case_id: str) -> CaseView | None:
    views = _grouped(db.session.execute(_ONE_CASE, {"case_id": case_id}).all())
    return views[0] if views else None


def readable_case(principal: Principal, case_id: str, action: Action) -> tuple[CaseView, CaseAccess]:
    """`case_for` for reads: the case as a CaseView, or what the caller may learn (404, 403)."""
    enforce(check_role(principal, action))
    case = load_case_view(case_id)
    if case is None:
        raise not_found("case")
    return case, _authorized(principal, case, action)


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
        youth = youth_for(principal, data["youth_id"], Action.CREATE_CASE)  # not a read: no emergency access
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


def get_case(principal: Principal, case_id: str) -> CaseView:
    return readable_case(principal, case_id, Action.READ_CASE)[0]


LIST_FILTERS = ("status", "municipality", "youth_id", "participant", "due_before")


@functools.cache
def _case_page_query(filters: tuple[str, ...], after_cursor: bool):
    """The statement of one page of GET /cases, for one combination of filters, built once:
    the visible cases (policy), filtered, one keyset page of them, joined to their participants.
    `list_cases` runs it with the caller's visibility, the page and the filters' values."""
    from casesvc.reminders.service import cases_due_before_template

    cases = _CASES.c
    stmt = select(*CASE_VIEW_COLUMNS).where(visible_cases_template())
    for name in filters:
        if name == "participant":
            stmt = stmt.where(exists().where(_PARTICIPANTS.c.case_id == cases.id,
                                             _PARTICIPANTS.c.agency_code == bindparam("participant")))
        elif name == "due_before":
            stmt = stmt.where(cases_due_before_template())
        else:
            stmt = stmt.where(cases[name] == bindparam(name))
    page = keyset_page_template(stmt, cases, after_cursor).subquery("page")
    return (select(*_case_row_columns(page.c), _PARTICIPANTS.c.agency_code)
            .select_from(page.outerjoin(_PARTICIPANTS, _PARTICIPANTS.c.case_id == page.c.id))
            .order_by(page.c.created_at.desc(), page.c.id.desc(), *_JOINING_ORDER))


def list_cases(principal: Principal, args: dict) -> dict:
    """A page of the cases the caller may see, newest first, in one statement."""
    enforce(check_role(principal, Action.READ_CASE))
    visible = visible_cases_params(principal, oslo_today())
    if visible is None:
        return audit.noted_page({"items": [], "next_cursor": None})
    filters = tuple(name for name in LIST_FILTERS if args.get(name))
    params = {**visible, **keyset_params(args["limit"], args.get("cursor")), **{name: args[name] for name in filters}}
    rows = db.session.execute(_case_page_query(filters, bool(args.get("cursor"))), params).all()
    return audit.noted_page(page_of(_grouped(rows), args["limit"]))


def _grouped(rows) -> list[CaseView]:
    """Rows of a case's columns (`_case_row_columns`) and one participant each (NULL for none),
    cases in order -> CaseViews."""
    views, current, codes = [], None, []
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                views.append(_case_view(current, codes))
            current, codes = row, []
        if row[-1] is not None:
            codes.append(row[-1])
    if current is not None:
        views.append(_case_view(current, codes))
    return views


def _case_view(row, codes: list[str]) -> CaseView:
    values = list(row[:-1])
    for i in _INSTANTS:
        if values[i] is not None:
            values[i] = values[i].replace(tzinfo=timezone.utc)  # stored as naive UTC (UTCDateTime)
    return CaseView(*values, tuple(codes))


def _check_no_open_condition_of(leaving: set[str], case: Case) -> None:
    """An agency responsible for a condition of a reaction still open (draft or active) stays in
    the case: the condition's follow-up needs it (a condition's responsible agency must take part)."""
    if not leaving:
        return
    from casesvc.reactions.models import Condition, Reaction

    held = db.session.scalars(
        select(Condition.responsible_agency).distinct()
        .join(Reaction, Reaction.id == Condition.reaction_id)
        .where(Reaction.case_id == case.id, Reaction.status.in_(("draft", "active")),
               Condition.responsible_agency.in_(leaving))).all()
    if held:
        raise field_error("participants", f"Agency {sorted(held)[0]!r} is responsible for a condition of a reaction "
                                          "that is not closed; close or change that reaction first.")


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
        _check_no_open_condition_of(set(case.participant_codes) - set(participants), case)
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
        from casesvc.reactions.service import close_with_case
        close_with_case(case, to, reason)  # no reaction stays open on a closed case
        signals.case_closed.send(case)
    return case


def require_open(case: Case) -> None:
    if case.status in CLOSED:
        raise conflict("case-closed", f"The case is {case.status}; nothing more can be planned on it.")
