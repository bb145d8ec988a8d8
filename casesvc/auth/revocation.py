"""Token revocation (RFC 7009) and the denylist every request is checked against.

The denylist (`denylist.py`) is a table, so a revocation made through one worker process is
seen by every other on its very next request.

- an access token: its `jti` goes on the denylist until the token would have expired anyway;
- a refresh token: its whole family (the login) is revoked: the refresh tokens and every
  access token issued with them;
- a token of the external identity provider: its `jti` (or, without one, a hash of the token)
  goes on the denylist, so it stops working here even though the provider still honours it.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from casesvc.audit.service import note
from casesvc.auth import oidc
from casesvc.auth.denylist import denylist_key
from casesvc.auth.models import RefreshToken, RevokedToken
from casesvc.auth.tokens import expires_at, revoke_family
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db


def _deny(key: str, claims: dict) -> None:
    now = utcnow()
    until = expires_at(claims) if "exp" in claims else now + timedelta(days=1)
    if until <= now:
        return  # expired already: nothing left to refuse
    if db.session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == key)) is None:
        db.session.add(RevokedToken(jti=key, expires_at=until, revoked_at=now))


def _prune() -> None:
    """Denylist rows of tokens that have expired anyway (with the provider's clock leeway)."""
    leeway = timedelta(seconds=max(current_app.config["CASESVC"].oidc_leeway, 60))
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow() - leeway))


def _own_token_claims(token: str) -> dict | None:
    try:
        return decode_token(token)
    except (PyJWTError, JWTExtendedException):
        return None


def revoke(token: str) -> bool:
    """Revoke `token` if it is one this service would accept (an invalid or expired token is
    no error, RFC 7009 §2.2). Returns whether anything was revoked. Commits."""
    settings = current_app.config["CASESVC"]
    revoked = False
    if settings.oidc_enabled and oidc.routes_to_provider(token):
        claims = oidc.verified_claims_or_none(token)
        if claims is not None:
            user = oidc.local_user(claims)
            if user is not None:
                note(actor=user.id, actor_role=user.role, actor_agency=user.agency_code)
            _deny(denylist_key(claims, token), claims)
            revoked = True
    else:
        claims = _own_token_claims(token)
        if claims is not None:
            note(actor=claims.get("sub"), actor_role=claims.get("role"), actor_agency=claims.get("agency"))
            if claims.get("type") == "refresh":
                stored = db.session.get(RefreshToken, claims.get("jti"))
                if stored is not None:
                    revoke_family(stored.family_id, "revoked")
                    note(resource_type="refresh_family", resource_id=stored.family_id)
                    revoked = True
            else:
                _deny(denylist_key(claims, token), claims)
                revoked = True
    _prune()
    try:
        db.session.commit()
    except IntegrityError:  # revoked concurrently by another request: done either way
        db.session.rollback()
    return revoked
