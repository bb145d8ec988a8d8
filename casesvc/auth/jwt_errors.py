"""flask-jwt-extended answers a bad token with 422 by default; every such case is a 401
problem with `WWW-Authenticate: Bearer` here (RFC 6750)."""

from __future__ import annotations

from flask_jwt_extended import JWTManager

from casesvc.auth.keys import register_signing_keys
from casesvc.common.messages import _
from casesvc.errors import problem_response


def _unauthorized(detail: str, error: str = "invalid_token"):
    header = f'Bearer error="{error}"' if error else "Bearer"
    return problem_response(401, "unauthorized", "Unauthorized", detail, {"WWW-Authenticate": header})


def register_jwt_errors(jwt: JWTManager) -> None:
    register_signing_keys(jwt)

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return _unauthorized(_("A bearer token is required."), error="")

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return _unauthorized(_("The bearer token is invalid."))

    @jwt.expired_token_loader
    def _expired(header: dict, payload: dict):
        return _unauthorized(_("The bearer token has expired."))

    @jwt.revoked_token_loader
    def _revoked(header: dict, payload: dict):
        return _unauthorized(_("The bearer token has been revoked."))

    @jwt.needs_fresh_token_loader
    def _not_fresh(header: dict, payload: dict):
        return _unauthorized(_("A fresh token is required."))

    @jwt.user_lookup_error_loader
    def _no_user(header: dict, payload: dict):
        return _unauthorized(_("The token's user is unknown."))

    @jwt.token_verification_failed_loader
    def _failed(header: dict, payload: dict):
        return _unauthorized(_("The bearer token was refused."))

    @jwt.token_verification_loader
    def _complete(header: dict, payload: dict) -> bool:
        # a token of the service that never expires, or cannot be told apart or revoked, is
        # not one it issued: `exp`, `iat` and `jti` are required (README: Security, hardening)
        return all(payload.get(claim) is not None for claim in REQUIRED_CLAIMS)


REQUIRED_CLAIMS = ("exp", "iat", "jti")
