"""The floor of bench/run.py: the bare app plus the least database work the contract asks of
every read before it answers, done as cheaply as Python can do it.

README "Identity" and "Security model" want a revoked token, a disabled user or a withdrawn consent to count from
the very next request, in every worker, so a read asks the shared database about its caller;
README "Security model" wants the rows filtered by the caller's agency and municipality; README "The audit log"
wants an audit event for every read, and casesvc has it committed before the answer leaves. Here all of that is ONE
statement per request, sent with raw psycopg on a connection per thread (autocommit, prepared by
psycopg after its fifth use): it looks up the caller, reads the rows and inserts the audit row.
No token check, no policy code, no schemas, no ORM; the answer is the same stored JSON body the
bare app sends. An implementation that keeps those promises does at least this much work per
read, so the floor's ratio to the bare app bounds the ratio it can reach on this machine.

Under `/without-audit` the same statements run without the insert: the floor of a design that
would write its audit events after answering. It still asks the database about the caller and
reads the rows.

The write floor, `POST /api/v1/cases/{id}/events`, is one statement too, and so one transaction:
it looks up the caller, checks that the caller's agency takes part in the case and that its
municipality is one the agency serves, inserts the event (from the request's JSON body) and the
audit event, and answers 201 with the body casesvc gave (403 if the check fails). No schema, no
reminder rules, no ORM.

The audit rows go to `bench_floor_audit`, a copy of `audit_inbox`'s shape and indexes, and the
events to `bench_floor_events`, a copy of `events`' (bench/run.py creates both before the run and
drops them after it; casesvc's own chain and events are not touched).
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import psycopg
from flask import Flask, jsonify, request

from casesvc.common.jsonio import JSONProvider

AUDIT_TABLE = "bench_floor_audit"
EVENTS_TABLE = "bench_floor_events"

# The caller, the rows and the audit event in one statement. The case's columns are those casesvc
# reads (`CaseView`), with its participants in joining order.
_CASE_COLUMNS = (
    "c.id, c.youth_id, c.municipality, c.origin, c.summary, c.lead_agency, c.coordinator, "
    "c.status, c.opened_at, c.closed_at, c.outcome, c.status_reason, c.legal_hold, "
    "c.created_at, c.version"
)
_CALLER = """
WITH caller AS (
    SELECT u.active, u.role, u.agency_code, a.municipalities
    FROM users u JOIN agencies a ON a.code = u.agency_code WHERE u.id = %(sub)s)"""
_AUDIT = f""",
audit AS (
    INSERT INTO {AUDIT_TABLE} (id, at, actor, actor_role, actor_agency, action, resource_type, resource_id,
                               case_id, outcome, status, request_id, ip)
    SELECT %(event_id)s, now() AT TIME ZONE 'UTC', %(sub)s, caller.role, caller.agency_code, %(action)s,
           %(resource_type)s, %(resource_id)s, %(case_id)s, 'allowed', %(status)s, %(event_id)s, %(ip)s
    FROM caller)"""
_ONE_CASE = f"""
SELECT {_CASE_COLUMNS}, p.agency_code, caller.active
FROM caller, cases c LEFT JOIN case_participants p ON p.case_id = c.id
WHERE c.id = %(case_id)s
ORDER BY p.added_at, p.agency_code
"""
_PAGE = f"""
SELECT {_CASE_COLUMNS}, p.agency_code, caller.active
FROM caller, (
    SELECT cases.* FROM cases
    WHERE cases.municipality = %(municipality)s
      AND EXISTS (SELECT 1 FROM case_participants cp WHERE cp.case_id = cases.id AND cp.agency_code = %(agency)s)
    ORDER BY cases.created_at DESC, cases.id DESC LIMIT %(rows)s) c
LEFT JOIN case_participants p ON p.case_id = c.id
ORDER BY c.created_at DESC, c.id DESC, p.added_at, p.agency_code
"""
SINGLE, LIST = _CALLER + _AUDIT + _ONE_CASE, _CALLER + _AUDIT + _PAGE
# The write: the caller, the access check, the event's insert and the audit event's, in one
# statement (one transaction). The audit row names the event only when it was written.
WRITE_EVENT = (
    _CALLER
    + f""",
