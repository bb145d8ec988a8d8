"""A policy decision turned into what the caller sees."""

from __future__ import annotations

from casesvc.common.messages import _
from casesvc.errors import Problem
from casesvc.policy import Decision


def enforce(decision: Decision) -> None:
    """Turn a policy refusal into the problem the caller sees (404 hides existence)."""
    if decision.allowed:
        return
    if decision.status == 404:
        raise Problem(404, "not-found", "Not Found", decision.detail or _("No such resource."))
    raise Problem(decision.status, decision.reason, "Forbidden", decision.detail)
