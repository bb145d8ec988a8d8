"""The `casesvc` command: each domain's group (its `cli.py`) under one root. Every expected
error is one line on stderr and a non-zero exit (`casesvc/commands.py`)."""

from __future__ import annotations

import os
import sys

import click

from casesvc.agencies.cli import agencies, users
from casesvc.audit.cli import audit
from casesvc.auth.cli import clients
from casesvc.commands import script_info
from casesvc.demo.cli import demo
from casesvc.ops.cli import database, openapi, serve
from casesvc.reminders.cli import reminders
from casesvc.retention.cli import retention
from casesvc.version import __version__

# click 8.2 shows help for a bare group by raising this; older versions print and exit themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="casesvc", message="%(prog)s %(version)s")
def cli():
    """casesvc: case management for alternative reactions to youth drug cases."""


for group in (database, agencies, users, clients, demo, serve, openapi, audit, retention, reminders):
    cli.add_command(group)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="casesvc", standalone_mode=False, obj=script_info())
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
        click.echo(
            f"casesvc: unexpected error ({exc.__class__.__name__}); rerun with CASESVC_DEBUG=1 for details", err=True
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
