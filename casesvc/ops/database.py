"""Bounded waits on the database (README "Operations": waits and outages).

Every wait has a limit, each a setting: opening a connection (`connect_timeout`), a statement on
a live server (`statement_timeout`, enforced by PostgreSQL), a transaction left idle
(`idle_in_transaction_session_timeout`), a connection from the pool (`pool_timeout`). A pooled
connection that sat idle is pinged before use (`_ping_when_idle`): one the server dropped while
it waited is replaced before a request meets it.

A server that stops answering altogether — stopped, or cut off behind a proxy that keeps the
socket open — enforces nothing. For that, the `Watchdog` gives each statement and commit of a
request a client-side deadline a little beyond `statement_timeout`: when it passes, the
connection's socket is shut down, the driver reports the connection lost, the pool discards it,
and the request answers 503 instead of hanging. `/readyz` asks with its own short timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref

import orjson
from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from casesvc.extensions import db

log = logging.getLogger(__name__)

WATCHDOG_GRACE = 2.0  # seconds beyond statement_timeout: PostgreSQL's own timeout answers first


def engine_options(settings) -> dict:
    if settings.database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    options = []
    if settings.db_statement_timeout:
        options.append(f"-c statement_timeout={int(settings.db_statement_timeout * 1000)}")
    if settings.db_idle_in_transaction_timeout:
        options.append(f"-c idle_in_transaction_session_timeout={int(settings.db_idle_in_transaction_timeout * 1000)}")
    connect_args: dict = {"connect_timeout": settings.db_connect_timeout}
    if options:
        connect_args["options"] = " ".join(options)
    # `hide_parameters`: a statement's values (names, notes) never enter an error message or a log line;
    # `json_deserializer`: a JSON column is read by orjson (a tenth of the standard library's time on the
    # caller's statement of every request); casesvc's JSON columns hold lists of strings (an agency's
    # municipalities, an event's ids), which both read alike (orjson would read an integer beyond 64 bits
    # as a float); `pool_use_lifo`: a request takes the connection given back last, whose backend is
    # warm (in the CPU's caches), rather than each in turn (a read's PostgreSQL time fell by a tenth,
    # bench/README.md); the others idle, and one idle longer than CASESVC_DB_PING_AFTER_IDLE is pinged
    return {
        "hide_parameters": True,
        "json_deserializer": orjson.loads,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_recycle": settings.db_pool_recycle,
        "pool_use_lifo": True,
        "connect_args": connect_args,
    }


class Watchdog:
    """Client-side deadlines for statements, checked by one thread per process."""

    def __init__(self, seconds: float, interval: float = 0.25):
        self.seconds = seconds
        self.interval = interval
        self._deadlines: dict[int, tuple[float, object]] = {}
        self._running = False
        self._lock = threading.Lock()
        _WATCHDOGS.add(self)

    def arm(self, dbapi_connection) -> None:
        if not self._running:
            self._start()
        self._deadlines[id(dbapi_connection)] = (time.monotonic() + self.seconds, dbapi_connection)

    def disarm(self, dbapi_connection) -> None:
        self._deadlines.pop(id(dbapi_connection), None)

    def _forked(self) -> None:
        self._running = False
        self._lock = threading.Lock()  # the parent's may have been held by another of its threads
        self._deadlines = {}

    def _start(self) -> None:
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="casesvc-db-watchdog", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            now = time.monotonic()
            for key, (deadline, connection) in list(self._deadlines.items()):
                if deadline <= now and self._deadlines.get(key, (None,))[0] == deadline:
                    self._deadlines.pop(key, None)
                    _cut(connection)


# A forked worker starts its own watchdog thread (the parent's is not in the child): told by the
# fork itself rather than by asking the process id before every statement.
_WATCHDOGS: weakref.WeakSet[Watchdog] = weakref.WeakSet()


def _after_fork() -> None:
    for watchdog in list(_WATCHDOGS):
        watchdog._forked()


os.register_at_fork(after_in_child=_after_fork)


def _cut(dbapi_connection) -> None:
    """Shut the connection's socket down: the blocked driver call returns with an error."""
    try:
        fd = dbapi_connection.fileno()
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        log.warning("database did not answer within its deadline; the connection was cut")
    except Exception as exc:  # noqa: BLE001 (already closed; the driver says so in its own error, psycopg's
        # OperationalError among them): pass it over, and the watchdog goes on with the others
        log.info("database connection could not be cut: %s", exc.__class__.__name__)


