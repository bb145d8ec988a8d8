"""The denylist every request is checked against: revoked access tokens (by `jti`, or a hash of
a token without one) and revoked logins. The check costs no extra round trip: it is folded into
the query that loads the caller (`principal.py`, `oidc.py`)."""

from __future__ import annotations

import hashlib

from sqlalchemy import BindParameter, ColumnElement, exists, or_

from casesvc.auth.models import RefreshFamily, RevokedToken


def denylist_key(claims: dict, token: str) -> str:
    jti = claims.get("jti")
    if isinstance(jti, str) and 0 < len(jti) <= 64:
        return jti
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def revoked_clause(
    key: str | BindParameter[str], family_id: str | BindParameter[str] | None = None
) -> ColumnElement[bool]:
    """True when the token is on the denylist or its login has been revoked: two lookups by
    primary key inside the caller's own query."""
    revoked, families = RevokedToken.__table__.c, RefreshFamily.__table__.c
    clause: ColumnElement[bool] = exists().where(revoked.jti == key)
    if family_id is not None:
        clause = or_(clause, exists().where(families.id == family_id, families.revoked_at.is_not(None)))
    return clause
