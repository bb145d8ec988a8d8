"""Recording audit events and sealing them into the hash chain.

Every API request leaves one event: a successful write stages it in the request's own
transaction (`stage_for_commit`, called by `transactional` just before its commit); any other
request — a read, or a request that failed or was refused — records it in a transaction of its
own before the response goes out (`record_response`). Services add what they know with `note()`:
the case, the youth, the ids a list returned.

The chain is not touched by requests: `seal()` moves inbox rows into `audit_events` in batches,
under a non-blocking lock, so requests never queue behind one another on the chain's head.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from datetime import UTC

import orjson
from flask import Flask, has_request_context, request
from sqlalchemy import bindparam, delete, insert, select, text

from casesvc.audit import chain
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.common.connection import in_autocommit, request_connection
from casesvc.common.direct import DirectStatement
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db

log = logging.getLogger(__name__)

_ENV_KEY = "casesvc.audit"
SEAL_LOCK_KEY = 0x6361736573766331  # pg advisory lock id ("casesvc1")
SEAL_BATCH = 5000


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


def stage_for_commit(response) -> dict:
    """Called by `transactional` just before it commits a successful write: the event commits
    with the work it records, or neither does. Returns the ids the event names (`TOUCHED`)."""
    ctx = _context()
    if "resource_id" not in ctx and response.is_json:
        created = _written_json(response)
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            ctx["resource_id"] = created["id"]
    event = _event_from_request(response.status_code)
    _INBOX_INSERT.run(request_connection(), event)  # in the write's own transaction
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
    if status >= 400 or db.session.new or db.session.dirty or db.session.deleted:
        db.session.rollback()  # whatever a failed request left is not ours to commit
    # a successful read changed nothing: its event rides the read's own connection, in autocommit
    # (casesvc/common/connection.py), where the insert is durable once it returns and no COMMIT is needed
    conn = request_connection()
    _INBOX_INSERT.run(conn, event)
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


def _head(conn) -> tuple[int, str]:
    row = conn.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, chain.GENESIS)


_INBOX_COLUMNS = [c for c in AuditInbox.__table__.columns if c.name != "n"]
_INBOX_NAMES = tuple(c.name for c in _INBOX_COLUMNS)
_EVENTS_INSERT = AuditEvent.__table__.insert()  # Core executemany: batched VALUES, no ORM bulk path
_INBOX_PROBE = select(AuditInbox.n).limit(1)


def seal(batch: int = SEAL_BATCH, until_empty: bool = True, wait: bool = False) -> int:
    """Move inbox rows into the chain. Returns how many were sealed. Safe to run anywhere and
    concurrently: on PostgreSQL one sealer works at a time (a try-lock, others return at once;
    with `wait`, as a reader of the chain asks, it waits for the one at work to commit, within
    the statement timeout, so that what that one was sealing is in the chain it reads); on any
    database the primary key on `seq` refuses a second sealer's fork of the chain."""
    total = 0
    while True:
        sealed = _seal_batch(batch, wait)
        total += sealed
        if sealed < batch or not until_empty:
            return total


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")
_LOCK = text("SELECT true FROM pg_advisory_xact_lock(:k)")  # true once it is held


def _seal_batch(batch: int, wait: bool = False) -> int:
    from sqlalchemy.exc import IntegrityError, OperationalError

    engine = db.engine
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                if not conn.scalar(_LOCK if wait else _TRY_LOCK, {"k": SEAL_LOCK_KEY}):
                    return 0
            elif conn.dialect.name == "sqlite":
                # One writer at a time: the sealer takes the write lock before it reads the chain's
                # head, so a second sealer (another worker process) waits for the first to commit
                # (busy_timeout), then reads the new head and what the first left in the inbox.
                # Neither forks the chain. The probe, outside the lock (pysqlite begins nothing for
                # a read), keeps a sealer with nothing to do from taking the lock every round.
                if conn.scalar(_INBOX_PROBE) is None:
                    return 0
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            rows = conn.execute(select(AuditInbox.n, *_INBOX_COLUMNS).order_by(AuditInbox.n).limit(batch)).all()
            if not rows:
                return 0
            seq, prev = _head(conn)
            sealed = []
            for row in rows:
                seq += 1
                fields = dict(zip(_INBOX_NAMES, row[1:], strict=True))  # row = (n, *_INBOX_COLUMNS)
                event = chain.link(_chain_view(fields), seq, prev)
                prev = event["hash"]
                sealed.append({**fields, "seq": seq, "prev_hash": event["prev_hash"], "hash": event["hash"]})
            _move(conn, rows, sealed)
            return len(rows)
    except (IntegrityError, OperationalError) as exc:
        # PostgreSQL's lock and SQLite's write lock keep sealers from racing; what is left is a
        # database busy beyond its timeout, unreachable, or not migrated yet (a command run
        # first): the events wait in the inbox and the next round seals them
        log.debug("audit seal skipped: %s", exc.__class__.__name__)
        return 0


