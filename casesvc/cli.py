"""The `casesvc` command. Every expected error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from casesvc.config import ConfigError


class CommandError(click.ClickException):
    pass


# click 8.2 shows help for a bare group by raising this; older versions print and exit themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _instance_path() -> Path:
    return Path(os.environ.get("CASESVC_INSTANCE_PATH") or Path.cwd() / "instance")


def _app():
    from casesvc import create_app

    try:
        return create_app(instance_path=_instance_path())
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


def _with_app(fn):
    """Run `fn` inside an app context, turning expected failures into one-line errors."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from casesvc.agencies.service import InvalidInput
    from casesvc.extensions import db

    app = _app()
    with app.app_context():
        try:
            result = fn()
            db.session.commit()
            return result
        except InvalidInput as exc:
            db.session.rollback()
            raise CommandError(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            db.session.rollback()
            raise CommandError("the database is unreachable or not migrated; run `casesvc db upgrade` "
                               f"({exc.orig.__class__.__name__})") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """casesvc: case management for alternative reactions to youth drug cases."""


@cli.group()
def db():
    """Database schema."""


@db.command("upgrade")
def db_upgrade():
    """Apply the migrations (idempotent)."""
    from flask_migrate import upgrade

    from casesvc.migrations_runner import migrations_directory

    def run():
        upgrade(directory=migrations_directory(), revision="heads")
    _with_app(run)
    click.echo("database is up to date")


@cli.group()
def agencies():
    """Agencies."""


@agencies.command("create")
@click.argument("code")
@click.option("--kind", required=True)
@click.option("--name", required=True)
@click.option("--municipality", "municipalities", required=True, help="NNNN[,NNNN…]")
def agencies_create(code, kind, name, municipalities):
    """Create an agency."""
    from casesvc.agencies.service import create_agency, parse_municipalities

    agency = _with_app(lambda: create_agency(code, kind, name, parse_municipalities(municipalities)).code)
    click.echo(f"agency {agency} created")


@cli.group()
def users():
    """Staff, admin and auditor users."""


@users.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--agency", "agency_code")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (required).")
def users_create(username, role, agency_code, password_stdin):
    """Create a user; the password is read from standard input, never from the command line."""
    from casesvc.agencies.service import create_user

    if not password_stdin:
        raise click.UsageError("pass --password-stdin and give the password on standard input")
    password = sys.stdin.readline().rstrip("\r\n")
    user_id = _with_app(lambda: create_user(username, role, agency_code, password).id)
    click.echo(f"user {username} created ({user_id})")


@cli.group()
def demo():
    """Demo data."""


@demo.command("seed")
def demo_seed():
    """Seed the demo data once; prints the demo users."""
    from casesvc.demo.seed import SeedRefused, seed

    try:
        created, listing = _with_app(seed)
    except SeedRefused as exc:
        raise CommandError(str(exc)) from exc
    click.echo("demo data seeded" if created else "demo data already present")
    click.echo("demo users (username / role / password):")
    for username, role, password in listing:
        click.echo(f"  {username:<20} {role:<14} {password}")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(host, port, workers):
    """Serve the API with gunicorn."""
    from casesvc.server import run_gunicorn

    app = _app()
    run_gunicorn(app, host, port, workers)


@cli.group()
def openapi():
    """The OpenAPI document."""


@openapi.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True)
def openapi_export(output):
    """Write the OpenAPI document as YAML (openapi/openapi.yaml in the repository)."""
    from casesvc.openapi_doc import spec_yaml

    app = _app()
    with app.app_context():
        text = spec_yaml()
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)


def register_app_commands(app) -> None:
    """Nothing is added to `flask` here; the `casesvc` command is the interface."""


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="casesvc", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        click.echo(exc.format_message())
        return 0
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"casesvc: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"casesvc: {exc.format_message()}", err=True)
        return 1
    except click.Abort:
        click.echo("casesvc: aborted", err=True)
        return 130
    except Exception as exc:  # an unexpected failure: one line, the traceback only on request
        if os.environ.get("CASESVC_DEBUG"):
            raise
        click.echo(f"casesvc: unexpected error ({exc.__class__.__name__}); rerun with CASESVC_DEBUG=1 "
                   "for details", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
