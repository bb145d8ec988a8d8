"""`casesvc audit …`: verify the chain (in the database or an export, against a signed
checkpoint), sign a checkpoint, export, seal."""

from __future__ import annotations

import contextlib
import json
import sys

import click
from flask import current_app

from casesvc.audit import checkpoints, export, review, verify
from casesvc.audit.sealing import seal
from casesvc.audit.service import record
from casesvc.commands import OUTPUT_OPTION, CommandError, DomainGroup, instant, read_json_file, write_output

audit = DomainGroup("audit", help="The tamper-evident audit log.")


def _signing_key() -> str:
    key = current_app.config["CASESVC"].audit_signing_key
    if not key:
        raise CommandError("CASESVC_AUDIT_SIGNING_KEY is not set (keep it outside the database)")
    return key


def _export_hash_at(export_file: str, seq) -> dict:
    """The hash an export holds at `seq`, for checking a checkpoint against the export."""
    return {event["seq"]: event.get("hash") for event in verify.read_export(export_file) if event.get("seq") == seq}


@audit.command("verify")
@click.option(
    "--file",
    "export_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Verify an export (JSONL or CSV) offline instead of the database.",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    help="A signed checkpoint from `casesvc audit checkpoint` the chain must still lead to.",
)
def audit_verify(export_file, checkpoint):
    """Exit 0 when the chain is intact; 1, with the first bad seq on stderr, when not."""
    try:
        verdict = verify.verify_export(export_file) if export_file else verify.verify_database()
        problem = None
        if checkpoint:
            saved = read_json_file(checkpoint, "checkpoint")
            hashes = _export_hash_at(export_file, saved.get("seq")).get if export_file else checkpoints.database_hash_at
            problem = checkpoints.check_checkpoint(saved, _signing_key(), hashes)
    except verify.ExportFormatError as exc:
        raise CommandError(str(exc)) from exc
    if not export_file:
        record("audit.verify", "allowed" if verdict["valid"] and not problem else "error")
    click.echo(json.dumps({**verdict, "checkpoint_problem": problem}))
    if not verdict["valid"]:
        raise CommandError(f"audit chain broken at seq {verdict['first_invalid_seq']}: {verdict['reason']}")
    if problem:
        raise CommandError(problem)


@audit.command("checkpoint")
@OUTPUT_OPTION
def audit_checkpoint(output):
    """Print the chain's head signed with CASESVC_AUDIT_SIGNING_KEY; keep it outside the database."""
    checkpoint = checkpoints.sign_checkpoint(_signing_key())
    record("audit.checkpoint", "allowed", resource_type="audit_head", resource_id=str(checkpoint["seq"]))
    write_output(output, json.dumps(checkpoint, indent=2) + "\n")


@audit.command("export")
@click.option("--from", "start", help="RFC 3339 instant (inclusive)")
@click.option("--to", "end", help="RFC 3339 instant (exclusive)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@OUTPUT_OPTION
def audit_export(start, end, fmt, output):
    """Stream the events as JSONL or CSV, with the chain fields, in flat memory."""
    start_at, end_at = instant(start, "--from"), instant(end, "--to")
    with contextlib.ExitStack() as files:
        handle = sys.stdout if output == "-" else files.enter_context(open(output, "w", encoding="utf-8", newline=""))
        for chunk in export.export_lines(start_at, end_at, fmt):
            handle.write(chunk)
    record("audit.export", "allowed")


@audit.command("seal")
def audit_seal():
    """Seal every recorded event into the chain now (requests also do it as they go)."""
    click.echo(f"sealed {seal(wait=True)} events")


@audit.command("review")
@click.option("--from", "start", help="RFC 3339 instant (inclusive); default: 31 days before --to")
@click.option("--to", "end", help="RFC 3339 instant (exclusive); default: now")
def audit_review(start, end):
    """The access-log review's findings in the window, one JSON object per line (for cron)."""
    start_at, end_at = review.window(instant(start, "--from"), instant(end, "--to"))
    if start_at >= end_at:
        raise click.UsageError("--from must be before --to")
    for finding in review.review(start_at, end_at)["findings"]:
        click.echo(json.dumps(finding, separators=(",", ":")))
    record("audit.review", "allowed", ids=None)
