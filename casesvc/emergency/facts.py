"""What the access policy needs to know of emergency accesses (policy.EmergencyFacts)."""

from __future__ import annotations

from sqlalchemy import select

from casesvc.emergency.models import EmergencyAccess
from casesvc.extensions import db
from casesvc.policy import EmergencyFacts


def emergency_facts_for(case_id: str, user: str | None) -> tuple[EmergencyFacts, ...]:
    """The user's emergency accesses to the case (the policy judges which one is running)."""
    if user is None:
        return ()
    rows = db.session.execute(
        select(EmergencyAccess.started_at, EmergencyAccess.expires_at).where(
            EmergencyAccess.case_id == case_id, EmergencyAccess.user_id == user
        )
    )
    return tuple(EmergencyFacts(user, started, expires) for started, expires in rows)
