"""The connection a request's statements go on.

A read (GET or HEAD) whose session has not begun a transaction runs in autocommit: no BEGIN and
COMMIT round trips around its statements (each still sees committed data only), and its audit
event is durable the moment it is inserted. It takes one connection of the pool for that when it
starts (`open_for_read`: one of the engine's own, no other pool) and gives it back when it ends
(`close_for_read`). On PostgreSQL the driver's connection is switched to autocommit and back
(psycopg's `autocommit`): SQLAlchemy's isolation-level machinery for the same, which resets
every characteristic on the way back to the pool, was 4–5 % of a single read's CPU; a
connection whose switch back fails is discarded, never pooled in autocommit. SQLite takes
SQLAlchemy's AUTOCOMMIT isolation level. `in_autocommit` tells the two apart from a write's.

Its statements on the driver's cursor (`casesvc.common.direct`) go on that connection directly
(`request_connection`): the ORM session's own bookkeeping, which costs a read more than the pool
does, is spent only by a read that uses the ORM, and its session goes on the same connection
(`casesvc.extensions._Session`). Any other request's statements go on its session's connection,
in its transaction. A read's connection lost under one of its statements is replaced for the
rest of the read (its audit event among them).

A write on PostgreSQL takes a connection of its own the same way (`open_for_write`), and its
transaction begins late (`LateTransaction`): the statements that only read (the caller, the case,
its consents) run in autocommit, as they would see the same committed rows at the start of a
transaction (READ COMMITTED: each statement its own snapshot, and a plain SELECT holds no lock);
the transaction begins before the first statement that changes anything or comes from the ORM
(which may lock), and commits with the request. A row
`casesvc.common.direct.insert_now` writes waits for the next statement that may read it, or
goes with the audit event's insert in one statement (`send_last`): a write that is one row and
its event (an event, a note) is then one statement, atomic on its own, with no BEGIN and no
COMMIT round trip (each cost about as much client CPU as the statement: bench/README.md). A
change `casesvc.common.direct.change_now` sends (the reminders an event settles) is held the same
way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, has_request_context, request
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from casesvc.extensions import READ_CONNECTION, db

_AUTOCOMMIT_ENGINE = "casesvc.autocommit_engine"
_SESSION_CONNECTION = "casesvc.session_connection"
_LATE = "casesvc.late_transaction"


def _autocommit_engine() -> Engine:
    engine = current_app.extensions.get(_AUTOCOMMIT_ENGINE)
    if engine is None:  # the app's engine, its pool and its listeners, in autocommit
        engine = current_app.extensions[_AUTOCOMMIT_ENGINE] = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def open_for_read() -> None:
    """The current read's own connection, in autocommit, until `close_for_read`."""
    if READ_CONNECTION in request.environ:
        return
    engine = db.engine
    if engine.dialect.name != "postgresql":
        request.environ[READ_CONNECTION] = _autocommit_engine().connect()
        return
    request.environ[READ_CONNECTION] = _driver_autocommit(engine)


def _driver_autocommit(engine: Engine) -> Connection:
    conn = engine.connect()
    try:
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    except BaseException:
        _discard(conn)
        raise
    return conn


def open_for_write() -> None:
    """The current write's own connection, its transaction begun late (`LateTransaction`), until
    `close_for_read`. On PostgreSQL; elsewhere the write goes on its session's connection, in a
    transaction from its first statement."""
    environ = request.environ
    if READ_CONNECTION in environ or db.engine.dialect.name != "postgresql":
        return
    conn = environ[READ_CONNECTION] = _driver_autocommit(db.engine)
    environ[_LATE] = LateTransaction(conn)


class LateTransaction:
    """A write's transaction, begun before the first statement that needs it (module docstring).
    `pending` holds the rows `insert_now`, and the changes `change_now`, have yet to send, as
    (statement, parameters, the table it writes)."""

    __slots__ = ("began", "conn", "pending")

    def __init__(self, conn: Connection):
        self.conn = conn
        self.began = False
        self.pending: list[tuple[Any, Mapping[str, Any], str]] = []

    def before(self, reads_only: bool, tables: frozenset[str]) -> None:
        """Called before each statement on the connection: a statement that only reads, and none
        of the tables a pending row goes to, runs as it is; any other begins the transaction,
        and the pending rows go first."""
        if self.began or (reads_only and not any(table in tables for _s, _v, table in self.pending)):
            return
        self.begin()

    def begin(self) -> None:
        """BEGIN with the next statement, in the request's session's transaction (which commits or
        rolls it back), the held rows first."""
        # the session owns the transaction that begins here (made now if the request had none:
        # rows held without one commit or roll back with it); bound first, so that if it fails
        # nothing is left begun without an owner
        db.session().connection()
        self.began = True
        self.conn.connection.dbapi_connection.autocommit = False  # type: ignore[union-attr]
        pending, self.pending = self.pending, []
        for statement, values, _table in pending:
            statement.run(self.conn, values)

    def ended(self) -> None:
        """The request's transaction ended (committed, or rolled back with the rows it had yet to
        send): what follows runs in autocommit again, as before it began (an error's audit event
        after a rollback is then durable on its own)."""
        self.pending.clear()
        if self.began and _idle(self.conn):
            self.conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            self.began = False


def _idle(conn: Connection) -> bool:
    """Whether `conn`'s driver connection is in no transaction (and alive)."""
    if conn.invalidated or conn.closed:
        return False
    # the driver's own figure (an int): its `info.transaction_status` makes an enum of it each time
    return conn.connection.dbapi_connection.pgconn.transaction_status == TransactionStatus.IDLE  # type: ignore[union-attr]


