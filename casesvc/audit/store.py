"""Reading the sealed chain: head, verification, streaming export, signed checkpoints.

Everything here streams rows (COPY on PostgreSQL, a server-side cursor elsewhere) and holds
a bounded batch at a time, so memory stays flat whatever the size of the log.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from datetime import datetime
from typing import Iterable, Iterator

from sqlalchemy import func, select

from casesvc.audit import chain
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.audit.service import chain_time, seal
from casesvc.extensions import db

STREAM_BATCH = 5000
EXPORT_FIELDS = (*chain.EVENT_FIELDS, "hash")
# what an export must hold to verify: an export made before `basis` existed has no such column
REQUIRED_EXPORT_FIELDS = (*chain.CHAINED_FIELDS, "hash")
_COLUMNS = [getattr(AuditEvent, name) for name in EXPORT_FIELDS]


def head() -> dict:
    seal()
    row = db.session.execute(select(AuditEvent.seq, AuditEvent.hash, AuditEvent.at)
                             .order_by(AuditEvent.seq.desc()).limit(1)).first()
    unsealed = db.session.scalar(select(func.count()).select_from(AuditInbox))
    if row is None:
        return {"seq": 0, "hash": chain.GENESIS, "at": None, "unsealed": unsealed}
    return {"seq": row.seq, "hash": row.hash, "at": chain_time(row.at), "unsealed": unsealed}


def _as_event(row) -> dict:
    event = dict(zip(EXPORT_FIELDS, row))
    event["at"] = chain_time(event["at"])
    return event


# --- PostgreSQL: rows streamed by COPY ---------------------------------------------------------
# SQLAlchemy's per-row processing, cursor round trips and strftime cost more than hashing. COPY
# streams the rows as text while Python works, and PostgreSQL does what it can in its own
# process: it formats the instants, writes a CSV export whole and a JSONL export but for the
# tabs (`_JsonLines`). For verification, a row whose fields need no JSON escape — ids, codes,
# hex digests, instants: nearly every row — gets its canonical JSON by filling a template with
# the text as it comes (`_TextRows`); any other row goes through the general path
# (`chain.canonical`, `json.dumps`). Both give the same values, and for verification the same
# bytes; tests/test_audit_tamper.py holds them to it. The hashing itself stays in Python:
# verification does not trust the database to compute anything.

_PG_AT = """to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""  # exactly `chain_time`
_NUMBERS = ("seq", "status")
# anything but a tab (the separator) and printable ASCII without `"` and `\`: a JSON escape
# would be needed, or COPY escaped something
_NOT_PLAIN = re.compile(r'[^\t -!#-\[\]-~]')
_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _pg_column(name: str) -> str:
    return f"{_PG_AT} AS at" if name == "at" else name


_PG_CSV_FIELDS = ", ".join("NULLIF(ids::text, 'null') AS ids" if name == "ids" else _pg_column(name)
                           for name in EXPORT_FIELDS)


class _TextRows:
    """COPY text rows of the fields `names` (plus `extra` columns after them), read as JSON
    objects with the keys in the order of `names` (the extra columns left out)."""

    def __init__(self, names: tuple[str, ...], extra: tuple[str, ...] = ()):
        self.columns = (*(n for n in names if n != "ids"), *extra)
        self.extra = len(extra)
        self.ids_at = names.index("ids")
        self.select = ", ".join(_pg_column(n) for n in self.columns) + ", ids"  # ids last
        self.template = "{" + ",".join(f'"{n}":%s' if n in (*_NUMBERS, "ids") else f'"{n}":"%s"'
                                       for n in names) + "}"
        self.names = names

    def plain(self, line: str) -> list[str] | None:
        """The fields as COPY sent them, with `ids` in place as canonical JSON, when the
        template can take them as they are; else None."""
        head, _, ids_text = line.rpartition("\t")
        ids = "null" if ids_text == "\\N" else _plain_ids(ids_text)
        if ids is None or _NOT_PLAIN.search(head.replace("\\N", "")):
            return None
        values = head.split("\t")
        values.insert(self.ids_at, ids)
        return values

    def fill(self, values: list[str]) -> str:
        text = self.template % tuple(values[:len(values) - self.extra] if self.extra else values)
        if "\\N" in text:  # NULL: quoted in a string's place, bare in a number's
            text = text.replace('"\\N"', "null").replace(":\\N", ":null")
        return text

    def typed(self, line: str) -> dict:
        """Any row, unescaped and typed: what the general path works on."""
        *fields, ids_text = line.split("\t")  # a tab inside a value is escaped (`\t`)
        event = {name: _copy_value(text) for name, text in zip(self.columns, fields)}
        for name in _NUMBERS:
            if event.get(name) is not None:
                event[name] = int(event[name])
        ids = _copy_value(ids_text)
        event["ids"] = json.loads(ids) if ids is not None else None
        return event


