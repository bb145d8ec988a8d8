"""Verifying the chain: in the database (every sealed row, streamed) and offline, from an export
file, which may start mid-chain."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping

from sqlalchemy import func, select

from casesvc.audit import chain, csvsafe
from casesvc.audit.copy_text import EXPORT_FIELDS, REQUIRED_EXPORT_FIELDS, TextRows
from casesvc.audit.export import on_postgresql, pg_lines, stream_events
from casesvc.audit.models import AuditInbox
from casesvc.audit.sealing import seal
from casesvc.extensions import db

# the optional fields come as extra columns: a row with one set takes the general path
_VERIFY_ROWS = TextRows(tuple(sorted(chain.CHAINED_FIELDS)), extra=(*chain.OPTIONAL_FIELDS, "hash"))
_VERIFY_OPTIONAL = slice(-1 - len(chain.OPTIONAL_FIELDS), -1)
_VERIFY_SEQ = _VERIFY_ROWS.names.index("seq")
_VERIFY_PREV = _VERIFY_ROWS.names.index("prev_hash")


def _pg_verification_events() -> Iterator[dict]:
    """Every sealed row, from the lowest seq whatever it is, as {seq, prev_hash, hash, canonical}."""
    rows = _VERIFY_ROWS
    for line in pg_lines(rows, "TRUE"):
        values = rows.plain(line)
        if values is not None and all(v == "\\N" for v in values[_VERIFY_OPTIONAL]):
            yield {
                "seq": int(values[_VERIFY_SEQ]),
                "prev_hash": values[_VERIFY_PREV],
                "hash": values[-1],
                "canonical": rows.fill(values).encode(),
            }
        else:
            event = rows.typed(line)
            yield {
                "seq": event["seq"],
                "prev_hash": event["prev_hash"],
                "hash": event["hash"],
                "canonical": chain.canonical(event),
            }


def _canonical_hash(event: Mapping) -> str:
    return hashlib.sha256(event["canonical"]).hexdigest()


def verify_database() -> dict:
    seal(wait=True)
    unsealed = db.session.scalar(select(func.count()).select_from(AuditInbox))
    db.session.rollback()  # hold no snapshot while streaming
    if on_postgresql():
        verdict = chain.verify(_pg_verification_events(), content_hash=_canonical_hash)
    else:
        verdict = chain.verify(stream_events())
    return {**verdict.as_dict(), "unsealed": unsealed}


# --- offline verification of an export --------------------------------------------------------


class ExportFormatError(ValueError):
    pass


def _from_csv_row(row: dict) -> dict:
    event: dict = {}
    for name in EXPORT_FIELDS:
        value = csvsafe.uncell(row.get(name, ""))
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
