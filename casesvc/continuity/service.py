"""Continuity (README "Continuity"): the lead hands a case over to another participant, or the
case follows the youth to another municipality. Either move happens in the request's single
transaction, with whatever follows from it (reminders, via the signals) in the same one."""

from __future__ import annotations

from sqlalchemy import select, update

from casesvc import audit, signals
from casesvc.access import case_for, enforce, readable_case
from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.cases.models import Case, Participant
from casesvc.cases.states import CLOSED
from casesvc.common.messages import _
from casesvc.common.pagination import paginate
from casesvc.common.timeutil import utcnow
from casesvc.consents.service import record_consent
from casesvc.continuity.models import CaseMove
from casesvc.errors import Problem, conflict, field_error, validation_error
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.policy import Action, Principal, check_role
from casesvc.reactions.models import Condition, Reaction
from casesvc.youths.models import Youth


def _require_live(case: Case) -> None:
    if case.status in CLOSED:
        raise conflict(
            "case-closed", _("The case is %(status)s; a closed case is not handed over or moved.", status=case.status)
        )


def _agency(code: str, field: str) -> Agency:
    agency = db.session.get(Agency, code)
    if agency is None:
        raise field_error(field, _("Unknown agency %(code)r.", code=code))
    return agency


def _record_move(
    principal: Principal,
    case: Case,
    kind: str,
    from_agency: str,
    from_municipality: str,
    reason: str,
    consent_id: str | None = None,
    departed: list[str] | None = None,
) -> CaseMove:
    move = CaseMove(
        case_id=case.id,
        kind=kind,
        at=utcnow(),
        actor=principal.subject,
        actor_agency=principal.agency,
        from_agency=from_agency,
        to_agency=case.lead_agency,
        from_municipality=from_municipality,
        to_municipality=case.municipality,
        consent_id=consent_id,
        departed=" ".join(departed) if departed else None,
        reason=reason,
    )
    db.session.add(move)
    db.session.flush()
    audit.note(resource_type="case", resource_id=case.id)
    return move


# --- handover ---------------------------------------------------------------------------------


def hand_over(principal: Principal, case_id: str, to: str, reason: str) -> Case:
    """The lead passes to another participant serving the case's municipality. The old lead
    stays a participant, from now on under consent like any other."""
    case, _access = case_for(principal, case_id, Action.HANDOVER_CASE)
    _require_live(case)
    if to == case.lead_agency:
        raise field_error("to", _("This agency already leads the case."))
    if to not in case.participant_codes:
        raise field_error("to", _("The new lead must take part in the case."))
    if not _agency(to, "to").serves(case.municipality):
        raise field_error(
            "to",
            _("Agency %(code)r does not serve municipality %(municipality)s.", code=to, municipality=case.municipality),
        )
    old_lead = case.lead_agency
    case.lead_agency = to  # a column of the case: its version (ETag) moves on
    db.session.flush()
    _record_move(principal, case, "handover", old_lead, case.municipality, reason)
    signals.case_handed_over.send(case, from_agency=old_lead, to_agency=to)
    return case


# --- transfer ---------------------------------------------------------------------------------


def transfer(principal: Principal, case_id: str, data: dict) -> Case:
    """The case moves to another municipality and a lead there, on the consent the request
    carries; participants that do not serve the new municipality leave it."""
    enforce(check_role(principal, Action.WRITE_CONSENT))  # it records a consent: that scope too (README)
    case, _access = case_for(principal, case_id, Action.TRANSFER_CASE)
    _require_live(case)
    municipality, lead = data["municipality"], data["lead"]
    if municipality == case.municipality:
        raise field_error("municipality", _("The case is already in this municipality."))
    if not _agency(lead, "lead").serves(municipality):
        raise field_error(
            "lead",
            _("Agency %(code)r does not serve municipality %(municipality)s.", code=lead, municipality=municipality),
        )
    old_lead, old_municipality = case.lead_agency, case.municipality

    departed = _leave_unless_serving(case, municipality, lead)
    case.municipality = municipality
    case.lead_agency = lead
    db.session.flush()
    consent = _record_transfer_consent(principal, case, lead, data["consent"])
    _reassign_conditions(case, departed, lead)
    youth = db.session.get_one(Youth, case.youth_id)
    youth.municipality = municipality  # the youth's municipality follows the case
    db.session.flush()
    _record_move(principal, case, "transfer", old_lead, old_municipality, data["reason"], consent.id, departed)
    signals.case_transferred.send(case, from_agency=old_lead, to_agency=lead, departed=frozenset(departed))
    return case


def _leave_unless_serving(case: Case, municipality: str, lead: str) -> list[str]:
    """Keep the participants serving `municipality`, add the receiving lead; the others leave
    (returned, by code). A coordinator user of a departing agency is no longer the case's."""
    codes = case.participant_codes
    serving = {
        a.code for a in db.session.scalars(select(Agency).where(Agency.code.in_(codes))) if a.serves(municipality)
    }
    departed = [code for code in codes if code not in serving and code != lead]
    kept = [p for p in case.participants if p.agency_code not in departed]
    if lead not in serving:
        kept.append(Participant(agency_code=lead))
    case.participants = kept
    if case.coordinator is not None:
        agency = db.session.scalar(select(User.agency_code).where(User.id == case.coordinator))
        if agency in departed:
            case.coordinator = None
    return departed


def _record_transfer_consent(principal: Principal, case: Case, lead: str, consent: dict):
    """The consent of README "The API at a glance" naming the receiving lead, validated by the consents' own rules; its
    field errors are reported under `consent`."""
    try:
        return record_consent(principal, case, {**consent, "agencies": [lead]})
    except Problem as exc:
        if exc.status != 422 or "errors" not in exc.extra:
            raise
        raise validation_error({f"consent.{name}": messages for name, messages in exc.extra["errors"].items()}) from exc


def _reassign_conditions(case: Case, departed: list[str], lead: str) -> None:
    """Conditions whose responsible agency left get the receiving lead; the drug tests already
    logged against them reach the agency now responsible (the drug-test rule of README "Security model")."""
    if not departed:
        return
    ids = list(
        db.session.scalars(
            select(Condition.id)
            .join(Reaction, Reaction.id == Condition.reaction_id)
            .where(Reaction.case_id == case.id, Condition.responsible_agency.in_(departed))
        )
    )
    if not ids:
        return
    db.session.execute(
        update(Condition)
        .where(Condition.id.in_(ids))
        .values(responsible_agency=lead)
        .execution_options(synchronize_session="fetch")
    )
    db.session.execute(
        update(Event)
        .where(Event.condition_id.in_(ids))
        .values(condition_agency=lead)
        .execution_options(synchronize_session="fetch")
    )


# --- history ----------------------------------------------------------------------------------


def history(principal: Principal, case_id: str, args: dict) -> dict:
    """The case's moves, newest first, for every agency that may read the case."""
    case, _access = readable_case(principal, case_id, Action.READ_HISTORY)
    stmt = select(CaseMove).where(CaseMove.case_id == case.id)
    return audit.noted_page(paginate(stmt, CaseMove, args["limit"], args.get("cursor")))
