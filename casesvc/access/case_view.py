"""The read path's case: a plain record (CaseView) from statements built once, no ORM.

Reads are most of the traffic, and each one loads its case; `casesvc.access.cases.readable_case`
hands it out with the same access decision as `case_for` gives the ORM object. Everything that
serialises a case takes either (`casesvc/cases/schemas.py`).

A read of a case (GET under `/cases/<case_id>`), and a write that only adds an entry under the
case (`writes_under_case_view`), loads it in the statement that loads the caller:
`casesvc.auth.principal` asks `case_of_read()` which case that is, composes its caller query with
`with_case`, and hands the rows back through `keep_case_rows`; `load_case_view` then takes the
case from there instead of asking the database again. The caller and the case are read at one
moment, in one round trip; the access decision is the same."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from flask import current_app, has_request_context, request
from sqlalchemy import DateTime, Select, bindparam, select, type_coerce

from casesvc.cases.models import Case, Participant
from casesvc.common.db import UTCDateTime
from casesvc.extensions import db

_CASES, _PARTICIPANTS = Case.__table__, Participant.__table__


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as read: its columns and its participants' agency codes, in the order they joined."""

    id: str
    youth_id: str
    municipality: str
    origin: str
    summary: str | None
    lead_agency: str
    coordinator: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    status_reason: str | None
    legal_hold: bool
    created_at: datetime
    version: int
    participant_codes: tuple[str, ...] = ()


# the case's columns in CaseView's order: a row unpacks straight into a CaseView
CASE_VIEW_COLUMNS = tuple(_CASES.c[f.name] for f in fields(CaseView) if f.name != "participant_codes")
JOINING_ORDER = (_PARTICIPANTS.c.added_at, _PARTICIPANTS.c.agency_code)
# A joined row repeats the case's columns for each participant, and UTCDateTime would make every
# repeated instant aware one value at a time: the instants are read as the plain (naive UTC)
# values they are stored as, and made aware once per case in `_grouped`.
_INSTANTS = tuple(i for i, c in enumerate(CASE_VIEW_COLUMNS) if isinstance(c.type, UTCDateTime))


def case_row_columns(columns):
    return [type_coerce(c, DateTime()) if i in _INSTANTS else c for i, c in enumerate(columns)]


_ONE_CASE = (
    select(*case_row_columns(CASE_VIEW_COLUMNS), _PARTICIPANTS.c.agency_code)
    .outerjoin(_PARTICIPANTS, _PARTICIPANTS.c.case_id == _CASES.c.id)
    .where(_CASES.c.id == bindparam("case_id"))
    .order_by(*JOINING_ORDER)
)


_PREFETCHED = "casesvc.case_view"
_READ_METHODS = frozenset({"GET", "HEAD"})


_LOADS_CASE_VIEW = "casesvc_loads_case_view"


def writes_under_case_view(view):
    """Mark a writing view (put it under `@blp.route`) that changes nothing of the case itself,
    only adds under it (an event, a note), and so takes the case as a CaseView
    (`readable_case`) rather than the ORM object: its caller's statement loads the case too."""
    setattr(view, _LOADS_CASE_VIEW, True)
    return view


_READ_EVENT_ACTION = "casesvc_read_event_action"


def event_in_read(action):
    """Mark a read view of one case (put it under `@blp.route`) whose audit event the caller's
    statement may insert itself on PostgreSQL, when the token's role may take `action` and the
    caller leads the case (`casesvc.auth.principal`): a view that answers 200 whenever that is
    so and notes nothing more in its event than the case and its youth (no `ids`)."""

    def mark(view):
        setattr(view, _READ_EVENT_ACTION, action)
        return view

    return mark


def read_event_action():
    """The action of the current request's view marked `event_in_read`, for a GET or HEAD."""
    if request.method not in _READ_METHODS:
        return None
    return getattr(_current_view(), _READ_EVENT_ACTION, None)


def _current_view():
    """The view function the current request is routed to (None when it matched no route)."""
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def case_of_read() -> str | None:
    """The case the current request loads as a CaseView, when there is one (a GET or HEAD under
    `/cases/<case_id>`, or a view marked `writes_under_case_view`): the caller's statement
    loads it too (`with_case`)."""
    if not has_request_context():
        return None
    case_id = (request.view_args or {}).get("case_id")
    if not isinstance(case_id, str) or "\x00" in case_id:  # a NUL is refused before any view (requests.py)
        return None
    if request.method in _READ_METHODS:
        return case_id
    return case_id if getattr(_current_view(), _LOADS_CASE_VIEW, False) else None


def with_case(stmt: Select) -> Select:
    """`stmt`, a statement of one row (the caller), outer-joined to the case named by the bind
    parameter `case_id` and its participants in joining order: one row per participant, the
    case's columns NULL when there is no such case. The case's columns follow `stmt`'s own."""
    case = _CASES.outerjoin(_PARTICIPANTS, _PARTICIPANTS.c.case_id == _CASES.c.id)
    return (
        stmt.add_columns(*case_row_columns(CASE_VIEW_COLUMNS), _PARTICIPANTS.c.agency_code)
        .outerjoin(case, _CASES.c.id == bindparam("case_id"))
        .order_by(*JOINING_ORDER)
    )


def keep_case_rows(case_id: str, rows, offset: int) -> None:
    """The rows of a `with_case` statement, whose case's columns start at `offset`: the case
    `load_case_view` gives this request (None when there is no such case)."""
    views = grouped([row[offset:] for row in rows if row[offset] is not None])
    request.environ[_PREFETCHED] = (case_id, views[0] if views else None)


def load_case_view(case_id: str) -> CaseView | None:
    if has_request_context():
        prefetched = request.environ.pop(_PREFETCHED, None)
        if prefetched is not None and prefetched[0] == case_id:
            return prefetched[1]
    views = grouped(db.session.execute(_ONE_CASE, {"case_id": case_id}).all())
    return views[0] if views else None


def grouped(rows) -> list[CaseView]:
    """Rows of a case's columns (`case_row_columns`) and one participant each (NULL for none),
    cases in order -> CaseViews."""
    views: list[CaseView] = []
    current, codes = None, list[str]()
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                views.append(_case_view(current, codes))
            current, codes = row, []
        if row[-1] is not None:
            codes.append(row[-1])
    if current is not None:
        views.append(_case_view(current, codes))
    return views


def _case_view(row, codes: list[str]) -> CaseView:
    values = list(row[:-1])
    for i in _INSTANTS:
        if values[i] is not None:
            values[i] = values[i].replace(tzinfo=UTC)  # stored as naive UTC (UTCDateTime)
    values.append(tuple(codes))
    return CaseView(*values)
