"""Reading the sealed log: the search of GET /audit/events and a youth's access log, newest
first by `seq` (the cursor is the last `seq` returned)."""

from __future__ import annotations

from sqlalchemy import select

from casesvc.access import accesses_to_cases_of, enforce, load_youth
from casesvc.audit import sealing
from casesvc.audit.models import AuditEvent
from casesvc.common.pagination import Keyset
from casesvc.policy import Principal, access_log_decision, youth_visible

BY_SEQ = Keyset(AuditEvent.seq)
FILTERS = ("actor", "case_id", "youth_id", "action", "outcome")


def _page(stmt, args: dict) -> dict:
    sealing.seal(wait=True)  # what is still in the inbox belongs in the answer
    page = BY_SEQ.fetch(stmt, args["limit"], args.get("cursor"))
    return {**page, "items": [sealing.event_dict(row) for row in page["items"]]}


def search(args: dict) -> dict:
    """The events matching the query's filters, for admin and auditor (checked by the view)."""
    stmt = select(AuditEvent)
    if args.get("from_"):
        stmt = stmt.where(AuditEvent.at >= args["from_"])
    if args.get("to"):
        stmt = stmt.where(AuditEvent.at < args["to"])
    for name in FILTERS:
        if args.get(name):
            stmt = stmt.where(getattr(AuditEvent, name) == args[name])
    return _page(stmt, args)


def access_log(principal: Principal, youth_id: str, args: dict) -> dict:
    """Who read or changed the youth's data: for admin, auditor, the lead agency of one of the
    youth's cases and a coordinator taking part in one (`policy.access_log_decision`)."""
    youth = load_youth(youth_id)
    accesses = accesses_to_cases_of(principal, youth)
    enforce(access_log_decision(principal, accesses, youth_visible(principal, youth.created_by_agency, accesses)))
    return _page(select(AuditEvent).where(AuditEvent.youth_id == youth.id), args)
