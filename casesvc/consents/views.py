from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from casesvc.access import case_for, readable_case
from casesvc.auth.principal import current_principal, requires
from casesvc.common.pagination import page_schema
from casesvc.consents import service
from casesvc.consents.schemas import ConsentQuery, ConsentSchema
from casesvc.errors import problem_documented
from casesvc.policy import Action
from casesvc.web import etag_header, transactional

blp = Blueprint(
    "consents",
    __name__,
    url_prefix="/api/v1/cases/<case_id>/consents",
    description="Consents to share between agencies",
)


@blp.route("", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.WRITE_CONSENT)
@blp.arguments(ConsentSchema())
@blp.response(201, ConsentSchema)
def create_consent(data, case_id):
    """Record a consent (lead agency or coordinator)"""
    principal = current_principal()
    case, _ = case_for(principal, case_id, Action.WRITE_CONSENT)
    consent = service.record_consent(principal, case, data)
    return (
        consent,
        201,
        {"Location": url_for("consents.get_consent", case_id=case.id, consent_id=consent.id), **etag_header(consent)},
    )


@blp.route("", methods=["GET"])
@requires(Action.READ_CONSENTS)
@blp.arguments(ConsentQuery(), location="query")
@blp.response(200, page_schema(ConsentSchema))
def list_consents(args, case_id):
    """The case's consents, newest first"""
    case, _ = readable_case(current_principal(), case_id, Action.READ_CONSENTS)
    return service.list_consents(case, args)


@blp.route("/<consent_id>", methods=["GET"])
@requires(Action.READ_CONSENTS)
@blp.response(200, ConsentSchema)
def get_consent(case_id, consent_id):
    """One consent"""
    case, _ = readable_case(current_principal(), case_id, Action.READ_CONSENTS)
    consent = service.consent_in(case, consent_id)
    return consent, 200, etag_header(consent)


@blp.route("/<consent_id>/withdraw", methods=["POST"])
@transactional()
@requires(Action.WRITE_CONSENT)
@blp.response(200, ConsentSchema)
@problem_documented(
    blp,
    409,
    "The consent is already withdrawn (`consent-withdrawn`), or is a refusal, which grants nothing (`consent-refused`)",
)
def withdraw_consent(case_id, consent_id):
    """Withdraw a consent; it stops sharing on the very next request"""
    case, _ = case_for(current_principal(), case_id, Action.WRITE_CONSENT)
    consent = service.withdraw_consent(service.consent_in(case, consent_id))
    return consent, 200, etag_header(consent)
