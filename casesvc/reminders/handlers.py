"""What reminders do when the domains report something: settle what an event answers, dismiss
what a closed case or reaction leaves without purpose, follow a reaction's new dates. Connected
by ``connect()`` from ``create_app``; each runs in the publisher's transaction."""
from __future__ import annotations

from casesvc import signals
from casesvc.reminders import service


def _on_case_closed(case) -> None:
    service.on_case_closed(case)  # its open reminders are dismissed


def _on_reaction_changed(reaction) -> None:
    service.on_reaction_changed(reaction)  # reminders made for the old dates no longer hold


def _on_reaction_closed(reaction) -> None:
    service.on_reaction_closed(reaction)  # its open reminders are dismissed


def _on_event_logged(event, case) -> None:
    service.on_event_logged(event, case)  # settles the reminders it answers, schedules the next


def _on_consent_withdrawn(consent) -> None:
    service.on_consent_withdrawn(consent)  # settles its consent_expiring reminder


def _on_emergency_access_opened(access, case) -> None:
    service.on_emergency_access_opened(access, case)  # the lead agency is asked to review it


def connect() -> None:
    """Subscribe once per process (blinker keeps receivers by identity, so a second call is
    harmless)."""
    signals.case_closed.connect(_on_case_closed)
    signals.reaction_changed.connect(_on_reaction_changed)
    signals.reaction_closed.connect(_on_reaction_closed)
    signals.event_logged.connect(_on_event_logged)
    signals.consent_withdrawn.connect(_on_consent_withdrawn)
    signals.emergency_access_opened.connect(_on_emergency_access_opened)
