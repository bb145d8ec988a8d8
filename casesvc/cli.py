"""The `casesvc` command. Every expected error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def database_errors():
    """An unreachable or unmigrated database is a one-line error, not a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from casesvc.extensions import db

    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        db.session.rollback()
        raise CommandError("the database is unreachable or not migrated; run `casesvc db upgrade` "
                           f"({exc.orig.__class__.__name__})") from exc


def _with_app(fn):
    """Run `fn` inside an app context and commit, turning expected failures into one-line errors."""
    from casesvc.agencies.service import InvalidInput
    from casesvc.extensions import db

    app = _app()
    with app.app_context(), database_errors():
        try:
            result = fn()
            db.session.commit()
            return result
        except InvalidInput as exc:
            db.session.rollback()
            raise CommandError(_as_option(exc)) from exc


# the options of `agencies create`, `users create` and `clients create`, by the field they give
_OPTIONS = {"kind": "--kind", "name": "--name", "municipalities": "--municipality", "role": "--role",
            "agency": "--agency"}


def _as_option(exc) -> str:
    """The message as the command line says it: "kind must be…" becomes "--kind must be…"."""
    message, option = str(exc), _OPTIONS.get(exc.field)
    if option and message.startswith(exc.field + " "):
        return option + message[len(exc.field):]
    return message


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
        upgrade(directory=migrations_directory(), revision="head")
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
    from casesvc.audit.service import stage

    def create():
        created = create_agency(code, kind, name, parse_municipalities(municipalities))
        stage("agencies.create", "allowed", actor="cli", actor_role="admin", resource_type="agency",
              resource_id=created.code)
        return created.code
    agency = _with_app(create)
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
    from casesvc.audit.service import stage

    password = _password_from_stdin(password_stdin)
    def create():
        user = create_user(username, role, agency_code, password)
        stage("users.create", "allowed", actor="cli", actor_role="admin", resource_type="user", resource_id=user.id)
        return user.id
    user_id = _with_app(create)
    click.echo(f"user {username} created ({user_id})")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (required).")
def users_set_password(username, password_stdin):
    """Set a new password (e.g. for the last administrator, who cannot reset it over the API);
    every login the user had ends. Read from standard input, never from the command line."""
    from casesvc.agencies.service import set_password, user_by_username
    from casesvc.audit.service import stage

    password = _password_from_stdin(password_stdin)
    def reset():
        user = set_password(user_by_username(username), password)
        stage("users.set_password", "allowed", actor="cli", actor_role="admin", resource_type="user",
              resource_id=user.id)
    _with_app(reset)
    click.echo(f"password of {username} set; the logins it had are ended")


def _password_from_stdin(password_stdin: bool) -> str:
    if not password_stdin:
        raise click.UsageError("pass --password-stdin and give the password on standard input")
    return sys.stdin.readline().rstrip("\r\n")


@cli.group()
def clients():
    """API clients for the client_credentials grant."""


@clients.command("create")
@click.argument("name")
@click.option("--role", required=True)
@click.option("--agency", "agency_code")
@click.option("--scopes", required=True, help='Space-separated, e.g. "cases:read reminders:read"')
def clients_create(name, role, agency_code, scopes):
    """Create an API client; prints client_id and client_secret once, as JSON (only a hash of the
    secret is stored)."""
    import json

    from casesvc.audit.service import stage
    from casesvc.auth.clients import create_client

    def run():
        client, secret = create_client(name, role, agency_code, scopes)
        stage("clients.create", "allowed", actor="cli", actor_role="admin", resource_type="client",
              resource_id=client.id)
        return {"client_id": client.id, "client_secret": secret, "name": client.name, "role": client.role,
                "agency": client.agency_code, "scopes": client.scopes.split()}

    click.echo(json.dumps(_with_app(run), indent=2))


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
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Threads per worker (gthread when more than 1).")
def serve(host, port, workers, threads):
    """Serve the API with gunicorn."""
    from casesvc.server import run_gunicorn

    app = _app()
    run_gunicorn(app, host, port, workers, threads)


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


@cli.group()
def audit():
    """The tamper-evident audit log."""


def _read_json_file(path: str, what: str) -> dict:
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {what} {path}: {exc.__class__.__name__}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{path} is not a {what}")
    return data


def _signing_key(app) -> str:
    key = app.config["CASESVC"].audit_signing_key
    if not key:
        raise CommandError("CASESVC_AUDIT_SIGNING_KEY is not set (keep it outside the database)")
    return key


