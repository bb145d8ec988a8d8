"""`casesvc agencies …` and `casesvc users …`: what an operator sets up on the server."""

from __future__ import annotations

import click

from casesvc.agencies.service import create_agency, create_user, parse_municipalities, set_password, user_by_username
from casesvc.audit.service import stage
from casesvc.commands import DomainGroup, password_from_stdin

agencies = DomainGroup("agencies", help="Agencies.")
users = DomainGroup("users", help="Staff, admin and auditor users.")


def _by_cli(action: str, resource_type: str, resource_id: str) -> None:
    """The command's own audit event: the operator on the server acts as admin."""
    stage(action, "allowed", actor="cli", actor_role="admin", resource_type=resource_type, resource_id=resource_id)


@agencies.command("create")
@click.argument("code")
@click.option("--kind", required=True)
@click.option("--name", required=True)
@click.option("--municipality", "municipalities", required=True, help="NNNN[,NNNN…]")
def agencies_create(code, kind, name, municipalities):
    """Create an agency."""
    agency = create_agency(code, kind, name, parse_municipalities(municipalities))
    _by_cli("agencies.create", "agency", agency.code)
    click.echo(f"agency {agency.code} created")


@users.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--agency", "agency_code")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (required).")
def users_create(username, role, agency_code, password_stdin):
    """Create a user; the password is read from standard input, never from the command line."""
    password = password_from_stdin(password_stdin)
    user = create_user(username, role, agency_code, password)
    _by_cli("users.create", "user", user.id)
    click.echo(f"user {username} created ({user.id})")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (required).")
def users_set_password(username, password_stdin):
    """Set a new password (e.g. for the last administrator, who cannot reset it over the API);
    every login the user had ends. Read from standard input, never from the command line."""
    password = password_from_stdin(password_stdin)
    user = set_password(user_by_username(username), password)
    _by_cli("users.set_password", "user", user.id)
    click.echo(f"password of {username} set; the logins it had are ended")
