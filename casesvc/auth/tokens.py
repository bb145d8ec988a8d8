"""Issuing tokens: the OAuth 2.0 password, refresh_token and client_credentials grants (RFC 6749).

Refresh tokens rotate: each is exchanged once, for a new access token and a new refresh token
of the same family (one family per login). Presenting a spent refresh token again is the theft
signal of the OAuth 2.0 Security BCP: the whole family is revoked, and with it every access
token issued from it (they carry the family id in `fam`, checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy import CursorResult, delete, func, select, update

from casesvc.audit.service import note
from casesvc.auth.models import ApiClient, RefreshFamily, RefreshToken, User
from casesvc.auth.passwords import verify_password
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES

CLIENT_KIND = "client"


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


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _settings():
    return current_app.config["CASESVC"]


def _access_token(subject: str, claims: dict) -> str:
    return create_access_token(
        identity=subject, additional_claims=claims, expires_delta=timedelta(seconds=_settings().token_ttl)
    )


def _token_body(access_token: str, scopes: list[str]) -> dict:
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": _settings().token_ttl,
        "scope": " ".join(scopes),
    }


def _issue_for_user(user: User, scopes: list[str], family_id: str) -> dict:
    """An access token and a new refresh token of `family_id` (stored, so it can be spent once)."""
    claims = {
        "role": user.role,
        "agency": user.agency_code,
        "scope": " ".join(scopes),
        "username": user.username,
        "fam": family_id,
    }
    body = _token_body(_access_token(user.id, claims), scopes)
    now = utcnow()
    refresh_ttl = _settings().refresh_ttl
    jti = str(uuid.uuid4())
    body["refresh_token"] = create_refresh_token(
        identity=user.id, additional_claims={**claims, "jti": jti}, expires_delta=timedelta(seconds=refresh_ttl)
    )
    db.session.add(
        RefreshToken(jti=jti, family_id=family_id, issued_at=now, expires_at=now + timedelta(seconds=refresh_ttl))
    )
    return body


def _note_user(user: User) -> None:
    note(actor=user.id, actor_role=user.role, actor_agency=user.agency_code)


def _prune_families(user_id: str) -> None:
    """A user's logins whose refresh tokens, and so every access token issued with them, have
    all expired are of no further use: forget them."""
    horizon = utcnow() - timedelta(seconds=_settings().token_ttl)
    stale = (
        select(RefreshToken.family_id)
        .group_by(RefreshToken.family_id)
        .having(func.max(RefreshToken.expires_at) < horizon)
    )
    db.session.execute(delete(RefreshFamily).where(RefreshFamily.user_id == user_id, RefreshFamily.id.in_(stale)))


def password_grant(username: str | None, password: str | None, scope: str | None) -> dict:
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is not None:
        _note_user(user)  # the audit event of this request names who tried, whatever the outcome
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        raise OAuthError("invalid_grant", "The username or password is wrong.")
    scopes = narrow_scopes(user.role, scope)
    _prune_families(user.id)
    family = RefreshFamily(user_id=user.id)
    db.session.add(family)
    db.session.flush()
    return _issue_for_user(user, scopes, family.id)


def revoke_family(family_id: str, reason: str) -> None:
    db.session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def refresh_grant(refresh_token: str | None, scope: str | None) -> dict:
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    try:
        claims = decode_token(refresh_token)
    except (PyJWTError, JWTExtendedException) as exc:
        raise OAuthError("invalid_grant", "The refresh token is invalid or expired.") from exc
    if claims.get("type") != "refresh":
        raise OAuthError("invalid_grant", "Not a refresh token.")
    stored = db.session.get(RefreshToken, claims.get("jti"))
    user = db.session.get(User, claims["sub"])
    if user is not None:
        _note_user(user)
    if stored is None or user is None or stored.family_id != claims.get("fam"):
        raise OAuthError("invalid_grant", "The refresh token is unknown.")
    family = db.session.get(RefreshFamily, stored.family_id)
    if family is None or family.revoked_at is not None:
        raise OAuthError("invalid_grant", "The refresh token has been revoked.")
    # Spend it: one UPDATE that only one request can win (the row lock serialises a race on
    # PostgreSQL; SQLite serialises writers). The loser is treated as a reuse.
    spent = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.jti == stored.jti, RefreshToken.used_at.is_(None))
            .values(used_at=utcnow())
        ),
    )
    if spent.rowcount != 1:
        revoke_family(family.id, "reuse")
        note(action="auth.refresh_token_reuse", resource_type="refresh_family", resource_id=family.id)
        db.session.commit()
        raise OAuthError(
            "invalid_grant", "The refresh token was already used; every token of this login has been revoked."
        )
    if not user.active:
        raise OAuthError("invalid_grant", "The user is no longer active.")
    granted = frozenset((claims.get("scope") or "").split())
    scopes = narrow_scopes(user.role, scope, ceiling=granted)
    return _issue_for_user(user, scopes, family.id)


def client_credentials_grant(client_id: str | None, client_secret: str | None, scope: str | None) -> dict:
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "client_id and client_secret are required.", status=401)
    client = db.session.get(ApiClient, client_id)
    presented = secret_hash(client_secret)
    if client is not None:
        note(actor=client.id, actor_role=client.role, actor_agency=client.agency_code)
    if client is None or not hmac.compare_digest(presented, client.secret_hash) or not client.active:
        raise OAuthError("invalid_client", "The client is unknown, disabled, or the secret is wrong.", status=401)
    scopes = narrow_scopes(client.role, scope, ceiling=frozenset(client.scopes.split()))
    claims = {
        "role": client.role,
        "agency": client.agency_code,
        "scope": " ".join(scopes),
        "username": client.name,
        "kind": CLIENT_KIND,
    }
    return _token_body(_access_token(client.id, claims), scopes)


def expires_at(claims: dict) -> datetime:
    return datetime.fromtimestamp(int(claims["exp"]), UTC)
