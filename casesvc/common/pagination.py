"""Lists: `?limit=` and `?cursor=`, and keyset pages (never OFFSET over a growing table).

One idiom serves every list: a `Keyset` names the order — a sort column, and the unique column
that breaks its ties — and turns a statement into one page of it and the page into
`{"items", "next_cursor"}`. The cursor is opaque to clients (README, "Conventions")."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import marshmallow as ma
from sqlalchemy import Integer, String, and_, bindparam, literal_column, or_

from casesvc.common.messages import _
from casesvc.errors import field_error
from casesvc.extensions import db

MAX_LIMIT = 200


class Limit(ma.fields.Integer):
    """`?limit=`: the page size, default 50. Above MAX_LIMIT a page holds MAX_LIMIT items (a
    larger ask is not an error); less than 1, or not a number, is 422."""

    def __init__(self, **kwargs):
        super().__init__(
            load_default=50,
            validate=ma.validate.Range(min=1),
            metadata={"description": f"Page size, default 50; a value above {MAX_LIMIT} is taken as {MAX_LIMIT}"},
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        return min(super()._deserialize(value, attr, data, **kwargs), MAX_LIMIT)


class PageArgs(ma.Schema):
    limit = Limit()
    cursor = ma.fields.String(load_default=None)


def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )


def filter_equal(stmt, model, args: dict, names: tuple[str, ...]):
    """The `?name=value` filters of a list: equality on the column of that name, when given."""
    for name in names:
        if args.get(name):
            stmt = stmt.where(getattr(model, name) == args[name])
    return stmt


def _bad_cursor():
    return field_error("cursor", _("Not a cursor this service issued."))


@dataclass(frozen=True)
class Keyset:
    """The order of a list: `column` (an instant, or a unique integer such as the audit `seq`),
    then `tiebreak` (a unique string column; None when `column` is unique itself), newest or
    largest first unless `descending` is False. Columns are ORM attributes or table columns."""

    column: Any
    tiebreak: Any = None
    descending: bool = True

    @classmethod
    def newest_first(cls, columns) -> Keyset:
        """By (created_at, id): `columns` is an ORM model or a table's `.c`."""
        return cls(columns.created_at, columns.id)

    # -- cursors: an instant and an id (base64 JSON), or a positive 64-bit integer -------------
    def encode(self, row) -> str:
        value = getattr(row, self.column.key)
        if self.tiebreak is None:
            return str(value)
        raw = json.dumps([value.isoformat(), getattr(row, self.tiebreak.key)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple:
        if self.tiebreak is None:
            try:
                value = int(cursor)
            except ValueError as exc:
                raise _bad_cursor() from exc
            if not 0 < value < 2**63:  # positive, and within a 64-bit column
                raise _bad_cursor()
            return (value,)
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            at, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
            when = datetime.fromisoformat(at)
            if when.tzinfo is None or not isinstance(ident, str):
                raise ValueError("bad cursor")
            return when, ident
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _bad_cursor() from exc

    # -- statements -----------------------------------------------------------------------------
    def _after(self, value, ident=None):
        beyond = (lambda col, v: col < v) if self.descending else (lambda col, v: col > v)
        if self.tiebreak is None:
            return beyond(self.column, value)
        return or_(beyond(self.column, value), and_(self.column == value, beyond(self.tiebreak, ident)))

    def _order(self):
        columns = (self.column,) if self.tiebreak is None else (self.column, self.tiebreak)
        return tuple(c.desc() if self.descending else c.asc() for c in columns)

    def page(self, stmt, limit: int, cursor: str | None):
        """`stmt` narrowed to one page: stable under inserts, no OFFSET. One row more than the
        page is asked for, to know whether another page follows."""
        if cursor:
            stmt = stmt.where(self._after(*self.decode(cursor)))
        return stmt.order_by(*self._order()).limit(limit + 1)

    def template(self, stmt, after_cursor: bool, limit: int):
        """`page` with bind parameters, for a statement built once per page size: run it with
        `params`. The page's size is written into the statement, not bound: PostgreSQL plans a
        prepared statement once only when its plan cannot depend on the values, and a `LIMIT`
        parameter had it plan every page anew (a third of a page's database time,
        bench/README.md)."""
        if after_cursor:
            ident = bindparam("after_id", type_=String) if self.tiebreak is not None else None
            stmt = stmt.where(self._after(bindparam("after_value", type_=self.column.type), ident))
        return stmt.order_by(*self._order()).limit(literal_column(str(int(limit) + 1), Integer))

    def params(self, cursor: str | None) -> dict:
        params: dict = {}
        if cursor:
            decoded = self.decode(cursor)
            params["after_value"] = decoded[0]
            if self.tiebreak is not None:
                params["after_id"] = decoded[1]
        return params

    def page_of(self, rows: list, limit: int) -> dict:
        """The rows of `page` as `{"items", "next_cursor"}`: at most `limit` items."""
        next_cursor = self.encode(rows[limit - 1]) if len(rows) > limit else None
        return {"items": rows[:limit], "next_cursor": next_cursor}

    def fetch(self, stmt, limit: int, cursor: str | None) -> dict:
        """One page of the ORM objects `stmt` selects."""
        return self.page_of(list(db.session.scalars(self.page(stmt, limit, cursor))), limit)


def paginate(stmt, model, limit: int, cursor: str | None) -> dict:
    """One page of `model`'s rows, newest first: the order of most lists."""
    return Keyset.newest_first(model).fetch(stmt, limit, cursor)
