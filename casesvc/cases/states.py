"""A case's state machine, and the rule every planning step checks: nothing is planned on a
closed case."""

from __future__ import annotations

from casesvc.cases.models import Case
from casesvc.common.messages import _
from casesvc.common.states import StateMachine
from casesvc.errors import conflict

CASE_STATES = StateMachine(
    "case",
    {"open": ("active", "withdrawn"), "active": ("completed", "breached", "withdrawn")},
    needs_reason=frozenset({"completed", "breached", "withdrawn"}),
)
CLOSED = frozenset({"completed", "breached", "withdrawn"})


def require_open(case: Case) -> None:
    if case.status in CLOSED:
        raise conflict(
            "case-closed", _("The case is %(status)s; nothing more can be planned on it.", status=case.status)
        )
