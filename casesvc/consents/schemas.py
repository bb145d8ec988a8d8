import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, BusinessDate, Code, Instant, bounded_list
from casesvc.vocabulary import CATEGORIES, CONSENT_DECISIONS, CONSENT_GIVERS

MAX_AGENCIES = 50


class ConsentSchema(Body):
    id = ma.fields.String(dump_only=True)
    case_id = ma.fields.String(dump_only=True)
    decision = Code(
        CONSENT_DECISIONS,
        load_default="given",
        metadata={
            "description": "`refused` records that the youth and/or guardian said no: "
            "it grants nothing and cannot be withdrawn"
        },
    )
    given_by = Code(CONSENT_GIVERS, required=True)
    given_on = BusinessDate(required=True)
    expires_on = BusinessDate(
        load_default=None,
        allow_none=True,
        metadata={"description": "Required for a consent given; a refusal needs none (null when it has none)"},
    )
    purpose = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    agencies = bounded_list(
        ma.fields.String(),
        MAX_AGENCIES,
        required=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": "Agency codes allowed to receive shared information"},
    )
    categories = ma.fields.List(Code(CATEGORIES), load_default=lambda: ["general"], validate=ma.validate.Length(min=1))
    withdrawn_at = Instant(dump_only=True, allow_none=True)
    active = ma.fields.Boolean(dump_only=True, metadata={"description": "Given, not expired, not withdrawn, today"})
    recorded_by_agency = ma.fields.String(dump_only=True)
    created_at = Instant(dump_only=True)

    @ma.validates_schema
    def _expiry_of_a_consent_given(self, data, **kwargs):
        if data.get("decision", "given") == "given" and data.get("expires_on") is None:
            raise ma.ValidationError(_("A consent given needs an end date."), field_name="expires_on")

    @ma.post_dump(pass_original=True)
    def _refusal_has_no_expiry(self, body, consent, **kwargs):
        if hasattr(consent, "expires_on_shown"):
            body["expires_on"] = consent.expires_on_shown.isoformat() if consent.expires_on_shown else None
        return body


class ConsentQuery(PageArgs):
    active = ma.fields.Boolean()
    decision = Code(CONSENT_DECISIONS)
