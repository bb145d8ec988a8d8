"""HTTP conventions of CONTRACT §2: ETag/If-Match, keyset pagination, one commit per request,
Idempotency-Key."""
from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import datetime

import marshmallow as ma
from flask import Response, current_app, request
from sqlalchemy import Integer, String, and_, bindparam, or_

from casesvc.common import idempotency
from casesvc.common.idempotency import IdempotencyKey  # noqa: F401  (the model, where it always was)
from casesvc.errors import Problem, field_error
from casesvc.extensions import db

def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response from a body already in its wire shape. A view returning this passes
    flask-smorest's `@blp.response` untouched: the schema there documents the body (and a test
    holds the two equal) without dumping it again."""
    response = current_app.json.response(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


# --- ETag / If-Match --------------------------------------------------------------------------


def etag_for(obj) -> str:
    return f'"{obj.version}"'


def etag_header(obj) -> dict[str, str]:
    return {"ETag": etag_for(obj)}


IF_MATCH_HEADER = {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"},
                   "description": "The ETag of the representation the change is based on"}


def if_match_documented(blp):
    """The OpenAPI of a PATCH that needs If-Match (`require_if_match`): the header, 428 without
    it, 412 when it names an older version. Put it under the view's other `blp` decorators."""

    def decorate(view):
        view = blp.alt_response(428, response="PRECONDITION_REQUIRED")(view)
        view = blp.alt_response(412, response="PRECONDITION_FAILED")(view)
        return blp.doc(parameters=[IF_MATCH_HEADER])(view)

    return decorate


def require_if_match(obj) -> None:
    """PATCH must name the version it changes: missing is 428, stale is 412."""
    header = request.headers.get("If-Match")
    if not header:
        raise Problem(428, "precondition-required", "Precondition Required",
                      "Send If-Match with the ETag you last read.")
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" not in tags and etag_for(obj) not in tags:
        raise Problem(412, "precondition-failed", "Precondition Failed",
                      "The resource has changed since you read it; read it again.",
                      headers=etag_header(obj))


# --- Keyset pagination ------------------------------------------------------------------------

MAX_LIMIT = 200


class Limit(ma.fields.Integer):
    """`?limit=`: the page size, default 50. Above MAX_LIMIT a page holds MAX_LIMIT items (a
    larger ask is not an error); less than 1, or not a number, is 422."""

    def __init__(self, **kwargs):
        super().__init__(load_default=50, validate=ma.validate.Range(min=1), metadata={
            "description": f"Page size, default 50; a value above {MAX_LIMIT} is taken as {MAX_LIMIT}"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return min(super()._deserialize(value, attr, data, **kwargs), MAX_LIMIT)


class PageArgs(ma.Schema):
    limit = Limit()
    cursor = ma.fields.String(load_default=None)


def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return ma.Schema.from_dict({
        "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
        "next_cursor": ma.fields.String(allow_none=True, required=True),
    }, name=name)


def encode_cursor(created_at: datetime, ident: str) -> str:
    raw = json.dumps([created_at.isoformat(), ident]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(ident, str):
            raise ValueError("bad cursor")
        return when, ident
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise field_error("cursor", "Not a cursor this service issued.") from exc


def filter_equal(stmt, model, args: dict, names: tuple[str, ...]):
    """The `?name=value` filters of a list: equality on the column of that name, when given."""
    for name in names:
        if args.get(name):
            stmt = stmt.where(getattr(model, name) == args[name])
    return stmt


def _after(columns, created, ident):
    return or_(columns.created_at < created, and_(columns.created_at == created, columns.id < ident))


def keyset_page(stmt, columns, limit: int, cursor: str | None):
    """`stmt` narrowed to one page, newest first by (created_at, id): stable under inserts, no
    OFFSET. One row more than the page is asked for, to know whether another page follows.
    `columns` has `created_at` and `id`: an ORM model, or a table's `.c`."""
    if cursor:
        stmt = stmt.where(_after(columns, *decode_cursor(cursor)))
    return stmt.order_by(columns.created_at.desc(), columns.id.desc()).limit(limit + 1)


def keyset_page_template(stmt, columns, after_cursor: bool):
    """`keyset_page` with bind parameters, for a statement built once: run it with
    `keyset_params(limit, cursor)`."""
    if after_cursor:
        stmt = stmt.where(_after(columns, bindparam("after_created", type_=columns.created_at.type),
                                 bindparam("after_id", type_=String)))
    return stmt.order_by(columns.created_at.desc(), columns.id.desc()).limit(bindparam("page_rows", type_=Integer))


def keyset_params(limit: int, cursor: str | None) -> dict:
    params = {"page_rows": limit + 1}
    if cursor:
        params["after_created"], params["after_id"] = decode_cursor(cursor)
    return params


def page_of(rows: list, limit: int, key: str = "id") -> dict:
    """The rows of `keyset_page` as a page: at most `limit` items and the cursor of the next.
    `key` names the row attribute that breaks ties after `created_at` (the column given as `id`)."""
    next_cursor = (encode_cursor(rows[limit - 1].created_at, getattr(rows[limit - 1], key))
                   if len(rows) > limit else None)
    return {"items": rows[:limit], "next_cursor": next_cursor}


def paginate(stmt, model, limit: int, cursor: str | None) -> dict:
    return page_of(list(db.session.scalars(keyset_page(stmt, model, limit, cursor))), limit)


# --- One commit per request, and Idempotency-Key ----------------------------------------------
# The key's reservation, replay and release: casesvc.common.idempotency.


def transactional(idempotent: bool = False, secret_fields: tuple[str, ...] = ()):
    """Wrap a writing view: one commit when it succeeds, rollback on any error.
    With `idempotent`, honour `Idempotency-Key`: reserved before the work, its stored response
    part of the same commit. `secret_fields` name body fields (a password) kept out of the
    stored fingerprint."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from casesvc.audit.service import stage_for_commit
            from casesvc.auth.principal import current_principal

            key = request.headers.get("Idempotency-Key") if idempotent else None
            reservation = None
            if key is not None:
                if not 1 <= len(key) <= 255:
                    raise field_error("Idempotency-Key", "Must be 1 to 255 characters.")
                reservation = idempotency.reserve(current_principal().subject, key, request.endpoint or "",
                                                  idempotency.fingerprint(secret_fields))
                if isinstance(reservation, Response):
                    return reservation
            try:
                response = view(*args, **kwargs)
                if not isinstance(response, Response) or response.status_code >= 400:
                    db.session.rollback()
                    if reservation is not None:
                        idempotency.release(reservation)
                    return response
                stage_for_commit(response)
                if reservation is not None:
                    idempotency.complete(reservation, response)
                db.session.commit()
                return response
            except BaseException:
                db.session.rollback()
                if reservation is not None:
                    idempotency.release(reservation)
                raise

        return wrapper

    return decorator
