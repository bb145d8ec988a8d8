"""Recording audit events (the inbox); `casesvc.audit.sealing` seals them into the hash chain.

Every API request leaves one event: a successful write stages it in the request's own
transaction (`stage_for_commit`, called by `transactional` just before its commit); any other
request — a read, or a request that failed or was refused — records it in a transaction of its
own before the response goes out (`record_response`). Services add what they know with `note()`:
the case, the youth, the ids a list returned.

The chain is not touched by requests: `casesvc.audit.sealing.seal()` moves inbox rows into
`audit_events` in batches, under a non-blocking lock, so requests never queue behind one another
on the chain's head.
"""

from __future__ import annotations

import uuid

import orjson
from flask import has_request_context, request
from sqlalchemy import bindparam, insert, select

from casesvc.audit.models import AuditInbox
from casesvc.common.connection import (
    existing_session,
    has_changes,
    in_autocommit,
    request_connection,
    rollback_request,
)
from casesvc.common.direct import DirectStatement, send_last
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db

_ENV_KEY = "casesvc.audit"


def _context() -> dict:
    return request.environ.setdefault(_ENV_KEY, {})


def note(**fields) -> None:
    """Add ids to the current request's event (case_id, youth_id, resource_type, resource_id,
    ids, actor, action, outcome when the status alone does not tell). Never names or free text."""
    if has_request_context():
        _context().update({k: v for k, v in fields.items() if v is not None})


def outcome_of(status: int) -> str:
    if status < 400:
        return "allowed"
    if status in (401, 403, 404, 429):
        return "denied"
    return "error"


def _event_from_request(status: int) -> dict:
    ctx = _context()
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per attribute
    environ = req.environ
    principal = environ.get("casesvc.principal")
    view_args = req.view_args or {}
    endpoint = req.endpoint
    url_case_id = _uuid_or_none(view_args.get("case_id"))
    resource_type, resource_id = ctx.get("resource_type"), ctx.get("resource_id")
    if resource_id is None:  # the innermost id in the URL names the resource
        for key in ("note_id", "event_id", "consent_id", "reaction_id", "youth_id", "case_id"):
            if view_args.get(key):
                resource_type = resource_type or key.removesuffix("_id")
                resource_id = url_case_id if key == "case_id" else _uuid_or_none(view_args[key])
                break
    if resource_type is None and resource_id is not None and endpoint:
        # a creating endpoint (`create_event`, `add_signature`) names what it created
        verb, _, noun = endpoint.rpartition(".")[2].partition("_")
        if verb in ("create", "add"):
            resource_type = noun
    youth_id = ctx.get("youth_id") or (resource_id if resource_type == "youth" else None)
    ids = ctx.get("ids")
    return {
        "id": str(uuid.uuid4()),
        "at": utcnow(),
        "actor": ctx.get("actor") or (principal.subject if principal else None),
        "actor_role": ctx.get("actor_role") or (principal.role if principal else None),
        "actor_agency": ctx.get("actor_agency") or (principal.agency if principal else None),
        "action": ctx.get("action") or endpoint or "unmatched",
        "resource_type": resource_type,
        "resource_id": str(resource_id)[:64] if resource_id is not None else None,
        "case_id": ctx.get("case_id") or url_case_id,
        "youth_id": youth_id,
        "ids": list(ids) if ids is not None else None,
        "outcome": ctx.get("outcome") or outcome_of(status),
        "status": status,
        "request_id": environ.get("casesvc.request_id"),
        "ip": (req.remote_addr or "")[:45] or None,
        "basis": ctx.get("basis"),
    }


def _uuid_or_none(value) -> str | None:
    """A URL id is recorded only when it is a well-formed id (it is attacker-chosen)."""
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None


# what an event says a request touched; a replayed create names the same (web/idempotency.py)
TOUCHED = ("resource_type", "resource_id", "case_id", "youth_id")


def stage_for_commit(response, last: bool = True) -> dict:
    """Called by `transactional` just before it commits a successful write: the event commits
    with the work it records, or neither does. `last`: nothing but the commit follows (no
    Idempotency-Key's stored response), so a write whose transaction has not begun sends its held
    rows with the event, in one statement (casesvc/common/connection.py). Returns the ids the
    event names (`TOUCHED`)."""
    ctx = _context()
    if "resource_id" not in ctx and response.is_json:
        created = _written_json(response)
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            ctx["resource_id"] = created["id"]
    event = _event_from_request(response.status_code)
    conn = request_connection()
    if last:
        session = existing_session(db.session)
        if has_changes(session):
            session.flush()  # type: ignore[union-attr]  # the ORM's changes, in the transaction they begin, before the event
        send_last(conn, _INBOX_INSERT, event)
    else:
        _INBOX_INSERT.run(conn, event)  # in the write's own transaction
    # recorded only once that commit succeeds: if it fails, the error response is recorded instead
    ctx["staged"] = response.status_code
    return {name: event[name] for name in TOUCHED if event[name] is not None}


