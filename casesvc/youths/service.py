"""Youth records: registration with a validated national id, and visibility (invariant 6)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from casesvc import audit
from casesvc.auth.principal import enforce
from casesvc.cases.models import Case
from casesvc.common.http import paginate
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.errors import Problem, field_error, not_found
from casesvc.extensions import db
from casesvc.policy import (Action, CaseAccess, Decision, Principal, check_role, visible_youths_clause, youth_read_basis,
                            youth_visible)
from casesvc.youths import national_id as nid
from casesvc.youths.models import Guardian, Youth


def _guardians(items: list[dict]) -> list[Guardian]:
    return [Guardian(position=i, **item) for i, item in enumerate(items)]


def load_youth(youth_id: str) -> Youth:
    youth = db.session.get(Youth, youth_id)
    if youth is None:
        raise not_found("youth")
    audit.note(youth_id=youth.id)  # recorded whether allowed or refused
    return youth


def accesses_to_cases_of(principal: Principal, youth: Youth) -> list[CaseAccess]:
    """How the caller relates to each of the youth's cases (invariant 6 needs all of them)."""
    from casesvc.cases.service import access_to

    cases = db.session.scalars(select(Case).where(Case.youth_id == youth.id)).all()
    return [access_to(principal, case) for case in cases]


def youth_for(principal: Principal, youth_id: str, action: Action) -> Youth:
    enforce(check_role(principal, action))
    youth = load_youth(youth_id)
    accesses = accesses_to_cases_of(principal, youth)
    if not youth_visible(principal, youth.created_by_agency, accesses):
        enforce(Decision(False, 404, "not-found", "No such youth."))
    basis = youth_read_basis(principal, youth.created_by_agency, accesses)
    if basis is not None and not action.reads:  # an emergency access writes nothing (CONTRACT §10)
        enforce(Decision(False, 404, "not-found", "No such youth."))
    audit.note(basis=basis)
    return youth


def checked_identity(national_id: str, birth_date, youth_id: str | None = None, mismatch: str = "birth_date") -> str:
    """The national id as stored, once it is valid (both check digits), agrees with `birth_date`
    and is not another youth's (409 with that youth's id). `mismatch` names the field blamed when
    the two disagree: the one the client changed."""
    try:
        parsed = nid.parse(national_id, current_app.config["CASESVC"].allow_synthetic_ids)
    except nid.InvalidNationalId as exc:
        raise field_error("national_id", f"Not a valid fødselsnummer or D-number: {exc}.") from exc
    if not parsed.matches(birth_date):
        raise field_error(mismatch, "The national id's day, month and year and the birth date do not match.")
    holder = select(Youth.id).where(Youth.national_id == parsed.number)
    existing = db.session.scalar(holder.where(Youth.id != youth_id) if youth_id else holder)
    if existing is not None:
        raise Problem(409, "youth-exists", "Conflict", "A youth with this national id is already registered.",
                      existing_id=existing, id=existing)
    return parsed.number


def register_youth(principal: Principal, data: dict) -> Youth:
    enforce(check_role(principal, Action.CREATE_YOUTH))
    try:
        number = checked_identity(data["national_id"], data["birth_date"])
    except Problem as exc:
        if exc.slug == "youth-exists":
            _note_existing(principal, exc.extra["existing_id"])
        raise
    youth = Youth(national_id=number, given_name=data["given_name"], family_name=data["family_name"],
                  birth_date=data["birth_date"], municipality=data["municipality"], school=data.get("school"),
                  created_by_agency=principal.agency, guardians=_guardians(data.get("guardians") or []))
    db.session.add(youth)
    db.session.flush()
    return youth


def _note_existing(principal: Principal, youth_id: str) -> None:
    """A 409 youth-exists names the youth in the audit event; told to a user who cannot see that
    youth, it is recorded as `denied`: the access-log review counts it as a probe (CONTRACT §13)."""
    youth = db.session.get(Youth, youth_id)
    seen = youth is not None and youth_visible(principal, youth.created_by_agency,
                                                accesses_to_cases_of(principal, youth))
    audit.note(youth_id=youth_id, **({} if seen else {"outcome": "denied"}))


def list_youths(principal: Principal, args: dict) -> dict:
    enforce(check_role(principal, Action.READ_YOUTH))
    stmt = select(Youth).where(visible_youths_clause(principal, oslo_today()))
    if args.get("national_id"):
        # a search by number: one that finds nothing the caller may see counts in the review
        audit.note(resource_type="youth_search")
        stmt = stmt.where(Youth.national_id == args["national_id"])
    return audit.noted_page(paginate(stmt, Youth, args["limit"], args.get("cursor")))


def update_youth(youth: Youth, data: dict) -> Youth:
    national_id, birth_date = data.get("national_id", youth.national_id), data.get("birth_date", youth.birth_date)
    if (national_id, birth_date) != (youth.national_id, youth.birth_date):
        # a D-number replaced by a fødselsnummer, or a typing error: checked as at registration
        changed_alone = "national_id" if "birth_date" not in data else "birth_date"
        youth.national_id = checked_identity(national_id, birth_date, youth.id, changed_alone)
        youth.birth_date = birth_date
    for name in ("given_name", "family_name", "municipality", "school"):
        if name in data:
            setattr(youth, name, data[name])
    if "guardians" in data:
        youth.guardians = _guardians(data["guardians"])
        youth.updated_at = utcnow()  # the guardians are part of the youth: its version (ETag) moves on
    db.session.flush()
    return youth
