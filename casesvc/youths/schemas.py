import re

import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import BirthDate, Body, Instant, Municipality, Name, bounded_list
from casesvc.vocabulary import GUARDIAN_RELATIONS

MAX_RELATION_LENGTH = 20  # the column's length
MAX_GUARDIANS = 10
NATIONAL_ID_PATTERN = "^[0-9]{11}$"  # documents what youths.national_id checks (and the check digits)


class GuardianSchema(Body):
    name = Name(required=True)
    relation = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(max=MAX_RELATION_LENGTH),
            ma.validate.Regexp(re.compile(r".*\S", re.DOTALL), error=_("Must not be blank.")),
        ],
        metadata={
            "description": f"Free text, 1-{MAX_RELATION_LENGTH} characters; the vocabulary's codes are suggested: "
            + ", ".join(GUARDIAN_RELATIONS)
        },
    )
    phone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=40))
    email = ma.fields.Email(allow_none=True)


class YouthSchema(Body):
    id = ma.fields.String(dump_only=True)
    given_name = Name(required=True)
    family_name = Name(required=True)
    birth_date = BirthDate(required=True)
    national_id = ma.fields.String(
        required=True,
        metadata={
            "description": "Fødselsnummer or D-number: 11 digits, both check digits validated; its day, month and "
            "two-digit year are those of birth_date (D-number: day + 40)",
            "pattern": NATIONAL_ID_PATTERN,
        },
    )
    municipality = Municipality(required=True)
    school = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    guardians = bounded_list(ma.fields.Nested(GuardianSchema), MAX_GUARDIANS, load_default=list)
    created_by_agency = ma.fields.String(dump_only=True)
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)
    version = ma.fields.Integer(dump_only=True)


class YouthPatchSchema(Body):
    """A changed national_id or birth_date (a D-number replaced by a fødselsnummer, a typing error)
    is checked as at registration: both check digits, the two agree, and a number another youth
    holds is 409 with that youth's id. Sent back unchanged, they change nothing."""

    birth_date = BirthDate()
    national_id = ma.fields.String(metadata={"description": "As at registration", "pattern": NATIONAL_ID_PATTERN})
    given_name = Name()
    family_name = Name()
    municipality = Municipality()
    school = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    guardians = bounded_list(ma.fields.Nested(GuardianSchema), MAX_GUARDIANS)


class YouthQuery(PageArgs):
    national_id = ma.fields.String()
