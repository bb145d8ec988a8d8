from __future__ import annotations

from flask import Response, request, stream_with_context
from flask_smorest import Blueprint

from casesvc.auth.principal import current_principal, requires
from casesvc.policy import Action
from casesvc.record import service
from casesvc.record.html import html_record
from casesvc.record.render import json_record

blp = Blueprint("record", __name__, url_prefix="/api/v1", description="The youth's record (right of access)")

# a page with no script, no external asset: the browser is told so too
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@blp.route("/youths/<youth_id>/record", methods=["GET"])
@requires(Action.READ_YOUTH)
@blp.doc(
    responses={
        "200": {
            "description": "Everything the caller's agency holds about the youth, and the access "
            "log for it: JSON, or with `Accept: text/html` a printable page in "
            "bokmål (streamed)",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        "403": {"description": "Not the lead agency of one of the youth's cases, nor a coordinator taking part in one"},
        "404": {"description": "No such youth, or not one the caller may see"},
    }
)
def youth_record(youth_id):
    """The youth's record for a request for access (GDPR art. 15): for the lead agency of one of
    the youth's cases or a coordinator taking part in one"""
    plan = service.plan_record(current_principal(), youth_id)
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = Response(stream_with_context(html_record(plan)), mimetype="text/html")
        response.headers["Content-Security-Policy"] = HTML_POLICY
    else:
        response = Response(stream_with_context(json_record(plan)), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
