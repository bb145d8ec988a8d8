"""What happens around every request: a request id, authentication before anything is parsed,
the media-type check, input no view should meet (NUL, an oversized chunked body), security
headers and metrics."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from casesvc.audit.service import record_response
from casesvc.auth.principal import current_principal
from casesvc.auth.views import oauth_response
from casesvc.common.connection import close_for_read, open_for_read, open_for_write
from casesvc.common.jsonio import (
    NUL_DETAIL,
    SURROGATE_DETAIL,
    json_has_lone_surrogate,
    json_has_nul,
    query_has_nul,
)
from casesvc.common.messages import _
from casesvc.errors import DATABASE_UNAVAILABLE, Problem, database_unavailable
from casesvc.extensions import db
from casesvc.logging_setup import log_request
from casesvc.ops.metrics import observe_request

API_PREFIX = "/api/v1/"
# A caller's X-Request-Id is kept only when it is plain: it reaches logs, the audit chain and its
# CSV export, so it starts with a letter or digit (no formula) and holds no space or quote.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# /auth/revoke: RFC 7009 is form-encoded, and holding the token is the credential to revoke it
PUBLIC_API_PATHS = frozenset(
    {"/api/v1/auth/token", "/api/v1/auth/revoke", "/api/v1/openapi.json", "/api/v1/vocabulary"}
)
# the OAuth endpoints answer errors as RFC 6749 does, and take form-encoded bodies too
OAUTH_PATHS = frozenset({"/api/v1/auth/token", "/api/v1/auth/revoke"})
JSON_TYPES = ("application/json", "application/merge-patch+json")
READ_METHODS = frozenset({"GET", "HEAD"})
# every other API request leaves an audit event, allowed or not
UNAUDITED_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/vocabulary"})


def register_request_hooks(app: Flask) -> None:
    # registered before every other `after_request` hook, so it runs after them all: the request's
    # log line (README: Logs) tells the status that was sent
    app.after_request(log_request)

    @app.before_request
    def _before():
        g.started = time.perf_counter()
        req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per attribute
        incoming = req.environ.get("HTTP_X_REQUEST_ID", "")
        g.request_id = request_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())
        req.environ["casesvc.request_id"] = request_id
        path = req.path
        if not path.startswith(API_PREFIX) or not_for_a_view():
            return None
        if path in PUBLIC_API_PATHS:
            return _check_input()
        if not (db.session.registry.has() and db.session().in_transaction()):
            # A read runs in autocommit, on a connection of its own (casesvc/common/connection.py).
            # A write keeps one transaction for the work and its event, begun late on PostgreSQL
            # (its reads before it; a row and its event in one statement). (A session already in
            # a transaction, as when the app context is shared, just goes on in it; none is made
            # just to ask.)
            if req.method in READ_METHODS:
                open_for_read()
            else:
                open_for_write()
        # Authenticate before the body is parsed: a caller without a token learns nothing,
        # not even which fields a request would need. Role and scope follow per view
        # (`auth.principal.requires`), also before the body is parsed.
        current_principal()
        if req.method in ("POST", "PUT", "PATCH") and _has_body() and req.mimetype not in JSON_TYPES:
            raise Problem(
                415, "unsupported-media-type", "Unsupported Media Type", _("Send the request body as application/json.")
            )
        return _check_input()

    @app.teardown_request
    def _end_read(exc):
        close_for_read()

    @app.after_request
    def _audit(response):
        # Registered first, so it runs last: the event is durable before the response leaves.
        # If it cannot be written, the request fails rather than go unrecorded.
        path = request.path
        if path.startswith(API_PREFIX) and path not in UNAUDITED_PATHS and request.method != "OPTIONS":
            try:
                record_response(response.status_code)
            except DATABASE_UNAVAILABLE as exc:
                # no event, no answer: what could not be recorded is not sent (README "Operations")
                return database_unavailable(exc, db)
        return response

    @app.after_request
    def _after(response):
        req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per attribute
        headers = response.headers
        headers["X-Request-Id"] = g.get("request_id", "")
        _add_missing(headers, API_HEADERS if req.path.startswith(API_PREFIX) else EVERY_RESPONSE_HEADERS)
        started = g.get("started")
        if started is not None:
            rule = req.url_rule.rule if req.url_rule else "unmatched"
            observe_request(req.method, rule, response.status_code, time.perf_counter() - started)
        return response


# what every response says unless its view said otherwise: no sniffing of its type, never in a
# frame (clickjacking); and an API answer is never stored by a cache
EVERY_RESPONSE_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"))
API_HEADERS = (*EVERY_RESPONSE_HEADERS, ("Cache-Control", "no-store"))


def _add_missing(headers, defaults) -> None:
    """`headers.setdefault` for each of `defaults`, in one pass over the headers (werkzeug's
    raises and catches an exception for every header not yet there)."""
    present = {name.lower() for name, _value in headers}
    for name, value in defaults:
        if name.lower() not in present:
            headers.add(name, value)


def not_for_a_view() -> bool:
    """A request no view will answer needs no token: a CORS preflight (`OPTIONS`, which browsers
    send without one, answered with `Allow` and, for an allowed origin, the CORS headers), and a
    path or method that matches no route (404 or 405 whoever asks: no route tells nothing)."""
    return request.method == "OPTIONS" or request.routing_exception is not None


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


def _check_input():
    """What no view should meet: NUL in the path, the query, a form field or anywhere in a JSON
    body is 400, on SQLite as on PostgreSQL (which cannot store it), so is half a surrogate pair
    in a JSON body (no UTF-8 database stores it), and a body over the limit is 413 however it
    is sent. A read costs three substring checks; a body is read here once
    and served to the view from the cache."""
    query = request.query_string
    if "\x00" in request.path or query_has_nul(query):
        return _nul_refused()
    if request.method in ("POST", "PUT", "PATCH") and _has_body():
        body = _read_body()
        if request.is_json:
            if json_has_nul(body):
                return _nul_refused()
            if json_has_lone_surrogate(body):
                raise Problem(400, "bad-request", "Bad Request", SURROGATE_DETAIL)
        elif request.mimetype == "application/x-www-form-urlencoded" and any(  # the OAuth endpoints
            "\x00" in name or "\x00" in value for name, value in request.form.items(multi=True)
        ):
            return _nul_refused()
    return None


def _nul_refused():
    if request.path in OAUTH_PATHS:  # RFC 6749 §5.2 errors there, as for any malformed request
        return oauth_response({"error": "invalid_request", "error_description": NUL_DETAIL}, 400)
    raise Problem(400, "bad-request", "Bad Request", NUL_DETAIL)


def _read_body() -> bytes:
    """The whole body (cached for the view). werkzeug cuts a body sent without Content-Length
    (chunked) at MAX_CONTENT_LENGTH without a word, which would leave a truncated body to parse:
    anything left unread after the limit makes the request too large, as with Content-Length."""
    body = request.get_data(cache=True)
    limit = request.max_content_length
    if (
        request.content_length is None
        and limit is not None
        and len(body) >= limit
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()
    return body