def _plain_ids(text: str) -> str | None:
    """`ids` as stored (`["a", "b"]`, no escapes) in canonical form: commas without spaces.
    None for any other text. Every quote must belong to a `", "` between two strings or to the
    first or last one, so the text is one flat array of strings."""
    if text == "null" or text == "[]":
        return text
    if not (text.startswith('["') and text.endswith('"]')) or "\\" in text:
        return None
    separators = text.count('", "')
    if text.count('"') != 2 * separators + 2:
        return None
    return text.replace('", "', '","')


def _copy_value(text: str):
    """A field of COPY's text format: `\\N` is NULL; a backslash escapes the rest."""
    return None if text == "\\N" else _copy_unescape(text)


def _copy_unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), text)


def _pg_range(from_seq: int | None, to_seq: int | None) -> str:
    clauses = [f"seq >= {int(from_seq)}"] if from_seq is not None else []
    if to_seq is not None:
        clauses.append(f"seq <= {int(to_seq)}")
    return " AND ".join(clauses) or "TRUE"


def _on_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def _pg_copy(sql: str) -> Iterator[memoryview]:
    """The rows of `COPY (...) TO STDOUT` as PostgreSQL sends them, on a connection of their own."""
    with db.engine.connect() as conn:
        with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
            yield from copy


def _pg_lines(rows: _TextRows, where: str) -> Iterator[str]:
    """The rows in seq order as str, without the newline."""
    for data in _pg_copy(f"COPY (SELECT {rows.select} FROM audit_events WHERE {where} ORDER BY seq) TO STDOUT"):
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


# the optional fields come as extra columns: a row with one set takes the general path
_VERIFY_ROWS = _TextRows(tuple(sorted(chain.CHAINED_FIELDS)), extra=(*chain.OPTIONAL_FIELDS, "hash"))
_VERIFY_OPTIONAL = slice(-1 - len(chain.OPTIONAL_FIELDS), -1)
_VERIFY_SEQ = _VERIFY_ROWS.names.index("seq")
_VERIFY_PREV = _VERIFY_ROWS.names.index("prev_hash")


class _JsonLines:
    """JSONL from COPY. PostgreSQL sends each row as the JSON text around the values (constant
    columns) and the values, tab-separated: strings already in quotes, NULL written `null`
    (bare, so it stays null). Where a block of rows needs no JSON escape — no quote in a string
    (PostgreSQL marks such a row with `!`), no backslash (COPY's escapes), no control character —
    dropping the tabs makes the JSON: no work per row in Python. Any other row is unescaped,
    typed and given to json.dumps."""

    QUOTED = tuple(name for name in EXPORT_FIELDS if name not in (*_NUMBERS, "ids"))
    CONTROL = bytes(range(0, 9)) + bytes(range(11, 32))  # all but tab and newline

    def __init__(self):
        self.leads = [("{" if i == 0 else ",") + f'"{name}":' for i, name in enumerate(EXPORT_FIELDS)]
        self.tail = "}"
        strings = ", ".join(name for name in self.QUOTED if name != "at")
        columns = [f"""CASE WHEN strpos(concat({strings}), '"') = 0 THEN '' ELSE '!' END"""]
        for lead, name in zip(self.leads, EXPORT_FIELDS):
            value = _PG_AT if name == "at" else name
            columns += [f"'{lead}'", f"""'"' || {value} || '"'""" if name in self.QUOTED else value]
        self.select = ", ".join([*columns, f"'{self.tail}'"])

    def block(self, raw: bytes) -> str:
        """Whole COPY rows (each ending in a newline) as JSON lines."""
        if (b"\\" not in raw and not raw.startswith(b"!") and b"\n!" not in raw
                and len(raw.translate(None, self.CONTROL)) == len(raw)):
            return raw.decode().replace("\t", "")
        return "".join(self.line(row) for row in raw.decode().split("\n")[:-1])

    def line(self, row: str) -> str:
        if "\\" not in row and not row.startswith("!") and not any(ord(c) < 32 and c != "\t" for c in row):
            return row.replace("\t", "") + "\n"
        event = {}
        for name, text in zip(EXPORT_FIELDS, row.split("\t")[2::2]):
            # a tab inside a value is escaped (`\t`), so the split is exact
            value = None if text == "null" else _copy_unescape(text)
            event[name] = value[1:-1] if name in self.QUOTED and value is not None else value
        for name in _NUMBERS:
            if event[name] is not None:
                event[name] = int(event[name])
        if event["ids"] is not None:
            event["ids"] = json.loads(event["ids"])
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"


