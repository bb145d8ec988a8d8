"""Statements of the request's hot path, sent on the driver's own cursor.

Reads are most of the traffic, and each one costs the caller's statement and the audit event's
insert. Through `Session.execute` each such statement spends more CPU in SQLAlchemy's execution
path (the execution context, the result object, the column descriptions) than PostgreSQL spends
answering it. A `DirectStatement` is a Core statement compiled once per dialect and sent on the
session's own connection, in the session's transaction, through the DBAPI cursor:

- the values go through the column types' own bind and result processors (`TypeEngine.
  bind_processor`, `result_processor`), so a row holds what `Session.execute` would give;
- the engine's `before_cursor_execute` and `after_cursor_execute` listeners are called as for
  any statement: the statement's deadline (`casesvc.ops.database.Watchdog`) is armed and
  disarmed, and the statement counts in `tests/access/test_query_counts.py` see it;
- on PostgreSQL it is compiled with PostgreSQL's own numbered placeholders and sent on a raw
  cursor, which psycopg does not rewrite (`_numbered`);
- a driver error becomes SQLAlchemy's (`DBAPIError.instance`, hiding parameters), and a lost
  connection is invalidated, so it answers 503 like any other statement's failure.

A statement with parameters expanded at execution (`IN` over a list) is not supported: it is
refused when compiled.

On a write's own connection (`casesvc.common.connection.LateTransaction`) a statement that only
reads runs before the transaction begins; `insert_now` holds its row (and `change_now` its UPDATE)
until a statement may read its table, and `send_last` sends the request's last statement with
what is still held, as one."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any, cast

from psycopg import RawCursor
from sqlalchemy import ColumnDefault, Insert, Select, Table, bindparam, insert, inspect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, make_transient_to_detached, scoped_session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.util import find_tables

from casesvc.common.connection import existing_session, has_changes, late_transaction

Processor = Callable[[Any], Any]
# a DBAPI connection's cursors, one per statement, kept in its pool record's `info` (which the pool
# clears when it replaces the connection): run again, a statement reuses the cursor's adapters for
# its parameters and columns instead of looking each up anew (psycopg keeps them per cursor while
# the statement is the same; a tenth of a single read's Python, bench/README.md). Each holds its
# last result until it runs again: at most the statements a process sends, per pooled connection.
_CURSORS = "casesvc.direct_cursors"


class _Compiled:
    """One statement for one dialect: its SQL, how its parameters are given, the processors."""

    __slots__ = ("binds", "defaults", "names", "query", "raw", "reads_only", "results", "sql", "tables")

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: list[str] | None):
        # psycopg: PostgreSQL's own `$1` placeholders, sent as they are on a raw cursor
        self.raw = dialect.name == "postgresql" and dialect.driver == "psycopg"
        compiled = cast(
            SQLCompiler, statement.compile(dialect=_numbered(dialect) if self.raw else dialect, column_keys=column_keys)
        )
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a statement with parameters expanded at execution cannot be sent directly")
        self.sql = compiled.string
        self.query: str | bytes = self.sql.encode() if self.raw else self.sql
        # a SELECT that changes nothing (no INSERT in a CTE) and locks nothing may run before a
        # write's transaction begins; what it reads decides whether rows held back go first
        self.reads_only = (
            isinstance(statement, Select)
            and statement._for_update_arg is None
            and not any(getattr(cte.element, "is_dml", False) for cte in compiled.ctes or ())
        )
        self.tables = frozenset(table.name for table in find_tables(statement, include_crud=True))
        self.names: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.defaults = {name: bp.value for name, bp in compiled.binds.items() if not bp.required}
        self.binds: dict[str, Processor] = {}
        for name, bp in compiled.binds.items():
            processor = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds[name] = processor
        columns = getattr(statement, "selected_columns", ())
        self.results: tuple[tuple[int, Processor], ...] = tuple(
            (i, processor)
            for i, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        )

    def arguments(self, params: Mapping[str, Any]):
        values = {**self.defaults, **params} if self.defaults else dict(params)
        for name, processor in self.binds.items():
            if name in values:
                values[name] = processor(values[name])
        return values if self.names is None else [values[name] for name in self.names]

    def processed(self, rows: list) -> list:
        if not self.results:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i, processor in self.results:
                values[i] = processor(values[i])
            out.append(tuple(values))
        return out


def _numbered(dialect: Dialect) -> Dialect:
    """The psycopg dialect, compiling `$1, $2 …` (each parameter numbered once, however often it is
    used) instead of `%(name)s`. Given `%(name)s`, psycopg rewrites a statement into that form at
    every execution, and keeps the rewriting only for one of up to 4 KB: a write's statement with
    its held rows and its audit event is longer (a tenth of a `POST …/events`, bench/README.md).
    A `psycopg.RawCursor` takes the numbered form and the values in order as they are."""
    numbered = copy.copy(dialect)
    numbered.paramstyle = "numeric_dollar"
    numbered.positional = True
    # the preparer escapes a literal `%` for the paramstyle it was made for: made anew for this one
    numbered.identifier_preparer = numbered.preparer(numbered)
    return numbered


class DirectStatement:
    """A Core statement (a SELECT, an UPDATE, or an INSERT compiled for `column_keys`) sent on a
    connection's driver cursor. Build one at import time; it compiles on first use per dialect."""

    def __init__(self, statement: ClauseElement, column_keys: list[str] | None = None):
        self.statement = statement
        self.column_keys = column_keys
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect, self.column_keys)
        return compiled

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        """The statement's rows, as plain tuples in the order of its columns."""
        compiled = self._for(conn.dialect)
        return compiled.processed(_send(conn, compiled, params, fetch=True))

    def run(self, conn: Connection, params: Mapping[str, Any], last: bool = False) -> None:
        """`last`: the request's last statement (`send_last`), which begins no late transaction."""
        _send(conn, self._for(conn.dialect), params, fetch=False, last=last)


