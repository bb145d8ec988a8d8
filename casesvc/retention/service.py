"""Retention (README "Operations"): nothing is kept "just in case".

A closed case older than CASESVC_RETENTION_DAYS after `closed_at` is deleted with everything
under it (the database cascades), unless `legal_hold` is set; its youth goes when no case remains.
The audit log keeps its events — they hold ids, no names — and the run itself is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select

from casesvc.audit.service import stage
from casesvc.cases.models import Case
from casesvc.cases.states import CLOSED
from casesvc.extensions import db
from casesvc.youths.models import Youth


@dataclass(frozen=True)
class RetentionPlan:
    cutoff: datetime
    case_ids: list[str]
    youth_ids: list[str]

    def as_dict(self) -> dict:
        return {"cutoff": self.cutoff.isoformat(), "cases": self.case_ids, "youths": self.youth_ids}


def plan(now: datetime, retention_days: int) -> RetentionPlan:
    cutoff = now - timedelta(days=retention_days)
    expired = (
        select(Case.id, Case.youth_id)
        .where(
            Case.status.in_(sorted(CLOSED)),
            Case.closed_at.is_not(None),
            Case.closed_at < cutoff,
            Case.legal_hold.is_(False),
        )
        .order_by(Case.closed_at)
    )
    rows = db.session.execute(expired).all()
    case_ids = [r.id for r in rows]
    candidates = sorted({r.youth_id for r in rows})
    # a youth goes only when no case would remain
    kept = (
        set(db.session.scalars(select(Case.youth_id).where(Case.youth_id.in_(candidates), Case.id.not_in(case_ids))))
        if candidates
        else set()
    )
    return RetentionPlan(cutoff, case_ids, [y for y in candidates if y not in kept])


def run(now: datetime, retention_days: int, dry_run: bool) -> RetentionPlan:
    result = plan(now, retention_days)
    if dry_run:
        stage("retention.dry_run", "allowed", actor="cli", ids=result.case_ids)
        db.session.commit()
        return result
    for start in range(0, len(result.case_ids), 500):
        db.session.execute(delete(Case).where(Case.id.in_(result.case_ids[start : start + 500])))
    for start in range(0, len(result.youth_ids), 500):
        chunk = result.youth_ids[start : start + 500]
        db.session.execute(delete(Youth).where(Youth.id.in_(chunk), ~exists().where(Case.youth_id == Youth.id)))
    stage("retention.run", "allowed", actor="cli", resource_type="case", ids=result.case_ids)
    db.session.commit()
    return result
