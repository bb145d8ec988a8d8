"""What the caller's agency holds about a youth, read for the youth's request for access.

The record is read in parts as it is sent (`RecordPlan.cases()`, `RecordPlan.access_log()`):
events, notes and the access log are streamed from the database in batches, so memory stays
bounded however many entries the youth has. Which cases and entries go in is the policy's:
the cases the agency reads (lead, or under consent), their entries as `can_see_entry` allows
(the agency's own always), and the access-log events of the youth outside any case or on
those cases."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from casesvc import audit
from casesvc.access import access_to, enforce, load_youth
from casesvc.access.clauses import visible_entries_clause
from casesvc.audit.models import AuditEvent
from casesvc.audit.sealing import seal
from casesvc.cases.models import Case
from casesvc.common.timeutil import utcnow
from casesvc.consents.models import Consent
from casesvc.extensions import db
from casesvc.followups.models import Event, Note
from casesvc.policy import Action, CaseAccess, Principal, Relation, check_role, record_decision, youth_visible
from casesvc.reactions.models import Reaction
from casesvc.youths.models import Youth

BATCH = 500
ACCESS_LOG_COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_role",
    "actor_agency",
    "action",
    "resource_type",
    "resource_id",
    "case_id",
    "outcome",
    "basis",
)


@dataclass
class CaseRecord:
    case: Case
    access: CaseAccess
    reactions: Sequence[Reaction]
    consents: Sequence[Consent]
    events: Iterator  # rows of events
    notes: Iterator | None  # rows of notes; None: the token has no notes:read  # None: the token has no notes:read


@dataclass
class RecordPlan:
    """What the record holds, decided before the response starts; read as it is sent. It keeps
    ids, not rows: the body is written after the request's own session has ended (streaming)."""

    principal: Principal
    youth_id: str
    cases_seen: list[tuple[str, CaseAccess]]
    generated_at: datetime

    @property
    def with_notes(self) -> bool:
        return "notes:read" in self.principal.scopes

    @property
    def youth(self) -> Youth:
        return db.session.get_one(Youth, self.youth_id)

    def cases(self) -> Iterator[CaseRecord]:
        for case_id, access in self.cases_seen:
            case = db.session.get(Case, case_id)
            if case is None:  # deleted meanwhile (retention)
                continue
            reactions = db.session.scalars(
                select(Reaction)
                .where(Reaction.case_id == case.id)
                .options(selectinload(Reaction.conditions), selectinload(Reaction.signatures))
                .order_by(Reaction.created_at, Reaction.id)
            ).all()
            consents = db.session.scalars(
                select(Consent).where(Consent.case_id == case.id).order_by(Consent.created_at, Consent.id)
            ).all()
            yield CaseRecord(
                case,
                access,
                reactions,
                consents,
                self._entries(Event, case, access),
                self._entries(Note, case, access) if self.with_notes else None,
            )

    def _entries(self, model, case: Case, access: CaseAccess):
        """Rows, not ORM objects (the schemas read them alike): a record of thousands of entries
        costs no identity map and no object per entry."""
        stmt = (
            select(*model.__table__.c)
            .where(model.case_id == case.id, visible_entries_clause(model, self.principal, access))
            .order_by(model.created_at, model.id)
            .execution_options(yield_per=BATCH)
        )
        yield from db.session.execute(stmt)

    def access_log(self) -> Iterator:
        """Who read or changed the youth's data, oldest first: events outside any case, and those
        on the cases in this record."""
        seal(wait=True)
        case_ids = [case_id for case_id, _ in self.cases_seen]
        stmt = (
            select(*(getattr(AuditEvent, name) for name in ACCESS_LOG_COLUMNS))
            .where(
                AuditEvent.youth_id == self.youth_id,
                or_(AuditEvent.case_id.is_(None), AuditEvent.case_id.in_(case_ids)),
            )
            .order_by(AuditEvent.seq)
            .execution_options(yield_per=BATCH)
        )
        yield from db.session.execute(stmt)


def plan_record(principal: Principal, youth_id: str) -> RecordPlan:
    enforce(check_role(principal, Action.READ_YOUTH))
    youth = load_youth(youth_id)
    cases = db.session.scalars(select(Case).where(Case.youth_id == youth.id).order_by(Case.opened_at, Case.id)).all()
    accesses = [access_to(principal, case) for case in cases]
    enforce(record_decision(principal, accesses, youth_visible(principal, youth.created_by_agency, accesses)))
    seen = [
        (case.id, access)
        for case, access in zip(cases, accesses, strict=True)
        if access.relation in (Relation.LEAD, Relation.SHARED)
    ]
    audit.note(resource_type="youth_record", resource_id=youth.id, ids=[case_id for case_id, _ in seen])
    return RecordPlan(principal, youth.id, seen, utcnow())