@audit.command("verify")
@click.option("--file", "export_file", type=click.Path(exists=True, dir_okay=False),
              help="Verify an export (JSONL or CSV) offline instead of the database.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="A signed checkpoint from `casesvc audit checkpoint` the chain must still lead to.")
def audit_verify(export_file, checkpoint):
    """Exit 0 when the chain is intact; 1, with the first bad seq on stderr, when not."""
    import json

    from casesvc.audit import store
    from casesvc.audit.service import record

    app = _app()
    with app.app_context():
        try:
            if export_file:
                verdict = store.verify_export(export_file)
                hashes = None
            else:
                with database_errors():
                    verdict = store.verify_database()
                hashes = store.database_hash_at
        except store.ExportFormatError as exc:
            raise CommandError(str(exc)) from exc
        problem = None
        if checkpoint:
            saved = _read_json_file(checkpoint, "checkpoint")
            if export_file:
                seen = {}
                for event in store.read_export(export_file):
                    if event.get("seq") == saved.get("seq"):
                        seen[event["seq"]] = event.get("hash")
                hashes = seen.get
            problem = store.check_checkpoint(saved, _signing_key(app), hashes)
        if not export_file:
            record("audit.verify", "allowed" if verdict["valid"] and not problem else "error")
    click.echo(json.dumps({**verdict, "checkpoint_problem": problem}))
    if not verdict["valid"]:
        raise CommandError(f"audit chain broken at seq {verdict['first_invalid_seq']}: {verdict['reason']}")
    if problem:
        raise CommandError(problem)


@audit.command("checkpoint")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True)
def audit_checkpoint(output):
    """Print the chain's head signed with CASESVC_AUDIT_SIGNING_KEY; keep it outside the database."""
    import json

    from casesvc.audit import store
    from casesvc.audit.service import record

    app = _app()
    with app.app_context():
        key = _signing_key(app)
        with database_errors():
            checkpoint = store.sign_checkpoint(key)
        record("audit.checkpoint", "allowed", resource_type="audit_head", resource_id=str(checkpoint["seq"]))
    text = json.dumps(checkpoint, indent=2) + "\n"
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)


@audit.command("export")
@click.option("--from", "start", help="RFC 3339 instant (inclusive)")
@click.option("--to", "end", help="RFC 3339 instant (exclusive)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True)
def audit_export(start, end, fmt, output):
    """Stream the events as JSONL or CSV, with the chain fields, in flat memory."""
    from casesvc.audit import store
    from casesvc.audit.service import record

    start_at, end_at = _instant(start, "--from"), _instant(end, "--to")
    app = _app()
    with app.app_context():
        handle = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
        try:
            with database_errors():
                for chunk in store.export_lines(start_at, end_at, fmt):
                    handle.write(chunk)
        finally:
            if handle is not sys.stdout:
                handle.close()
        record("audit.export", "allowed")


@audit.command("seal")
def audit_seal():
    """Seal every recorded event into the chain now (requests also do it as they go)."""
    from casesvc.audit.service import seal

    app = _app()
    with app.app_context():
        with database_errors():
            count = seal()
    click.echo(f"sealed {count} events")


@cli.group()
def retention():
    """Deleting what may no longer be kept."""


@retention.command("run")
@click.option("--now", help="RFC 3339 instant to judge ages from (default: now)")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def retention_run(now, dry_run):
    """Delete closed cases older than CASESVC_RETENTION_DAYS (not under legal hold), and youths left
    without a case. The audit log keeps its events."""
    import json

    from casesvc.common.timeutil import utcnow
    from casesvc.retention.service import run

    at = _instant(now, "--now") or utcnow()
    app = _app()
    with app.app_context(), database_errors():
        result = run(at, app.config["CASESVC"].retention_days, dry_run)
    click.echo(json.dumps({"dry_run": dry_run, **result.as_dict()}))



@cli.group("reminders")
def reminders_group():
    """Reminders: the worker that creates due reminders and delivers their webhooks."""


@reminders_group.command("run")
@click.option("--now", help="RFC 3339 instant to run at (default: now)")
def reminders_run(now):
    """One pass: create due reminders, escalate overdue ones, deliver due webhooks. Idempotent;
    safe from cron and from several processes at once."""
    import json

    from casesvc.reminders.service import run

    at = _instant(now, "--now")
    app = _app()
    with app.app_context(), database_errors():
        result = run(at)
    click.echo(json.dumps(result))


@reminders_group.command("work")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(1, 86400),
              help="Seconds between passes")
def reminders_work(interval):
    """Run a pass every --interval seconds until interrupted (SIGINT or SIGTERM)."""
    import json
    import logging
    import signal
    import threading

    from sqlalchemy.exc import OperationalError

    from casesvc.extensions import db
    from casesvc.reminders.service import run

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    app = _app()
    log = logging.getLogger("casesvc.reminders")
    with app.app_context():
        while not stop.is_set():
            try:
                click.echo(json.dumps(run()))
            except OperationalError as exc:  # the database is away for a moment: try again next pass
                db.session.rollback()
                log.warning("reminders pass failed: %s", exc.orig.__class__.__name__)
            finally:
                db.session.remove()
            try:
                stop.wait(interval)
            except KeyboardInterrupt:
                break


def _instant(value: str | None, option: str):
    from datetime import datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.UsageError(f"{option} must be an RFC 3339 instant, e.g. 2027-01-05T08:00:00Z") from exc
    if parsed.tzinfo is None:
        raise click.UsageError(f"{option} needs a time zone, e.g. 2027-01-05T08:00:00Z")
    return parsed


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


@audit.command("review")
@click.option("--from", "start", help="RFC 3339 instant (inclusive); default: 31 days before --to")
@click.option("--to", "end", help="RFC 3339 instant (exclusive); default: now")
def audit_review(start, end):
    """The access-log review's findings in the window, one JSON object per line (for cron)."""
    import json

    from casesvc.audit import review
    from casesvc.audit.service import record

    start_at, end_at = review.window(_instant(start, "--from"), _instant(end, "--to"))
    if start_at >= end_at:
        raise click.UsageError("--from must be before --to")
    app = _app()
    with app.app_context(), database_errors():
        result = review.review(start_at, end_at)
        for finding in result["findings"]:
            click.echo(json.dumps(finding, separators=(",", ":")))
        record("audit.review", "allowed", ids=None)