def late_transaction(conn: Connection) -> LateTransaction | None:
    """The late transaction of the current request's connection, if `conn` is that connection."""
    if not has_request_context():
        return None
    late = request.environ.get(_LATE)
    return late if late is not None and late.conn is conn else None


def _request_late(session: Session) -> LateTransaction | None:
    """The request's late transaction, when `session` is the request's own (not one a service
    opened beside it on a connection of its own, as an Idempotency-Key's reservation)."""
    if not has_request_context() or not db.session.registry.has() or session is not db.session():
        return None
    return request.environ.get(_LATE)


def register_late_transactions(engine: Engine) -> None:
    """A statement that is not the driver's cursor's (`casesvc.common.direct`, which asks
    `LateTransaction.before` itself) begins the late transaction: the ORM's and any other; the
    session's commit sends the rows still pending (in that transaction), and its end without a
    commit drops them."""

    def _statement(conn, cursor, statement, parameters, context, executemany):
        if context is not None:  # the driver's cursor statements have none
            late = late_transaction(conn)
            if late is not None and not late.began:
                late.begin()

    event.listen(engine, "before_cursor_execute", _statement, insert=True)
    _on_session("before_commit", _before_commit)
    _on_session("after_transaction_end", _transaction_ended)


def _on_session(name: str, listener: Callable) -> None:
    if not event.contains(Session, name, listener):
        event.listen(Session, name, listener)


def _before_commit(session: Session) -> None:
    late = _request_late(session)
    if late is not None and late.pending:
        late.begin()


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        late = _request_late(session)
        if late is not None:
            late.ended()


def existing_session(session: Session | scoped_session[Any]) -> Session | None:
    """`session` itself, or for the app's scoped session the current one if it has been made: a
    write that goes on the driver's cursor alone (an event, a note) never makes one, and making
    it, beginning it and removing it cost that write a tenth of its Python (bench/README.md)."""
    if isinstance(session, scoped_session):
        return session() if session.registry.has() else None
    return session


def has_changes(session: Session | None) -> bool:
    """Whether `session` (None: none made) holds ORM changes a flush would send."""
    return session is not None and bool(session.new or session.dirty or session.deleted)


def _current_late() -> LateTransaction | None:
    return request.environ.get(_LATE) if has_request_context() else None


def commit_request() -> None:
    """Commit the request's session, as `db.session.commit()` — unless its write went in one
    statement on its own and nothing is left: a late transaction that never began, nothing held,
    nothing changed in the session (or no session made at all). That statement committed when it
    ran; the commit's bookkeeping (a tenth of a `POST …/events`) would find nothing to do."""
    late = _current_late()
    nothing_left = late is not None and not late.began and not late.pending
    if nothing_left and not has_changes(existing_session(db.session)):
        return
    db.session.commit()


def rollback_request() -> None:
    """Undo the request's work, as `db.session.rollback()`: the session's, and the rows and changes
    a write's late transaction still holds. Rows held while the request had no session (or a
    session in no transaction) have no session transaction whose end drops them; they are dropped
    here, so no later statement of the request (an error's audit event) takes them along."""
    try:
        if db.session.registry.has():
            db.session.rollback()
    finally:
        late = _current_late()
        if late is not None:
            late.ended()


def close_for_read() -> None:
    """The read's connection back to the pool, once its session (which may have used it) is done."""
    environ = request.environ
    conn = environ.pop(READ_CONNECTION, None)
    late = environ.pop(_LATE, None)
    if conn is None:
        return
    try:
        if db.session.registry.has():  # a read that made no session has none to remove
            db.session.remove()
    finally:
        if _switched_by_driver(conn):
            try:
                dbapi_connection = conn.connection.dbapi_connection
                if late is not None and late.began and not _idle(conn):
                    # a write whose session did not end the transaction begun on it: nothing of it
                    # was answered as done (the session commits before the answer), so it is undone
                    dbapi_connection.rollback()
                dbapi_connection.autocommit = False
            except BaseException:
                _discard(conn)  # never back to the pool in autocommit: a write there would not be one transaction
                raise
        conn.close()


def _switched_by_driver(conn: Connection) -> bool:
    """Whether `conn`'s autocommit is psycopg's switch (PostgreSQL, a live connection) rather than
    SQLAlchemy's isolation level."""
    return conn.dialect.name == "postgresql" and not (conn.invalidated or conn.closed)


def _discard(conn: Connection) -> None:
    conn.invalidate()
    conn.close()


def in_autocommit(conn: Connection) -> bool:
    """Whether `conn`'s statements each commit on their own (a read's connection), rather than in
    a transaction of the request's."""
    if _switched_by_driver(conn):
        return bool(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def request_connection() -> Connection:
    """The connection the current request's statements go on: a read's own, or the session's."""
    if not has_request_context():
        return db.session.connection()
    environ = request.environ
    conn = environ.get(READ_CONNECTION)
    if conn is not None:
        if conn.invalidated:
            # lost under one of the read's statements: the rest (its audit event among them) goes on
            # a new connection in autocommit, not on one SQLAlchemy would make anew in a transaction
            # no one commits
            environ.pop(READ_CONNECTION).close()
            open_for_read()
            conn = environ[READ_CONNECTION]
        return conn
    # the session's, asked once per transaction (the session's own path to it costs a statement
    # more Python than the driver spends sending it); once the session commits or rolls back, that
    # connection is closed and the next statement asks the session again
    conn = environ.get(_SESSION_CONNECTION)
    if conn is None or conn.closed or not conn.in_transaction():
        conn = environ[_SESSION_CONNECTION] = db.session.connection()
    return conn
