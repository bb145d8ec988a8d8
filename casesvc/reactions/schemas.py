import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, BusinessDate, BusinessInstant, Code, Instant, WholeNumber, bounded_list
from casesvc.vocabulary import CONDITION_KINDS, LEGAL_BASES, REACTION_STATUSES, REACTION_TYPES, SIGNATURE_PARTIES

MAX_CONDITIONS = 50
MAX_SIGNATURES = 10


class ConditionSchema(Body):
    id = ma.fields.String(dump_only=True)
    kind = Code(CONDITION_KINDS, required=True)
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    every_days = WholeNumber(allow_none=True, validate=ma.validate.Range(min=1, max=366))
    responsible_agency = ma.fields.String(required=True, metadata={"description": "A participating agency's code"})


class SignatureSchema(Body):
    id = ma.fields.String(dump_only=True)
    party = Code(SIGNATURE_PARTIES, required=True)
    signed_on = BusinessDate(required=True)
    recorded_by_agency = ma.fields.String(dump_only=True)


class ReactionSchema(Body):
    id = ma.fields.String(dump_only=True)
    case_id = ma.fields.String(dump_only=True)
    type = Code(REACTION_TYPES, required=True)
    legal_basis = Code(LEGAL_BASES, required=True)
    police_reference = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    starts_on = BusinessDate(
        allow_none=True,
        metadata={
            "description": "Default: for a concern conversation the Oslo date of scheduled_at, when given; "
            "else today's date in Oslo"
        },
    )
    ends_on = BusinessDate(
        allow_none=True, metadata={"description": "Required for contracts: at most 2 years after starts_on"}
    )
    probation_ends_on = BusinessDate(allow_none=True)
    scheduled_at = BusinessInstant(allow_none=True, metadata={"description": "Concern conversation only"})
    held_at = BusinessInstant(allow_none=True, metadata={"description": "Concern conversation only"})
    status = ma.fields.String(dump_only=True, metadata={"enum": list(REACTION_STATUSES)})
    status_reason = ma.fields.String(dump_only=True, allow_none=True)
    conditions = bounded_list(ma.fields.Nested(ConditionSchema), MAX_CONDITIONS, load_default=list)
    signatures = bounded_list(ma.fields.Nested(SignatureSchema), MAX_SIGNATURES, load_default=list)
    created_by_agency = ma.fields.String(dump_only=True)
    created_at = Instant(dump_only=True)
    version = ma.fields.Integer(dump_only=True)


class ReactionPatchSchema(Body):
    """Status is never patched: sent here it is ignored, like type, legal_basis and signatures;
    status changes go through the transitions endpoint."""

    police_reference = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    starts_on = BusinessDate()
    ends_on = BusinessDate(allow_none=True)
    probation_ends_on = BusinessDate(allow_none=True)
    scheduled_at = BusinessInstant(allow_none=True)
    held_at = BusinessInstant(allow_none=True)
    conditions = bounded_list(
        ma.fields.Nested(ConditionSchema),
        MAX_CONDITIONS,
        metadata={"description": "Replaces the conditions; only while draft"},
    )


class ReactionQuery(PageArgs):
    status = Code(REACTION_STATUSES)
    type = Code(REACTION_TYPES)
