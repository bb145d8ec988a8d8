"""`casesvc db upgrade`, `casesvc serve`, `casesvc openapi export`: running the service."""

from __future__ import annotations

import os

import click
from flask_migrate import upgrade

from casesvc.commands import OUTPUT_OPTION, CommandError, DomainGroup, create_cli_app, write_output
from casesvc.migrations_runner import migrations_directory
from casesvc.openapi_doc import spec_yaml
from casesvc.ops.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from casesvc.server import address_taken, run_gunicorn

database = DomainGroup("db", help="Database schema.")
openapi = DomainGroup("openapi", help="The OpenAPI document.")


@database.command("upgrade")
def db_upgrade():
    """Apply the migrations (idempotent)."""
    upgrade(directory=migrations_directory(), revision="head")
    click.echo("database is up to date")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker (gthread when more than 1).",
)
def serve(host, port, workers, threads):
    """Serve the API with gunicorn."""
    taken = address_taken(host, port)
    if taken:
        raise CommandError(f"cannot listen on {taken}")
    # before the app exists: its metrics then keep a file per worker, and a scrape adds them up
    os.environ[MULTIPROC_ENV] = prepare_multiprocess_dir(os.environ.get("CASESVC_METRICS_DIR"))
    run_gunicorn(create_cli_app(serving=True), host, port, workers, threads)


@openapi.command("export")
@OUTPUT_OPTION
def openapi_export(output):
    """Write the OpenAPI document as YAML (openapi/openapi.yaml in the repository)."""
    write_output(output, spec_yaml())
