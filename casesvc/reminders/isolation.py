"""A source the worker cannot compute (a date past the calendar stored before dates were
bounded, or any other fault of one row) is logged with its id, counted, and skipped: the other
sources of the run, and of every agency, still get their reminders (README: Security, hardening)."""

from __future__ import annotations

import logging

from casesvc.ops.metrics import count_source_failure

log = logging.getLogger("casesvc.reminders")


def rows_of(rule: str, candidates, to_rows, failed: dict[str, int]) -> list[dict]:
    """The reminder rows of `candidates`, without those of a candidate that fails."""
    rows: list[dict] = []
    for candidate in candidates:
        try:
            rows.extend(to_rows(candidate))
        except Exception:  # one bad row must not stop the worker for everyone
            source = getattr(candidate, "source_id", None) or getattr(candidate, "id", None)
            log.warning(
                "reminder rule %s: source %s skipped, its reminder cannot be computed", rule, source, exc_info=True
            )
            count_source_failure(rule)
            failed[rule] = failed.get(rule, 0) + 1
    return rows
