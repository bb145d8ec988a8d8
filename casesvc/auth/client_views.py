"""Administration of API clients: list, read, disable (admin role with the `admin` scope)."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from casesvc.auth import clients as service
from casesvc.auth.principal import admin_only
from casesvc.common.pagination import PageArgs, page_schema
from casesvc.common.schemas import Instant
from casesvc.web import transactional

blp = Blueprint(
    "clients",
    __name__,
    url_prefix="/api/v1/clients",
    description="API clients for the client_credentials grant (admin)",
)


class ClientSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    client_id = ma.fields.String(dump_only=True, attribute="id", metadata={"description": "Same as id"})
    name = ma.fields.String(dump_only=True)
    role = ma.fields.String(dump_only=True)
    agency = ma.fields.String(dump_only=True, attribute="agency_code", allow_none=True)
    scopes = ma.fields.Function(lambda c: c.scopes.split(), dump_only=True)
    active = ma.fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)
    disabled_at = Instant(dump_only=True, allow_none=True)


class ClientQuery(PageArgs):
    active = ma.fields.Boolean()


@blp.route("", methods=["GET"])
@admin_only
@blp.arguments(ClientQuery(), location="query")
@blp.response(200, page_schema(ClientSchema))
def list_clients(args):
    """API clients, newest first (no secrets: they are never stored)"""
    return service.list_clients(args)


@blp.route("/<client_id>", methods=["GET"])
@admin_only
@blp.response(200, ClientSchema)
def get_client(client_id):
    """One API client"""
    return service.get_client(client_id)


@blp.route("/<client_id>/disable", methods=["POST"])
@transactional()
@admin_only
@blp.response(200, ClientSchema)
def disable_client(client_id):
    """Disable an API client: it gets no new tokens, and its live tokens are refused at once"""
    return service.disable_client(service.get_client(client_id))
