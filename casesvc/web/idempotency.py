"""Idempotency-Key (README "The API at a glance"; README: Idempotency-Key): the key is reserved before the work.

A creating POST that sends a key first inserts a row unique per (user, key, endpoint) marked in
flight, in a transaction of its own that commits at once. Only the request whose insert wins
does the work; its stored response is written into that row in the work's own transaction, so
the two commit together. Whoever comes with the same key meanwhile meets the row: in flight,
it answers 409 `idempotency-key-in-use` with `Retry-After` (as Stripe does); done, it replays
the stored response; with another body, 422. A request that fails gives its reservation back,
so the key can be used again at once. A reservation left by a worker that died keeps the key
for `IN_FLIGHT_LEASE` (twice the server's request timeout: no live request is still at work by
then), after which the next request takes it over. The same on SQLite and PostgreSQL: the
unique index decides, no lock is held across the work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Response, current_app, request
from sqlalchemy import CursorResult, Index, Integer, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from casesvc.audit.service import note
from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime, new_id
from casesvc.common.messages import _
from casesvc.common.timeutil import utcnow
from casesvc.errors import Problem, field_error
from casesvc.extensions import Model, db

WINDOW = timedelta(hours=24)
IN_FLIGHT = 0  # status_code of a reservation whose request is still at work
IN_FLIGHT_LEASE = timedelta(seconds=60)
REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")


class IdempotencyKey(IdMixin, CreatedMixin, Model):
    """A reserved key, and once its request succeeded, the response replayed for it."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(128), nullable=False, default="", server_default="")
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (Index("ux_idempotency_owner_key_endpoint", "owner", "key", "endpoint", unique=True),)


def fingerprint(secret_fields: tuple[str, ...] = ()) -> str:
    """What identifies the request body. The values of `secret_fields` (a password) enter only
    as an HMAC under the service's key: the stored fingerprint is no fast hash of them."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"null")
        if secret_fields and isinstance(body, dict):
            key = current_app.config["SECRET_KEY"].encode()
            body = {
                name: hmac.new(key, json.dumps(value).encode(), hashlib.sha256).hexdigest()
                if name in secret_fields
                else value
                for name, value in body.items()
            }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = raw
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _own_session() -> Session:
    """A session on a connection of its own: what it commits is committed at once, whatever the
    request's own transaction does afterwards."""
    return Session(db.engine, expire_on_commit=False)


def reserve(owner: str, key: str, endpoint: str, print_: str) -> str | Response:
    """The id of the reservation this request now holds, or the response to give instead:
    a replay of the stored one. Raises 409 while another request holds the key, 422 when the
    key came with another request."""
    for _attempt in range(3):
        now = utcnow()
        reservation = IdempotencyKey(
            id=new_id(),
            owner=owner,
            key=key,
            endpoint=endpoint,
            fingerprint=print_,
            status_code=IN_FLIGHT,
            body="",
            headers="{}",
            created_at=now,
            expires_at=now + WINDOW,
        )
        try:
            with _own_session() as session, session.begin():
                session.add(reservation)
            return reservation.id
        except IntegrityError:
            pass
        with _own_session() as session, session.begin():
            held = session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.endpoint == endpoint
                )
            )
            if held is None:
                continue  # given back meanwhile: try again
            abandoned = held.status_code == IN_FLIGHT and held.created_at <= now - IN_FLIGHT_LEASE
            if held.expires_at <= now or abandoned:
                session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == held.id))
                continue
        if held.fingerprint != print_:
            raise field_error(
                "Idempotency-Key", _("This key was used with another request (another endpoint or body).")
            )
        if held.status_code == IN_FLIGHT:
            raise Problem(
                409,
                "idempotency-key-in-use",
                "Conflict",
                _("A request with this Idempotency-Key is still being processed; retry shortly."),
                headers={"Retry-After": "1"},
            )
        return _replay(held)
    raise Problem(
        409,
        "idempotency-key-in-use",
        "Conflict",
        _("A request with this Idempotency-Key is still being processed; retry shortly."),
        headers={"Retry-After": "1"},
    )


def _replay(stored: IdempotencyKey) -> Response:
    """The stored response again; its audit event names what the first request's named (the
    replay hands out the same record), kept beside the headers under a key no header can have."""
    headers = json.loads(stored.headers)
    touched = headers.pop(_TOUCHED, None)
    if touched is None:  # stored before the ids were kept: the created record's id, from its body
        try:
            created = json.loads(stored.body or "null")
        except ValueError:
            created = None
        touched = {"resource_id": created["id"]} if isinstance(created, dict) and "id" in created else {}
    note(**touched)
    response = Response(stored.body, status=stored.status_code)
    for name, value in headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


_TOUCHED = "@audit"  # "@" is not allowed in a header name (RFC 9110 token)


def complete(reservation_id: str, response: Response, touched: dict | None = None) -> None:
    """Store the response in the reservation, in the request's own transaction (it commits with
    the work), with the ids its audit event names (`touched`). A reservation taken over meanwhile
    (this request outlived its lease) is refused rather than have two requests' work stand for
    one key."""
    headers: dict[str, Any] = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
    if touched:
        headers[_TOUCHED] = touched
    done = cast(
        "CursorResult[Any]",
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == reservation_id, IdempotencyKey.status_code == IN_FLIGHT)
            .values(
                status_code=response.status_code,
                body=response.get_data(as_text=True),
                headers=json.dumps(headers),
                expires_at=utcnow() + WINDOW,
            )
        ),
    )
    if done.rowcount != 1:
        raise Problem(
            409,
            "idempotency-key-in-use",
            "Conflict",
            _("This request took too long and its Idempotency-Key was taken over; nothing was saved."),
        )


def release(reservation_id: str) -> None:
    """Give the key back after a failed request (after its rollback), so a retry may use it."""
    with _own_session() as session, session.begin():
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id == reservation_id, IdempotencyKey.status_code == IN_FLIGHT)
        )
