"""API clients (`client_credentials`): created by operators (`casesvc clients create`), listed
and disabled by admins. The secret is shown once, at creation; only its hash is stored.

Clients are not created through the API: a creating POST honours Idempotency-Key by storing
its response, and that response would hold the secret."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select

from casesvc.agencies.service import check_role_and_agency
from casesvc.audit import note
from casesvc.auth.models import ApiClient
from casesvc.auth.tokens import secret_hash
from casesvc.common.messages import _
from casesvc.common.pagination import paginate
from casesvc.common.timeutil import utcnow
from casesvc.errors import invalid_input, not_found
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES


def create_client(name: str, role: str, agency_code: str | None, scopes: str) -> tuple[ApiClient, str]:
    """The new client and its secret (which is not stored)."""
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9._@ -]{2,150}", name):
        raise invalid_input("client name must be 2-150 characters: letters, digits, space, '.', '_', '@' or '-'")
    check_role_and_agency(role, agency_code, "client")
    wanted = set(scopes.replace(",", " ").split())
    if not wanted:
        raise invalid_input("--scopes must name at least one scope")
    beyond = wanted - ROLE_SCOPES[role]
    if beyond:
        raise invalid_input(
            f"--scopes not allowed for role {role}: {' '.join(sorted(beyond))} "
            f"(allowed: {' '.join(sorted(ROLE_SCOPES[role]))})"
        )
    if db.session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise invalid_input(f"client {name!r} already exists")
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        name=name,
        role=role,
        agency_code=agency_code,
        scopes=" ".join(sorted(wanted)),
        secret_hash=secret_hash(secret),
        active=True,
    )
    db.session.add(client)
    db.session.flush()
    return client, secret


def list_clients(args: dict) -> dict:
    stmt = select(ApiClient)
    if args.get("active") is not None:
        stmt = stmt.where(ApiClient.active == args["active"])
    return paginate(stmt, ApiClient, args["limit"], args.get("cursor"))


def get_client(client_id: str) -> ApiClient:
    note(resource_type="client", resource_id=client_id)
    client = db.session.get(ApiClient, client_id)
    if client is None:
        raise not_found(_("No such API client."))
    return client


def disable_client(client: ApiClient) -> ApiClient:
    """Its token requests fail, and its live tokens are refused from the next request on."""
    if client.active:
        client.active = False
        client.disabled_at = utcnow()
    return client
