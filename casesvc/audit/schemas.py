import copy

import marshmallow as ma

from casesvc.common.pagination import Limit
from casesvc.common.schemas import Code, Instant
from casesvc.vocabulary import AUDIT_OUTCOMES

OUTCOMES = AUDIT_OUTCOMES


class AuditEventSchema(ma.Schema):
    id = ma.fields.String()
    seq = ma.fields.Integer()
    at = ma.fields.String(metadata={"description": "RFC 3339, UTC, microseconds (as hashed)"})
    actor = ma.fields.String(allow_none=True, metadata={"description": "User or client id"})
    actor_role = ma.fields.String(allow_none=True)
    actor_agency = ma.fields.String(allow_none=True)
    action = ma.fields.String(metadata={"description": "The endpoint, e.g. `cases.get_case`"})
    resource_type = ma.fields.String(allow_none=True)
    resource_id = ma.fields.String(allow_none=True)
    case_id = ma.fields.String(allow_none=True)
    youth_id = ma.fields.String(allow_none=True)
    ids = ma.fields.List(
        ma.fields.String(), allow_none=True, metadata={"description": "For a list call: the ids it returned"}
    )
    outcome = ma.fields.String(metadata={"enum": list(OUTCOMES)})
    status = ma.fields.Integer(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    basis = ma.fields.String(
        allow_none=True,
        metadata={"description": "`emergency` for a read under an emergency access, else null (hashed only when set)"},
    )
    prev_hash = ma.fields.String()
    hash = ma.fields.String()


class AuditPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AuditEventSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class AuditQuery(ma.Schema):
    limit = Limit()
    cursor = ma.fields.String(load_default=None)
    from_ = Instant(data_key="from")
    to = Instant()
    actor = ma.fields.String()
    case_id = ma.fields.String()
    youth_id = ma.fields.String()
    action = ma.fields.String()
    outcome = Code(OUTCOMES)


class ExportQuery(ma.Schema):
    from_ = Instant(data_key="from")
    to = Instant()
    format = Code(("jsonl", "csv"), load_default="jsonl")


class HeadSchema(ma.Schema):
    response_optional = ("at", "unsealed")  # the head of /audit/verify's walk has neither

    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)
    at = ma.fields.String(allow_none=True)
    unsealed = ma.fields.Integer(metadata={"description": "Recorded events not yet sealed into the chain"})


class VerifiedHeadSchema(ma.Schema):
    """The last event verify checked: its seq and hash (GET /api/v1/audit/head tells more)."""

    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)


class VerifySchema(ma.Schema):
    valid = ma.fields.Boolean(required=True)
    checked = ma.fields.Integer(required=True)
    first_invalid_seq = ma.fields.Integer(allow_none=True, required=True)
    reason = ma.fields.String(allow_none=True)
    head = ma.fields.Nested(VerifiedHeadSchema)
    unsealed = ma.fields.Integer()


ACCESS_LOG_FIELDS = (
    "at",
    "actor",
    "actor_role",
    "actor_agency",
    "action",
    "resource_type",
    "resource_id",
    "case_id",
    "outcome",
    "basis",
)
# Who, when, what, with what outcome — not the ids other calls returned. A schema of these fields
# only (not AuditEventSchema narrowed by Meta.fields), so that the document lists no more than is sent.
AccessLogEntrySchema = ma.Schema.from_dict(
    {name: copy.deepcopy(AuditEventSchema._declared_fields[name]) for name in ACCESS_LOG_FIELDS},
    name="AccessLogEntrySchema",
)


class AccessLogPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AccessLogEntrySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class AccessLogQuery(ma.Schema):
    limit = Limit()
    cursor = ma.fields.String(load_default=None)
