"""Who is calling: the principal behind the bearer token, loaded once per request."""
from __future__ import annotations

import functools

from flask import request
from sqlalchemy import select
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from casesvc.agencies.models import Agency
from casesvc.auth.models import User
from casesvc.errors import Problem
from casesvc.extensions import db
from casesvc.policy import Action, Principal, check_role


def load_principal() -> Principal:
    """Verify the bearer token (401 when absent or bad) and build the principal.

    The user and their agency's municipalities are read from the database in one query, so a
    disabled user's live tokens stop working and a change of municipalities takes effect at once."""
    verify_jwt_in_request()
    claims = get_jwt()
    row = db.session.execute(
        select(User.active, User.role, User.agency_code, Agency.municipalities)
        .outerjoin(Agency, Agency.code == User.agency_code)
        .where(User.id == claims["sub"])).first()
    if row is None or not row.active or row.role != claims.get("role") or row.agency_code != claims.get("agency"):
        raise Problem(401, "unauthorized", "Unauthorized", "The token's user is disabled, unknown or changed.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return Principal(
        subject=claims["sub"],
        role=row.role,
        agency=row.agency_code,
        municipalities=frozenset(row.municipalities or ()),
        scopes=frozenset((claims.get("scope") or "").split()),
        username=claims.get("username"),
    )


def current_principal() -> Principal:
    """Cached on the request itself (not `g`, which lives as long as the app context)."""
    principal = request.environ.get("casesvc.principal")
    if principal is None:
        principal = request.environ["casesvc.principal"] = load_principal()
    return principal


def require_scope(scope: str) -> Principal:
    principal = current_principal()
    if scope not in principal.scopes:
        raise Problem(403, "insufficient-scope", "Forbidden", f"The token lacks the scope {scope}.")
    return principal


def enforce(decision) -> None:
    """Turn a policy refusal into the problem the caller sees (404 hides existence)."""
    if decision.allowed:
        return
    if decision.status == 404:
        raise Problem(404, "not-found", "Not Found", decision.detail or "No such resource.")
    raise Problem(decision.status, decision.reason, "Forbidden", decision.detail)


def requires(action: Action):
    """Check role and scope before the request body is parsed: a caller without the right
    learns nothing from validation errors. The per-record policy is applied by the service."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            enforce(check_role(current_principal(), action))
            return view(*args, **kwargs)

        return wrapper

    return decorator