_JSON_LINES = _JsonLines()


def _pg_json_lines(from_seq: int, to_seq: int | None) -> Iterator[str]:
    sql = (f"COPY (SELECT {_JSON_LINES.select} FROM audit_events WHERE {_pg_range(from_seq, to_seq)} "
           "ORDER BY seq) TO STDOUT WITH (NULL 'null')")
    buffer: list[bytes] = []
    for data in _pg_copy(sql):
        buffer.append(data)
        if len(buffer) >= 500:
            yield _JSON_LINES.block(b"".join(buffer))
            buffer.clear()
    if buffer:
        yield _JSON_LINES.block(b"".join(buffer))


def _pg_csv(from_seq: int, to_seq: int | None) -> Iterator[str]:
    sql = (f"COPY (SELECT {_PG_CSV_FIELDS} FROM audit_events WHERE {_pg_range(from_seq, to_seq)} ORDER BY seq) "
           "TO STDOUT WITH (FORMAT csv, HEADER true)")
    return _chunks(str(data, "utf-8") for data in _pg_copy(sql))


def _pg_verification_events() -> Iterator[dict]:
    """Every sealed row, from the lowest seq whatever it is, as {seq, prev_hash, hash, canonical}."""
    rows = _VERIFY_ROWS
    for line in _pg_lines(rows, "TRUE"):
        values = rows.plain(line)
        if values is not None and all(v == "\\N" for v in values[_VERIFY_OPTIONAL]):
            yield {"seq": int(values[_VERIFY_SEQ]), "prev_hash": values[_VERIFY_PREV], "hash": values[-1],
                   "canonical": rows.fill(values).encode()}
        else:
            event = rows.typed(line)
            yield {"seq": event["seq"], "prev_hash": event["prev_hash"], "hash": event["hash"],
                   "canonical": chain.canonical(event)}


def _canonical_hash(event: dict) -> str:
    return hashlib.sha256(event["canonical"]).hexdigest()


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


def verify_database() -> dict:
    seal()
    unsealed = db.session.scalar(select(func.count()).select_from(AuditInbox))
    db.session.rollback()  # hold no snapshot while streaming
    if _on_postgresql():
        verdict = chain.verify(_pg_verification_events(), content_hash=_canonical_hash)
    else:
        verdict = chain.verify(stream_events())
    return {**verdict.as_dict(), "unsealed": unsealed}


def seq_range(start: datetime | None, end: datetime | None) -> tuple[int, int] | None:
    """The contiguous stretch of the chain from the first event at or after `start` to the last
    before `end` (an export is verifiable only as an unbroken stretch)."""
    seal()
    low = select(func.min(AuditEvent.seq))
    high = select(func.max(AuditEvent.seq))
    if start is not None:
        low, high = low.where(AuditEvent.at >= start), high.where(AuditEvent.at >= start)
    if end is not None:
        low, high = low.where(AuditEvent.at < end), high.where(AuditEvent.at < end)
    first, last = db.session.scalar(low), db.session.scalar(high)
    db.session.rollback()
    return None if first is None else (first, last)


