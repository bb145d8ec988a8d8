from __future__ import annotations

from flask import Response, stream_with_context
from flask_smorest import Blueprint

from casesvc.access import enforce
from casesvc.audit import checkpoints, export as audit_export, reading, verify as audit_verify
from casesvc.audit.schemas import (
    AccessLogPageSchema,
    AccessLogQuery,
    AuditPageSchema,
    AuditQuery,
    ExportQuery,
    HeadSchema,
    VerifySchema,
)
from casesvc.auth.principal import current_principal
from casesvc.policy import check_audit_reader

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The tamper-evident audit log")


def _reader():
    enforce(check_audit_reader(current_principal()))


@blp.route("/audit/head", methods=["GET"])
@blp.response(200, HeadSchema)
def head():
    """The head of the chain (seal it into a signed checkpoint with `casesvc audit checkpoint`)"""
    _reader()
    return checkpoints.head()


@blp.route("/audit/verify", methods=["GET"])
@blp.response(200, VerifySchema)
def verify():
    """Walk the whole chain: seq gapless, each prev_hash the previous hash, each hash its content"""
    _reader()
    return audit_verify.verify_database()


@blp.route("/audit/events", methods=["GET"])
@blp.arguments(AuditQuery(), location="query")
@blp.response(200, AuditPageSchema)
def events(args):
    """Search the sealed log, newest first"""
    _reader()
    return reading.search(args)


@blp.route("/audit/export", methods=["GET"])
@blp.arguments(ExportQuery(), location="query")
@blp.doc(
    responses={
        "200": {
            "description": "JSONL (`format=jsonl`, one event per line) or CSV (`format=csv`), "
            "streamed, with the chain fields so the export verifies offline "
            "(`casesvc audit verify --file`)",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)
def export(args):
    """Stream the events between `from` and `to` as JSONL or CSV"""
    _reader()
    fmt = args["format"]
    lines = audit_export.export_lines(args.get("from_"), args.get("to"), fmt)
    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    response = Response(stream_with_context(lines), mimetype=media)
    response.headers["Content-Disposition"] = f'attachment; filename="casesvc-audit.{fmt}"'
    return response


@blp.route("/youths/<youth_id>/access-log", methods=["GET"])
@blp.arguments(AccessLogQuery(), location="query")
@blp.response(200, AccessLogPageSchema)
def access_log(args, youth_id):
    """Who (agency, role, user) read or changed this youth's data, and when — the right of access"""
    return reading.access_log(current_principal(), youth_id, args)
