"""The access policy's rules as SQL expressions, for lists: each states what a function of
`casesvc.policy` decides for one record, so a list can never show what a GET would refuse.
The policy matrix tests hold the two equal (docs/architecture.md, "Where each rule lives")."""

from __future__ import annotations

import functools
from datetime import date

from sqlalchemy import Date, String, and_, bindparam, cast, exists, false, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB

from casesvc.cases.models import Case, Participant
from casesvc.common.db import in_list
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.policy import READ_RELATIONS, CaseAccess, Principal
from casesvc.reminders.models import Reminder
from casesvc.youths.models import Youth


def active_consent_clause(agency, case_id_column, today):
    """A consent naming `agency` is active on `today` for the case (values or bind parameters)."""
    consents, named = Consent.__table__.c, ConsentAgency.__table__.c
    return exists(
        select(named.consent_id)
        .join(Consent.__table__, consents.id == named.consent_id)
        .where(
            named.agency_code == agency,
            consents.case_id == case_id_column,
            consents.decision == "given",
            consents.withdrawn_at.is_(None),
            consents.given_on <= today,
            consents.expires_on >= today,
        )
    )


def visible_cases_params(principal: Principal, today: date) -> dict | None:
    """The values for the parameters of `visible_cases_template()`; None when the caller may
    see no case at all."""
    if not principal.is_staff or not principal.municipalities:
        return None
    return {
        "visible_municipalities": sorted(principal.municipalities),
        "visible_agency": principal.agency,
        "visible_today": today,
    }


def _visible_cases(agency, in_municipality, today):
    """Cases the caller may read: case_access(...) in (LEAD, SHARED), as a WHERE clause over the
    `cases` table. The caller's agency and day are values or bind parameters, `in_municipality`
    the condition that the case is in one of the caller's municipalities."""
    return _visible_in(in_municipality, agency, today)


def case_led_by_caller_row(agency, municipalities_json):
    """case_access(...) is LEAD, on PostgreSQL, for a caller read in the same statement: `agency`
    and `municipalities_json` (the agency's JSON array of municipality codes) are the caller's
    columns. The lead's read of a case inserts its audit event in the caller's statement under
    it (`casesvc.auth.principal`): the lead's access rests on nothing but the rows of that one
    statement (no consent, no day, no emergency access), so the policy in Python, deciding on
    the same rows, decides alike."""
    in_municipality = cast(municipalities_json, JSONB).has_key(Case.__table__.c.municipality)
    return and_(_participates(agency), in_municipality, Case.__table__.c.lead_agency == agency)


def _participates(agency):
    cases, participants = Case.__table__.c, Participant.__table__.c
    return exists(
        select(participants.case_id).where(participants.case_id == cases.id, participants.agency_code == agency)
    )


def _visible_in(in_municipality, agency, today):
    cases = Case.__table__.c
    return and_(
        in_municipality,
        _participates(agency),
        or_(cases.lead_agency == agency, active_consent_clause(agency, cases.id, today)),
    )


def visible_cases_clause(principal: Principal, today: date):
    """The cases `principal` may read, as a WHERE clause to compose into a query."""
    params = visible_cases_params(principal, today)
    if params is None:
        return false()
    in_municipality = Case.__table__.c.municipality.in_(params["visible_municipalities"])
    return _visible_cases(params["visible_agency"], in_municipality, today)


@functools.cache
def visible_cases_template():
    """`visible_cases_clause` with bind parameters for the caller, built once: a list statement
    made from it is built once too, compiled once (the municipalities are one parameter,
    whatever their number: `in_list`), and run with `visible_cases_params(principal, today)`."""
    return _visible_cases(
        bindparam("visible_agency", type_=String),
        in_list(Case.__table__.c.municipality, "visible_municipalities"),
        bindparam("visible_today", type_=Date),
    )


def visible_youths_clause(principal: Principal, today: date):
    if not principal.is_staff:
        return false()
    return or_(
        Youth.created_by_agency == principal.agency,
        exists(select(Case.id).where(Case.youth_id == Youth.id, visible_cases_clause(principal, today))),
    )


def visible_entries_clause(model, principal: Principal, access: CaseAccess):
    """can_see_entry(...) as a WHERE clause over Event or Note."""
    if access.relation not in READ_RELATIONS:
        return false()
    shared = and_(
        model.visibility == "shared",
        or_(model.category == "general", and_(model.category == "health", true() if access.health else false())),
    )
    clauses = [model.author_agency == principal.agency, shared]
    if hasattr(model, "condition_agency"):
        clauses.append(and_(model.kind == "drug_test", model.condition_agency == principal.agency))
    return or_(*clauses)


def cases_due_before_template():
    """For GET /cases?due_before=: the case has a pending reminder due before `due_before` (a bind
    parameter), whichever agency it is assigned to (README, "Cases"). Which cases the caller sees
    is the access policy's business, not this filter's."""
    reminders = Reminder.__table__.c
    return exists().where(
        reminders.case_id == Case.__table__.c.id,
        reminders.status == "pending",
        reminders.due_at < bindparam("due_before", type_=reminders.due_at.type),
    )
