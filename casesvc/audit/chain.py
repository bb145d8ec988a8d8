"""The audit hash chain, pure: canonical JSON, the link of one event to the next, and a
verifier that reads events one at a time (flat memory over millions of rows).

hash = SHA-256 of the event's canonical JSON, which includes `seq` and `prev_hash`; the first
event's prev_hash is GENESIS. Altering, deleting, inserting or reordering a row breaks either
the gapless `seq`, a `prev_hash` link or a `hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

GENESIS = "0" * 64

# Every field of an event except `hash`, in a fixed set: the chain covers exactly these.
CHAINED_FIELDS = (
    "id",
    "seq",
    "at",
    "actor",
    "actor_role",
    "actor_agency",
    "action",
    "resource_type",
    "resource_id",
    "case_id",
    "youth_id",
    "ids",
    "outcome",
    "status",
    "request_id",
    "ip",
    "prev_hash",
)


# Fields added later: in the canonical JSON only when set, so an event recorded before a field
# existed (where it is null) hashes exactly as it did, and the whole chain still verifies.
OPTIONAL_FIELDS = ("basis",)
EVENT_FIELDS = (*CHAINED_FIELDS, *OPTIONAL_FIELDS)

# json.dumps with these options builds a new encoder on every call; one instance, the same bytes
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_value(value: object) -> str:
    """One value as it appears inside the canonical JSON."""
    return _ENCODE(value)


def canonical(event: Mapping) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same event on any machine."""
    fields = {k: event.get(k) for k in CHAINED_FIELDS}
    for k in OPTIONAL_FIELDS:
        if event.get(k) is not None:
            fields[k] = event[k]
    return _ENCODE(fields).encode()


def event_hash(event: Mapping) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def link(fields: Mapping, seq: int, prev_hash: str) -> dict:
    """The sealed event: its fields with `seq`, `prev_hash` and `hash` set."""
    sealed = {k: fields.get(k) for k in EVENT_FIELDS}
    sealed["seq"] = seq
    sealed["prev_hash"] = prev_hash
    sealed["hash"] = event_hash(sealed)
    return sealed


@dataclass(frozen=True)
class Verdict:
    valid: bool
    checked: int
    first_invalid_seq: int | None
    head_seq: int
    head_hash: str
    reason: str | None = None

    def as_dict(self) -> dict:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "first_invalid_seq": self.first_invalid_seq,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "reason": self.reason,
        }


def verify(
    events: Iterable[Mapping],
    start_seq: int = 1,
    start_prev: str = GENESIS,
    content_hash: Callable[[Mapping], str] = event_hash,
) -> Verdict:
    """Walk events in the order given (by seq); stop at the first that does not fit.
    `content_hash` recomputes an event's hash (a reader that already holds the canonical bytes
    may pass its own; it must equal `event_hash`)."""
    expected_seq, prev, checked = start_seq, start_prev, 0
    for event in events:
        seq = event.get("seq")
        reason = None
        if seq != expected_seq:
            reason = f"expected seq {expected_seq}, found {seq}"
        elif event.get("prev_hash") != prev:
            reason = "prev_hash does not match the previous event's hash"
        elif event.get("hash") != content_hash(event):
            reason = "hash does not match the event's content"
        if reason:
            # the first position where the chain no longer holds
            return Verdict(False, checked, expected_seq, expected_seq - 1, prev, reason)
        prev, expected_seq, checked = event["hash"], expected_seq + 1, checked + 1
    return Verdict(True, checked, None, expected_seq - 1, prev)
