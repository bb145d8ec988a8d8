import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, Instant, Municipality
from casesvc.consents.schemas import ConsentSchema


def _reason():
    return ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=2000),
        metadata={"description": "Why; kept with the move, not in the audit log or the history"},
    )


class HandoverSchema(Body):
    to = ma.fields.String(
        required=True,
        metadata={"description": "Code of the new lead agency: a participant serving the case's municipality"},
    )
    reason = _reason()


class TransferConsentSchema(ConsentSchema):
    """The consent a transfer rests on: recorded as a consent of the case naming the receiving
    lead (under the rules of a consent: a youth under 16 needs a guardian)."""

    class Meta:
        unknown = ma.EXCLUDE
        exclude = ("agencies", "id", "case_id", "withdrawn_at", "active", "recorded_by_agency", "created_at")


class TransferSchema(Body):
    municipality = Municipality(required=True, metadata={"description": "The receiving municipality"})
    lead = ma.fields.String(
        required=True,
        metadata={"description": "Code of the receiving lead agency; it must serve the receiving municipality"},
    )
    reason = _reason()
    consent = ma.fields.Nested(TransferConsentSchema, required=True)


class CaseMoveSchema(ma.Schema):
    """A move: who, when, from, to — ids and codes only."""

    id = ma.fields.String()
    case_id = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": ["handover", "transfer"]})
    at = Instant()
    actor = ma.fields.String(metadata={"description": "User or client id of who made the move"})
    actor_agency = ma.fields.String()
    from_agency = ma.fields.String()
    to_agency = ma.fields.String()
    from_municipality = ma.fields.String()
    to_municipality = ma.fields.String()
    consent_id = ma.fields.String(allow_none=True, metadata={"description": "A transfer's consent"})
    departed = ma.fields.List(
        ma.fields.String(),
        attribute="departed_agencies",
        metadata={"description": "Agencies that left the case with a transfer"},
    )


class HistoryQuery(PageArgs):
    pass
