"""Responses in the service's conventions (README, "Conventions"): JSON bodies in their wire
shape, ETags from the version, and If-Match on every PATCH."""

from __future__ import annotations

from typing import cast

from flask import Response, current_app, request

from casesvc.common.messages import _
from casesvc.errors import Problem


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response from a body already in its wire shape. A view returning this passes
    flask-smorest's `@blp.response` untouched: the schema there documents the body (and a test
    holds the two equal) without dumping it again."""
    response = cast(Response, current_app.json.response(body))  # the app's response_class
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


# --- ETag / If-Match --------------------------------------------------------------------------


def etag_for(obj) -> str:
    return f'"{obj.version}"'


def etag_header(obj) -> dict[str, str]:
    return {"ETag": etag_for(obj)}


IF_MATCH_HEADER = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string", "minLength": 1},  # an empty one is as good as none: 428
    "description": "The ETag of the representation the change is based on",
}


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
        raise Problem(
            428, "precondition-required", "Precondition Required", _("Send If-Match with the ETag you last read.")
        )
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" not in tags and etag_for(obj) not in tags:
        raise Problem(
            412,
            "precondition-failed",
            "Precondition Failed",
            _("The resource has changed since you read it; read it again."),
            headers=etag_header(obj),
        )
