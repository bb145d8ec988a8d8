from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.auth.principal import current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.emergency import service
from casesvc.emergency.schemas import (
    EmergencyAccessSchema,
    EmergencyQuery,
    EmergencyRequestSchema,
    ReviewedAccessSchema,
    ReviewRequestSchema,
)
from casesvc.policy import Action
from casesvc.web import transactional

blp = Blueprint("emergency", __name__, url_prefix="/api/v1", description="Emergency access (break the glass)")


@blp.route("/cases/<case_id>/emergency-access", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.READ_CASE)
@blp.arguments(EmergencyRequestSchema())
@blp.response(201, EmergencyAccessSchema)
@blp.alt_response(
    409,
    description="Nothing to break: the lead agency, a participant under consent, "
    "or an emergency access of the caller still running",
)
def open_access(data, case_id):
    """Open a case in an emergency: the caller alone reads it, as a consent covering general and
    health would let, for CASESVC_EMERGENCY_ACCESS_HOURS"""
    access = service.open_access(current_principal(), case_id, data["reason"])
    return access, 201, {"Location": url_for("emergency.get_access", access_id=access.id)}


@blp.route("/audit/emergency-accesses", methods=["GET"])
@blp.arguments(EmergencyQuery(), location="query")
@blp.response(200, page_schema(ReviewedAccessSchema))
def list_accesses(args):
    """Emergency accesses opened in the window, newest first, with reason and review (auditor, admin)"""
    return service.list_accesses(current_principal(), args)


@blp.route("/audit/emergency-accesses/<access_id>", methods=["GET"])
@blp.response(200, ReviewedAccessSchema)
def get_access(access_id):
    """One emergency access with its reason and review (auditor, admin)"""
    return service.access_for_review(current_principal(), access_id)


@blp.route("/audit/emergency-accesses/<access_id>/review", methods=["POST"])
@transactional(idempotent=True)
@blp.arguments(ReviewRequestSchema())
@blp.response(201, ReviewedAccessSchema)
@blp.alt_response(409, description="Already reviewed")
def review_access(data, access_id):
    """Record the review of an emergency access: once (auditor, admin)"""
    principal = current_principal()
    access = service.review(
        principal, service.access_for_review(principal, access_id), data["finding"], data.get("comment")
    )
    return access, 201, {"Location": url_for("emergency.get_access", access_id=access.id)}
