"""Consents: the basis for sharing between agencies (invariants 2 and 4)."""

from __future__ import annotations

from sqlalchemy import and_, not_, select

from casesvc import audit, signals
from casesvc.access.case_view import CaseView
from casesvc.cases.models import Case
from casesvc.common.messages import _
from casesvc.common.pagination import paginate
from casesvc.common.timeutil import age_on, oslo_today, utcnow
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.errors import conflict, not_found, validation_error
from casesvc.extensions import db
from casesvc.policy import Principal
from casesvc.youths.models import Youth

HEALTH_AGE_OF_MAJORITY = 16


def record_consent(principal: Principal, case: Case, data: dict) -> Consent:
    today = oslo_today()
    errors: dict[str, list[str]] = {}
    refused = data.get("decision", "given") == "refused"
    expires_on = data.get("expires_on")
    birth_date = db.session.execute(select(Youth.birth_date).where(Youth.id == case.youth_id)).scalar_one()
    # either the youth or a guardian may say no (docs/domain.md: ages and consent): the age rule is
    # for consents given
    if not refused and data["given_by"] == "youth" and age_on(birth_date, data["given_on"]) < HEALTH_AGE_OF_MAJORITY:
        errors["given_by"] = [
            _(
                "A youth under %(age)s needs a guardian's consent (given_by guardian or both).",
                age=HEALTH_AGE_OF_MAJORITY,
            )
        ]
    if expires_on is not None and expires_on < data["given_on"]:
        errors["expires_on"] = [_("Must not be before given_on.")]
    elif not refused and expires_on is not None and expires_on < today:  # the schema requires it when given
        errors["expires_on"] = [_("The consent has already expired.")]
    outsiders = sorted(set(data["agencies"]) - set(case.participant_codes))
    if outsiders:
        errors["agencies"] = [_("Not participating in the case: %(agencies)s.", agencies=", ".join(outsiders))]
    if errors:
        raise validation_error(errors)
    categories = set(data["categories"])
    consent = Consent(
        case_id=case.id,
        decision="refused" if refused else "given",
        given_by=data["given_by"],
        given_on=data["given_on"],
        # a refusal without an end date is stored with its own day (shown as none)
        expires_on=expires_on or data["given_on"],
        purpose=data["purpose"],
        covers_general="general" in categories,
        covers_health="health" in categories,
        recorded_by_agency=principal.agency,
        grants=[ConsentAgency(agency_code=code) for code in sorted(set(data["agencies"]))],
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def consent_in(case: Case | CaseView, consent_id: str) -> Consent:
    consent = db.session.get(Consent, consent_id)
    if consent is None or consent.case_id != case.id:
        raise not_found(_("No such consent."))
    return consent


def list_consents(case: Case | CaseView, args: dict) -> dict:
    stmt = select(Consent).where(Consent.case_id == case.id)
    if args.get("active") is not None:
        today = oslo_today()
        live = and_(
            Consent.decision == "given",
            Consent.withdrawn_at.is_(None),
            Consent.given_on <= today,
            Consent.expires_on >= today,
        )
        stmt = stmt.where(live if args["active"] else not_(live))
    if args.get("decision"):
        stmt = stmt.where(Consent.decision == args["decision"])
    return audit.noted_page(paginate(stmt, Consent, args["limit"], args.get("cursor")))


def withdraw_consent(consent: Consent) -> Consent:
    if consent.decision == "refused":
        raise conflict(
            "consent-refused",
            _("A refusal grants nothing and cannot be withdrawn; record a consent if one is given later."),
        )
    if consent.withdrawn_at is not None:
        raise conflict("consent-withdrawn", _("The consent is already withdrawn."))
    consent.withdrawn_at = utcnow()
    db.session.flush()
    signals.consent_withdrawn.send(consent)
    return consent