def export_lines(start: datetime | None, end: datetime | None, fmt: str) -> Iterator[str]:
    """JSONL (one event per line) or CSV (a header, then one row per event; `ids` as JSON)."""
    span = seq_range(start, end)
    if span and _on_postgresql():
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
        row = ["" if event[f] is None else json.dumps(event[f]) if f == "ids" else event[f] for f in EXPORT_FIELDS]
        (quoting_all if any(isinstance(v, str) and "\r" in v for v in row) else writer).writerow(row)
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- offline verification of an export --------------------------------------------------------

class ExportFormatError(ValueError):
    pass


def _from_csv_row(row: dict) -> dict:
    event: dict = {}
    for name in EXPORT_FIELDS:
        value = row.get(name, "")
        if value == "":
            event[name] = None
        elif name in ("seq", "status"):
            event[name] = int(value)
        elif name == "ids":
            event[name] = json.loads(value)
        else:
            event[name] = value
    return event


def read_export(path: str) -> Iterator[dict]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            first = handle.readline()  # a binary file fails here (UnicodeDecodeError is a ValueError)
            handle.seek(0)
            if first.startswith("{"):
                for line in handle:
                    if line.strip():
                        event = json.loads(line)
                        if not isinstance(event, dict):
                            raise ValueError("a line is not a JSON object")
                        yield event
            elif first:
                reader = csv.DictReader(handle)
                if not set(REQUIRED_EXPORT_FIELDS) <= set(reader.fieldnames or ()):
                    raise ValueError("the CSV header is not an export's")
                for row in reader:
                    yield _from_csv_row(row)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportFormatError(f"{path}: not an audit export ({exc.__class__.__name__})") from exc


def verify_export(path: str) -> dict:
    """An export may start mid-chain: its first event is trusted as the starting point, every
    later one must follow from it (a signed checkpoint anchors the end)."""
    events = read_export(path)
    first = next(events, None)
    if first is None:
        return chain.Verdict(True, 0, None, 0, chain.GENESIS).as_dict()
    start_seq, start_prev = first.get("seq"), first.get("prev_hash")
    if not isinstance(start_seq, int) or not isinstance(start_prev, str):
        raise ExportFormatError(f"{path}: the first event has no seq or prev_hash")

    def again():
        yield first
        yield from events

    return chain.verify(again(), start_seq=start_seq, start_prev=start_prev).as_dict()


# --- signed checkpoints -------------------------------------------------------------------------

def _checkpoint_message(seq: int, hash_: str) -> bytes:
    return f"casesvc-audit-checkpoint:{seq}:{hash_}".encode()


def sign_checkpoint(key: str) -> dict:
    """The head, signed with a key the database never holds: a later rewrite of the chain
    (recomputing every hash after a changed row) no longer leads to this signed head."""
    current = head()
    signature = hmac.new(key.encode(), _checkpoint_message(current["seq"], current["hash"]), hashlib.sha256).hexdigest()
    return {"seq": current["seq"], "hash": current["hash"], "at": current["at"], "algorithm": "HMAC-SHA256",
            "signature": signature}


def check_checkpoint(checkpoint: dict, key: str, hash_at_seq) -> str | None:
    """None when the checkpoint is genuine and the chain still leads to it; else why not.
    `hash_at_seq(seq)` returns the hash the chain now has at that seq (or None)."""
    try:
        seq, hash_, signature = int(checkpoint["seq"]), str(checkpoint["hash"]), str(checkpoint["signature"])
    except (KeyError, TypeError, ValueError):
        return "the checkpoint file is not a casesvc checkpoint"
    expected = hmac.new(key.encode(), _checkpoint_message(seq, hash_), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the checkpoint's signature does not match (wrong key, or the checkpoint was altered)"
    if seq == 0:
        return None
    current = hash_at_seq(seq)
    if current is None:
        return f"the chain no longer reaches the checkpoint's seq {seq}"
    if current != hash_:
        return f"the chain no longer leads to the signed head at seq {seq}: it was rewritten"
    return None


def database_hash_at(seq: int) -> str | None:
    return db.session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
