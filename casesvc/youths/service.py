"""Youth records: registration with a validated national id, and visibility (invariant 6)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from casesvc import audit
from casesvc.access import accesses_to_cases_of, enforce, youth_for
from casesvc.access.clauses import visible_youths_clause
from casesvc.common.messages import _
from casesvc.common.pagination import paginate
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.errors import Problem, field_error
from casesvc.extensions import db
from casesvc.policy import Action, Principal, check_role, youth_change_decision, youth_visible
from casesvc.youths import national_id as nid
from casesvc.youths.models import Guardian, Youth


def _guardians(items: list[dict]) -> list[Guardian]:
    return [Guardian(position=i, **item) for i, item in enumerate(items)]


def checked_identity(
    principal: Principal, national_id: str, birth_date, youth_id: str | None = None, mismatch: str = "birth_date"
) -> str:
    """The national id as stored, once it is valid (both check digits), agrees with `birth_date`
    and is not another youth's (409; with that youth's id only for a caller who may see it).
    `mismatch` names the field blamed when the two disagree: the one the client changed."""
    try:
        parsed = nid.parse(national_id, current_app.config["CASESVC"].allow_synthetic_ids)
    except nid.InvalidNationalId as exc:
        raise field_error(
            "national_id", _("Not a valid fødselsnummer or D-number: %(reason)s.", reason=exc.args[0])
        ) from exc
    if not parsed.matches(birth_date):
        raise field_error(mismatch, _("The national id's day, month and year and the birth date do not match."))
    holder = select(Youth.id).where(Youth.national_id == parsed.number)
    existing = db.session.scalar(holder.where(Youth.id != youth_id) if youth_id else holder)
    if existing is not None:
        _refuse_known_number(principal, db.session.get_one(Youth, existing))
    return parsed.number


def _refuse_known_number(principal: Principal, holder: Youth) -> None:
    """409 for a number another youth holds. Its id goes only to a caller who may see that youth;
    anyone else learns no more than the uniqueness of the number forces (README: Security,
    hardening), and the attempt is audited as denied with the youth's id, so that the access
    review counts it as a probe."""
    if youth_visible(principal, holder.created_by_agency, accesses_to_cases_of(principal, holder)):
        audit.note(youth_id=holder.id)
        raise Problem(
            409,
            "youth-exists",
            "Conflict",
            _("A youth with this national id is already registered."),
            existing_id=holder.id,
            id=holder.id,
        )
    audit.note(youth_id=holder.id, outcome="denied")
    raise Problem(409, "youth-exists", "Conflict", _("A youth with this national id is already registered."))


def _served(principal: Principal, municipality: str) -> str:
    """A youth is registered in (or moved to) a municipality the caller's agency serves."""
    if municipality not in principal.municipalities:
        raise field_error("municipality", _("Your agency does not serve this municipality."))
    return municipality


def register_youth(principal: Principal, data: dict) -> Youth:
    enforce(check_role(principal, Action.CREATE_YOUTH))
    _served(principal, data["municipality"])
    number = checked_identity(principal, data["national_id"], data["birth_date"])
    youth = Youth(
        national_id=number,
        given_name=data["given_name"],
        family_name=data["family_name"],
        birth_date=data["birth_date"],
        municipality=data["municipality"],
        school=data.get("school"),
        created_by_agency=principal.agency,
        guardians=_guardians(data.get("guardians") or []),
    )
    db.session.add(youth)
    db.session.flush()
    return youth


def list_youths(principal: Principal, args: dict) -> dict:
    enforce(check_role(principal, Action.READ_YOUTH))
    stmt = select(Youth).where(visible_youths_clause(principal, oslo_today()))
    if args.get("national_id"):
        # a search by number: one that finds nothing the caller may see counts in the review
        audit.note(resource_type="youth_search")
        stmt = stmt.where(Youth.national_id == args["national_id"])
    return audit.noted_page(paginate(stmt, Youth, args["limit"], args.get("cursor")))


def youth_to_change(principal: Principal, youth_id: str) -> Youth:
    """The youth, for a caller who may change it: 404 as for reading, 403 when the caller sees
    it but is neither lead nor coordinator of one of its cases."""
    youth = youth_for(principal, youth_id, Action.WRITE_YOUTH)
    enforce(youth_change_decision(principal, youth.created_by_agency, accesses_to_cases_of(principal, youth)))
    return youth


def update_youth(principal: Principal, youth: Youth, data: dict) -> Youth:
    if "municipality" in data and data["municipality"] != youth.municipality:
        _served(principal, data["municipality"])
    national_id, birth_date = data.get("national_id", youth.national_id), data.get("birth_date", youth.birth_date)
    if (national_id, birth_date) != (youth.national_id, youth.birth_date):
        # a D-number replaced by a fødselsnummer, or a typing error: checked as at registration
        changed_alone = "national_id" if "birth_date" not in data else "birth_date"
        youth.national_id = checked_identity(principal, national_id, birth_date, youth.id, changed_alone)
        youth.birth_date = birth_date
    for name in ("given_name", "family_name", "municipality", "school"):
        if name in data:
            setattr(youth, name, data[name])
    if "guardians" in data:
        youth.guardians = _guardians(data["guardians"])
        youth.updated_at = utcnow()  # the guardians are part of the youth: its version (ETag) moves on
    db.session.flush()
    return youth