def _send(conn: Connection, compiled: _Compiled, params: Mapping[str, Any], fetch: bool, last: bool = False) -> list:
    if not last:
        late = late_transaction(conn)
        if late is not None:
            late.before(compiled.reads_only, compiled.tables)
    dialect = conn.dialect
    fairy = conn.connection
    dbapi_connection = fairy.dbapi_connection
    arguments = compiled.arguments(params)
    cursors = fairy.info.get(_CURSORS)
    if cursors is None:
        cursors = fairy.info[_CURSORS] = {}
    sql = compiled.sql
    cursor = cursors.pop(sql, None)
    if cursor is None:
        cursor = RawCursor(dbapi_connection) if compiled.raw else dbapi_connection.cursor()  # type: ignore[call-overload,union-attr]
    dispatch = conn.dispatch
    try:
        for listener in dispatch.before_cursor_execute:
            listener(conn, cursor, sql, arguments, None, False)
        cursor.execute(compiled.query, arguments)
        rows = cast(list, cursor.fetchall()) if fetch else []
        cursors[sql] = cursor  # kept only after a statement that succeeded
        return rows
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            compiled.sql,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=lost,
        ) from exc
    finally:
        # sent on failure too: the watchdog's deadline for this statement is over either way
        for listener in dispatch.after_cursor_execute:
            listener(conn, cursor, sql, arguments, None, False)
        if cursors.get(sql) is not cursor:
            cursor.close()


@functools.cache
def _table_insert(table: Table) -> DirectStatement:
    return DirectStatement(table.insert(), column_keys=[column.key for column in table.columns])


def insert_now(session: Session | scoped_session[Any], instance: Any, connection: Connection | None = None) -> None:
    """INSERT a new mapped instance at once, in the session's transaction, as `session.add` and
    `session.flush()` would, without the unit of work (which costs a write more CPU than the
    statement: a fifth of a `POST …/events`). For a table of its own (no inheritance) whose
    defaults are Python values or functions (`default=`), not SQL: they are filled in here, the
    row goes on the driver's cursor (`DirectStatement`), and the instance joins the session as
    persistent, as if it had been loaded — if the request has made a session; otherwise it stays
    detached, every column loaded (a write on the driver's cursor alone makes none). Anything
    already pending is flushed first, so a row this one refers to is in the database before it.

    One difference from a flush remains: a rollback does not take the instance out of the session
    (a flushed new object is expunged and keeps its values); it stays, expired, and reading it
    after the rollback fails. The callers (`followups.service`) do not touch it after a failure:
    the request answers with the error.

    `connection`, when given, is the session's own (a request's, as `casesvc.common.connection`
    keeps it): asking the session for it again costs more than the insert's Python."""
    mapper = inspect(instance).mapper
    table = mapper.local_table
    if mapper.inherits is not None or not isinstance(table, Table):
        raise ValueError(f"{mapper.class_.__name__}: only a mapper of one table is inserted directly")
    state = instance.__dict__
    values = {}
    for column in table.columns:
        key = mapper.get_property_by_column(column).key
        value = state.get(key)
        default = column.default
        if value is None and default is not None:
            if not isinstance(default, ColumnDefault) or default.is_clause_element or default.is_sequence:
                raise ValueError(f"{table.name}.{column.key}: a default computed in SQL cannot be filled in here")
            value = default.arg(None) if default.is_callable else default.arg
            setattr(instance, key, value)
        elif value is None and (column.server_default is not None or column is table.autoincrement_column):
            raise ValueError(f"{table.name}.{column.key}: a value the database makes cannot be filled in here")
        elif key not in state:
            setattr(instance, key, value)  # sent as NULL: known, not expired (no SELECT to read it)
        values[column.key] = value
    conn = connection if connection is not None else session.connection()
    _send_or_hold(session, conn, _table_insert(table), values)
    make_transient_to_detached(instance)
    own = existing_session(session)
    if own is not None:  # a request that made no session has no other use of the instance to share it with
        own.add(instance)