allowed AS (
    SELECT c.id FROM caller, cases c
    WHERE c.id = %(case_id)s AND caller.active
      AND c.municipality IN (SELECT json_array_elements_text(caller.municipalities))
      AND EXISTS (SELECT 1 FROM case_participants p WHERE p.case_id = c.id AND p.agency_code = caller.agency_code)),
entry AS (
    INSERT INTO {EVENTS_TABLE} (id, case_id, kind, occurred_at, summary, category, visibility, author_agency,
                                author_user, created_at)
    SELECT %(resource_id)s, allowed.id, %(kind)s, %(occurred_at)s, %(summary)s, %(category)s, %(visibility)s,
           caller.agency_code, %(sub)s, now() AT TIME ZONE 'UTC'
    FROM allowed, caller
    RETURNING id)"""
    + _AUDIT.replace("%(resource_id)s", "(SELECT id FROM entry)")
    + """
SELECT count(*) FROM entry
"""
)
# The same without the audit insert, under READ_ONLY_PREFIX: what is left if the audit event were
# written after the answer (which casesvc does not do).
READ_ONLY_PREFIX = "/without-audit"
SINGLE_READ_ONLY, LIST_READ_ONLY = _CALLER + _ONE_CASE, _CALLER + _PAGE


def create_floor_app(
    bodies_path: str | Path, database_url: str, caller_id: str, agency: str, municipality: str, page_rows: int
) -> Flask:
    """`database_url` is a libpq URL (postgresql://…); `caller_id` the user the bench's token names."""
    bodies = json.loads(Path(bodies_path).read_text())
    app = Flask(__name__)
    app.json = JSONProvider(app)  # casesvc's JSON: the same bytes, at the same cost per byte
    local = threading.local()

    def run(sql: str, **params) -> list[tuple]:
        conn = getattr(local, "conn", None)
        if conn is None:  # one per thread, opened in the worker (after gunicorn's fork)
            conn = local.conn = psycopg.connect(database_url, autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(
                sql,
                {
                    "sub": caller_id,
                    "event_id": str(uuid.uuid4()),
                    "ip": request.remote_addr,
                    "case_id": None,
                    "resource_id": params.get("case_id"),
                    "status": 200,
                    **params,
                },
            )
            return cursor.fetchall()

    @app.get("/readyz")
    def readyz():
        return jsonify(status="ready")

    for prefix, single, page in (("", SINGLE, LIST), (READ_ONLY_PREFIX, SINGLE_READ_ONLY, LIST_READ_ONLY)):

        def get_case(case_id, sql=single):
            run(sql, case_id=case_id, action="cases.get_case", resource_type="case")
            return jsonify(bodies["single"])

        def list_cases(sql=page):
            run(
                sql,
                action="cases.list_cases",
                resource_type=None,
                municipality=municipality,
                agency=agency,
                rows=page_rows + 1,
            )
            return jsonify(bodies["list"])

        app.add_url_rule(f"{prefix}/api/v1/cases/<case_id>", f"get_case{prefix}", get_case)
        app.add_url_rule(f"{prefix}/api/v1/cases", f"list_cases{prefix}", list_cases)

    @app.post("/api/v1/cases/<case_id>/events")
    def create_event(case_id):
        data = request.get_json()
        written = run(
            WRITE_EVENT,
            case_id=case_id,
            action="followups.create_event",
            resource_type="event",
            resource_id=str(uuid.uuid4()),
            status=201,
            kind=data["kind"],
            occurred_at=data["occurred_at"],
            summary=data.get("summary"),
            category=data.get("category", "general"),
            visibility=data.get("visibility", "shared"),
        )[0][0]
        if not written:
            return jsonify(status=403), 403
        return jsonify(bodies["event"]), 201

    return app
