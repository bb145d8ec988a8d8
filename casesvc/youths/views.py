from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.access import youth_for
from casesvc.auth.principal import current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.errors import problem_documented
from casesvc.policy import Action
from casesvc.web import etag_header, if_match_documented, require_if_match, transactional
from casesvc.youths import service
from casesvc.youths.schemas import YouthPatchSchema, YouthQuery, YouthSchema

blp = Blueprint("youths", __name__, url_prefix="/api/v1/youths", description="Youth records and guardians")


def youth_response(youth, status: int = 200):
    headers = etag_header(youth)
    if status == 201:
        headers["Location"] = url_for("youths.get_youth", youth_id=youth.id)
    return youth, status, headers


@blp.route("", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.CREATE_YOUTH)
@blp.arguments(YouthSchema())
@blp.response(201, YouthSchema)
@problem_documented(
    blp, 409, "A youth with this national id exists; `existing_id` names it when the caller may see that youth"
)
def create_youth(data):
    """Register a youth (409 when the national id is known; `existing_id` only for a caller who may see that youth)"""
    return youth_response(service.register_youth(current_principal(), data), 201)


@blp.route("", methods=["GET"])
@requires(Action.READ_YOUTH)
@blp.arguments(YouthQuery(), location="query")
@blp.response(200, page_schema(YouthSchema))
def list_youths(args):
    """Youths the caller may see; `national_id` finds by exact number"""
    return service.list_youths(current_principal(), args)


@blp.route("/<youth_id>", methods=["GET"])
@requires(Action.READ_YOUTH)
@blp.response(200, YouthSchema)
def get_youth(youth_id):
    """One youth"""
    return youth_response(youth_for(current_principal(), youth_id, Action.READ_YOUTH))


@blp.route("/<youth_id>", methods=["PATCH"])
@transactional()
@requires(Action.WRITE_YOUTH)
@blp.arguments(YouthPatchSchema())
@blp.response(200, YouthSchema)
@problem_documented(
    blp, 409, "Another youth holds this national id; `existing_id` names it when the caller may see that youth"
)
@if_match_documented(blp)
def patch_youth(data, youth_id):
    """Change a youth's details (needs If-Match)"""
    principal = current_principal()
    youth = service.youth_to_change(principal, youth_id)
    require_if_match(youth)
    return youth_response(service.update_youth(principal, youth, data))
