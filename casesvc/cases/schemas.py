import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, Code, Instant, Municipality, bounded_list
from casesvc.common.timeutil import rfc3339
from casesvc.vocabulary import CASE_ORIGINS, CASE_STATUSES

MAX_PARTICIPANTS = 50
AgencyCode = ma.fields.String


class CaseSchema(Body):
    id = ma.fields.String(dump_only=True)
    youth_id = ma.fields.String(required=True)
    municipality = Municipality(metadata={"description": "Defaults to the youth's municipality"})
    origin = Code(CASE_ORIGINS, required=True)
    summary = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10000))
    lead_agency = ma.fields.String(
        metadata={"description": "The opening user's agency; if sent, it must be that agency"}
    )
    participants = bounded_list(
        ma.fields.String(),
        MAX_PARTICIPANTS,
        attribute="participant_codes",
        metadata={"description": "Agency codes; the lead agency is always one"},
    )
    coordinator = ma.fields.String(allow_none=True, metadata={"description": "User id of the case's coordinator"})
    status = ma.fields.String(dump_only=True, metadata={"enum": list(CASE_STATUSES)})
    opened_at = Instant(dump_only=True)
    closed_at = Instant(dump_only=True, allow_none=True)
    outcome = ma.fields.String(dump_only=True, allow_none=True)
    status_reason = ma.fields.String(dump_only=True, allow_none=True)
    legal_hold = ma.fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)
    version = ma.fields.Integer(dump_only=True)


class CasePatchSchema(Body):
    """Fields that cannot change here (status, lead_agency, …) are ignored: status changes go
    through the transitions endpoint."""

    summary = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10000))
    participants = bounded_list(ma.fields.String(), MAX_PARTICIPANTS, validate=ma.validate.Length(min=1))
    coordinator = ma.fields.String(allow_none=True)
    legal_hold = ma.fields.Boolean(metadata={"description": "Keep the case past retention (lead or coordinator)"})


class CaseQuery(PageArgs):
    status = Code(CASE_STATUSES)
    municipality = Municipality()
    participant = ma.fields.String()
    youth_id = ma.fields.String()
    due_before = Instant(metadata={"description": "Has a pending reminder (of any agency) due before this"})


def case_body(case) -> dict:
    """What CaseSchema dumps, written out for speed: every case response goes through here
    (lists render 50 at a time). `case` is a Case or a CaseView. `tests/test_case_body.py`
    holds this equal to `CaseSchema().dump(case)`, so the OpenAPI document stays true."""
    return {
        "id": case.id,
        "youth_id": case.youth_id,
        "municipality": case.municipality,
        "origin": case.origin,
        "summary": case.summary,
        "lead_agency": case.lead_agency,
        "participants": list(case.participant_codes),
        "coordinator": case.coordinator,
        "status": case.status,
        "opened_at": rfc3339(case.opened_at),
        "closed_at": rfc3339(case.closed_at),
        "outcome": case.outcome,
        "status_reason": case.status_reason,
        "legal_hold": case.legal_hold,
        "created_at": rfc3339(case.created_at),
        "version": case.version,
    }
