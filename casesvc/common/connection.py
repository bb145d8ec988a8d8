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
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from sqlalchemy.engine import Connection, Engine

from casesvc.extensions import READ_CONNECTION, db

_AUTOCOMMIT_ENGINE = "casesvc.autocommit_engine"
_SESSION_CONNECTION = "casesvc.session_connection"


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
    conn = engine.connect()
    try:
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    except BaseException:
        _discard(conn)
        raise
    request.environ[READ_CONNECTION] = conn


def close_for_read() -> None:
    """The read's connection back to the pool, once its session (which may have used it) is done."""
    conn = request.environ.pop(READ_CONNECTION, None)
    if conn is None:
        return
    try:
        db.session.remove()
    finally:
        if _switched_by_driver(conn):
            try:
                conn.connection.dbapi_connection.autocommit = False
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
