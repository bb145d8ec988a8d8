"""The audit trail (README "The audit log"). Services call `audit.note(...)` and `audit.noted_page(...)`."""

from casesvc.audit.service import events_ride_reads, note, read_event_cte, read_event_params, recorded_by_read


def noted_page(page: dict) -> dict:
    """A list call is one event holding the ids it returned."""
    note(ids=[item.id for item in page["items"]])
    return page


__all__ = ["events_ride_reads", "note", "noted_page", "read_event_cte", "read_event_params", "recorded_by_read"]
