import marshmallow as ma


class TokenRequestSchema(ma.Schema):
    """Documentation of the token request; the body may be form-encoded or JSON."""

    grant_type = ma.fields.String(required=True, validate=ma.validate.OneOf(
        ["password", "refresh_token", "client_credentials"]))
    username = ma.fields.String(metadata={"description": "password grant"})
    password = ma.fields.String(metadata={"description": "password grant"})
    refresh_token = ma.fields.String(metadata={"description": "refresh_token grant"})
    client_id = ma.fields.String(metadata={"description": "client_credentials grant (or HTTP Basic)"})
    client_secret = ma.fields.String(metadata={"description": "client_credentials grant (or HTTP Basic)"})
    scope = ma.fields.String(metadata={"description": "Space-separated subset of the role's scopes"})


class RevokeRequestSchema(ma.Schema):
    """Documentation of the revocation request (RFC 7009), form-encoded or JSON."""

    token = ma.fields.String(required=True)
    token_type_hint = ma.fields.String(metadata={"description": "access_token or refresh_token (optional; "
                                                                "the token itself tells)"})


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
    kind = ma.fields.String(metadata={"description": "user, or client for an API client"})
    role = ma.fields.String(required=True)
    agency = ma.fields.String(allow_none=True)
    municipalities = ma.fields.List(ma.fields.String())
    scopes = ma.fields.List(ma.fields.String())
