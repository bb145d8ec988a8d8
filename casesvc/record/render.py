"""The youth's record as JSON, written piece by piece as the parts are read (flat memory)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from casesvc.audit.sealing import chain_time
from casesvc.cases.schemas import case_body
from casesvc.common.timeutil import rfc3339
from casesvc.consents.schemas import ConsentSchema
from casesvc.followups.schemas import EventSchema, NoteSchema
from casesvc.reactions.schemas import ReactionSchema
from casesvc.record.service import ACCESS_LOG_COLUMNS, RecordPlan
from casesvc.youths.schemas import YouthSchema

LEFT_OUT = (
    "Entries other agencies keep to themselves (visibility: agency), and other agencies' health "
    "entries no consent lets this agency read, are not here: each agency answers for its own data. "
    "Cases of the youth this agency does not read are not here either."
)

_YOUTH, _REACTION, _CONSENT = YouthSchema(), ReactionSchema(), ConsentSchema()
_EVENT, _NOTE = EventSchema(), NoteSchema()


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _array(items: Iterator[str]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield item if first else "," + item
        first = False
    yield "]"


def access_log_entry(row) -> dict:
    entry = dict(zip(ACCESS_LOG_COLUMNS, row, strict=True))
    entry["at"] = chain_time(entry["at"])
    return entry


def json_record(plan: RecordPlan) -> Iterator[str]:
    head = {
        "generated_at": rfc3339(plan.generated_at),
        "agency": plan.principal.agency,
        "youth": _YOUTH.dump(plan.youth),
        "left_out": LEFT_OUT,
    }
    return _chunked(_json_pieces(plan, head))


def _json_pieces(plan: RecordPlan, head: dict) -> Iterator[str]:
    yield _dumps(head)[:-1] + ',"cases":['
    for i, record in enumerate(plan.cases()):
        body = {
            **case_body(record.case),
            "access": record.access.relation.value,
            "reactions": [_REACTION.dump(r) for r in record.reactions],
            "consents": [_CONSENT.dump(c) for c in record.consents],
        }
        yield ("," if i else "") + _dumps(body)[:-1] + ',"events":'
        yield from _array(_dumps(_EVENT.dump(e)) for e in record.events)
        if record.notes is not None:
            yield ',"notes":'
            yield from _array(_dumps(_NOTE.dump(n)) for n in record.notes)
        yield "}"
    yield '],"access_log":'
    yield from _array(_dumps(access_log_entry(row)) for row in plan.access_log())
    yield "}"


def _chunked(pieces: Iterator[str], size: int = 1 << 16) -> Iterator[str]:
    buffer, length = [], 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)
