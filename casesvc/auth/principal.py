"""Who is calling: the principal behind the bearer token, loaded once per request."""

from __future__ import annotations

import functools
import time
from typing import Any

from flask import current_app, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from sqlalchemy import and_, bindparam, func, not_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from casesvc.access.case_view import case_of_read, keep_case_rows, read_event_action, with_case
from casesvc.access.clauses import case_led_by_caller_row
from casesvc.access.decisions import enforce
from casesvc.agencies.models import Agency
from casesvc.audit.service import events_ride_reads, note, read_event_cte, read_event_params, recorded_by_read
from casesvc.auth import feeds, oidc
from casesvc.auth.denylist import denylist_key, revoked_clause
from casesvc.auth.models import ApiClient, User
from casesvc.auth.tokens import CLIENT_KIND
from casesvc.cases.models import Case
from casesvc.common.connection import request_connection
from casesvc.common.direct import DirectStatement
from casesvc.common.jsonio import query_has_nul
from casesvc.common.messages import _
from casesvc.errors import Problem
from casesvc.policy import Action, Principal, check_admin, check_role


def _refused(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>`; the scheme in any case (RFC 9110 §11.1)."""
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


CLAIMS_CACHE_SIZE = 10_000


def verified_claims(token: str | None) -> dict:
    """The claims of the request's own-service access token, verified by flask-jwt-extended
    (signature, `kid`, type, `exp`, `nbf`; its errors become 401 problems).

    A verification is kept per app, keyed by the token itself, so the HMAC and the JSON are
    worked out once per token and worker rather than on every request; on every use the expiry
    is checked again, and an expired token goes back through the full check (which refuses it).
    Whether the token is revoked, and whether its user is still active, is not cached:
    `load_principal` asks the database on every request. `token` is the request's bearer token
    (`bearer_token()`), read once by the caller."""
    cache = current_app.extensions.setdefault("casesvc.verified_claims", {})
    claims = cache.get(token) if token else None
    if claims is not None and claims.get("exp", 0) > time.time():
        return claims
    if token:
        # the scheme is case-insensitive, but flask-jwt-extended only reads "Bearer <token>"
        request.environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    verify_jwt_in_request()  # without a bearer token: 401 "A bearer token is required"
    claims = get_jwt()
    if token:
        if len(cache) >= CLAIMS_CACHE_SIZE:
            cache.clear()  # tokens live minutes: a full cache is mostly expired ones
        cache[token] = claims
    return claims


@functools.cache
def _caller_query(client: bool, with_family: bool, with_read_case: bool = False, with_read_event: bool = False):
    """The one query that loads the caller, built once: user or API client, the agency's
    municipalities, and whether the token or its login is on the denylist. With
    `with_read_case`, the same statement loads the case the request reads (the access layer's
    `with_case`; bind parameter `case_id`). With `with_read_event` (a user's read of one case, on
    PostgreSQL) it also inserts the read's audit event when the caller is the token's, active
    and not revoked, and the case's lead (`case_led_by_caller_row`): the column after the
    caller's own says whether it did."""
    # the tables' own columns, not the mapped attributes: a plain Core statement skips the ORM's
    # execution path on every request
    caller = (ApiClient if client else User).__table__
    agencies = Agency.__table__
    columns: list[ColumnElement[Any]] = [caller.c.active, caller.c.role, caller.c.agency_code]
    if client:
        columns.append(caller.c.scopes)
    revoked = revoked_clause(bindparam("jti"), bindparam("fam") if with_family else None)
    columns += [agencies.c.municipalities, revoked.label("revoked")]
    with_agency = caller.outerjoin(agencies, agencies.c.code == caller.c.agency_code)
    if with_read_event:
        cases = Case.__table__
        event = read_event_cte(
            {"youth_id": cases.c.youth_id},
            with_agency.join(cases, cases.c.id == bindparam("case_id")),
            and_(
                caller.c.id == bindparam("sub"),
                caller.c.active,
                caller.c.role == bindparam("role"),
                caller.c.agency_code == bindparam("agency"),
                not_(revoked),
                case_led_by_caller_row(caller.c.agency_code, agencies.c.municipalities),
            ),
        )
        columns.append(select(func.count()).select_from(event).scalar_subquery().label("read_event"))
    stmt = select(*columns).select_from(with_agency).where(caller.c.id == bindparam("sub"))
    return DirectStatement(with_case(stmt) if with_read_case else stmt)


# the caller's columns in a row of `_caller_query`: active, role, agency_code, (scopes),
# municipalities, revoked; then whether the read's event was inserted, and a read's case
_ACTIVE, _ROLE, _AGENCY, _SCOPES = 0, 1, 2, 3


def _caller_columns(client: bool) -> int:
    """How many of the caller's columns come first; the read's event flag, then the case, follow."""
    return 6 if client else 5


def _read_event_in_statement(claims: dict, token_scopes: frozenset[str]) -> bool:
    """Whether this request's caller statement inserts its audit event: a user's read of one case
    marked `event_in_read`, on PostgreSQL (SQLite has no INSERT inside a SELECT), whose token
    the role check (decided on the token's claims, which the statement holds to the row) lets
    through; the case's own access is decided in the statement."""
    action = read_event_action()
    if action is None or query_has_nul(request.query_string) or not events_ride_reads():
        return False  # a NUL in the query is refused (400) after the caller is loaded: no read
    claimed = Principal(claims["sub"], claims.get("role") or "", claims.get("agency"), scopes=token_scopes)
    return bool(check_role(claimed, action))


def load_principal() -> Principal:
    """Verify the bearer token (401 when absent, bad or revoked) and build the principal.

    A token of the external identity provider goes to casesvc.auth.oidc; the service's own
    tokens are checked here. Either way the caller (user or API client), their agency's
    municipalities and the revocation denylist are read in one query, so a disabled user or
    client, a revoked token or login, and a change of municipalities take effect at once."""
    token = bearer_token()
    if token and current_app.config["CASESVC"].oidc_enabled and oidc.routes_to_provider(token):
        return oidc.provider_principal(token)
    feed = feeds.feed_token()
    if feed is not None:  # the reminders calendar, read by a calendar program through its secret address
        principal = feeds.feed_principal(feed)
        if principal is None:
            raise _refused(_("The calendar address is unknown, replaced or ended."))
        return principal
    claims = verified_claims(token)
    client = claims.get("kind") == CLIENT_KIND
    family = claims.get("fam")
    case_id = case_of_read()  # a read of a case: loaded in the same statement
    token_scopes = frozenset((claims.get("scope") or "").split())
    with_event = case_id is not None and not client and _read_event_in_statement(claims, token_scopes)
    params = {"sub": claims["sub"], "jti": denylist_key(claims, token or ""), "fam": family, "case_id": case_id}
    if with_event:
        params |= read_event_params(claims["sub"], claims.get("role"), claims.get("agency"))
        params |= {"role": claims.get("role"), "agency": claims.get("agency")}
    try:
        rows = _caller_query(client, bool(family), case_id is not None, with_event).rows(request_connection(), params)
    except SQLAlchemyError:
        # the database failed us, not the caller: the audit event still names who the verified
        # token says is calling
        note(actor=claims["sub"], actor_role=claims.get("role"), actor_agency=claims.get("agency"))
        raise
    row = rows[0] if rows else None
    width = _caller_columns(client)
    if with_event and row is not None and row[width]:
        recorded_by_read()  # the statement inserted this read's event
    if client:
        scopes = token_scopes & frozenset(row[_SCOPES].split()) if row is not None else frozenset()
    else:
        scopes = token_scopes
    if row is None or not row[_ACTIVE] or row[_ROLE] != claims.get("role") or row[_AGENCY] != claims.get("agency"):
        raise _refused(_("The token's user is disabled, unknown or changed."))
    if row[width - 1]:  # revoked
        raise _refused(_("The bearer token has been revoked."))
    if case_id is not None:
        keep_case_rows(case_id, rows, width + with_event)
    return Principal(
        subject=claims["sub"],
        role=row[_ROLE],
        agency=row[_AGENCY],
        municipalities=frozenset(row[width - 2] or ()),
        scopes=scopes,
        username=claims.get("username"),
        kind=CLIENT_KIND if client else "user",
    )


def current_principal() -> Principal:
    """Cached on the request itself (not `g`, which lives as long as the app context)."""
    principal = request.environ.get("casesvc.principal")
    if principal is None:
        principal = request.environ["casesvc.principal"] = load_principal()
    return principal


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


def require_admin() -> Principal:
    """Administration endpoints: the admin role and a token carrying the `admin` scope."""
    principal = current_principal()
    enforce(check_admin(principal))
    return principal


def admin_only(view):
    """`require_admin` before the request is parsed (put it above `@blp.arguments`)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        require_admin()
        return view(*args, **kwargs)

    return wrapper
