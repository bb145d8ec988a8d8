"""Reading the sealed chain: head, verification, streaming export, signed checkpoints.

Everything here streams rows (server-side cursor on PostgreSQL) and holds one event at a
time, so memory stays flat whatever the size of the log.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from datetime import datetime
from typing import Iterable, Iterator

from sqlalchemy import func, select

from casesvc.audit import chain
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.audit.service import chain_time, seal
from casesvc.extensions import db

STREAM_BATCH = 5000
EXPORT_FIELDS = (*chain.CHAINED_FIELDS, "hash")
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


def stream_events(from_seq: int = 1, to_seq: int | None = None) -> Iterator[dict]:
    """Sealed events in seq order, one at a time, on a connection of their own."""
    stmt = select(*_COLUMNS).where(AuditEvent.seq >= from_seq).order_by(AuditEvent.seq)
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
    events: Iterable[dict] = stream_events(*span) if span else iter(())
    if fmt == "jsonl":
        for event in events:
            yield json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for event in events:
        writer.writerow(["" if event[f] is None else json.dumps(event[f]) if f == "ids" else event[f]
                         for f in EXPORT_FIELDS])
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
    with open(path, encoding="utf-8", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        try:
            if first.startswith("{"):
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        yield json.loads(line)
            else:
                for row in csv.DictReader(handle):
                    yield _from_csv_row(row)
        except (ValueError, KeyError) as exc:
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
