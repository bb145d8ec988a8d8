"""Cases: opening, participants, the state machine, and the access loader every entry under a
case goes through."""

from __future__ import annotations

import functools
from typing import cast

from sqlalchemy import bindparam, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm.attributes import flag_modified

from casesvc import audit, signals
from casesvc.access import CaseView, enforce, readable_case, youth_for
from casesvc.access.case_view import CASE_VIEW_COLUMNS, JOINING_ORDER, case_row_columns, grouped
from casesvc.access.clauses import cases_due_before_template, visible_cases_params, visible_cases_template
from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.cases.models import Case, Participant
from casesvc.cases.schemas import RenderedCase, case_body_sql
from casesvc.cases.states import CASE_STATES, CLOSED
from casesvc.common.connection import request_connection
from casesvc.common.direct import DirectStatement
from casesvc.common.messages import _
from casesvc.common.pagination import Keyset
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.errors import Problem, field_error
from casesvc.extensions import db
from casesvc.policy import Action, Principal, check_role
from casesvc.reactions.models import Condition, Reaction
from casesvc.reactions.service import close_with_case


def _participating_agencies(codes: list[str], municipality: str, lead: str) -> list[str]:
    wanted = list(dict.fromkeys([lead, *codes]))
    agencies = {a.code: a for a in db.session.scalars(select(Agency).where(Agency.code.in_(wanted)))}
    for code in wanted:
        agency = agencies.get(code)
        if agency is None:
            raise field_error("participants", _("Unknown agency %(code)r.", code=code))
        if not agency.serves(municipality):
            raise field_error(
                "participants",
                _(
                    "Agency %(code)r does not serve municipality %(municipality)s.",
                    code=code,
                    municipality=municipality,
                ),
            )
    return wanted


def _check_coordinator(user_id: str | None, participants: list[str]) -> None:
    if user_id is None:
        return
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.agency_code not in participants:
        raise field_error("coordinator", _("Must be an active user of a participating agency."))


def open_case(principal: Principal, data: dict) -> Case:
    enforce(check_role(principal, Action.CREATE_CASE))
    try:
        youth = youth_for(principal, data["youth_id"], Action.CREATE_CASE)  # not a read: no emergency access
    except Problem as exc:  # an unknown or hidden youth is a bad field here, not a missing page
        if exc.status != 404:
            raise
        raise field_error("youth_id", _("No such youth.")) from exc
    if data.get("lead_agency") not in (None, principal.agency):
        raise field_error("lead_agency", _("A case is opened by its lead agency: this must be your own agency."))
    municipality = data.get("municipality") or youth.municipality
    if municipality not in principal.municipalities:
        raise field_error("municipality", _("Your agency does not serve this municipality."))
    lead = cast(str, principal.agency)  # staff (check_role above): every staff member has an agency
    participants = _participating_agencies(data.get("participant_codes") or [], municipality, lead)
    _check_coordinator(data.get("coordinator"), participants)
    case = Case(
        youth_id=youth.id,
        municipality=municipality,
        origin=data["origin"],
        summary=data.get("summary"),
        lead_agency=principal.agency,
        coordinator=data.get("coordinator"),
        status="open",
        opened_at=utcnow(),
    )
    case.participants = [Participant(agency_code=code) for code in participants]
    db.session.add(case)
    db.session.flush()
    audit.note(case_id=case.id, youth_id=youth.id)
    return case


def get_case(principal: Principal, case_id: str) -> CaseView:
    return readable_case(principal, case_id, Action.READ_CASE)[0]


_NEWEST_FIRST = Keyset.newest_first(Case.__table__.c)
LIST_FILTERS = ("status", "municipality", "youth_id", "participant", "due_before")


