"""Column types and mixins shared by the models; identical on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, String, bindparam, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from casesvc.common.timeutil import utcnow


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite keeps no zone), always returned aware in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class _TextList(TypeDecorator):
    """A list of strings as one bind parameter: an array on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


class _InList(ColumnElement[bool]):
    """`column IN (the strings of one bind parameter)`. `Column.in_` over a list expands the
    parameter when the statement is executed (a placeholder per value), so its SQL changes with
    the list's length and cannot be compiled once; here the SQL is fixed: `column = ANY(CAST(:p AS TEXT[]))` on
    PostgreSQL (an index on `column` still serves it), `column IN (SELECT value FROM
    json_each(:p))` on SQLite."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration: the cache key)
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column, name: str):
        self.column = column
        self.values = bindparam(name, type_=_TextList())


def in_list(column, name: str) -> ColumnElement[bool]:
    """`column` is one of the strings given as the list parameter `name`, in SQL compiled once
    whatever the list's length (common/direct.py sends such statements)."""
    return _InList(column, name)


@compiles(_InList)
def _in_list_sqlite(element, compiler, **kw):
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"  # noqa: S608 (compiled SQL, no value)


@compiles(_InList, "postgresql")
def _in_list_pg(element, compiler, **kw):
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY(CAST({values} AS TEXT[]))"


def state_digest(*values) -> str:
    """An ETag value for a row without a version column: a digest of what can change in it, so
    a change made after the caller's read still shows (412 on a stale If-Match)."""
    state = json.dumps(values, separators=(",", ":"), default=str)
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def new_id() -> str:
    return str(uuid.uuid4())


class IdMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)


class CreatedMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # pragma: no cover - wiring
    """SQLite enforces foreign keys (and so cascades) only when asked, per connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
