"""One commit per request (rollback on any error), and Idempotency-Key on creating POSTs: the
stored response commits with the work it answers."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from flask import Response, current_app, request
from sqlalchemy import Index, Integer, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.audit.service import stage_for_commit
from casesvc.auth.principal import current_principal
from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import utcnow
from casesvc.errors import field_error
from casesvc.extensions import db

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class IdempotencyKey(IdMixin, CreatedMixin, db.Model):
    """The stored response of a creating POST, replayed when the same key comes again."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (Index("ux_idempotency_owner_key", "owner", "key", unique=True),)


_REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")


def _fingerprint(secret_fields: tuple[str, ...] = ()) -> str:
    """What identifies the request body. The values of `secret_fields` (a password) enter only
    as an HMAC under the service's key: the stored fingerprint is no fast hash of them."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"null")
        if secret_fields and isinstance(body, dict):
            key = current_app.config["SECRET_KEY"].encode()
            body = {name: hmac.new(key, json.dumps(value).encode(), hashlib.sha256).hexdigest()
                    if name in secret_fields else value for name, value in body.items()}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = raw
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _find_key(owner: str, key: str) -> IdempotencyKey | None:
    return db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.expires_at > utcnow()))


def _replay(stored: IdempotencyKey, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise field_error("Idempotency-Key", "This key was used with another request (another endpoint or body).")
    response = Response(stored.body, status=stored.status_code)
    for name, value in json.loads(stored.headers).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def transactional(idempotent: bool = False, secret_fields: tuple[str, ...] = ()):
    """Wrap a writing view: one commit when it succeeds, rollback on any error.
    With `idempotent`, honour `Idempotency-Key`: the stored response is part of the same commit.
    `secret_fields` name body fields (a password) kept out of the stored fingerprint."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get("Idempotency-Key") if idempotent else None
            owner = fingerprint = None
            if key is not None:
                if not 1 <= len(key) <= 255:
                    raise field_error("Idempotency-Key", "Must be 1 to 255 characters.")
                owner, fingerprint = current_principal().subject, _fingerprint(secret_fields)
                stored = _find_key(owner, key)
                if stored is not None:
                    return _replay(stored, fingerprint)
            try:
                response = view(*args, **kwargs)
                if not isinstance(response, Response) or response.status_code >= 400:
                    db.session.rollback()
                    return response
                stage_for_commit(response)
                if key is not None:
                    db.session.execute(delete(IdempotencyKey).where(
                        IdempotencyKey.owner == owner, IdempotencyKey.key == key))
                    db.session.add(IdempotencyKey(
                        owner=owner, key=key, fingerprint=fingerprint, status_code=response.status_code,
                        body=response.get_data(as_text=True),
                        headers=json.dumps({h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}),
                        expires_at=utcnow() + IDEMPOTENCY_WINDOW))
                db.session.commit()
                return response
            except IntegrityError:
                db.session.rollback()
                if key is not None:  # a concurrent request with the same key won the race
                    stored = _find_key(owner, key)
                    if stored is not None:
                        return _replay(stored, fingerprint)
                raise
            except BaseException:
                db.session.rollback()
                raise

        return wrapper

    return decorator
