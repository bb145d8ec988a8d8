"""Issuing tokens: the OAuth 2.0 password and refresh_token grants (RFC 6749)."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from flask_jwt_extended.exceptions import JWTExtendedException
from sqlalchemy import select

from casesvc.auth.models import User
from casesvc.auth.passwords import verify_password
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: `{"error": code}` with a 400 (or 401 for invalid_client)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def narrow_scopes(role: str, requested: str | None, ceiling: frozenset[str] | None = None) -> list[str]:
    """The scopes a token gets: all the role may hold, or the subset asked for."""
    allowed = ROLE_SCOPES.get(role, frozenset())
    if ceiling is not None:
        allowed = allowed & ceiling
    if requested is None or not requested.strip():
        return sorted(allowed)
    asked = set(requested.split())
    extra = asked - allowed
    if extra:
        raise OAuthError("invalid_scope", "Scope not allowed for this role: " + " ".join(sorted(extra)))
    return sorted(asked)


def _issue(user: User, scopes: list[str], with_refresh: bool) -> dict:
    ttl = current_app.config["CASESVC"].token_ttl
    claims = {"role": user.role, "agency": user.agency_code, "scope": " ".join(scopes), "username": user.username}
    body = {
        "access_token": create_access_token(identity=user.id, additional_claims=claims,
                                            expires_delta=timedelta(seconds=ttl)),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
    if with_refresh:
        refresh_ttl = current_app.config["CASESVC"].refresh_ttl
        body["refresh_token"] = create_refresh_token(identity=user.id, additional_claims=claims,
                                                     expires_delta=timedelta(seconds=refresh_ttl))
    return body


def password_grant(username: str | None, password: str | None, scope: str | None) -> dict:
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    user = db.session.scalar(select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        raise OAuthError("invalid_grant", "The username or password is wrong.")
    return _issue(user, narrow_scopes(user.role, scope), with_refresh=True)


def refresh_grant(refresh_token: str | None, scope: str | None) -> dict:
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    try:
        claims = decode_token(refresh_token)
    except (PyJWTError, JWTExtendedException) as exc:
        raise OAuthError("invalid_grant", "The refresh token is invalid or expired.") from exc
    if claims.get("type") != "refresh":
        raise OAuthError("invalid_grant", "Not a refresh token.")
    user = db.session.get(User, claims["sub"])
    if user is None or not user.active:
        raise OAuthError("invalid_grant", "The user is no longer active.")
    granted = frozenset((claims.get("scope") or "").split())
    return _issue(user, narrow_scopes(user.role, scope, ceiling=granted), with_refresh=True)
