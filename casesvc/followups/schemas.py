import marshmallow as ma

from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, BusinessInstant, Code, Instant
from casesvc.vocabulary import CATEGORIES, DRUG_TEST_RESULTS, EVENT_KINDS, VISIBILITIES


class AuthorSchema(ma.Schema):
    agency = ma.fields.String(attribute="author_agency")
    user_id = ma.fields.String(attribute="author_user")


class EntrySchema(Body):
    id = ma.fields.String(dump_only=True)
    case_id = ma.fields.String(dump_only=True)
    category = Code(CATEGORIES, load_default="general")
    visibility = Code(
        VISIBILITIES,
        load_default="shared",
        metadata={"description": "`agency`: only the authoring agency sees it, not even the lead"},
    )
    corrects = ma.fields.String(allow_none=True, metadata={"description": "Id of the entry this one corrects"})
    author = ma.fields.Function(
        lambda obj: {"agency": obj.author_agency, "user_id": obj.author_user},
        dump_only=True,
        metadata={"type": "object"},
    )
    created_at = Instant(dump_only=True)


class EventSchema(EntrySchema):
    kind = Code(EVENT_KINDS, required=True)
    occurred_at = BusinessInstant(required=True)
    reaction_id = ma.fields.String(allow_none=True)
    condition_id = ma.fields.String(allow_none=True)
    result = Code(DRUG_TEST_RESULTS, allow_none=True, metadata={"description": "Drug tests only"})
    summary = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10000))


class NoteSchema(EntrySchema):
    body = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=20000))


class EventQuery(PageArgs):
    kind = Code(EVENT_KINDS)
    reaction_id = ma.fields.String()
    condition_id = ma.fields.String()


class NoteQuery(PageArgs):
    category = Code(CATEGORIES)
