"""The COPY text parser (`casesvc/audit/copy_text.py`) on its own, no database: PostgreSQL streams
the audit rows for verification and export in COPY's text format, and the tamper evidence rests
on reading every value back exactly. Each row is built here the way PostgreSQL writes it."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from hypothesis import given, settings, strategies as st

from casesvc.audit import chain, copy_text, export as audit_export, sealing, verify as audit_verify

AWKWARD = [
    'say "hi"',
    "back\\slash",
    "tab\there",
    "new\nline",
    "cr\rhere",
    "bell\x07",
    "\x1f unit",
    "\\N",
    "null",
    "",
    "pipe|comma,semi;",
    "æøå ÆØÅ",
    "emoji 🦉",
    "\u2028 sep",
    "del\x7f",
    '\\"',
    "trailing\\",
    "\\t",
]
# `ids` as stored by other writers: compact, pretty, empty, with escapes, nested
IDS_LAYOUTS = [
    '["a","b"]',
    '[\n  "a",\n  "b"\n]',
    "[ ]",
    "[]",
    '["q\\"uote", "x"]',
    '["a", ["b"]]',
    '["\\u00e6", "b"]',
    '[1, "b"]',
    "null",
]


def _copy_text(value) -> str:
    """A value as PostgreSQL's COPY text format writes it."""
    if value is None:
        return "\\N"
    text = str(value).replace("\\", "\\\\")
    for char, escape in (("\b", "\\b"), ("\f", "\\f"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\v", "\\v")):
        text = text.replace(char, escape)
    return text


def _copy_line(rows, event: dict, ids_text: str | None) -> str:
    return "\t".join([*(_copy_text(event[name]) for name in rows.columns), _copy_text(ids_text)])


values = st.one_of(
    st.none(), st.sampled_from(AWKWARD), st.text(max_size=12), st.from_regex(r"[0-9a-f-]{36}", fullmatch=True)
)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    ids=st.one_of(st.none(), st.lists(values.filter(lambda v: v is not None), max_size=4)),
    status=st.one_of(st.none(), st.integers(-5, 600)),
    seq=st.integers(-3, 10**12),
    stored=st.sampled_from(["sqlalchemy", "compact", "sql-null"]),
)
def test_a_copy_line_reads_back_as_the_event_and_its_canonical_json(data, ids, status, seq, stored):
    event = {name: data.draw(values, label=name) for name in chain.EVENT_FIELDS}
    # `at` comes from to_char(): digits, dashes, colons, a dot, T and Z (or NULL)
    at = data.draw(st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))), label="at")
    event.update(
        seq=seq, status=status, ids=ids, hash=data.draw(values, label="hash"), at=sealing.chain_time(at) if at else None
    )
    if stored == "sql-null" and ids is None:
        ids_text = None
    else:
        ids_text = (
            json.dumps(ids) if stored == "sqlalchemy" else json.dumps(ids, separators=(",", ":"), ensure_ascii=False)
        )
    rows = audit_verify._VERIFY_ROWS
    line = _copy_line(rows, event, ids_text)
    assert rows.typed(line) == {n: event[n] for n in (*rows.columns, "ids")}
    plain = rows.plain(line)
    # the template path (taken when no optional field such as `basis` is set) gives the very
    # bytes of the general one
    if plain is not None and all(event[name] is None for name in chain.OPTIONAL_FIELDS):
        assert rows.fill(plain) == chain.canonical(event).decode()

    # the JSONL export (COPY ... WITH (NULL 'null'), strings quoted by the SELECT): the row alone,
    # and in a block between two plain rows
    lines = audit_export._JSON_LINES
    quoted = [n for n in lines.QUOTED if n != "at"]
    marker = "!" if any('"' in (event[n] or "") for n in quoted) else ""

    def copy_row(marker, values):
        def sent(name, value):
            if value is None:
                return "null"
            return _copy_text(f'"{value}"' if name in lines.QUOTED else value)

        return (
            "\t".join(
                [
                    marker,
                    *(
                        part
                        for lead, name in zip(lines.leads, copy_text.EXPORT_FIELDS, strict=True)
                        for part in (lead, sent(name, values[name]))
                    ),
                    lines.tail,
                ]
            )
            + "\n"
        )

    row = copy_row(marker, {**event, "ids": ids_text})
    plain_row = copy_row(
        "",
        {name: 1 if name in ("seq", "status") else None if name == "ids" else "x" for name in copy_text.EXPORT_FIELDS},
    )
    expected = {n: event[n] for n in copy_text.EXPORT_FIELDS}
    for block in (row, plain_row + row + plain_row):
        out = lines.block(block.encode()).split("\n")
        assert out[-1] == ""
        assert json.loads(out[-3 if block != row else -2]) == expected


@pytest.mark.parametrize("text", [*IDS_LAYOUTS, '["a", "b"]', '["a, \\"b", "c"]', '["", ""]', '[""]'])
def test_plain_ids_are_recognised_only_in_the_stored_layout(text):
    plain = copy_text._plain_ids(text)
    if plain is not None:
        assert plain == chain.canonical_value(json.loads(text))
    if text in ('["a", "b"]', '["", ""]', '[""]', "[]", "null"):
        assert plain is not None


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_text_escaped_as_copy_writes_it_reads_back_unchanged(text):
    assert copy_text.copy_value(_copy_text(text)) == text
    assert copy_text.copy_value(_copy_text(None)) is None
