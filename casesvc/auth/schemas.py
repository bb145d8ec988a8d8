import marshmallow as ma


class TokenRequestSchema(ma.Schema):
    """The token request, form-encoded as RFC 6749 defines it (the service takes the same
    parameters as a JSON object too). What each grant needs is said in the schema's description."""

    class Meta:
        # RFC 6749 §3.2: the server ignores request parameters it does not know
        unknown = ma.INCLUDE
        description = (
            "Form-encoded (RFC 6749). Each grant needs its own parameters: `password` needs `username` "
            "and `password`; `refresh_token` needs `refresh_token`; `client_credentials` needs "
            "`client_id` and `client_secret`, here or as HTTP Basic authentication. `scope` is optional "
            "for all three. A parameter missing is 400 `invalid_request`."
        )

    grant_type = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["password", "refresh_token", "client_credentials"])
    )
    username = ma.fields.String(metadata={"description": "password grant"})
    password = ma.fields.String(metadata={"description": "password grant"})
    refresh_token = ma.fields.String(metadata={"description": "refresh_token grant"})
    client_id = ma.fields.String(metadata={"description": "client_credentials grant (or HTTP Basic)"})
    client_secret = ma.fields.String(metadata={"description": "client_credentials grant (or HTTP Basic)"})
    scope = ma.fields.String(metadata={"description": "Space-separated subset of the role's scopes"})


class RevokeRequestSchema(ma.Schema):
    """The revocation request, form-encoded as RFC 7009 defines it (JSON is taken too)."""

    class Meta:
        # RFC 7009 §2.1, as RFC 6749 §3.2: the server ignores request parameters it does not know
        unknown = ma.INCLUDE

    token = ma.fields.String(required=True)
    token_type_hint = ma.fields.String(
        metadata={"description": "access_token or refresh_token (optional; the token itself tells)"}
    )


class TokenSchema(ma.Schema):
    response_optional = ("refresh_token",)  # not for client_credentials

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
