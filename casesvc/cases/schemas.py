import marshmallow as ma
from sqlalchemy import Text, case as when, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from casesvc.common.jsonio import JSONText
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


# --- a case's body written by PostgreSQL ------------------------------------------------------
#
# A page of 50 cases costs Python more to turn from rows into JSON than PostgreSQL to read them:
# on PostgreSQL the page's statement writes each case's body itself (`case_body_sql`), as the
# bytes `case_body` and the app's JSON writer give (compact, keys in the documented order,
# instants to the second in UTC), and the response embeds them as they are (`case_item`).
# `tests/access/test_case_body.py` holds the two forms equal, byte for byte.


class RenderedCase(JSONText):
    """A case of a page whose body the database wrote: its JSON, and the id and creation instant
    the page's cursor and audit event are made of."""

    __slots__ = ("created_at", "id")

    def __init__(self, id: str, created_at, text: str):
        super().__init__(text)
        self.id, self.created_at = id, created_at


def case_item(case):
    """A case of a page as the response holds it: JSON the database wrote, or `case_body`."""
    return case if isinstance(case, JSONText) else case_body(case)


def _sql(text: str):
    return literal_column("'" + text.replace("'", "''") + "'", Text)


_NULL = _sql("null")
_INSTANT = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'  # rfc3339: UTC (stored so), truncated to the second


def _json_value(column):
    return func.coalesce(cast(func.to_json(column), Text), _NULL)


def _json_instant(column):
    return func.coalesce(_sql('"') + func.to_char(column, _sql(_INSTANT)) + _sql('"'), _NULL)


def case_body_sql(case, participants, joining_order) -> ColumnElement[str]:
    """`case_body` as a PostgreSQL expression over `case` (the cases table's columns, or a page
    of them) and the `participants` table, in `joining_order`: the body's JSON text."""
    code = cast(func.to_json(participants.c.agency_code), Text)
    codes = (
        select(func.string_agg(code, aggregate_order_by(_sql(","), *joining_order)))
        .where(participants.c.case_id == case.id)
        .scalar_subquery()
    )
    values = {
        "id": _json_value(case.id),
        "youth_id": _json_value(case.youth_id),
        "municipality": _json_value(case.municipality),
        "origin": _json_value(case.origin),
        "summary": _json_value(case.summary),
        "lead_agency": _json_value(case.lead_agency),
        "participants": _sql("[") + func.coalesce(codes, _sql("")) + _sql("]"),
        "coordinator": _json_value(case.coordinator),
        "status": _json_value(case.status),
        "opened_at": _json_instant(case.opened_at),
        "closed_at": _json_instant(case.closed_at),
        "outcome": _json_value(case.outcome),
        "status_reason": _json_value(case.status_reason),
        "legal_hold": when((case.legal_hold, _sql("true")), else_=_sql("false")),
        "created_at": _json_instant(case.created_at),
        "version": cast(case.version, Text),
    }
    parts = []
    for i, (name, value) in enumerate(values.items()):
        parts += [_sql(("{" if i == 0 else ",") + f'"{name}":'), value]
    return func.concat(*parts, _sql("}"))
