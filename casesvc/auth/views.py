from __future__ import annotations

from urllib.parse import unquote_plus

from flask import jsonify, request
from flask_smorest import Blueprint

from casesvc.audit import note
from casesvc.auth.principal import current_principal
from casesvc.auth.revocation import revoke as revoke_token
from casesvc.auth.schemas import MeSchema, OAuthErrorSchema, RevokeRequestSchema, TokenRequestSchema, TokenSchema
from casesvc.auth.tokens import OAuthError, client_credentials_grant, password_grant, refresh_grant
from casesvc.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Tokens and the caller's identity")


def token_params() -> dict:
    """The parameters of a token or revocation request, form-encoded (RFC 6749) or JSON."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise OAuthError("invalid_request", "Send the parameters form-encoded or as a JSON object.")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def client_credentials(params: dict) -> tuple[str | None, str | None]:
    """client_id and client_secret from HTTP Basic (RFC 6749 §2.3.1) or the body."""
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return unquote_plus(auth.parameters.get("username") or ""), unquote_plus(auth.parameters.get("password") or "")
    return params.get("client_id"), params.get("client_secret")


def oauth_response(body: dict, status: int = 200):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@blp.route("/token", methods=["POST"])
@blp.doc(
    security=[],
    requestBody={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": TokenRequestSchema}}},
)
@blp.alt_response(200, schema=TokenSchema, description="A bearer token")
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error")
@blp.alt_response(401, schema=OAuthErrorSchema, description="invalid_client (client_credentials)")
@blp.alt_response(
    429,
    schema=OAuthErrorSchema,
    description="Too many failed attempts; see Retry-After",
    headers={"Retry-After": "Retry-After"},
)
def token():
    """OAuth 2.0 token endpoint (password, refresh_token and client_credentials grants)

    Failed attempts are limited per client address and per username or client_id (429 with
    `Retry-After`). A refresh token is spent when used: the answer carries a new one, and
    presenting a spent one again revokes the whole login."""
    try:
        params = token_params()
        grant = params.get("grant_type")
        if grant == "password":
            body = password_grant(params.get("username"), params.get("password"), params.get("scope"))
        elif grant == "refresh_token":
            body = refresh_grant(params.get("refresh_token"), params.get("scope"))
        elif grant == "client_credentials":
            client_id, client_secret = client_credentials(params)
            body = client_credentials_grant(client_id, client_secret, params.get("scope"))
        elif not grant:
            raise OAuthError("invalid_request", "grant_type is required.")
        else:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant!r}.")
        db.session.commit()
        return oauth_response(body)
    except OAuthError as exc:
        db.session.rollback()
        if exc.error in ("invalid_grant", "invalid_client"):
            note(outcome="denied")  # refused credentials: a failed login, not a malformed request
        response = oauth_response({"error": exc.error, "error_description": exc.description}, exc.status)
        if exc.error == "invalid_client":
            response.headers["WWW-Authenticate"] = 'Basic realm="casesvc"'
        return response


@blp.route("/revoke", methods=["POST"])
@blp.doc(
    security=[],
    requestBody={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": RevokeRequestSchema}}},
)
@blp.doc(
    responses={
        "200": {
            "description": "Revoked, or nothing to revoke (RFC 7009 §2.2): an empty JSON object",
            "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
        }
    }
)
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error (no token given)")
def revoke():
    """Revoke a token (RFC 7009)

    An access token is refused from the very next request on, in every process. A refresh
    token revokes its whole login: the refresh tokens and the access tokens issued with them.
    Holding the token is the credential (no bearer token or client authentication needed);
    an unknown, invalid or expired token is answered 200 as well."""
    try:
        params = token_params()
        value = params.get("token")
        if not value:
            raise OAuthError("invalid_request", "token is required.")
    except OAuthError as exc:
        return oauth_response({"error": exc.error, "error_description": exc.description}, exc.status)
    revoke_token(value)
    return oauth_response({})


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
def me():
    """Who the presented token is"""
    p = current_principal()
    return {
        "subject": p.subject,
        "username": p.username,
        "kind": p.kind,
        "role": p.role,
        "agency": p.agency,
        "municipalities": sorted(p.municipalities),
        "scopes": sorted(p.scopes),
    }
