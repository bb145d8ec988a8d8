"""The audit trail (README "The audit log"). Services call `audit.note(...)` and `audit.noted_page(...)`."""

from casesvc.audit.service import note


def noted_page(page: dict) -> dict:
    """A list call is one event holding the ids it returned."""
    note(ids=[item.id for item in page["items"]])
    return page


__all__ = ["note", "noted_page"]
