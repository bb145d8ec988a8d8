"""Reactions: the rules of contracts, conditions and signatures, and their state machine."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from casesvc import audit, signals
from casesvc.access.case_view import CaseView
from casesvc.cases.models import Case
from casesvc.cases.states import require_open
from casesvc.common.messages import _
from casesvc.common.pagination import filter_equal, paginate
from casesvc.common.states import StateMachine
from casesvc.common.timeutil import add_years, age_on, oslo_today
from casesvc.errors import conflict, field_error, not_found, validation_error
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.policy import Principal
from casesvc.reactions.models import Condition, Reaction, Signature
from casesvc.vocabulary import CONTRACT_TYPES, CONTROLLING_CONDITIONS
from casesvc.youths.models import Youth

MAX_CONTRACT_YEARS = 2
REACTION_STATES = StateMachine(
    "reaction",
    {"draft": ("active", "cancelled"), "active": ("completed", "breached", "cancelled")},
    needs_reason=frozenset({"completed", "breached", "cancelled"}),
)
# A concern conversation is voluntary: it has no breach concept (docs/domain.md).
NO_BREACH_TYPES = frozenset({"concern_conversation"})


def _check_dates(
    reaction_type: str, starts_on: date, ends_on: date | None, probation_ends_on: date | None, scheduled_at, held_at
) -> None:
    errors: dict[str, list[str]] = {}
    if ends_on is not None and ends_on < starts_on:
        errors["ends_on"] = [_("Must not be before starts_on.")]
    if reaction_type in CONTRACT_TYPES:
        if ends_on is None:
            errors["ends_on"] = [_("A contract needs an end date.")]
        elif ends_on > add_years(starts_on, MAX_CONTRACT_YEARS):
            errors["ends_on"] = [
                _("A contract lasts at most %(years)s years from starts_on.", years=MAX_CONTRACT_YEARS)
            ]
    if probation_ends_on is not None:
        if probation_ends_on < starts_on:
            errors["probation_ends_on"] = [_("Must not be before starts_on.")]
        elif probation_ends_on > add_years(starts_on, MAX_CONTRACT_YEARS):
            errors["probation_ends_on"] = [
                _("Probation lasts at most %(years)s years from starts_on.", years=MAX_CONTRACT_YEARS)
            ]
    if reaction_type != "concern_conversation":
        for name, value in (("scheduled_at", scheduled_at), ("held_at", held_at)):
            if value is not None:
                errors[name] = [_("Only a concern conversation is scheduled or held.")]
    if errors:
        raise validation_error(errors)


def _conditions(case: Case, legal_basis: str, items: list[dict]) -> list[Condition]:
    errors: dict[str, list[str]] = {}
    participants = set(case.participant_codes)
    for index, item in enumerate(items):
        if item["kind"] in CONTROLLING_CONDITIONS and legal_basis == "consent":
            errors[f"conditions.{index}.kind"] = [
                _(
                    "A %(kind)s condition needs a legal basis other than consent "
                    "(voluntary drug testing of youth has no legal basis).",
                    kind=item["kind"],
                )
            ]
        if item["responsible_agency"] not in participants:
            errors[f"conditions.{index}.responsible_agency"] = [_("Must be an agency participating in the case.")]
    if errors:
        raise validation_error(errors)
    return [Condition(position=i, **item) for i, item in enumerate(items)]


def _signatures(
    principal: Principal, items: list[dict], field: str = "signatures.{index}.signed_on"
) -> list[Signature]:
    """`field` names a bad date in the request: an item of a reaction's list, or a signature alone."""
    today = oslo_today()
    for index, item in enumerate(items):
        if item["signed_on"] > today:
            raise field_error(field.format(index=index), _("A signature cannot be dated in the future."))
    parties = [item["party"] for item in items]
    if len(set(parties)) != len(parties):
        raise field_error("signatures", _("Each party signs once."))
    return [Signature(recorded_by_agency=principal.agency, **item) for item in items]


def _starts_on(data: dict) -> date:
    """As given; else the Oslo date of a concern conversation's `scheduled_at`; else today in Oslo."""
    if data.get("starts_on") is not None:
        return data["starts_on"]
    if data["type"] == "concern_conversation" and data.get("scheduled_at") is not None:
        return oslo_today(data["scheduled_at"])
    return oslo_today()


def create_reaction(principal: Principal, case: Case, data: dict) -> Reaction:
    require_open(case)
    starts_on = _starts_on(data)
    _check_dates(
        data["type"],
        starts_on,
        data.get("ends_on"),
        data.get("probation_ends_on"),
        data.get("scheduled_at"),
        data.get("held_at"),
    )
    reaction = Reaction(
        case_id=case.id,
        type=data["type"],
        legal_basis=data["legal_basis"],
        police_reference=data.get("police_reference"),
        starts_on=starts_on,
        ends_on=data.get("ends_on"),
        probation_ends_on=data.get("probation_ends_on"),
        scheduled_at=data.get("scheduled_at"),
        held_at=data.get("held_at"),
        status="draft",
        created_by_agency=principal.agency,
        conditions=_conditions(case, data["legal_basis"], data.get("conditions") or []),
        signatures=_signatures(principal, data.get("signatures") or []),
    )
    db.session.add(reaction)
    db.session.flush()
    return reaction


def reaction_in(case: Case | CaseView, reaction_id: str) -> Reaction:
    reaction = db.session.get(Reaction, reaction_id)
    if reaction is None or reaction.case_id != case.id:
        raise not_found(_("No such reaction."))
    return reaction


