"""The access layer: load a case or a youth together with the caller's access.

Services call it with the caller's principal; it gathers the facts the pure policy
(`casesvc.policy`) needs, asks it, and raises what the caller may learn (404, 403). Lists use the
policy's SQL twins in `casesvc.access.clauses`. It sits below the services and above the models
(docs/architecture.md)."""

from casesvc.access.case_view import CaseView, event_in_read, load_case_view, writes_under_case_view
from casesvc.access.cases import access_to, case_for, consent_facts_for, facts_of, readable_case
from casesvc.access.decisions import enforce
from casesvc.access.youths import accesses_to_cases_of, load_youth, youth_for

__all__ = [
    "CaseView",
    "access_to",
    "accesses_to_cases_of",
    "case_for",
    "consent_facts_for",
    "enforce",
    "event_in_read",
    "facts_of",
    "load_case_view",
    "load_youth",
    "readable_case",
    "writes_under_case_view",
    "youth_for",
]
