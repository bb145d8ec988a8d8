"""`casesvc clients …`: API clients for the client_credentials grant."""

from __future__ import annotations

import json

import click

from casesvc.audit.service import stage
from casesvc.auth.clients import create_client
from casesvc.commands import DomainGroup

clients = DomainGroup("clients", help="API clients for the client_credentials grant.")


@clients.command("create")
@click.argument("name")
@click.option("--role", required=True)
@click.option("--agency", "agency_code")
@click.option("--scopes", required=True, help='Space-separated, e.g. "cases:read reminders:read"')
def clients_create(name, role, agency_code, scopes):
    """Create an API client; prints client_id and client_secret once, as JSON (only a hash of the
    secret is stored)."""
    client, secret = create_client(name, role, agency_code, scopes)
    stage("clients.create", "allowed", actor="cli", actor_role="admin", resource_type="client", resource_id=client.id)
    click.echo(
        json.dumps(
            {
                "client_id": client.id,
                "client_secret": secret,
                "name": client.name,
                "role": client.role,
                "agency": client.agency_code,
                "scopes": client.scopes.split(),
            },
            indent=2,
        )
    )
