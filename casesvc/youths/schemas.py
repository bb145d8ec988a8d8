import marshmallow as ma

from casesvc.common.http import PageArgs
from casesvc.common.schemas import Body, Code, Instant, Municipality
from casesvc.vocabulary import GUARDIAN_RELATIONS


class GuardianSchema(Body):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    relation = Code(GUARDIAN_RELATIONS, required=True)
    phone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=40))
    email = ma.fields.Email(allow_none=True)


class YouthSchema(Body):
    id = ma.fields.String(dump_only=True)
    given_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    family_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    birth_date = ma.fields.Date(required=True)
    national_id = ma.fields.String(required=True, metadata={"description": "Fødselsnummer or D-number, 11 digits"})
    municipality = Municipality(required=True)
    school = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    guardians = ma.fields.List(ma.fields.Nested(GuardianSchema), load_default=list)
    created_by_agency = ma.fields.String(dump_only=True)
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)
    version = ma.fields.Integer(dump_only=True)


class YouthPatchSchema(ma.Schema):
    given_name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    family_name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    municipality = Municipality()
    school = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    guardians = ma.fields.List(ma.fields.Nested(GuardianSchema))


class YouthQuery(PageArgs):
    national_id = ma.fields.String()
