"""Loading a youth together with the caller's access (invariant 6: through a case the caller
may see, or to the agency that registered the youth)."""

from __future__ import annotations

from sqlalchemy import select

from casesvc import audit
from casesvc.access.cases import access_to
from casesvc.access.decisions import enforce
from casesvc.cases.models import Case
from casesvc.common.messages import _
from casesvc.errors import not_found
from casesvc.extensions import db
from casesvc.policy import Action, CaseAccess, Decision, Principal, check_role, youth_read_basis, youth_visible
from casesvc.youths.models import Youth


def load_youth(youth_id: str) -> Youth:
    youth = db.session.get(Youth, youth_id)
    if youth is None:
        raise not_found(_("No such youth."))
    audit.note(youth_id=youth.id)  # recorded whether allowed or refused
    return youth


def accesses_to_cases_of(principal: Principal, youth: Youth) -> list[CaseAccess]:
    """How the caller relates to each of the youth's cases (invariant 6 needs all of them)."""
    cases = db.session.scalars(select(Case).where(Case.youth_id == youth.id)).all()
    return [access_to(principal, case) for case in cases]


def youth_for(principal: Principal, youth_id: str, action: Action) -> Youth:
    enforce(check_role(principal, action))
    youth = load_youth(youth_id)
    accesses = accesses_to_cases_of(principal, youth)
    if not youth_visible(principal, youth.created_by_agency, accesses):
        enforce(Decision(False, 404, "not-found", "No such youth."))
    basis = youth_read_basis(principal, youth.created_by_agency, accesses)
    if basis is not None and not action.reads:  # an emergency access writes nothing (README "Emergency access")
        enforce(Decision(False, 404, "not-found", "No such youth."))
    audit.note(basis=basis)
    return youth