def change_now(
    session: Session | scoped_session[Any],
    statement: DirectStatement,
    params: Mapping[str, Any],
    connection: Connection,
) -> None:
    """Send a change that returns nothing (an UPDATE of one table, its parameters named by the
    caller) in the session's transaction, as `insert_now` sends a row: held as that row is on a
    write whose transaction has not begun, so it may go in the request's last statement (a CTE of
    it) instead of a round trip of its own. Rows of its table the session holds are not refreshed:
    for rows the request has not loaded. Changes held together run on one snapshot: each must
    change rows the others do not (PostgreSQL refuses two changes to one row in a statement).
    Their parameters may share a name only for the same value, and none may take a name of the
    audit insert's columns (refused when the combined statement is built)."""
    late = late_transaction(connection)
    if late is not None and not late.began:
        tables = statement._for(connection.dialect).tables
        if any(
            # held once only: its parameters keep their names in the combined statement
            held is statement
            # a held row it could read would be invisible to it on the combined statement's snapshot
            or (_is_row_insert(held) and table in tables)
            for held, _v, table in late.pending
        ):
            late.begin()
    _send_or_hold(session, connection, statement, params)


def _send_or_hold(session, conn: Connection, statement: DirectStatement, params: Mapping[str, Any]) -> None:
    """Anything the session has pending is flushed first, so a row this one refers to, or this
    change touches, is in the database before it."""
    own = existing_session(session)
    if has_changes(own):
        own.flush()  # type: ignore[union-attr]
    late = late_transaction(conn)
    if late is not None and not late.began:
        # held until a statement may read the table, the commit, or the request's last statement
        # (`send_last`); dropped if the request rolls back (`rollback_request`), and by the end of a
        # session's transaction that did not commit, begun here for a session already made
        if own is not None and not own.in_transaction():
            own.begin()
        late.pending.append((statement, params, cast(Any, statement.statement).table.name))
    else:
        statement.run(conn, params)


def send_last(conn: Connection, statement: DirectStatement, params: Mapping[str, Any]) -> None:
    """Send the request's last statement (its audit event's insert). On a write's own connection
    whose transaction has not begun, the rows and changes held go in the same statement (one
    statement: atomic, no BEGIN or COMMIT); in a transaction, it is sent as any other."""
    late = late_transaction(conn)
    if late is None or late.began or not late.pending:
        # alone, in autocommit when nothing began: nothing else is left to commit with it
        statement.run(conn, params, last=late is not None and not late.began)
        return
    held, late.pending = late.pending, []
    combined, prefixes = _with_held(statement, held)
    arguments = dict(params)
    for prefix, (_held_statement, values, _table) in zip(prefixes, held, strict=True):
        arguments.update({f"{prefix}{key}": value for key, value in values.items()} if prefix else values)
    combined.run(conn, arguments, last=True)


_COMBINED: dict[tuple, tuple[DirectStatement, tuple[str, ...]]] = {}


def _with_held(statement: DirectStatement, held: list) -> tuple[DirectStatement, tuple[str, ...]]:
    """`statement` (an INSERT of its `column_keys`) with each held row's INSERT, or held change,
    in a CTE before it, and the prefix each one's parameters take there; one per combination of
    held statements, compiled once. (PostgreSQL runs every data-modifying CTE once, on the
    statement's one snapshot, whether or not anything reads it.) Each INSERT names its own values:
    compiled for column keys, a statement would give them to every INSERT and UPDATE in it whose
    table has such a column."""
    cache_key = (id(statement), *(id(held_statement) for held_statement, _v, _t in held))
    combined = _COMBINED.get(cache_key)
    if combined is None:
        outer = _with_values(statement, "")
        prefixes = []
        taken = set(statement.column_keys or ())
        for i, (held_statement, _values, _table) in enumerate(held):
            # a change's parameters are named by its caller, and it is held once (`change_now`)
            prefix = f"held{i}_" if _is_row_insert(held_statement) else ""
            if not prefix and (clash := taken & _parameter_names(held_statement)):
                raise ValueError(f"a held change's parameters {sorted(clash)} are the last statement's own")
            prefixes.append(prefix)
            outer = outer.add_cte(_with_values(held_statement, prefix).cte(f"held{i}"))
        combined = _COMBINED[cache_key] = (DirectStatement(outer), tuple(prefixes))
    return combined


def _parameter_names(statement: DirectStatement) -> set[str]:
    compiled = cast(SQLCompiler, statement.statement.compile())
    return {bind.key for bind in compiled.binds.values() if bind.required}


def _is_row_insert(statement: DirectStatement) -> bool:
    return isinstance(statement.statement, Insert) and statement.column_keys is not None


def _with_values(statement: DirectStatement, prefix: str) -> Any:
    """An INSERT of `column_keys` as one with its values named (`prefix` + key); any other as it is."""
    if not _is_row_insert(statement):
        return statement.statement
    table = cast(Any, statement.statement).table
    return insert(table).values(
        {key: bindparam(f"{prefix}{key}", type_=table.c[key].type) for key in statement.column_keys or ()}
    )
