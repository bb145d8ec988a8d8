"""One commit per request (rollback on any error), and Idempotency-Key on creating POSTs: the key
is reserved before the work (`idempotency.py`), and the stored response commits with the work it
answers."""

from __future__ import annotations

import functools

from flask import Response, request

from casesvc.audit.service import stage_for_commit
from casesvc.auth.principal import current_principal
from casesvc.common.connection import commit_request, rollback_request
from casesvc.common.messages import _
from casesvc.errors import field_error
from casesvc.web import idempotency


def transactional(idempotent: bool = False, secret_fields: tuple[str, ...] = ()):
    """Wrap a writing view: one commit when it succeeds, rollback on any error.
    With `idempotent`, honour `Idempotency-Key`: reserved before the work, its stored response
    part of the same commit. `secret_fields` name body fields (a password) kept out of the
    stored fingerprint."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get("Idempotency-Key") if idempotent else None
            reservation: str | None = None
            if key is not None:
                if not 1 <= len(key) <= 255:
                    raise field_error("Idempotency-Key", _("Must be 1 to 255 characters."))
                held = idempotency.reserve(
                    current_principal().subject, key, request.endpoint or "", idempotency.fingerprint(secret_fields)
                )
                if isinstance(held, Response):
                    return held
                reservation = held
            try:
                response = view(*args, **kwargs)
                if not isinstance(response, Response) or response.status_code >= 400:
                    rollback_request()
                    if reservation is not None:
                        idempotency.release(reservation)
                    return response
                touched = stage_for_commit(response, last=reservation is None)
                if reservation is not None:
                    idempotency.complete(reservation, response, touched)
                commit_request()
                return response
            except BaseException:
                rollback_request()
                if reservation is not None:
                    idempotency.release(reservation)
                raise

        # the OpenAPI document declares the key, and the 409 of a write (casesvc/openapi_doc.py)
        wrapper.idempotent = idempotent  # type: ignore[attr-defined]  # a marker the document reads
        wrapper.writes = True  # type: ignore[attr-defined]
        return wrapper

    return decorator