@functools.lru_cache(maxsize=256)  # a combination of filters, a page size (clients keep to a few)
def _case_page_query(
    filters: tuple[str, ...], after_cursor: bool, limit: int, with_event: bool = False, rendered: bool = False
):
    """The statement of one page of GET /cases, for one combination of filters and one page
    size (`limit` cases, written into the statement: `Keyset.template`), built and compiled once
    and sent on the driver's cursor (common/direct.py: a page of 50 cases spent more of its CPU in
    SQLAlchemy's execution path and result rows than in its own rows): the visible cases
    (policy), filtered, one keyset page of them, with their participants. `list_cases` runs it
    with the caller's visibility, the cursor and the filters' values. With `with_event`
    (PostgreSQL) it also inserts the list's audit event, holding the ids of the page's first
    `limit` cases (the ones answered; the page reads one more to know if another page follows).
    With `rendered` (PostgreSQL) a row is a case's id, its creation instant and its body's JSON,
    written by the statement (`case_body_sql`); otherwise a row is a case's columns and one
    participant (`grouped`)."""
    cases = Case.__table__.c
    stmt = select(*CASE_VIEW_COLUMNS).where(visible_cases_template())
    for name in filters:
        if name == "participant":
            stmt = stmt.where(
                exists().where(
                    Participant.__table__.c.case_id == cases.id,
                    Participant.__table__.c.agency_code == bindparam("participant"),
                )
            )
        elif name == "due_before":
            stmt = stmt.where(cases_due_before_template())
        else:
            stmt = stmt.where(cases[name] == bindparam(name))
    page_stmt = _NEWEST_FIRST.template(stmt, after_cursor, limit)
    page = page_stmt.cte("page") if with_event else page_stmt.subquery("page")
    newest_first = (page.c.created_at.desc(), page.c.id.desc())
    if rendered:
        body = case_body_sql(page.c, Participant.__table__, JOINING_ORDER)
        stmt = select(page.c.id, page.c.created_at, body).order_by(*newest_first)
    else:
        stmt = (
            select(*case_row_columns(page.c), Participant.__table__.c.agency_code)
            .select_from(page.outerjoin(Participant.__table__, Participant.__table__.c.case_id == page.c.id))
            .order_by(*newest_first, *JOINING_ORDER)
        )
    if with_event:
        shown = (
            select(page.c.id, page.c.created_at)
            .order_by(*newest_first)
            .limit(literal_column(str(int(limit))))
            .subquery()
        )
        ids = select(
            func.coalesce(
                func.json_agg(aggregate_order_by(shown.c.id, shown.c.created_at.desc(), shown.c.id.desc())),
                literal_column("'[]'::json"),
            )
        ).scalar_subquery()
        # the statement reads no column of the event: PostgreSQL runs a data-modifying CTE anyway
        stmt = stmt.add_cte(audit.read_event_cte({"ids": ids}))
    return DirectStatement(stmt)


def list_cases(principal: Principal, args: dict) -> dict:
    """A page of the cases the caller may see, newest first, in one statement."""
    enforce(check_role(principal, Action.READ_CASE))
    visible = visible_cases_params(principal, oslo_today())
    if visible is None:
        return audit.noted_page({"items": [], "next_cursor": None})
    filters = tuple(name for name in LIST_FILTERS if args.get(name))
    params = {
        **visible,
        **_NEWEST_FIRST.params(args.get("cursor")),
        **{name: args[name] for name in filters},
    }
    with_event = audit.events_ride_reads()
    if with_event:
        params |= audit.read_event_params(principal.subject, principal.role, principal.agency)
    conn = request_connection()
    rendered = conn.dialect.name == "postgresql"
    rows = _case_page_query(filters, bool(args.get("cursor")), args["limit"], with_event, rendered).rows(conn, params)
    if with_event:
        audit.recorded_by_read()
    cases = [RenderedCase(*row) for row in rows] if rendered else grouped(rows)
    return audit.noted_page(_NEWEST_FIRST.page_of(cases, args["limit"]))


def _check_no_open_condition_of(leaving: set[str], case: Case) -> None:
    """An agency responsible for a condition of a reaction still open (draft or active) stays in
    the case: the condition's follow-up needs it (a condition's responsible agency must take part)."""
    if not leaving:
        return
    held = db.session.scalars(
        select(Condition.responsible_agency)
        .distinct()
        .join(Reaction, Reaction.id == Condition.reaction_id)
        .where(
            Reaction.case_id == case.id,
            Reaction.status.in_(("draft", "active")),
            Condition.responsible_agency.in_(leaving),
        )
    ).all()
    if held:
        raise field_error(
            "participants",
            _(
                "Agency %(code)r is responsible for a condition of a reaction that is "
                "not closed; close or change that reaction first.",
                code=sorted(held)[0],
            ),
        )


def update_case(principal: Principal, case: Case, data: dict) -> Case:
    if "summary" in data:
        case.summary = data["summary"]
    if "legal_hold" in data:
        case.legal_hold = data["legal_hold"]
    participants = case.participant_codes
    if "participants" in data:
        if case.lead_agency not in data["participants"]:
            raise field_error("participants", _("The lead agency cannot leave its own case."))
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
        close_with_case(case, to, reason)  # no reaction stays open on a closed case
        signals.case_closed.send(case)
    return case