def _written_json(response):
    """The JSON casesvc wrote into `response`, read back (by orjson, which reads its own writing
    at a fifth of the standard library's cost; what it refuses, by the standard library)."""
    try:
        return orjson.loads(response.get_data())
    except orjson.JSONDecodeError:
        return response.get_json(silent=True)


def record_response(status: int) -> None:
    """Record the event of a request that did not stage one (reads, refusals, failures), in a
    transaction of its own, before the response is sent. Raises if it cannot be recorded."""
    ctx = _context()
    if ctx.get("staged") == status:  # the staged event committed with the work this response reports
        ctx["recorded"] = True
    if ctx.get("recorded"):
        return
    event = _event_from_request(status)
    if status >= 400 or has_changes(existing_session(db.session)):
        rollback_request()  # whatever a failed request left (held rows among it) is not ours to commit
    # a successful read changed nothing: its event rides the read's own connection, in autocommit
    # (casesvc/common/connection.py), where the insert is durable once it returns and no COMMIT is needed
    conn = request_connection()
    send_last(conn, _INBOX_INSERT, event)
    if not in_autocommit(conn):
        db.session.commit()
    ctx["recorded"] = True


# the keys of `_event_from_request`'s event, the inbox's columns but its sequence number
EVENT_KEYS = [c.name for c in AuditInbox.__table__.columns if c.name != "n"]
# on the driver's cursor (common/direct.py): one row, none of the ORM's or the engine's machinery
_INBOX_INSERT = DirectStatement(AuditInbox.__table__.insert(), column_keys=EVENT_KEYS)

# --- a read's event in the statement that reads -----------------------------------------------
#
# On PostgreSQL a read can insert its own event in the statement that reads (a data-modifying
# CTE): the lead's read of one case, whose access rests on the rows of that statement alone (the
# policy in Python, deciding on the same rows, decides alike; tests/access hold it for every cell
# of the access matrix), and a page of cases, whose rows the policy's SQL form has chosen. The
# event is durable before the rows leave the database; `record_response` adds a second only if
# the answer ends up other than 200 (a failure while answering).

_READ_EVENT_PREFIX = "read_event_"
# the status a read's event in its statement records: the read's answer when it succeeds
_READ_STATUS = 200


def events_ride_reads() -> bool:
    """Whether the request's read can insert its event in the statement that reads: on
    PostgreSQL (SQLite has no INSERT inside a SELECT), in autocommit (a read's own, README "The
    audit log"; a read inside a transaction already begun records its event as any request does,
    and commits it)."""
    conn = request_connection()
    return conn.dialect.name == "postgresql" and in_autocommit(conn)


def read_event_cte(from_statement: dict, source=None, condition=None):
    """INSERT of the current request's read event as a CTE named `read_event` returning the row's
    number: the values of `from_statement` (field -> the statement's expression, e.g. the case's
    youth, the ids of a page) and bind parameters for the rest (`read_event_params`), from
    `source` where `condition` holds (one row at most), or unconditionally."""
    inbox = AuditInbox.__table__
    values = [
        from_statement[name]
        if name in from_statement
        else bindparam(_READ_EVENT_PREFIX + name, type_=inbox.c[name].type)
        for name in EVENT_KEYS
    ]
    chosen = select(*values)
    if source is not None:
        chosen = chosen.select_from(source)
    if condition is not None:
        chosen = chosen.where(condition)
    return insert(inbox).from_select(EVENT_KEYS, chosen).returning(inbox.c.n).cte("read_event")


def read_event_params(actor: str, actor_role: str | None, actor_agency: str | None) -> dict:
    """The bind parameters of `read_event_cte`: the event this request records if it answers
    200, for the caller named (a statement that has yet to check that caller checks its row)."""
    event = {
        **_event_from_request(_READ_STATUS),
        "actor": actor,
        "actor_role": actor_role,
        "actor_agency": actor_agency,
    }
    return {_READ_EVENT_PREFIX + name: value for name, value in event.items()}


def recorded_by_read() -> None:
    """The read's statement inserted the request's event (`read_event_cte`): `record_response`
    adds none unless the answer is other than the 200 that event records."""
    _context()["staged"] = _READ_STATUS


_FIELDS = (
    "actor",
    "actor_role",
    "actor_agency",
    "resource_type",
    "resource_id",
    "case_id",
    "youth_id",
    "ids",
    "status",
    "request_id",
    "ip",
    "basis",
)


def stage(action: str, outcome: str, **fields) -> None:
    """An event outside an API request (CLI, worker), committed with the caller's work."""
    db.session.add(
        AuditInbox(
            id=str(uuid.uuid4()), at=utcnow(), action=action, outcome=outcome, **{k: fields.get(k) for k in _FIELDS}
        )
    )


def record(action: str, outcome: str, **fields) -> None:
    """An event outside an API request (CLI, worker), in its own transaction."""
    stage(action, outcome, **fields)
    db.session.commit()


# --- sealing ---------------------------------------------------------------------------------
