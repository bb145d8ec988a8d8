"""The statistics follow the reactions through their signals (casesvc/signals.py): made active,
ended. Connected once by create_app."""

from __future__ import annotations

from casesvc import signals
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import db
from casesvc.statistics.models import ReactionSpan


def on_reaction_activated(reaction, **_):
    if db.session.get(ReactionSpan, reaction.id) is None:
        db.session.add(ReactionSpan(reaction_id=reaction.id, activated_on=oslo_today()))


def on_reaction_closed(reaction, **_):
    span = db.session.get(ReactionSpan, reaction.id)
    if span is not None and span.ended_on is None:  # only a reaction that was active "ended"
        span.ended_on = oslo_today()
        span.ended_status = reaction.status


def connect() -> None:
    signals.reaction_activated.connect(on_reaction_activated)
    signals.reaction_closed.connect(on_reaction_closed)
