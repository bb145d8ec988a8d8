"""What every `casesvc` command shares: a domain's commands are a `DomainGroup` (a Flask
`AppGroup`), so each runs inside the application's context, commits when it succeeds and rolls
back when it fails; an error the user can cause — bad input, an unreachable or unmigrated
database — is one line on stderr and a non-zero exit, never a traceback. Each domain keeps its
commands in its own `cli.py`; `casesvc/cli.py` gathers them."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy.exc import OperationalError, ProgrammingError

from casesvc import create_app
from casesvc.config import ConfigError
from casesvc.errors import Problem
from casesvc.extensions import db
from casesvc.logging_setup import set_command_level


class CommandError(click.ClickException):
    pass


def instance_path() -> Path:
    return Path(os.environ.get("CASESVC_INSTANCE_PATH") or Path.cwd() / "instance")


# A command's statements may rightly run long (an export of millions of events, a first reminders
# run): PostgreSQL's statement and idle-in-transaction timeouts are for the server's requests.
LONG_JOBS = {"db_statement_timeout": 0, "db_idle_in_transaction_timeout": 0}


def create_cli_app(serving: bool = False) -> Flask:
    """The app of a command; `serving` is the app `casesvc serve` runs, with the server's waits."""
    try:
        app = create_app(None if serving else LONG_JOBS, instance_path=instance_path())
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    context = click.get_current_context(silent=True)
    set_command_level(context.command_path if context else "")  # README: Logs
    return app


def script_info() -> ScriptInfo:
    """What `casesvc` hands its commands: how to make the app (made once, when first needed)."""
    return ScriptInfo(create_app=create_cli_app, set_debug_flag=False)


# the command-line options of fields the services name in their errors
_OPTIONS = {
    "kind": "--kind",
    "name": "--name",
    "municipalities": "--municipality",
    "role": "--role",
    "agency": "--agency",
}


def one_line(problem: Problem) -> str:
    """A service's problem as the command line says it: "kind must be…" becomes "--kind must be…"."""
    message, field = problem.detail, problem.field
    option = _OPTIONS.get(field) if field else None
    if field and option and message.startswith(field + " "):
        return option + message[len(field) :]
    return message


def _guarded(command):
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            result = command(*args, **kwargs)
            db.session.commit()
            return result
        except Problem as exc:
            db.session.rollback()
            raise CommandError(one_line(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            db.session.rollback()
            raise CommandError(
                f"the database is unreachable or not migrated; run `casesvc db upgrade` ({exc.orig.__class__.__name__})"
            ) from exc
        except BaseException:
            db.session.rollback()
            raise

    return run


class DomainGroup(AppGroup):
    """A group whose commands run in an app context of this invocation's app (unless
    `with_appcontext=False`), one transaction each, with expected errors as one line. Unlike
    Flask's own `with_appcontext`, the context is always this invocation's app, whatever app
    context the caller already has."""

    def command(self, *args, **kwargs):
        in_context = kwargs.pop("with_appcontext", True)
        parent = super().command

        def decorator(f):
            if not in_context:
                return parent(*args, with_appcontext=False, **kwargs)(f)
            guarded = _guarded(f)

            @functools.wraps(f)
            @click.pass_context
            def in_app(ctx, *a, **kw):
                with ctx.ensure_object(ScriptInfo).load_app().app_context():
                    return ctx.invoke(guarded, *a, **kw)

            return parent(*args, with_appcontext=False, **kwargs)(in_app)

        return decorator


def instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.UsageError(f"{option} must be an RFC 3339 instant, e.g. 2027-01-05T08:00:00Z") from exc
    if parsed.tzinfo is None:
        raise click.UsageError(f"{option} needs a time zone, e.g. 2027-01-05T08:00:00Z")
    return parsed


def password_from_stdin(password_stdin: bool) -> str:
    if not password_stdin:
        raise click.UsageError("pass --password-stdin and give the password on standard input")
    return sys.stdin.readline().rstrip("\r\n")


def read_json_file(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {what} {path}: {exc.__class__.__name__}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{path} is not a {what}")
    return data


def write_output(output: str, text: str) -> None:
    """`--output -` is standard output; a file is written whole, and named on stderr."""
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)


OUTPUT_OPTION = click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True
)
