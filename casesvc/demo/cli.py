"""`casesvc demo seed`: the demo data `make run` starts with."""

from __future__ import annotations

import click

from casesvc.commands import CommandError, DomainGroup
from casesvc.demo.seed import SeedRefused, seed

demo = DomainGroup("demo", help="Demo data.")


@demo.command("seed")
def demo_seed():
    """Seed the demo data once; prints the demo users."""
    try:
        created, listing = seed()
    except SeedRefused as exc:
        raise CommandError(str(exc)) from exc
    click.echo("demo data seeded" if created else "demo data already present")
    click.echo("demo users (username / role / password):")
    for username, role, password in listing:
        click.echo(f"  {username:<20} {role:<14} {password}")
