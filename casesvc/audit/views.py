from __future__ import annotations

from flask import Response, stream_with_context
from flask_smorest import Blueprint
from sqlalchemy import select

from casesvc.audit import service, store
from casesvc.audit.models import AuditEvent
from casesvc.audit.schemas import (AccessLogPageSchema, AccessLogQuery, AuditPageSchema, AuditQuery, ExportQuery,
                                   HeadSchema, VerifySchema)
from casesvc.access import accesses_to_cases_of, enforce, load_youth
from casesvc.auth.principal import current_principal
from casesvc.errors import field_error
from casesvc.extensions import db
from casesvc.policy import access_log_decision, check_audit_reader, youth_visible

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The tamper-evident audit log")


def _reader():
    enforce(check_audit_reader(current_principal()))


def _seq_page(stmt, limit: int, cursor: str | None) -> dict:
    """Newest first by seq; the cursor is the last seq returned."""
    if cursor:
        try:
            seq = int(cursor)
        except ValueError:
            seq = 0
        if not 0 < seq < 2 ** 63:  # a sequence number: positive, and within the 64-bit column
            raise field_error("cursor", "Not a cursor this service issued.")
        stmt = stmt.where(AuditEvent.seq < seq)
    rows = db.session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit + 1)).all()
    items = [service.event_dict(row) for row in rows[:limit]]
    return {"items": items, "next_cursor": str(rows[limit - 1].seq) if len(rows) > limit else None}


@blp.route("/audit/head", methods=["GET"])
@blp.response(200, HeadSchema)
def head():
    """The head of the chain (seal it into a signed checkpoint with `casesvc audit checkpoint`)"""
    _reader()
    return store.head()


@blp.route("/audit/verify", methods=["GET"])
@blp.response(200, VerifySchema)
def verify():
    """Walk the whole chain: seq gapless, each prev_hash the previous hash, each hash its content"""
    _reader()
    return store.verify_database()


@blp.route("/audit/events", methods=["GET"])
@blp.arguments(AuditQuery(), location="query")
@blp.response(200, AuditPageSchema)
def events(args):
    """Search the sealed log, newest first"""
    _reader()
    service.seal()
    stmt = select(AuditEvent)
    if args.get("from_"):
        stmt = stmt.where(AuditEvent.at >= args["from_"])
    if args.get("to"):
        stmt = stmt.where(AuditEvent.at < args["to"])
    for name in ("actor", "case_id", "youth_id", "action", "outcome"):
        if args.get(name):
            stmt = stmt.where(getattr(AuditEvent, name) == args[name])
    return _seq_page(stmt, args["limit"], args.get("cursor"))


@blp.route("/audit/export", methods=["GET"])
@blp.arguments(ExportQuery(), location="query")
@blp.doc(responses={"200": {"description": "JSONL (application/x-ndjson) or CSV, streamed, with the chain "
                                           "fields so the export verifies offline (`casesvc audit verify --file`)"}})
def export(args):
    """Stream the events between `from` and `to` as JSONL or CSV"""
    _reader()
    fmt = args["format"]
    lines = store.export_lines(args.get("from_"), args.get("to"), fmt)
    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    response = Response(stream_with_context(lines), mimetype=media)
    response.headers["Content-Disposition"] = f'attachment; filename="casesvc-audit.{fmt}"'
    return response


@blp.route("/youths/<youth_id>/access-log", methods=["GET"])
@blp.arguments(AccessLogQuery(), location="query")
@blp.response(200, AccessLogPageSchema)
def access_log(args, youth_id):
    """Who (agency, role, user) read or changed this youth's data, and when — the right of access"""
    principal = current_principal()
    youth = load_youth(youth_id)
    accesses = accesses_to_cases_of(principal, youth)
    enforce(access_log_decision(principal, accesses, youth_visible(principal, youth.created_by_agency, accesses)))
    service.seal()
    return _seq_page(select(AuditEvent).where(AuditEvent.youth_id == youth.id), args["limit"], args.get("cursor"))
