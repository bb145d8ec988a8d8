"""problem+json (RFC 9457) for every error path.

Every error leaves the service as a problem document with a stable `type`; nothing from an
exception's text (SQL, paths, stack frames) is ever copied into a response. Its `title`, `detail`
and `errors` messages are in the caller's language (casesvc.i18n), the `type` in none.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, has_request_context, json, request
from flask_smorest import Api
from sqlalchemy.exc import (
    DataError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    TimeoutError as PoolTimeout,
)
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from casesvc import i18n
from casesvc.common.messages import N_, _

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

# Stable slugs for plain HTTP errors; the title is the HTTP reason phrase (TITLES).
_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


# The title of each status: its reason phrase, RFC 9110's names where werkzeug keeps older ones
# (413, 422), so a status has one title whoever raises it. Translated when sent.
TITLES = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    406: N_("Not Acceptable"),
    409: N_("Conflict"),
    411: N_("Length Required"),
    412: N_("Precondition Failed"),
    413: N_("Content Too Large"),
    414: N_("URI Too Long"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Content"),
    428: N_("Precondition Required"),
    429: N_("Too Many Requests"),
    431: N_("Request Header Fields Too Large"),
    500: N_("Internal Server Error"),
    501: N_("Not Implemented"),
    503: N_("Service Unavailable"),
}

# What an HTTP error werkzeug raises with its own wording (a path no route matches, a method it
# does not take, a body too large) says instead.
_HTTP_DETAILS = {
    400: _("The request cannot be understood."),
    404: _("No such resource."),
    405: _("This method is not allowed here."),
    406: _("The service cannot answer in a media type the request accepts."),
    411: _("This request needs a Content-Length header."),
    413: _("The request body is too large."),
    414: _("The address is too long."),
    415: _("The request body's media type is not supported."),
    431: _("The request's header fields are too large."),
    500: _("The service could not complete the request; it has been logged."),
}


class Problem(Exception):
    """An expected error with a stable type; raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail or title
        self.headers = headers or {}
        self.extra = extra
        self.field: str | None = None  # set by invalid_input(): the input at fault, for the command line


def not_found(detail: str = _("No such resource.")) -> Problem:
    """404; `detail` says what there is none of ("No such case.")."""
    return Problem(404, "not-found", "Not Found", detail)


def forbidden(detail: str, slug: str = "forbidden") -> Problem:
    return Problem(403, slug, "Forbidden", detail)


def invalid_fields(errors: dict[str, Any]) -> str:
    return _("The request has invalid fields: %(fields)s.", fields=", ".join(sorted(errors)))


def validation_error(errors: dict[str, list[str]], detail: str | None = None) -> Problem:
    return Problem(422, "validation-error", TITLES[422], detail or invalid_fields(errors), errors=errors)


def field_error(field: str, message: str) -> Problem:
    return validation_error({field: [message]}, detail=_("%(field)s: %(message)s", field=field, message=message))


def invalid_input(message: str, field: str | None = None) -> Problem:
    """Bad input, said in one line. `field` names the input at fault: the API reports the
    message under it, and the command line, when the message begins with the field's name,
    shows the command's option in its place ("kind must be…" becomes "--kind must be…")."""
    problem = validation_error({field or "_schema": [message]}, detail=message)
    problem.field = field
    return problem


def conflict(slug: str, detail: str, **extra: Any) -> Problem:
    return Problem(409, slug, "Conflict", detail, **extra)


