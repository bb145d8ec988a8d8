"""PostgreSQL's COPY text format, read without a database: the audit export and verification
stream rows by COPY (see `export.py`), and these parse them. Pure, so that its correctness — the
export's tamper evidence rests on it — is held by property tests (tests/audit/test_copy_text.py).

SQLAlchemy's per-row processing, cursor round trips and strftime cost more than hashing. COPY
streams the rows as text while Python works, and PostgreSQL does what it can in its own
process: it formats the instants, writes a CSV export whole and a JSONL export but for the
tabs (`_JsonLines`). For verification, a row whose fields need no JSON escape — ids, codes,
hex digests, instants: nearly every row — gets its canonical JSON by filling a template with
the text as it comes (`_TextRows`); any other row goes through the general path
(`chain.canonical`, `json.dumps`). Both give the same values, and for verification the same
bytes; tests/test_audit_tamper.py holds them to it. The hashing itself stays in Python:
verification does not trust the database to compute anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from casesvc.audit import chain, csvsafe

EXPORT_FIELDS = (*chain.EVENT_FIELDS, "hash")
# what an export must hold to verify: an export made before `basis` existed has no such column
REQUIRED_EXPORT_FIELDS = (*chain.CHAINED_FIELDS, "hash")
PG_AT = """to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""  # exactly `chain_time`
NUMBERS = ("seq", "status")
# anything but a tab (the separator) and printable ASCII without `"` and `\`: a JSON escape
# would be needed, or COPY escaped something
_NOT_PLAIN = re.compile(r"[^\t -!#-\[\]-~]")
_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def pg_column(name: str) -> str:
    return f"{PG_AT} AS at" if name == "at" else name


PG_CSV_FIELDS = ", ".join(
    "NULLIF(ids::text, 'null') AS ids"
    if name == "ids"
    else pg_column(name)
    if name in (*NUMBERS, "at")
    else csvsafe.pg_cell(name)
    for name in EXPORT_FIELDS
)


class TextRows:
    """COPY text rows of the fields `names` (plus `extra` columns after them), read as JSON
    objects with the keys in the order of `names` (the extra columns left out)."""

    def __init__(self, names: tuple[str, ...], extra: tuple[str, ...] = ()):
        self.columns = (*(n for n in names if n != "ids"), *extra)
        self.extra = len(extra)
        self.ids_at = names.index("ids")
        self.select = ", ".join(pg_column(n) for n in self.columns) + ", ids"  # ids last
        self.template = "{" + ",".join(f'"{n}":%s' if n in (*NUMBERS, "ids") else f'"{n}":"%s"' for n in names) + "}"
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
        text = self.template % tuple(values[: len(values) - self.extra] if self.extra else values)
        if "\\N" in text:  # NULL: quoted in a string's place, bare in a number's
            text = text.replace('"\\N"', "null").replace(":\\N", ":null")
        return text

    def typed(self, line: str) -> dict:
        """Any row, unescaped and typed: what the general path works on."""
        *fields, ids_text = line.split("\t")  # a tab inside a value is escaped (`\t`)
        event = {name: copy_value(text) for name, text in zip(self.columns, fields, strict=True)}
        for name in NUMBERS:
            if event.get(name) is not None:
                event[name] = int(event[name])
        ids = copy_value(ids_text)
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


def copy_value(text: str):
    """A field of COPY's text format: `\\N` is NULL; a backslash escapes the rest."""
    return None if text == "\\N" else copy_unescape(text)


def copy_unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), text)


class JsonLines:
    """JSONL from COPY. PostgreSQL sends each row as the JSON text around the values (constant
    columns) and the values, tab-separated: strings already in quotes, NULL written `null`
    (bare, so it stays null). Where a block of rows needs no JSON escape — no quote in a string
    (PostgreSQL marks such a row with `!`), no backslash (COPY's escapes), no control character —
    dropping the tabs makes the JSON: no work per row in Python. Any other row is unescaped,
    typed and given to json.dumps."""

    QUOTED = tuple(name for name in EXPORT_FIELDS if name not in (*NUMBERS, "ids"))
    CONTROL = bytes(range(9)) + bytes(range(11, 32))  # all but tab and newline

    def __init__(self):
        self.leads = [("{" if i == 0 else ",") + f'"{name}":' for i, name in enumerate(EXPORT_FIELDS)]
        self.tail = "}"
        strings = ", ".join(name for name in self.QUOTED if name != "at")
        columns = [f"""CASE WHEN strpos(concat({strings}), '"') = 0 THEN '' ELSE '!' END"""]
        for lead, name in zip(self.leads, EXPORT_FIELDS, strict=True):
            value = PG_AT if name == "at" else name
            columns += [f"'{lead}'", f"""'"' || {value} || '"'""" if name in self.QUOTED else value]
        self.select = ", ".join([*columns, f"'{self.tail}'"])

    def block(self, raw: bytes) -> str:
        """Whole COPY rows (each ending in a newline) as JSON lines."""
        if (
            b"\\" not in raw
            and not raw.startswith(b"!")
            and b"\n!" not in raw
            and len(raw.translate(None, self.CONTROL)) == len(raw)
        ):
            return raw.decode().replace("\t", "")
        return "".join(self.line(row) for row in raw.decode().split("\n")[:-1])

    def line(self, row: str) -> str:
        if "\\" not in row and not row.startswith("!") and not any(ord(c) < 32 and c != "\t" for c in row):
            return row.replace("\t", "") + "\n"
        event: dict[str, Any] = {}
        for name, text in zip(EXPORT_FIELDS, row.split("\t")[2::2], strict=True):
            # a tab inside a value is escaped (`\t`), so the split is exact
            value = None if text == "null" else copy_unescape(text)
            event[name] = value[1:-1] if name in self.QUOTED and value is not None else value
        for name in NUMBERS:
            if event[name] is not None:
                event[name] = int(event[name])
        if event["ids"] is not None:
            event["ids"] = json.loads(event["ids"])
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
