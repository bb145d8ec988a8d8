import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.pagination import PageArgs
from casesvc.common.schemas import Body, Code, Instant, Municipality, bounded_list
from casesvc.vocabulary import AGENCY_KINDS, ROLES

MAX_MUNICIPALITIES = 400  # there are fewer municipalities in Norway

_MUNICIPALITIES = {
    "description": "The 4-digit municipality numbers the agency serves; its users see cases "
    "in these municipalities only"
}
_PASSWORD = {"description": "At least 8 characters; stored as an argon2id hash, never returned", "minLength": 8}


class AgencySchema(Body):
    code = ma.fields.String(
        required=True,
        metadata={
            "description": "2-32 characters: letters a-z or A-Z, digits, "
            "'-' or '_', beginning with a letter or digit; "
            "case-sensitive; never changes",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$",
        },
    )
    kind = Code(
        AGENCY_KINDS, required=True, metadata={"description": "Also the role of the agency's users; never changes"}
    )
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    municipalities = bounded_list(
        Municipality(), MAX_MUNICIPALITIES, required=True, validate=ma.validate.Length(min=1), metadata=_MUNICIPALITIES
    )
    created_at = Instant(dump_only=True)


class AgencyPatchSchema(Body):
    """code and kind never change; sent here, they are ignored."""

    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    municipalities = bounded_list(
        Municipality(), MAX_MUNICIPALITIES, validate=ma.validate.Length(min=1), metadata=_MUNICIPALITIES
    )


class AgencyQuery(PageArgs):
    kind = Code(AGENCY_KINDS)


class UserSchema(Body):
    id = ma.fields.String(dump_only=True)
    username = ma.fields.String(
        required=True,
        metadata={
            "description": "2-150 characters: letters, digits, '.', '_', '@' or '-'",
            # users of an identity provider are named `oidc:…`
            "request_only": {"pattern": "^[A-Za-z0-9._@-]{2,150}$"},
        },
    )
    role = Code(ROLES, required=True, metadata={"description": "A staff role is the kind of the user's agency"})
    agency = ma.fields.String(
        attribute="agency_code",
        data_key="agency",
        allow_none=True,
        load_default=None,
        metadata={"description": "Agency code: required for staff roles, absent for admin and auditor"},
    )
    password = ma.fields.String(required=True, load_only=True, metadata=_PASSWORD)
    active = ma.fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)


class UserPatchSchema(Body):
    """A new role or agency; they must fit as at creation (a staff role is its agency's kind,
    admin and auditor have none). username, active and the rest are not changed here, nor the
    password: that is POST /api/v1/users/{id}/password (a `password` here is 422)."""

    role = Code(ROLES)
    agency = ma.fields.String(
        attribute="agency_code",
        data_key="agency",
        allow_none=True,
        metadata={"description": "Agency code; null (or left out) for admin and auditor"},
    )

    # A password is refused here, whatever its value; not a field of the document, which would
    # otherwise offer a value no request may carry
    @ma.pre_load
    def _password_elsewhere(self, data, **_kwargs):
        if isinstance(data, dict) and "password" in data:
            raise ma.ValidationError(
                {"password": [_("A password is set with POST /api/v1/users/{id}/password, not by PATCH.")]}
            )
        return data


class PasswordSchema(Body):
    password = ma.fields.String(required=True, load_only=True, metadata=_PASSWORD)


class UserQuery(PageArgs):
    agency = ma.fields.String()
    role = Code(ROLES)
    active = ma.fields.Boolean()
