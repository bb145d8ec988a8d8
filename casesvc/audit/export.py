"""Streaming the sealed chain: events in seq order, and the export (JSONL or CSV) with the chain
fields, so that it verifies offline. Memory stays flat whatever the size of the log: COPY on
PostgreSQL (parsed by `copy_text.py`), a server-side cursor elsewhere, a bounded batch at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, select

from casesvc.audit import csvsafe
from casesvc.audit.copy_text import EXPORT_FIELDS, PG_CSV_FIELDS, JsonLines, TextRows
from casesvc.audit.models import AuditEvent
from casesvc.audit.sealing import chain_time, seal
from casesvc.extensions import db

if TYPE_CHECKING:
    import psycopg

STREAM_BATCH = 5000
_COLUMNS = [getattr(AuditEvent, name) for name in EXPORT_FIELDS]


def _as_event(row) -> dict:
    event = dict(zip(EXPORT_FIELDS, row, strict=True))
    event["at"] = chain_time(event["at"])
    return event


def _pg_range(from_seq: int | None, to_seq: int | None) -> str:
    clauses = [f"seq >= {int(from_seq)}"] if from_seq is not None else []
    if to_seq is not None:
        clauses.append(f"seq <= {int(to_seq)}")
    return " AND ".join(clauses) or "TRUE"


def on_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def _pg_copy(sql: str) -> Iterator[bytes | bytearray | memoryview]:
    """The rows of `COPY (...) TO STDOUT` as PostgreSQL sends them, on a connection of their own."""
    with db.engine.connect() as conn:
        raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            yield from copy


def pg_lines(rows: TextRows, where: str) -> Iterator[str]:
    """The rows in seq order as str, without the newline."""
    copy = f"COPY (SELECT {rows.select} FROM audit_events WHERE {where} ORDER BY seq) TO STDOUT"  # noqa: S608 (fixed SQL)
    for data in _pg_copy(copy):
        yield str(data, "utf-8")[:-1]


def _chunks(pieces: Iterator[str]) -> Iterator[str]:
    """Pieces joined into chunks of about 64 K characters."""
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= 1 << 16:
            yield "".join(buffer)
            buffer.clear()
            size = 0
    if buffer:
        yield "".join(buffer)


_JSON_LINES = JsonLines()


def _pg_json_lines(from_seq: int, to_seq: int | None) -> Iterator[str]:
    sql = (
        f"COPY (SELECT {_JSON_LINES.select} FROM audit_events WHERE {_pg_range(from_seq, to_seq)} "  # noqa: S608 (int bounds)
        "ORDER BY seq) TO STDOUT WITH (NULL 'null')"
    )
    buffer: list[bytes | bytearray | memoryview] = []
    for data in _pg_copy(sql):
        buffer.append(data)
        if len(buffer) >= 500:
            yield _JSON_LINES.block(b"".join(buffer))
            buffer.clear()
    if buffer:
        yield _JSON_LINES.block(b"".join(buffer))


def _pg_csv(from_seq: int, to_seq: int | None) -> Iterator[str]:
    sql = (
        f"COPY (SELECT {PG_CSV_FIELDS} FROM audit_events WHERE {_pg_range(from_seq, to_seq)} ORDER BY seq) "  # noqa: S608 (ints)
        "TO STDOUT WITH (FORMAT csv, HEADER true)"
    )
    return _chunks(str(data, "utf-8") for data in _pg_copy(sql))


def stream_events(from_seq: int | None = None, to_seq: int | None = None) -> Iterator[dict]:
    """Sealed events in seq order (all of them, by default: a row below seq 1 is no less
    there), one at a time, on a connection of their own."""
    stmt = select(*_COLUMNS).order_by(AuditEvent.seq)
    if from_seq is not None:
        stmt = stmt.where(AuditEvent.seq >= from_seq)
    if to_seq is not None:
        stmt = stmt.where(AuditEvent.seq <= to_seq)
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(stmt)
        for row in result:
            yield _as_event(row)


def seq_range(start: datetime | None, end: datetime | None) -> tuple[int, int] | None:
    """The contiguous stretch of the chain from the first event at or after `start` to the last
    before `end` (an export is verifiable only as an unbroken stretch)."""
    seal(wait=True)
    low = select(func.min(AuditEvent.seq))
    high = select(func.max(AuditEvent.seq))
    if start is not None:
        low, high = low.where(AuditEvent.at >= start), high.where(AuditEvent.at >= start)
    if end is not None:
        low, high = low.where(AuditEvent.at < end), high.where(AuditEvent.at < end)
    first, last = db.session.scalar(low), db.session.scalar(high)
    db.session.rollback()
    return None if first is None or last is None else (first, last)


def export_lines(start: datetime | None, end: datetime | None, fmt: str) -> Iterator[str]:
    """JSONL (one event per line) or CSV (a header, then one row per event; `ids` as JSON)."""
    span = seq_range(start, end)
    if span and on_postgresql():
        yield from _pg_json_lines(*span) if fmt == "jsonl" else _pg_csv(*span)
        return
    events: Iterable[dict] = stream_events(*span) if span else iter(())
    if fmt == "jsonl":
        for event in events:
            yield json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # the csv module quotes a field with a line feed but not one with a lone carriage return
    quoting_all = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(EXPORT_FIELDS)
    for event in events:
        row = [
            "" if event[f] is None else json.dumps(event[f]) if f == "ids" else csvsafe.cell(event[f])
            for f in EXPORT_FIELDS
        ]
        (quoting_all if any(isinstance(v, str) and "\r" in v for v in row) else writer).writerow(row)
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
