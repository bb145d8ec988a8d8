import marshmallow as ma


class TokenRequestSchema(ma.Schema):
    """Documentation of the token request; the body may be form-encoded or JSON."""

    grant_type = ma.fields.String(required=True, validate=ma.validate.OneOf(["password", "refresh_token"]))
    username = ma.fields.String()
    password = ma.fields.String()
    refresh_token = ma.fields.String()
    scope = ma.fields.String(metadata={"description": "Space-separated subset of the role's scopes"})


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True)
    expires_in = ma.fields.Integer(required=True)
    scope = ma.fields.String(required=True)
    refresh_token = ma.fields.String()


class OAuthErrorSchema(ma.Schema):
    error = ma.fields.String(required=True)
    error_description = ma.fields.String()


class MeSchema(ma.Schema):
    subject = ma.fields.String(required=True)
    username = ma.fields.String(allow_none=True)
    role = ma.fields.String(required=True)
    agency = ma.fields.String(allow_none=True)
    municipalities = ma.fields.List(ma.fields.String())
    scopes = ma.fields.List(ma.fields.String())
