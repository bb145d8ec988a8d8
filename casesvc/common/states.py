"""A small state machine: a status, the moves allowed from it, and a 409 that names them."""

from __future__ import annotations

from casesvc.common.messages import _
from casesvc.errors import conflict, field_error

# what each machine moves, as the messages name it
_THINGS = {"case": _("case"), "reaction": _("reaction"), "reminder": _("reminder")}


class StateMachine:
    def __init__(self, name: str, moves: dict[str, tuple[str, ...]], needs_reason: frozenset[str]):
        self.name = name
        self.moves = moves
        self.needs_reason = needs_reason

    def allowed_from(self, status: str) -> tuple[str, ...]:
        return self.moves.get(status, ())

    def check(self, current: str, target: str, reason: str | None, allowed: tuple[str, ...] | None = None) -> None:
        allowed = self.allowed_from(current) if allowed is None else allowed
        thing = _THINGS.get(self.name, self.name)
        if target not in allowed:
            listed = ", ".join(allowed) if allowed else _("none")
            raise conflict(
                "transition-not-allowed",
                _(
                    "A %(thing)s cannot go from %(current)s to %(target)s; allowed: %(allowed)s.",
                    thing=thing,
                    current=current,
                    target=target,
                    allowed=listed,
                ),
                current=current,
                to=target,
                allowed=list(allowed),
            )
        if target in self.needs_reason and not (reason and reason.strip()):
            raise field_error(
                "reason", _("A reason is required to move a %(thing)s to %(target)s.", thing=thing, target=target)
            )
