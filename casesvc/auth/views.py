from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint

from casesvc.auth.principal import current_principal
from casesvc.auth.schemas import MeSchema, OAuthErrorSchema, TokenRequestSchema, TokenSchema
from casesvc.auth.tokens import OAuthError, password_grant, refresh_grant

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Tokens and the caller's identity")


def _token_params() -> dict:
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise OAuthError("invalid_request", "Send the parameters form-encoded or as a JSON object.")
    return {k: v for k, v in data.items() if isinstance(v, str)}


@blp.route("/token", methods=["POST"])
@blp.doc(
    security=[],
    requestBody={"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": TokenRequestSchema},
        "application/json": {"schema": TokenRequestSchema}}},
)
@blp.alt_response(200, schema=TokenSchema, description="A bearer token")
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error")
def token():
    """OAuth 2.0 token endpoint (password and refresh_token grants)"""
    try:
        params = _token_params()
        grant = params.get("grant_type")
        if grant == "password":
            body = password_grant(params.get("username"), params.get("password"), params.get("scope"))
        elif grant == "refresh_token":
            body = refresh_grant(params.get("refresh_token"), params.get("scope"))
        elif not grant:
            raise OAuthError("invalid_request", "grant_type is required.")
        else:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant!r}.")
        response = jsonify(body)
    except OAuthError as exc:
        response = jsonify({"error": exc.error, "error_description": exc.description})
        response.status_code = exc.status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
def me():
    """Who the presented token is"""
    p = current_principal()
    return {"subject": p.subject, "username": p.username, "role": p.role, "agency": p.agency,
            "municipalities": sorted(p.municipalities), "scopes": sorted(p.scopes)}
