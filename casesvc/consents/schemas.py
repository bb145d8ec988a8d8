import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, BusinessDate, Code, Instant, bounded_list
from casesvc.vocabulary import CATEGORIES, CONSENT_GIVERS


MAX_AGENCIES = 50


class ConsentSchema(Body):
    id = ma.fields.String(dump_only=True)
    case_id = ma.fields.String(dump_only=True)
    given_by = Code(CONSENT_GIVERS, required=True)
    given_on = BusinessDate(required=True)
    expires_on = BusinessDate(required=True)
    purpose = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    agencies = bounded_list(ma.fields.String(), MAX_AGENCIES, required=True, validate=ma.validate.Length(min=1),
                              metadata={"description": "Agency codes allowed to receive shared information"})
    categories = ma.fields.List(Code(CATEGORIES), load_default=lambda: ["general"],
                                validate=ma.validate.Length(min=1))
    withdrawn_at = Instant(dump_only=True, allow_none=True)
    active = ma.fields.Boolean(dump_only=True, metadata={"description": "Given, not expired, not withdrawn, today"})
    recorded_by_agency = ma.fields.String(dump_only=True)
    created_at = Instant(dump_only=True)


class ConsentQuery(PageArgs):
    active = ma.fields.Boolean()
