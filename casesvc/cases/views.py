from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.access import case_for, event_in_read
from casesvc.auth.principal import current_principal, requires
from casesvc.cases import service
from casesvc.cases.schemas import CasePatchSchema, CaseQuery, CaseSchema, case_body, case_item
from casesvc.common.pagination import page_schema
from casesvc.common.schemas import TransitionSchema
from casesvc.errors import problem_documented
from casesvc.policy import Action
from casesvc.web import etag_header, if_match_documented, json_response, require_if_match, transactional

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Cases, participants and status")


def case_response(case, status: int = 200):
    headers = etag_header(case)
    if status == 201:
        headers["Location"] = url_for("cases.get_case", case_id=case.id)
    return json_response(case_body(case), status, headers)


@blp.route("", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.CREATE_CASE)
@blp.arguments(CaseSchema())
@blp.response(201, CaseSchema)
def create_case(data):
    """Open a case; the caller's agency becomes the lead"""
    return case_response(service.open_case(current_principal(), data), 201)


@blp.route("", methods=["GET"])
@requires(Action.READ_CASE)
@blp.arguments(CaseQuery(), location="query")
@blp.response(200, page_schema(CaseSchema))
def list_cases(args):
    """Cases the caller may see, newest first"""
    page = service.list_cases(current_principal(), args)
    return json_response({"items": [case_item(case) for case in page["items"]], "next_cursor": page["next_cursor"]})


@blp.route("/<case_id>", methods=["GET"])
@event_in_read(Action.READ_CASE)
@requires(Action.READ_CASE)
@blp.response(200, CaseSchema)
def get_case(case_id):
    """One case"""
    return case_response(service.get_case(current_principal(), case_id))


@blp.route("/<case_id>", methods=["PATCH"])
@transactional()
@requires(Action.UPDATE_CASE)
@blp.arguments(CasePatchSchema())
@blp.response(200, CaseSchema)
@if_match_documented(blp)
def patch_case(data, case_id):
    """Change summary, participants or coordinator (lead agency or coordinator; needs If-Match)"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.UPDATE_CASE)
    require_if_match(case)
    return case_response(service.update_case(principal, case, data))


@blp.route("/<case_id>/transitions", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.TRANSITION_CASE)
@blp.arguments(TransitionSchema())
@blp.response(200, CaseSchema)
@problem_documented(
    blp,
    409,
    "A move the state machine does not allow: `current` and `to` name the states, "
    "`allowed` the moves there are; or the case changed meanwhile",
)
def transition_case(data, case_id):
    """Move the case to another status (409 lists the allowed ones)"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.TRANSITION_CASE)
    return case_response(service.transition_case(principal, case, data["to"], data.get("reason")))
