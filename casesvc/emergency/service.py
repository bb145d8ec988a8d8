"""Emergency access (README "Emergency access"): a participant without consent opens a case in an emergency,
for one user, for a few hours, read-only; auditors and admins review every access once.

What the access grants is the policy's (policy.case_access under EmergencyFacts); here the access
is opened, listed and reviewed."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, request
from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from casesvc import audit, signals
from casesvc.access import access_to, enforce
from casesvc.cases.models import Case
from casesvc.common.messages import _
from casesvc.common.pagination import paginate
from casesvc.common.timeutil import utcnow
from casesvc.emergency.models import EmergencyAccess, EmergencyReview
from casesvc.errors import conflict, forbidden, not_found
from casesvc.extensions import db
from casesvc.policy import Principal, check_audit_reader, emergency_access_decision

RESOURCE = "emergency_access"


def open_access(principal: Principal, case_id: str, reason: str) -> EmergencyAccess:
    case = db.session.get(Case, case_id, options=[joinedload(Case.participants)])
    if case is None:
        raise not_found(_("No such case."))
    audit.note(case_id=case.id, youth_id=case.youth_id)
    decision = emergency_access_decision(principal, access_to(principal, case))
    if decision.status == 409:
        raise conflict(decision.reason, decision.detail)
    enforce(decision)
    if principal.kind != "user":
        raise forbidden(_("An emergency access is granted to a person: log in as a user."), "users-only")
    now = utcnow()
    access = EmergencyAccess(
        case_id=case.id,
        user_id=principal.subject,
        agency_code=principal.agency,
        reason=reason.strip(),
        started_at=now,
        expires_at=now + timedelta(hours=current_app.config["CASESVC"].emergency_access_hours),
    )
    db.session.add(access)
    db.session.flush()
    audit.note(resource_type=RESOURCE, resource_id=access.id, basis="emergency")
    signals.emergency_access_opened.send(access, case=case)
    return access


def list_accesses(principal: Principal, args: dict) -> dict:
    enforce(check_audit_reader(principal))
    stmt = select(EmergencyAccess)
    if args.get("from_"):
        stmt = stmt.where(EmergencyAccess.started_at >= args["from_"])
    if args.get("to"):
        stmt = stmt.where(EmergencyAccess.started_at < args["to"])
    if args.get("reviewed") is not None:
        reviewed = exists().where(EmergencyReview.access_id == EmergencyAccess.id)
        stmt = stmt.where(reviewed if args["reviewed"] else ~reviewed)
    return audit.noted_page(paginate(stmt, EmergencyAccess, args["limit"], args.get("cursor")))


def access_for_review(principal: Principal, access_id: str) -> EmergencyAccess:
    enforce(check_audit_reader(principal))
    access = db.session.get(EmergencyAccess, access_id)
    if access is None:
        raise not_found(_("No such emergency access."))
    audit.note(resource_type=RESOURCE, resource_id=access.id, case_id=access.case_id)
    return access


def review(principal: Principal, access: EmergencyAccess, finding: str, comment: str | None) -> EmergencyAccess:
    """Once. The chain records that the review happened and its finding (in the event's action,
    e.g. `emergency.review_access.unjustified`); the comment stays here."""
    if access.review is not None:
        raise conflict("already-reviewed", _("This emergency access has been reviewed."))
    access.review = EmergencyReview(
        finding=finding, comment=(comment or "").strip() or None, reviewed_by=principal.subject, reviewed_at=utcnow()
    )
    db.session.flush()
    audit.note(action=f"{request.endpoint}.{finding}")
    return access