def problem_response(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """The problem document, its title, detail and field messages in the caller's language."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": i18n.localize(title),
        "status": status,
        "detail": i18n.localize(detail),
    }
    body.update(extra)
    if isinstance(body.get("errors"), dict):
        body["errors"] = i18n.localize_errors(body["errors"])
    if has_request_context():  # an error outside a request (CLI) has no instance
        body.setdefault("instance", request.path)
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return i18n.mark_response(resp)


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow nest errors by location and field; clients want `{field: [msg]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


NOT_JSON = _("The request body is not valid JSON.")


class ProblemSchema(ma.Schema):
    """The problem document (documentation only; responses are built by problem_response).
    RFC 9457 extension members are allowed, and the ones the service sends are named."""

    class Meta:
        unknown = ma.INCLUDE  # documented as additionalProperties: true

    # sent only where they apply; the others are in every problem
    response_optional = ("errors", "current", "to", "allowed", "missing", "existing_id")

    type = ma.fields.String(metadata={"description": "A URI reference naming the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Field errors (422 only)"},
    )
    current = ma.fields.String(metadata={"description": "409 of a transition: the present state"})
    to = ma.fields.String(metadata={"description": "409 of a transition: the state asked for"})
    allowed = ma.fields.List(ma.fields.String(), metadata={"description": "409 of a transition: the moves there are"})
    missing = ma.fields.List(
        ma.fields.String(), metadata={"description": "409 signatures-required: who has yet to sign"}
    )
    existing_id = ma.fields.String(
        metadata={"description": "409 youth-exists: the youth holding the national id, for a caller who may see it"}
    )


def problem_documented(blp, status: int, description: str):
    """An alternative problem+json response of a view, for the OpenAPI document: its status, and
    what the problem's extension members say there."""
    return blp.alt_response(status, schema=ProblemSchema, content_type=PROBLEM_MEDIA_TYPE, description=description)


class ProblemApi(Api):
    """flask-smorest Api whose error responses are problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        """Document error responses as application/problem+json, as they are sent."""
        import http as _http

        from flask_smorest.utils import prepare_response

        for status in _http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            if status in (429, 503):
                response["headers"] = {"Retry-After": "Retry-After"}
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        if status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:  # RFC 9110: a 405 names what is allowed
            headers.setdefault("Allow", ", ".join(allowed))
        extra: dict[str, Any] = {}
        messages = data.get("errors") or data.get("messages")
        if status == 422 and messages:
            # webargs nests by location ("json", "query"); the field names are what matter
            if isinstance(messages, dict) and set(messages) <= {
                "json",
                "query",
                "form",
                "headers",
                "files",
                "path",
                "view_args",
            }:
                merged: dict[str, list[str]] = {}
                for location_messages in messages.values():
                    merged.update(flatten_messages(location_messages))
                extra["errors"] = merged
            else:
                extra["errors"] = flatten_messages(messages)
        detail = data.get("message") or error.description or error.name
        if detail == type(error).description:  # werkzeug's own wording: the service's instead
            detail = _HTTP_DETAILS.get(status, detail)
        if status == 400 and ("json" in str(detail).lower() or "json" in str(messages or "").lower()):
            detail = NOT_JSON
        if status == 422 and "errors" in extra:
            detail = invalid_fields(extra["errors"])
        return problem_response(
            status, _HTTP_SLUGS.get(status, "http-error"), TITLES.get(status, error.name), detail, headers, **extra
        )


def register_error_handlers(app: Flask, api: Api) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem_response(500, "internal-error", "Internal Server Error", _HTTP_DETAILS[500])

    @app.errorhandler(RecursionError)
    @app.errorhandler(ValueError)
    def _unparseable_body(exc: Exception):
        # webargs parses bodies with the json module and takes only its decoding errors for bad
        # JSON; JSON nested too deeply (RecursionError) or an integer of more digits than Python
        # converts (ValueError) escape it. The app's parser says whether the body was the cause.
        if request.is_json:
            try:
                current_app.json.loads(request.get_data(cache=True))
            except ValueError:
                return problem_response(400, "bad-request", "Bad Request", NOT_JSON)
        return _unexpected(exc)


# refused or dropped connections, a server shutting down, a timeout, a pool with no connection
# free: nothing was done that the client could rely on, and trying later helps
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def database_unavailable(exc: Exception, db) -> Response:
    """503 with Retry-After; the session is cleared for the next request."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 (the connection is gone; the pool replaces it)
        db.session.remove()
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, getattr(exc, "orig", exc).__class__.__name__
    )
    return problem_response(
        503,
        "database-unavailable",
        "Service Unavailable",
        _("The database cannot be reached just now; try again shortly."),
        {"Retry-After": str(current_app.config["CASESVC"].retry_after)},
    )


def register_database_error_handlers(app: Flask, db) -> None:
    """Database conflicts and values it refuses become problems without a word of SQL, and a
    database that cannot be reached is 503 with Retry-After (README "Operations")."""

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeout)
    def _unavailable(exc: Exception):
        return database_unavailable(exc, db)

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError):
        log.warning("integrity error on %s %s: %s", request.method, request.path, exc.orig.__class__.__name__)
        return problem_response(
            409, "conflict", "Conflict", _("The request conflicts with data stored meanwhile; read and try again.")
        )

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError):
        # Another request changed the row between this one's read and its write. 412 answers
        # a precondition the client sent (If-Match); without one, the honest answer is 409.
        if request.headers.get("If-Match"):
            return problem_response(
                412,
                "precondition-failed",
                "Precondition Failed",
                _("The resource has changed since you read it; read it again."),
            )
        return problem_response(
            409,
            "conflict",
            "Conflict",
            _("The resource was changed by another request meanwhile; read it and try again."),
        )

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    def _cannot_store(exc: Exception):
        # A value the database cannot hold or compare (a number beyond its column's range) that
        # validation let through. SQLite's driver says so with OverflowError, PostgreSQL with
        # DataError; either way it is the request's fault, and the answer the same.
        db.session.rollback()
        log.warning(
            "value out of range on %s %s: %s",
            request.method,
            request.path,
            getattr(exc, "orig", exc).__class__.__name__,
        )
        return problem_response(
            400, "bad-request", "Bad Request", _("A value in the request is out of range or cannot be stored.")
        )
