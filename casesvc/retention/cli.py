"""`casesvc retention run`: deleting what may no longer be kept."""

from __future__ import annotations

import json

import click
from flask import current_app

from casesvc.commands import DomainGroup, instant
from casesvc.common.timeutil import utcnow
from casesvc.retention.service import run

retention = DomainGroup("retention", help="Deleting what may no longer be kept.")


@retention.command("run")
@click.option("--now", help="RFC 3339 instant to judge ages from (default: now)")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def retention_run(now, dry_run):
    """Delete closed cases older than CASESVC_RETENTION_DAYS (not under legal hold), and youths left
    without a case. The audit log keeps its events."""
    at = instant(now, "--now") or utcnow()
    result = run(at, current_app.config["CASESVC"].retention_days, dry_run)
    click.echo(json.dumps({"dry_run": dry_run, **result.as_dict()}))
