"""Domain events: what the domains say happened, for whoever cares to act on it.

A domain service publishes (``case_closed.send(case)``); packages that follow it subscribe in
their own ``handlers`` module (reminders today), connected once by ``create_app``. Blinker calls
the receivers at once, in the caller's session and transaction: what a receiver changes commits,
or rolls back, with the work that caused it. The sender is the domain object the event is about;
the keyword arguments carry the rest. No domain package imports the packages that follow it —
see docs/architecture.md.
"""

from __future__ import annotations

from blinker import Namespace

_events = Namespace()

#: a case reached completed, breached or withdrawn (sender: the Case)
case_closed = _events.signal("case-closed")
#: a PATCH moved a reaction's dates or its conversation (sender: the Reaction)
reaction_changed = _events.signal("reaction-changed")
#: a reaction was made active (sender: the Reaction)
reaction_activated = _events.signal("reaction-activated")
#: a reaction ended: completed, breached or cancelled (sender: the Reaction)
reaction_closed = _events.signal("reaction-closed")
#: a follow-up event was logged on a case (sender: the Event; ``case``: its Case)
event_logged = _events.signal("event-logged")
#: a consent was withdrawn (sender: the Consent)
consent_withdrawn = _events.signal("consent-withdrawn")
#: the lead moved to another participant (sender: the Case, already led by ``to_agency``;
#: ``from_agency``: the old lead)
case_handed_over = _events.signal("case-handed-over")
#: the case moved to another municipality (sender: the Case, already there and led by
#: ``to_agency``; ``from_agency``: the old lead; ``departed``: the agencies that left it)
case_transferred = _events.signal("case-transferred")
#: a user opened a case in an emergency (sender: the EmergencyAccess; ``case``: its case)
emergency_access_opened = _events.signal("emergency-access-opened")