# PostgreSQL moves a batch in one statement: the inbox rows are deleted and inserted into the
# chain as they are stored, with the links worked out here (arrays of one value per row), instead
# of every field going back to the database as a parameter of its own.
_NAMES = ", ".join(_INBOX_NAMES)
_MOVE = text(
    f"WITH moved AS (DELETE FROM audit_inbox WHERE n = ANY(CAST(:n AS BIGINT[])) RETURNING n, {_NAMES}) "  # noqa: S608 (column names)
    f"INSERT INTO audit_events ({_NAMES}, seq, prev_hash, hash) "
    f"SELECT {', '.join('moved.' + name for name in _INBOX_NAMES)}, link.seq, link.prev_hash, link.hash "
    "FROM moved JOIN unnest(CAST(:n AS BIGINT[]), CAST(:seq AS BIGINT[]), CAST(:prev_hash AS TEXT[]), "
    "CAST(:hash AS TEXT[])) AS link (n, seq, prev_hash, hash) ON link.n = moved.n"
)


def _move(conn, rows, sealed: list[dict]) -> None:
    """The inbox's `rows` out of the inbox and, as `sealed`, into the chain, in the caller's
    transaction."""
    numbers = [row.n for row in rows]
    if conn.dialect.name == "postgresql":
        moved = conn.execute(
            _MOVE,
            {
                "n": numbers,
                "seq": [event["seq"] for event in sealed],
                "prev_hash": [event["prev_hash"] for event in sealed],
                "hash": [event["hash"] for event in sealed],
            },
        )
        if moved.rowcount != len(numbers):  # every row read is moved, or the batch is not sealed
            raise RuntimeError(f"audit seal moved {moved.rowcount} of {len(numbers)} events")
        return
    conn.execute(_EVENTS_INSERT, sealed)
    for start in range(0, len(numbers), 1000):
        conn.execute(delete(AuditInbox).where(AuditInbox.n.in_(numbers[start : start + 1000])))


def _chain_view(fields: dict) -> dict:
    """The event as the chain sees it: instants as RFC 3339 with microseconds."""
    view = dict(fields)
    view["at"] = chain_time(fields["at"])
    return view


def chain_time(at) -> str | None:
    """Instants in the chain: UTC, microseconds, `Z` — exact on SQLite and PostgreSQL."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else None


def event_dict(row) -> dict:
    """A sealed event as the API, the export and the verifier see it."""
    fields = {name: getattr(row, name) for name in chain.EVENT_FIELDS}
    fields["at"] = chain_time(row.at)
    fields["hash"] = row.hash
    return fields


class _Sealer:
    """One background thread per process seals the inbox every `interval` seconds: the unsealed
    tail stays short without a separate process, and no request waits for the chain.

    Under `casesvc serve` a process of its own seals instead (`start_process`, from gunicorn's
    master): a batch of a few hundred events is some milliseconds of Python, which in a worker
    holds up every request thread waiting for the same GIL (a read's p99 was four times its
    median, bench/README.md). The workers' threads then seal every `FALLBACK_FACTOR` intervals
    only, so events are still sealed if that process is gone; sealers never fork the chain,
    however many run (`seal`)."""

    FALLBACK_FACTOR = 20

    def __init__(self, app: Flask, interval: float):
        self.app = app
        self.interval = interval
        self.pid: int | None = None
        self.lock = threading.Lock()

    def ensure_running(self) -> None:
        pid = os.getpid()
        if self.pid == pid:  # started in this process (a forked worker starts its own)
            return
        with self.lock:
            if self.pid != pid:
                self.pid = pid
                threading.Thread(target=self._run, name="casesvc-audit-sealer", daemon=True).start()

    def _run(self, alive=lambda: True) -> None:
        while alive():
            time.sleep(self.interval)
            with self.app.app_context():
                try:
                    seal()
                except Exception:  # the next round tries again; the events wait safely in the inbox
                    log.exception("audit seal failed")
                finally:
                    db.session.remove()

    def start_process(self) -> int:
        """Fork the sealing process (from gunicorn's master, before the workers, as gunicorn
        forks them); the workers then seal as a fallback only. Returns its pid: the master ends
        it on exit (`stop_process`), and it ends itself when the master is gone."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the sealing process: it never returns into the master's code
            code = 0
            try:
                self._run_process(parent)
            except BaseException:  # whatever ends it, it ends here, not in gunicorn
                log.exception("audit sealer process failed")
                code = 1
            finally:
                os._exit(code)
        self.interval *= self.FALLBACK_FACTOR  # the workers, forked after this, inherit it
        return pid

    def _run_process(self, parent: int) -> None:
        import signal

        # the master's signal handlers are not this process's: SIGTERM and SIGINT end it
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        for number in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH):
            signal.signal(number, signal.SIG_IGN)
        with self.app.app_context():
            db.engine.dispose(close=False)  # the master's pooled connections stay the master's
        self.pid = os.getpid()
        self._run(alive=lambda: os.getppid() == parent)  # a master gone (killed) ends it too


def stop_process(pid: int) -> None:
    """End the sealing process (`_Sealer.start_process`) and wait for it; an event it was sealing
    stays in the inbox (its transaction rolls back) for the next sealer."""
    import signal

    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return  # it ended on its own (and is reaped now)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        # already reaped, by gunicorn's master (which reaps every child): its pid may be another
        # process's by now, so it is not signalled
        pass


def register_audit_hooks(app: Flask) -> None:
    interval = app.config["CASESVC"].audit_seal_interval
    if interval <= 0 or interval >= 1e8:  # sealing only on demand (tests, tools)
        return
    sealer = _Sealer(app, interval)
    app.before_request(sealer.ensure_running)
    app.extensions["casesvc.audit_sealer"] = sealer
