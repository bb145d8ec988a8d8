from __future__ import annotations

from flask_smorest import Blueprint

from casesvc.auth.principal import current_principal, requires
from casesvc.cases.schemas import CaseSchema
from casesvc.cases.views import case_response
from casesvc.common.pagination import page_schema
from casesvc.continuity import service
from casesvc.continuity.schemas import CaseMoveSchema, HandoverSchema, HistoryQuery, TransferSchema
from casesvc.errors import problem_documented
from casesvc.policy import Action
from casesvc.web import transactional

blp = Blueprint(
    "continuity",
    __name__,
    url_prefix="/api/v1/cases/<case_id>",
    description="Handing over the lead, moving a case to another municipality, and its history",
)


@blp.route("/handover", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.HANDOVER_CASE)
@blp.arguments(HandoverSchema())
@blp.response(200, CaseSchema)
@problem_documented(blp, 409, "The case is closed (`case-closed`)")
def handover_case(data, case_id):
    """Hand the lead over to another participant (lead agency or coordinator; 409 on a closed case)"""
    return case_response(service.hand_over(current_principal(), case_id, data["to"], data["reason"]))


@blp.route("/transfer", methods=["POST"])
@transactional(idempotent=True)
@requires(Action.TRANSFER_CASE)
@requires(Action.WRITE_CONSENT)  # it records a consent
@blp.arguments(TransferSchema())
@blp.response(200, CaseSchema)
@problem_documented(blp, 409, "The case is closed (`case-closed`)")
def transfer_case(data, case_id):
    """Move the case to another municipality and a lead there, on the consent it carries (lead agency or
    coordinator; needs consents:write too)"""
    return case_response(service.transfer(current_principal(), case_id, data))


@blp.route("/history", methods=["GET"])
@requires(Action.READ_HISTORY)
@blp.arguments(HistoryQuery(), location="query")
@blp.response(200, page_schema(CaseMoveSchema))
def case_history(args, case_id):
    """The case's handovers and transfers, newest first"""
    return service.history(current_principal(), case_id, args)