def list_reactions(case: Case | CaseView, args: dict) -> dict:
    stmt = filter_equal(select(Reaction).where(Reaction.case_id == case.id), Reaction, args, ("status", "type"))
    return audit.noted_page(paginate(stmt, Reaction, args["limit"], args.get("cursor")))


def update_reaction(case: Case, reaction: Reaction, data: dict) -> Reaction:
    if reaction.status not in ("draft", "active"):
        raise conflict(
            "reaction-closed", _("The reaction is %(status)s; it can no longer change.", status=reaction.status)
        )
    merged = {
        name: data.get(name, getattr(reaction, name))
        for name in ("starts_on", "ends_on", "probation_ends_on", "scheduled_at", "held_at")
    }
    _check_dates(reaction.type, **merged)
    if "conditions" in data and not _same_conditions(reaction.conditions, data["conditions"]):
        if reaction.status != "draft":
            raise conflict("reaction-not-draft", _("Conditions change only while the reaction is a draft."))
        in_use = db.session.scalar(
            select(Event.id).where(Event.condition_id.in_([c.id for c in reaction.conditions])).limit(1)
        )
        if in_use is not None:
            # replacing would delete conditions that logged events point to: events are never lost
            raise conflict(
                "conditions-in-use", _("Events are logged against these conditions; they cannot be replaced.")
            )
        reaction.conditions = _conditions(case, reaction.legal_basis, data["conditions"])
        flag_modified(reaction, "status")  # the conditions are part of the reaction: its version (ETag) moves on
    moved = any(getattr(reaction, name) != value for name, value in merged.items())
    for name, value in merged.items():
        setattr(reaction, name, value)
    if "police_reference" in data:
        reaction.police_reference = data["police_reference"]
    db.session.flush()
    if moved:
        signals.reaction_changed.send(reaction)
    return reaction


_CONDITION_FIELDS = ("kind", "description", "every_days", "responsible_agency")


def _same_conditions(current: list[Condition], given: list[dict]) -> bool:
    """The conditions a client sent back as it read them: nothing to replace (their ids, and the
    events logged against them, stay), whatever the reaction's status."""
    return len(current) == len(given) and all(
        all(getattr(c, name) == g.get(name) for name in _CONDITION_FIELDS) for c, g in zip(current, given, strict=True)
    )


def add_signature(principal: Principal, reaction: Reaction, data: dict) -> Signature:
    if reaction.status not in ("draft", "active"):
        raise conflict(
            "reaction-closed", _("The reaction is %(status)s; it takes no more signatures.", status=reaction.status)
        )
    signature = _signatures(principal, [data], field="signed_on")[0]
    if any(s.party == signature.party for s in reaction.signatures):
        raise field_error("party", _("The %(party)s has already signed this reaction.", party=signature.party))
    reaction.signatures.append(signature)
    # a new signature changes the reaction: its version (and so its ETag) moves on
    flag_modified(reaction, "status")
    db.session.flush()
    return signature


def missing_signatures(reaction: Reaction, youth_birth_date: date, on: date) -> list[str]:
    """Who still has to sign before a contract may become active."""
    if reaction.type not in CONTRACT_TYPES:
        return []
    signed = {s.party for s in reaction.signatures}
    needed = ["youth"] + (["guardian"] if age_on(youth_birth_date, on) < 18 else [])
    return [party for party in needed if party not in signed]


def transition_reaction(case: Case, reaction: Reaction, to: str, reason: str | None) -> Reaction:
    allowed = REACTION_STATES.allowed_from(reaction.status)
    if reaction.type in NO_BREACH_TYPES:
        allowed = tuple(s for s in allowed if s != "breached")
    REACTION_STATES.check(reaction.status, to, reason, allowed)
    if to == "active":
        require_open(case)
        birth_date = db.session.execute(select(Youth.birth_date).where(Youth.id == case.youth_id)).scalar_one()
        missing = missing_signatures(reaction, birth_date, oslo_today())
        if missing:
            raise conflict(
                "signatures-required",
                _("The contract becomes active only when signed by: %(parties)s.", parties=", ".join(missing)),
                missing=missing,
            )
    reaction.status = to
    reaction.status_reason = reason
    db.session.flush()
    if to == "active":
        signals.reaction_activated.send(reaction)
    if to in ("completed", "breached", "cancelled"):
        signals.reaction_closed.send(reaction)
    return reaction


# What an open reaction becomes when its case closes: `(draft, active)` by the case's outcome.
_ON_CASE_CLOSED = {
    "completed": ("cancelled", "completed"),
    "breached": ("cancelled", "breached"),
    "withdrawn": ("cancelled", "cancelled"),
}


def close_with_case(case: Case, outcome: str, reason: str | None) -> None:
    """A closed case leaves no reaction open: a draft is cancelled, an active one ends as the case
    did (completed, breached — a concern conversation, which cannot be breached, completed — or
    cancelled when the case is withdrawn), each with the case's reason."""
    draft_to, active_to = _ON_CASE_CLOSED[outcome]
    open_reactions = db.session.scalars(
        select(Reaction)
        .where(Reaction.case_id == case.id, Reaction.status.in_(("draft", "active")))
        .order_by(Reaction.created_at)
    ).all()
    for reaction in open_reactions:
        to = draft_to if reaction.status == "draft" else active_to
        if to == "breached" and reaction.type in NO_BREACH_TYPES:
            to = "completed"
        transition_reaction(case, reaction, to, f"The case was closed as {outcome}: {reason}")
