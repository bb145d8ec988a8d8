"""The connection a request's statements go on.

A read (GET or HEAD) whose session has not begun a transaction runs in autocommit: no BEGIN and
COMMIT round trips around its statements (each still sees committed data only), and its audit
event is durable the moment it is inserted. It takes one connection of the pool for that when it
starts (`open_for_read`, from the engine with autocommit as its isolation: no other connection,
no other pool) and gives it back when it ends (`close_for_read`). Its statements on the driver's
cursor (`casesvc.common.direct`) go on that connection directly (`request_connection`): the ORM
session's own bookkeeping, which costs a read more than the pool does, is spent only by a read
that uses the ORM, and its session goes on the same connection (`casesvc.extensions._Session`).
Any other request's statements go on its session's connection, in its transaction.
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
    if READ_CONNECTION not in request.environ:
        request.environ[READ_CONNECTION] = _autocommit_engine().connect()


def close_for_read() -> None:
    """The read's connection back to the pool, once its session (which may have used it) is done."""
    conn = request.environ.pop(READ_CONNECTION, None)
    if conn is not None:
        try:
            db.session.remove()
        finally:
            conn.close()


def request_connection() -> Connection:
    """The connection the current request's statements go on: a read's own, or the session's."""
    if not has_request_context():
        return db.session.connection()
    environ = request.environ
    conn = environ.get(READ_CONNECTION)
    if conn is not None:
        return conn
    # the session's, asked once per transaction (the session's own path to it costs a statement
    # more Python than the driver spends sending it); once the session commits or rolls back, that
    # connection is closed and the next statement asks the session again
    conn = environ.get(_SESSION_CONNECTION)
    if conn is None or conn.closed or not conn.in_transaction():
        conn = environ[_SESSION_CONNECTION] = db.session.connection()
    return conn
