"""The read path's case: a plain record (CaseView) from statements built once, no ORM.

Reads are most of the traffic, and each one loads its case; `casesvc.access.cases.readable_case`
hands it out with the same access decision as `case_for` gives the ORM object. Everything that
serialises a case takes either (`casesvc/cases/schemas.py`)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import DateTime, bindparam, select, type_coerce

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


_ONE_CASE = (select(*case_row_columns(CASE_VIEW_COLUMNS), _PARTICIPANTS.c.agency_code)
             .outerjoin(_PARTICIPANTS, _PARTICIPANTS.c.case_id == _CASES.c.id)
             .where(_CASES.c.id == bindparam("case_id")).order_by(*JOINING_ORDER))


def load_case_view(case_id: str) -> CaseView | None:
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
