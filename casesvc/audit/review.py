"""The access-log review (README "Access-log review"; README: Privacy duties): findings over a window of the
audit log, for the people who must read it every month and cannot read 200,000 lines.

Each kind is one SQL aggregate over `audit_events` (the window by `at`), so the database does
the counting and memory stays flat whatever the size of the log; Python only shapes the few
rows that come back. Findings hold ids, codes and counts — never names or free text:

- `emergency_access` — every emergency access opened in the window, with whether (and how) it
  has been reviewed since;
- `bulk_read` — a user who read more than `review_bulk_reads` distinct youths' data in one Oslo
  day (single reads and case reads by their `youth_id`, youth lists by the ids they returned);
- `off_hours` — a user's reads of case content inside the `review_off_hours` Oslo hours, one
  finding per user and night;
- `probing` — a user with more than `review_probes` probes in one hour: 403/404 answers on case
  or youth ids, a 409 `youth-exists` answered to a user who cannot see that youth (recorded as
  `denied`), and youth searches by `national_id` that found nothing the user may see.

Oslo time: PostgreSQL converts with its own zone data; SQLite (development and tests) gets the
same conversion as a function of this connection, from Python's zone data.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from flask import current_app
from sqlalchemy import bindparam, text

from casesvc.audit.sealing import chain_time, seal
from casesvc.common.db import UTCDateTime
from casesvc.common.timeutil import OSLO, utcnow
from casesvc.config import off_hours
from casesvc.extensions import db

EMERGENCY_OPENED = "emergency.open_access"
EMERGENCY_REVIEWED = "emergency.review_access."  # + the finding
YOUTH_LIST = "youths.list_youths"
YOUTH_SEARCH = "youth_search"  # the resource_type of a youth search by national_id
DEFAULT_WINDOW = timedelta(days=31)


@dataclass(frozen=True)
class ReviewSettings:
    bulk_reads: int
    off_hours: tuple[int, int] | None
    probes: int

    @classmethod
    def from_app(cls) -> ReviewSettings:
        settings = current_app.config["CASESVC"]
        return cls(settings.review_bulk_reads, off_hours(settings.review_off_hours), settings.review_probes)

    def as_dict(self) -> dict:
        return {
            "bulk_reads": self.bulk_reads,
            "probes": self.probes,
            "off_hours": None if self.off_hours is None else "{:02d}-{:02d}".format(*self.off_hours),
        }


def read_actions() -> list[str]:
    """The endpoints that read (GET): an audit event's `action` names its endpoint."""
    return sorted(
        {
            rule.endpoint
            for rule in current_app.url_map.iter_rules()
            if "GET" in (rule.methods or ()) and "POST" not in (rule.methods or ())
        }
    )


# --- Oslo time in SQL -------------------------------------------------------------------------


