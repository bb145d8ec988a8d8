from __future__ import annotations

import base64
import hashlib
import hmac
import re

import marshmallow as ma
from flask import Flask, Response, current_app, request
from flask_smorest import Blueprint
from flask_swagger_ui import get_swaggerui_blueprint
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from casesvc.common.messages import _
from casesvc.errors import Problem, problem_response
from casesvc.ops.metrics import scrape_registry
from casesvc.reminders.metrics import ReminderCollector
from casesvc.version import __version__
from casesvc.vocabulary import VOCABULARY

blp = Blueprint("service", __name__, description="Health, metrics and the vocabulary")
_REMINDERS = ReminderCollector()


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True)


class AliveSchema(HealthSchema):
    version = ma.fields.String(required=True, metadata={"description": "The running casesvc version"})


class LabelSchema(ma.Schema):
    code = ma.fields.String(required=True)
    nb = ma.fields.String(required=True, metadata={"description": "Norwegian (bokmål)"})
    en = ma.fields.String(required=True, metadata={"description": "English"})


class VocabularySchema(ma.Schema):
    groups = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.List(ma.fields.Nested(LabelSchema)), required=True
    )


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, AliveSchema)
def healthz():
    """The process is alive, and its version"""
    return {"status": "ok", "version": __version__}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, HealthSchema)
@blp.doc(
    responses={
        "503": {
            "description": "The database cannot be reached (`unavailable`); try again after `Retry-After` seconds",
            "headers": {"Retry-After": "Retry-After"},
        }
    }
)
def readyz():
    """The database is reachable"""
    if not current_app.extensions["casesvc.readiness"].ready():
        return problem_response(
            503,
            "unavailable",
            "Service Unavailable",
            _("The database cannot be reached."),
            {"Retry-After": str(current_app.config["CASESVC"].retry_after)},
        )
    return {"status": "ready"}


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    security=[{}, {"metricsToken": []}],
    description="Prometheus text format. Open by default; needs "
    "`Authorization: Bearer $CASESVC_METRICS_TOKEN` when that is set.",
    responses={
        "200": {
            "description": "The metrics in Prometheus' text format (version 0.0.4)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "401": {"description": "CASESVC_METRICS_TOKEN is set and was not sent (`unauthorized`)"},
    },
)
def metrics():
    """Prometheus metrics"""
    expected = current_app.config["CASESVC"].metrics_token
    if expected:
        scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise Problem(
                401,
                "unauthorized",
                "Unauthorized",
                _("The metrics token is required."),
                headers={"WWW-Authenticate": "Bearer"},
            )
    # content_type, not mimetype: the latter would add a second charset parameter, which
    # Prometheus refuses to parse
    return Response(generate_latest(scrape_registry(_REMINDERS)), content_type=CONTENT_TYPE_LATEST)


@blp.route("/api/v1/vocabulary", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, VocabularySchema)
def vocabulary():
    """Every code of the API with its bokmål and English label"""
    return {
        "groups": {
            group: [{"code": code, "nb": nb, "en": en} for code, (nb, en) in labels.items()]
            for group, labels in VOCABULARY.items()
        }
    }


def register_docs(app: Flask) -> None:
    """Swagger UI 5 (it reads OpenAPI 3.1), served from the package's own files, no CDN."""
    app.register_blueprint(get_swaggerui_blueprint("/docs", "/api/v1/openapi.json", config={"app_name": "casesvc API"}))
    # the page itself at /docs too, not only a redirect to /docs/ (its assets have absolute paths)
    app.add_url_rule("/docs", "docs", app.view_functions["swagger_ui.show"])

    @app.after_request
    def _docs_headers(response):
        # the page runs the service's own scripts only (its one inline script by hash), fetches
        # from the service only, and is never framed (clickjacking; every response refuses
        # framing: casesvc/requests.py)
        path = request.path
        if path == "/docs" or path.startswith("/docs/"):
            response.headers.setdefault("Content-Security-Policy", docs_policy(response))
        return response


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(response) -> str:
    scripts = ""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        hashes = [
            base64.b64encode(hashlib.sha256(body).digest()).decode()
            for body in _INLINE_SCRIPT.findall(response.get_data())
        ]
        scripts = "".join(f" 'sha256-{h}'" for h in hashes)
    return (
        "default-src 'self'; script-src 'self'" + scripts + "; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
