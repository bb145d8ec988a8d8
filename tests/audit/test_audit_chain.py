"""README "The audit log", the hash chain on its own (casesvc.audit.chain, no database): canonical JSON,
linking, and a verifier that finds any single alteration, deletion, insertion or swap at the
first seq where the chain no longer holds."""

from __future__ import annotations

import hashlib
import json
import uuid

from hypothesis import given, settings, strategies as st

from casesvc.audit import chain
from casesvc.audit.chain import CHAINED_FIELDS, GENESIS, canonical, event_hash, link, verify

CONTENT_FIELDS = [f for f in CHAINED_FIELDS if f not in ("seq", "prev_hash")]


def fields(n: int = 0, **extra) -> dict:
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "at": f"2027-01-05T08:00:{n % 60:02d}.000000Z",
        "actor": "u-1",
        "actor_role": "police",
        "actor_agency": "police",
        "action": "cases.get_case",
        "resource_type": "case",
        "resource_id": "c-1",
        "case_id": "c-1",
        "youth_id": "y-1",
        "ids": None,
        "outcome": "allowed",
        "status": 200,
        "request_id": f"r-{n}",
        "ip": "127.0.0.1",
        **extra,
    }


def build(n: int) -> list[dict]:
    events, prev = [], GENESIS
    for i in range(n):
        event = link(fields(i), i + 1, prev)
        prev = event["hash"]
        events.append(event)
    return events


def relink(events: list[dict], start: int) -> list[dict]:
    """What a rewriter does: recompute seq, prev_hash and hash from `start` on."""
    out = [dict(e) for e in events[:start]]
    prev = out[-1]["hash"] if out else GENESIS
    for i, event in enumerate(events[start:], start):
        linked = link(event, i + 1, prev)
        prev = linked["hash"]
        out.append(linked)
    return out


# --- canonical JSON and linking ---------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8_and_covers_exactly_the_chained_fields():
    event = {
        **fields(),
        "seq": 1,
        "prev_hash": GENESIS,
        "hash": "x" * 64,
        "extra": "not chained",
        "actor_agency": "barnevern-østre",
    }
    raw = canonical(event)
    decoded = json.loads(raw.decode("utf-8"))
    assert list(decoded) == sorted(CHAINED_FIELDS)
    assert b" " not in raw.replace(b"barnevern", b"")  # no spaces from separators
    assert "barnevern-østre".encode() in raw  # UTF-8, not \u escapes
    assert "hash" not in decoded and "extra" not in decoded


def test_canonical_json_is_independent_of_key_order_and_missing_fields_are_null():
    event = {**fields(), "seq": 3, "prev_hash": GENESIS}
    reordered = dict(reversed(list(event.items())))
    assert canonical(event) == canonical(reordered)
    sparse = {"id": "e-1", "seq": 1, "action": "x", "outcome": "allowed", "prev_hash": GENESIS}
    assert json.loads(canonical(sparse))["youth_id"] is None


def test_hash_is_sha256_of_the_canonical_json_including_seq_and_prev_hash():
    event = link(fields(), 1, GENESIS)
    assert event["hash"] == hashlib.sha256(canonical(event)).hexdigest() == event_hash(event)
    assert link(fields(), 2, GENESIS)["hash"] != event["hash"]  # seq is covered
    assert link(fields(), 1, "1" * 64)["hash"] != event["hash"]  # prev_hash is covered


def test_link_sets_seq_and_prev_hash_and_keeps_only_chained_fields():
    event = link({**fields(), "seq": 99, "prev_hash": "y", "name": "Test Testesen"}, 5, "a" * 64)
    assert event["seq"] == 5 and event["prev_hash"] == "a" * 64
    assert set(event) == {*chain.EVENT_FIELDS, "hash"}  # with the optional `basis`


# --- the verifier -------------------------------------------------------------------------------


def test_an_empty_chain_is_valid():
    verdict = verify([])
    assert (verdict.valid, verdict.checked, verdict.first_invalid_seq) == (True, 0, None)
    assert (verdict.head_seq, verdict.head_hash) == (0, GENESIS)


def test_an_intact_chain_is_valid_and_reports_its_head():
    events = build(10)
    verdict = verify(iter(events))
    assert (verdict.valid, verdict.checked, verdict.first_invalid_seq) == (True, 10, None)
    assert (verdict.head_seq, verdict.head_hash) == (10, events[-1]["hash"])
    assert verdict.as_dict() == {
        "valid": True,
        "checked": 10,
        "first_invalid_seq": None,
        "head": {"seq": 10, "hash": events[-1]["hash"]},
        "reason": None,
    }


def test_the_first_event_must_follow_genesis():
    events = build(3)
    first = link(fields(0), 1, "f" * 64)  # well hashed, but not anchored at GENESIS
    verdict = verify([first, *events[1:]])
    assert (verdict.valid, verdict.first_invalid_seq) == (False, 1)


def test_the_first_seq_must_be_one():
    starts_at_two = link(fields(0), 2, GENESIS)
    assert verify([starts_at_two]).first_invalid_seq == 1


def test_verification_can_start_mid_chain_from_a_trusted_point():
    events = build(10)
    verdict = verify(events[4:], start_seq=5, start_prev=events[3]["hash"])
    assert (verdict.valid, verdict.checked, verdict.head_seq) == (True, 6, 10)
    assert verify(events[4:], start_seq=5, start_prev=GENESIS).first_invalid_seq == 5


