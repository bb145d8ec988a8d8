"""What happens around every request: a request id, authentication before anything is parsed,
the media-type check, security headers and metrics."""
from __future__ import annotations

import time
import uuid

from flask import Flask, g, request

from casesvc.audit.service import record_response
from casesvc.auth.principal import current_principal
from casesvc.errors import Problem
from casesvc.extensions import db
from casesvc.ops.metrics import observe_request

API_PREFIX = "/api/v1/"
# /auth/revoke: RFC 7009 is form-encoded, and holding the token is the credential to revoke it
PUBLIC_API_PATHS = frozenset({"/api/v1/auth/token", "/api/v1/auth/revoke", "/api/v1/openapi.json",
                              "/api/v1/vocabulary"})
JSON_TYPES = ("application/json", "application/merge-patch+json")
READ_METHODS = frozenset({"GET", "HEAD"})
# every other API request leaves an audit event, allowed or not
UNAUDITED_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/vocabulary"})


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _before():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else str(uuid.uuid4())
        request.environ["casesvc.request_id"] = g.request_id
        if not request.path.startswith(API_PREFIX) or request.path in PUBLIC_API_PATHS:
            return None
        if request.method in READ_METHODS and not db.session().in_transaction():
            # A read runs in autocommit: no BEGIN and COMMIT round trips around its statements
            # (each still sees committed data only), and its audit event is durable the moment
            # it is inserted. Writes keep one transaction for the work and its event. (A session
            # already in a transaction, as when the app context is shared, just goes on in it.)
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        # Authenticate before the body is parsed: a caller without a token learns nothing,
        # not even which fields a request would need. Role and scope follow per view
        # (`auth.principal.requires`), also before the body is parsed.
        current_principal()
        if request.method in ("POST", "PUT", "PATCH") and _has_body() and request.mimetype not in JSON_TYPES:
            raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                          "Send the request body as application/json.")
        return None

    @app.after_request
    def _audit(response):
        # Registered first, so it runs last: the event is durable before the response leaves.
        # If it cannot be written, the request fails rather than go unrecorded.
        if request.path.startswith(API_PREFIX) and request.path not in UNAUDITED_PATHS:
            record_response(response.status_code)
        return response

    @app.after_request
    def _after(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith(API_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
        started = g.get("started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule else "unmatched"
            observe_request(request.method, rule, response.status_code, time.perf_counter() - started)
        return response


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"
