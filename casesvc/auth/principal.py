"""Who is calling: the principal behind the bearer token, loaded once per request."""
from __future__ import annotations

from flask import request
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from casesvc.agencies.models import Agency
from casesvc.errors import Problem, forbidden
from casesvc.extensions import db
from casesvc.policy import Principal


def load_principal() -> Principal:
    """Verify the bearer token (401 when absent or bad) and build the principal from its claims.
    The agency's municipalities are read from the database, so a change takes effect at once."""
    verify_jwt_in_request()
    claims = get_jwt()
    agency_code = claims.get("agency")
    municipalities: frozenset[str] = frozenset()
    if agency_code:
        agency = db.session.get(Agency, agency_code)
        if agency is None:
            raise forbidden("The token's agency no longer exists.", "unknown-agency")
        municipalities = frozenset(agency.municipalities or ())
    return Principal(
        subject=claims["sub"],
        role=claims.get("role", ""),
        agency=agency_code,
        municipalities=municipalities,
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
