import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, Code, Instant
from casesvc.vocabulary import EMERGENCY_FINDINGS

MIN_REASON = 20


def _reason_long_enough(value: str) -> None:
    if len(value.strip()) < MIN_REASON:
        raise ma.ValidationError(_("Say why, in at least %(least)s characters.", least=MIN_REASON))


class EmergencyRequestSchema(Body):
    reason = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(max=2000), _reason_long_enough],
        metadata={
            "description": f"Why the case must be read now (at least {MIN_REASON} "
            "characters besides spaces); kept out of the audit chain",
            "minLength": MIN_REASON,
        },
    )


class EmergencyAccessSchema(ma.Schema):
    id = ma.fields.String()
    case_id = ma.fields.String()
    user = ma.fields.String(metadata={"description": "The user granted the access (never the whole agency)"})
    agency = ma.fields.String()
    started_at = Instant()
    expires_at = Instant()


class ReviewSchema(ma.Schema):
    finding = Code(EMERGENCY_FINDINGS)
    comment = ma.fields.String(allow_none=True)
    reviewed_by = ma.fields.String()
    reviewed_at = Instant()


class ReviewedAccessSchema(EmergencyAccessSchema):
    """An emergency access as auditors see it: with its reason and its review."""

    reason = ma.fields.String()
    reviewed = ma.fields.Boolean()
    review = ma.fields.Nested(ReviewSchema, allow_none=True)


class ReviewRequestSchema(Body):
    finding = Code(EMERGENCY_FINDINGS, required=True)
    comment = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=4000))


class EmergencyQuery(PageArgs):
    from_ = Instant(data_key="from", metadata={"description": "Opened at or after"})
    to = Instant(metadata={"description": "Opened before"})
    reviewed = ma.fields.Boolean()
