"""Audit export cells no spreadsheet runs (README: Security, hardening; OWASP "CSV injection").

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula
by spreadsheet programs; such a cell is written with a leading `'` (what they show as text), and
so is one that already begins with `'`, so that the reader can take exactly one `'` off any cell
that has one and get the value back: offline verification of a CSV export sees the stored bytes.
"""

from __future__ import annotations

QUOTE = "'"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_STARTS = (*FORMULA_STARTS, QUOTE)


def cell(value: object) -> object:
    """A value as written to a CSV export."""
    if isinstance(value, str) and value.startswith(_ESCAPED_STARTS):
        return QUOTE + value
    return value


def uncell(text: str) -> str:
    """A CSV export's cell back to the value."""
    return text[1:] if text.startswith(QUOTE) else text


def pg_cell(column: str) -> str:
    """`cell` in PostgreSQL, for COPY: `column` is a text column's name."""
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "E'\\t'", "E'\\r'", "''''"])
    return f"CASE WHEN left({column}, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END AS {column}"