def install(app: Flask, engine: Engine) -> None:
    """For a PostgreSQL engine: a ping before reusing a connection that sat idle, and deadlines
    for statements and commits (none when `statement_timeout` is off, as for the command
    line's long jobs)."""
    settings = app.config["CASESVC"]
    if engine.dialect.name != "postgresql":
        return
    if not settings.db_statement_timeout:
        _ping_when_idle(engine, settings.db_ping_after_idle, None)
        return
    watchdog = Watchdog(settings.db_statement_timeout + WATCHDOG_GRACE)
    app.extensions["casesvc.db_watchdog"] = watchdog
    _ping_when_idle(engine, settings.db_ping_after_idle, watchdog)

    def arm(conn, *args):
        dbapi_connection = _watched(conn)
        if dbapi_connection is not None:
            watchdog.arm(dbapi_connection)

    def disarm(conn, *args):
        dbapi_connection = _watched(conn)
        if dbapi_connection is not None:
            watchdog.disarm(dbapi_connection)

    event.listen(engine, "before_cursor_execute", arm)
    event.listen(engine, "after_cursor_execute", disarm)
    event.listen(engine, "commit", arm)
    event.listen(engine, "rollback", arm)
    event.listen(engine, "handle_error", lambda context: disarm(context.connection) if context.connection else None)
    event.listen(engine.pool, "checkin", lambda dbapi_connection, record: watchdog.disarm(dbapi_connection))


def _watched(conn):
    """The driver connection under `conn`, or None when it has none: a connection found lost
    (invalidated) is rolled back without a word to the server, so there is nothing to watch.
    Asking `conn.connection` then would raise, from inside that rollback, an error that hides
    the lost connection (a 500 instead of the 503), or open a new connection just to watch it."""
    if conn.invalidated or conn.closed:
        return None
    return conn.connection.dbapi_connection


def _ping_when_idle(engine: Engine, idle_seconds: float, watchdog: Watchdog | None) -> None:
    """Before a pooled connection that sat idle longer than `idle_seconds` is handed out, ask it
    `SELECT 1`; a dead one (the server restarted meanwhile) is discarded and the pool hands out
    another, so no request meets it. A connection in steady use is not pinged: a ping on every
    checkout would cost a round trip per request. If the server restarts under load, the few
    requests that meet a dropped connection answer 503 with Retry-After, and SQLAlchemy renews
    the whole pool. `idle_seconds` 0 pings every checkout. The ping has the statements' deadline
    (`watchdog`): a server that keeps still does not hold the request past it."""

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info["casesvc.idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        since = record.info.get("casesvc.idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        if watchdog is not None:
            watchdog.arm(dbapi_connection)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool retries with a fresh connection
            raise DisconnectionError("a pooled connection was found dead") from exc
        finally:
            if watchdog is not None:
                watchdog.disarm(dbapi_connection)


class Readiness:
    """`SELECT 1` within `readyz_timeout`, asked on a thread of its own so that a server that does
    not answer makes /readyz say 503 at once rather than hang with it. While one check is still
    waiting, the next answer is "not ready" without starting another."""

    def __init__(self, app: Flask):
        self.app = app
        self.timeout = app.config["CASESVC"].readyz_timeout
        self._waiting = threading.Event()

    def ready(self) -> bool:
        if self._waiting.is_set():
            return False
        result: list[bool] = []
        self._waiting.set()
        thread = threading.Thread(target=self._check, args=(result,), name="casesvc-readyz", daemon=True)
        thread.start()
        thread.join(self.timeout)
        return bool(result and result[0])

    def _check(self, result: list[bool]) -> None:
        try:
            with self.app.app_context():
                with db.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                result.append(True)
        except Exception:  # noqa: BLE001 (any failure to reach the database means not ready)
            result.append(False)
        finally:
            self._waiting.clear()