def test_the_verdict_counts_the_events_checked_before_the_break():
    events = build(8)
    events[5] = {**events[5], "outcome": "denied"}
    verdict = verify(events)
    assert (verdict.valid, verdict.checked, verdict.first_invalid_seq) == (False, 5, 6)
    assert (verdict.head_seq, verdict.head_hash) == (5, events[4]["hash"])
    assert verdict.reason


def test_a_rewritten_chain_passes_plain_verification():
    """Why signed checkpoints exist: recomputing every later hash makes a consistent chain."""
    events = build(6)
    events[2] = {**events[2], "outcome": "allowed" if events[2]["outcome"] != "allowed" else "denied"}
    rewritten = relink(events, 2)
    verdict = verify(rewritten)
    assert verdict.valid
    assert verdict.head_hash != build(6)[-1]["hash"]  # ...but it no longer leads to the old head


def test_removing_the_tail_leaves_a_valid_shorter_chain_with_an_earlier_head():
    """Truncation is invisible to the chain alone; the head moves back (a checkpoint catches it)."""
    events = build(6)
    verdict = verify(events[:4])
    assert verdict.valid and verdict.head_seq == 4


# --- property: every single tampering is found at the right seq -------------------------------


def _different(value):
    if value is None:
        return "tampered"
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    if isinstance(value, list):
        return [*value, "tampered"]
    return value + "x"


sizes = st.integers(min_value=2, max_value=25)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=sizes, field=st.sampled_from([*CHAINED_FIELDS, "hash"]))
def test_any_single_field_alteration_is_found_at_that_event(data, n, field):
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    events[i] = {**events[i], field: _different(events[i].get(field))}
    verdict = verify(events)
    assert not verdict.valid
    assert verdict.first_invalid_seq == i + 1
    assert verdict.checked == i


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes, field=st.sampled_from(CONTENT_FIELDS))
def test_an_alteration_with_a_recomputed_hash_is_found_at_the_next_event(data, n, field):
    """Fixing the altered row's own hash breaks the next row's prev_hash link."""
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    altered = {**events[i], field: _different(events[i].get(field))}
    events[i] = link(altered, altered["seq"], altered["prev_hash"])
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 2)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes)
def test_a_deleted_event_is_found_at_its_seq(data, n):
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))  # not the tail: see the truncation test
    del events[i]
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 1)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes)
def test_a_deleted_event_is_found_even_when_later_seqs_are_shifted_down(data, n):
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    del events[i]
    for event in events[i:]:
        event["seq"] -= 1
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 1)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes, shift=st.booleans())
def test_a_forged_event_linked_in_the_middle_is_found_right_after_it(data, n, shift):
    """A forged event properly linked to its predecessor is itself consistent; the event after
    it is not (whether the later seqs were shifted up or left alone)."""
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))  # inserted before events[i]
    prev = events[i - 1]["hash"] if i else GENESIS
    forged = link(fields(1000, outcome="allowed", actor="forger"), i + 1, prev)
    if shift:
        for event in events[i:]:
            event["seq"] += 1
    events.insert(i, forged)
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 2)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes)
def test_a_forged_event_not_linked_is_found_at_its_own_position(data, n):
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n))
    forged = link(fields(1000), i + 1, "e" * 64)
    events.insert(i, forged)
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 1)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes, keep_seq=st.booleans())
def test_two_events_swapped_are_found_at_the_first_of_them(data, n, keep_seq):
    events = build(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=n - 1))
    events[i], events[j] = events[j], events[i]
    if keep_seq:  # swap the contents but leave each position's seq in order
        events[i]["seq"], events[j]["seq"] = events[j]["seq"], events[i]["seq"]
    verdict = verify(events)
    assert (verdict.valid, verdict.first_invalid_seq) == (False, i + 1)


@settings(max_examples=100, deadline=None)
@given(n=sizes)
def test_every_intact_chain_verifies(n):
    events = build(n)
    verdict = verify(events)
    assert (verdict.valid, verdict.checked, verdict.head_hash) == (True, n, events[-1]["hash"])


def test_the_genesis_hash_is_sixty_four_zeros():
    assert chain.GENESIS == "0" * 64


def test_empty_values_are_not_confused_with_each_other():
    """None, 0, "" and [] hash differently, so blanking a field is an alteration."""
    hashes = {link({**fields(), "ids": v}, 1, GENESIS)["hash"] for v in (None, 0, "", [])}
    assert len(hashes) == 4


# --- the format is fixed: chains sealed today verify tomorrow --------------------------------------


def test_the_hash_of_a_known_event_does_not_change():
    """A golden value: any change to the canonical form or the chained fields breaks every
    chain already sealed."""
    assert link(fields(0), 1, GENESIS)["hash"] == "7b8518fb83910459c8fdd167ae39ffdb5b0185f1328c730070b50e66441acf1d"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(event=st.fixed_dictionaries(dict.fromkeys(CHAINED_FIELDS, json_values)))
def test_canonical_is_sorted_compact_json_of_the_chained_fields(event):
    reference = json.dumps(
        {k: event.get(k) for k in CHAINED_FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert canonical({**event, "hash": "x"}) == reference
    assert chain.canonical_value(event["ids"]) == json.dumps(
        event["ids"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_an_event_without_basis_hashes_as_before_the_field_existed():
    """`basis` (README "Emergency access") is hashed only when set: events recorded before it keep their hash."""
    event = {name: f"v-{name}" for name in CHAINED_FIELDS}
    event["seq"] = 7
    before = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical(event) == before
    assert canonical({**event, "basis": None}) == before
    assert event_hash({**event, "basis": "emergency"}) != event_hash(event)
    assert json.loads(canonical({**event, "basis": "emergency"}))["basis"] == "emergency"