def _sqlite_local(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(OSLO)


def _sqlite_oslo_day(value, shift_hours):
    local = _sqlite_local(value)
    return None if local is None else (local - timedelta(hours=shift_hours)).date().isoformat()


def _sqlite_oslo_hour(value):
    local = _sqlite_local(value)
    return None if local is None else local.hour


class _Dialect:
    def __init__(self, name: str):
        self.pg = name == "postgresql"
        local = "timezone('Europe/Oslo', timezone('UTC', at))"
        if self.pg:
            self.hour = f"CAST(extract(hour FROM {local}) AS INTEGER)"
            self.day = lambda shift: f"CAST({local} - make_interval(hours => {int(shift)}) AS DATE)"
            self.utc_hour = """to_char(at, 'YYYY-MM-DD"T"HH24')"""
            self.list_ids = (
                "json_array_elements_text(CASE WHEN json_typeof(ids) = 'array' THEN ids "
                "ELSE '[]'::json END) AS j(value)"
            )
            self.agg = lambda column: f"string_agg(DISTINCT {column}, ',')"
            self.concat = lambda column: f"string_agg({column}, ',')"
            self.list_length = "(CASE WHEN json_typeof(ids) = 'array' THEN json_array_length(ids) ELSE 0 END)"
        else:
            self.hour = "casesvc_oslo_hour(at)"
            self.day = lambda shift: f"casesvc_oslo_day(at, {int(shift)})"
            self.utc_hour = "strftime('%Y-%m-%dT%H', at)"
            self.list_ids = "json_each(CASE WHEN json_type(ids) = 'array' THEN ids ELSE '[]' END) AS j"
            self.agg = lambda column: f"group_concat(DISTINCT {column})"
            self.concat = lambda column: f"group_concat({column})"
            self.list_length = "(CASE WHEN json_type(ids) = 'array' THEN json_array_length(ids) ELSE 0 END)"


def _dialect() -> _Dialect:
    connection = db.session.connection()
    dialect = _Dialect(connection.dialect.name)
    if dialect.pg:
        # for this read-only transaction: the aggregates hash in memory instead of spilling to
        # disk, and plans this large are not worth compiling (JIT costs more than it saves)
        connection.execute(text("SET LOCAL work_mem = '128MB'"))
        connection.execute(text("SET LOCAL jit = off"))
    else:
        raw = cast("sqlite3.Connection", connection.connection.dbapi_connection)
        raw.create_function("casesvc_oslo_day", 2, _sqlite_oslo_day, deterministic=True)
        raw.create_function("casesvc_oslo_hour", 1, _sqlite_oslo_hour, deterministic=True)
    return dialect


def _query(sql: str, reads: bool = False):
    """A statement over the window [:start, :end), the instants bound as the column stores them."""
    params = [bindparam("start", type_=UTCDateTime), bindparam("end", type_=UTCDateTime)]
    if reads:
        params.append(bindparam("reads", expanding=True))
    return text(sql).bindparams(*params)


def _ids(joined: str | None) -> list[str]:
    return sorted(set(joined.split(","))) if joined else []


def _at(value) -> str | None:
    if isinstance(value, str):  # SQLite hands an aggregate's instant back as text
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return chain_time(value)


# --- the four kinds ---------------------------------------------------------------------------


def _emergency_accesses(sql: _Dialect, window: dict) -> list[dict]:
    rows = db.session.execute(
        _query("""
        SELECT e.seq, e.at, e.actor, e.actor_agency, e.resource_id, e.case_id, e.youth_id, r.action AS reviewed
        FROM audit_events e
        LEFT JOIN (SELECT resource_id, MIN(action) AS action FROM audit_events
                   WHERE at >= :start AND action LIKE :reviewed AND outcome = 'allowed'
                   GROUP BY resource_id) r ON r.resource_id = e.resource_id
        WHERE e.at >= :start AND e.at < :end AND e.action = :opened AND e.outcome = 'allowed'
        ORDER BY e.seq"""),
        {**window, "opened": EMERGENCY_OPENED, "reviewed": EMERGENCY_REVIEWED + "%"},
    )
    return [
        {
            "kind": "emergency_access",
            "actor": r.actor,
            "actor_agency": r.actor_agency,
            "at": _at(r.at),
            "seq": r.seq,
            "emergency_access_id": r.resource_id,
            "case_id": r.case_id,
            "youth_id": r.youth_id,
            "reviewed": r.reviewed is not None,
            "finding": r.reviewed.removeprefix(EMERGENCY_REVIEWED) if r.reviewed else None,
        }
        for r in rows
    ]


def _bulk_reads(sql: _Dialect, window: dict, settings: ReviewSettings) -> list[dict]:
    day = sql.day(0)
    reads = "outcome = 'allowed' AND youth_id IS NOT NULL AND action IN :reads"
    lists = "outcome = 'allowed' AND action = :youth_list"
    params = {**window, "reads": read_actions(), "youth_list": YOUTH_LIST, "limit": settings.bulk_reads}
    # First, in one cheap pass, the users who could be over the limit on some day: a read counts
    # one youth, a list as many as it returned (an upper bound on the distinct youths). Only
    # their reads (found by the actor index) are then made distinct and counted.
    candidates = db.session.scalars(
        _query(
            f"""
        SELECT DISTINCT actor FROM (
            SELECT actor FROM audit_events
            WHERE at >= :start AND at < :end AND actor IS NOT NULL AND (({reads}) OR ({lists}))
            GROUP BY actor, {day}
            HAVING SUM(CASE WHEN action = :youth_list THEN {sql.list_length} ELSE 1 END) > :limit) AS over""",  # noqa: S608 (fixed fragments; values bound)
            reads=True,
        ),
        params,
    ).all()
    if not candidates:
        return []
    stmt = _query(
        f"""
        SELECT actor, MAX(actor_agency) AS actor_agency, day, MIN(first_at) AS first_at,
               COUNT(*) AS youths, {sql.concat("youth")} AS youth_ids
        FROM (SELECT actor, day, youth, MAX(actor_agency) AS actor_agency, MIN(at) AS first_at
              FROM (SELECT actor, actor_agency, at, {day} AS day, youth_id AS youth FROM audit_events
                    WHERE at >= :start AND at < :end AND actor IN :actors AND {reads}
                    UNION ALL
                    SELECT actor, actor_agency, at, {day} AS day, j.value AS youth FROM audit_events, {sql.list_ids}
                    WHERE at >= :start AND at < :end AND actor IN :actors AND {lists}) AS youth_reads
              GROUP BY actor, day, youth) AS distinct_reads
        GROUP BY actor, day HAVING COUNT(*) > :limit
        ORDER BY MIN(first_at), actor""",  # noqa: S608 (fixed fragments; values bound)
        reads=True,
    ).bindparams(bindparam("actors", expanding=True))
    rows = db.session.execute(stmt, {**params, "actors": candidates})
    return [
        {
            "kind": "bulk_read",
            "actor": r.actor,
            "actor_agency": r.actor_agency,
            "at": _at(r.first_at),
            "day": str(r.day),
            "youths": r.youths,
            "youth_ids": _ids(r.youth_ids),
        }
        for r in rows
    ]


def _off_hours(sql: _Dialect, window: dict, settings: ReviewSettings) -> list[dict]:
    if settings.off_hours is None:
        return []
    start, end = settings.off_hours
    crosses = start > end  # 22-06: the night runs past midnight, and counts as the evening's date
    inside = (
        f"({sql.hour} >= {start} OR {sql.hour} < {end})"
        if crosses
        else f"({sql.hour} >= {start} AND {sql.hour} < {end})"
    )
    night = sql.day(end if crosses else 0)
    stmt = _query(
        f"""
        SELECT actor, MAX(actor_agency) AS actor_agency, {night} AS night, MIN(at) AS first_at,
               COUNT(*) AS reads, {sql.agg("case_id")} AS case_ids, {sql.agg("youth_id")} AS youth_ids
        FROM audit_events
        WHERE at >= :start AND at < :end AND outcome = 'allowed' AND actor IS NOT NULL AND action IN :reads
          AND (case_id IS NOT NULL OR youth_id IS NOT NULL) AND {inside}
        GROUP BY actor, {night} ORDER BY MIN(at), actor""",  # noqa: S608 (fragments, integer hours)
        reads=True,
    )
    rows = db.session.execute(stmt, {**window, "reads": read_actions()})
    return [
        {
            "kind": "off_hours",
            "actor": r.actor,
            "actor_agency": r.actor_agency,
            "at": _at(r.first_at),
            "night": str(r.night),
            "reads": r.reads,
            "case_ids": _ids(r.case_ids),
            "youth_ids": _ids(r.youth_ids),
        }
        for r in rows
    ]


def _probing(sql: _Dialect, window: dict, settings: ReviewSettings) -> list[dict]:
    probe = """((status IN (403, 404) AND (case_id IS NOT NULL OR youth_id IS NOT NULL))
                 OR (status = 409 AND outcome = 'denied' AND youth_id IS NOT NULL)
                 OR (resource_type = :search AND outcome = 'allowed' AND CAST(ids AS TEXT) = '[]'))"""
    stmt = _query(f"""
        SELECT actor, MAX(actor_agency) AS actor_agency, {sql.utc_hour} AS hour, MIN(at) AS first_at,
               COUNT(*) AS probes, {sql.agg("case_id")} AS case_ids, {sql.agg("youth_id")} AS youth_ids,
               SUM(CASE WHEN resource_type = :search THEN 1 ELSE 0 END) AS searches
        FROM audit_events
        WHERE at >= :start AND at < :end AND actor IS NOT NULL AND {probe}
        GROUP BY actor, {sql.utc_hour} HAVING COUNT(*) > :limit ORDER BY MIN(at), actor""")  # noqa: S608 (fixed fragments)
    rows = db.session.execute(stmt, {**window, "search": YOUTH_SEARCH, "limit": settings.probes})
    return [
        {
            "kind": "probing",
            "actor": r.actor,
            "actor_agency": r.actor_agency,
            "at": _at(r.first_at),
            "hour": r.hour + ":00Z",
            "probes": r.probes,
            "fruitless_searches": int(r.searches or 0),
            "case_ids": _ids(r.case_ids),
            "youth_ids": _ids(r.youth_ids),
        }
        for r in rows
    ]


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow()
    return start or end - DEFAULT_WINDOW, end


def review(start: datetime, end: datetime, settings: ReviewSettings | None = None) -> dict:
    """The findings of every kind in [start, end), in the order of the kinds, each by time."""
    settings = settings or ReviewSettings.from_app()
    seal(wait=True)
    sql = _dialect()
    params = {"start": start, "end": end}
    findings = [
        *_emergency_accesses(sql, params),
        *_bulk_reads(sql, params, settings),
        *_off_hours(sql, params, settings),
        *_probing(sql, params, settings),
    ]
    db.session.rollback()  # read only; hold no snapshot
    return {"from": chain_time(start), "to": chain_time(end), "settings": settings.as_dict(), "findings": findings}
