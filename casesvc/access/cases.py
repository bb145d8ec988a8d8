"""Loading a case together with the caller's access: the facts the policy needs (the case's
municipality, lead and participants, the consents naming the caller's agency, today), its
decision, and the 404/403 the caller may learn. The ORM path (`case_for`, to change a case or
what hangs under it) and the read path (`readable_case`, a CaseView) decide alike."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from casesvc import audit
from casesvc.access.case_view import CaseView, load_case_view
from casesvc.access.decisions import enforce
from casesvc.cases.models import Case
from casesvc.common.connection import request_connection
from casesvc.common.direct import DirectStatement
from casesvc.common.messages import _
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.emergency.facts import emergency_facts_for
from casesvc.errors import not_found
from casesvc.extensions import db
from casesvc.policy import (
    Action,
    CaseAccess,
    CaseFacts,
    ConsentFacts,
    Principal,
    Relation,
    authorize,
    case_access,
    check_role,
)


def consent_facts_for(case_id: str, agency: str | None) -> tuple[ConsentFacts, ...]:
    """The consents of a case that name `agency`: all the policy needs to judge that agency."""
    if agency is None:
        return ()
    rows = _CONSENTS_NAMING.rows(request_connection(), {"case_id": case_id, "agency": agency})
    return tuple(
        ConsentFacts(
            frozenset({agency}), bool(health), given, expires, withdrawn is not None, refused=decision == "refused"
        )
        for given, expires, withdrawn, health, decision in rows
    )


# on every read or entry of a case by a participant that is not its lead: on the driver's cursor
_CONSENTS_NAMING = DirectStatement(
    select(Consent.given_on, Consent.expires_on, Consent.withdrawn_at, Consent.covers_health, Consent.decision)
    .join(ConsentAgency, ConsentAgency.consent_id == Consent.id)
    .where(Consent.case_id == bindparam("case_id"), ConsentAgency.agency_code == bindparam("agency"))
)


def facts_of(case: Case | CaseView, agency: str | None, with_consents: bool = True) -> CaseFacts:
    return CaseFacts(
        case.municipality,
        case.lead_agency,
        frozenset(case.participant_codes),
        consent_facts_for(case.id, agency) if with_consents else (),
    )


def access_to(principal: Principal, case: Case | CaseView, with_consents: bool = True) -> CaseAccess:
    facts, today = facts_of(case, principal.agency, with_consents), oslo_today()
    access = case_access(principal, facts, today)
    if access.relation is Relation.CONSENT_REQUIRED:
        # only a participant the consents leave out can be under an emergency access (README "Emergency access")
        facts = replace(facts, emergency=emergency_facts_for(case.id, principal.subject))
        access = case_access(principal, facts, today, utcnow())
    return access


# Actions that read entries, where `health` (a consent covering health) decides what is seen.
ENTRY_READS = frozenset({Action.READ_EVENTS, Action.READ_NOTES})


def _consents_matter(principal: Principal, case: Case | CaseView, action: Action, sees_entries: bool) -> bool:
    """Skip the consent query where its answer cannot change the decision: an outsider is hidden
    whatever the consents say, and the lead needs them only to know whether health entries reach
    it — when it reads entries, or writes one that refers to an entry (`sees_entries`: a
    correction names the entry it corrects, which the writer must be able to see). (The policy
    matrix tests hold this equal to always asking; tests/followups hold the correction.)"""
    if principal.agency not in case.participant_codes or case.municipality not in principal.municipalities:
        return False
    return principal.agency != case.lead_agency or action in ENTRY_READS or sees_entries


def _authorized(principal: Principal, case: Case | CaseView, action: Action, sees_entries: bool = False) -> CaseAccess:
    audit.note(case_id=case.id, youth_id=case.youth_id)  # recorded whether allowed or refused
    access = access_to(principal, case, _consents_matter(principal, case, action, sees_entries))
    decision = authorize(principal, action, access)
    if decision and access.relation is Relation.EMERGENCY:
        audit.note(basis="emergency")  # a read under an emergency access is marked as such
    enforce(decision)
    return access


def case_for(principal: Principal, case_id: str, action: Action) -> tuple[Case, CaseAccess]:
    """Load a case to change it or what hangs under it (the ORM object), or raise what the
    caller may learn (404, 403)."""
    enforce(check_role(principal, action))
    case = db.session.get(Case, case_id, options=[joinedload(Case.participants)])
    if case is None:
        raise not_found(_("No such case."))
    return case, _authorized(principal, case, action)


def readable_case(
    principal: Principal, case_id: str, action: Action, sees_entries: bool = False
) -> tuple[CaseView, CaseAccess]:
    """`case_for` for reads: the case as a CaseView, or what the caller may learn (404, 403).
    `sees_entries`: a write of an entry that refers to another entry (a correction), whose
    access must tell whether health entries reach the writer."""
    enforce(check_role(principal, action))
    case = load_case_view(case_id)
    if case is None:
        raise not_found(_("No such case."))
    return case, _authorized(principal, case, action, sees_entries)
