"""No N+1: the number of SQL statements a read issues does not grow with the page size, and
the number a write issues does not grow with what the case already holds.

Each request is counted with an SQLAlchemy `before_cursor_execute` listener on the app's
engine, so every statement is seen, including the selectin loads of participants, guardians,
conditions and signatures."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event

from casesvc.cases.service import open_case
from casesvc.common.connection import (
    close_for_read,
    in_autocommit,
    late_transaction,
    open_for_read,
    open_for_write,
    request_connection,
)
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import db
from casesvc.followups.service import log_event, write_note
from casesvc.policy import ROLE_SCOPES, CaseAccess, Principal, Relation
from casesvc.reactions.service import create_reaction
from casesvc.youths.service import register_youth
from tests.conftest import youth_number

ROWS = 55  # more than the larger page, so both pages are full
SMALL, LARGE = 5, 50
# The token's user and agency with the case and its participants (one statement), no consent
# query for the lead, and the audit event's insert; no BEGIN or COMMIT (reads run in autocommit).
SINGLE_CASE_MAX_QUERIES = 2


@pytest.fixture
def count_queries(app):
    """count_queries(actor, url) -> (response, number of SQL statements the request issued)."""
    with app.app_context():
        engine = db.engine

    def run(actor, url, method="get", status=200, **kwargs):
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            resp = getattr(actor, method)(url, **kwargs)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert resp.status_code == status, resp.json
        return resp, len(statements)

    return run


@contextmanager
def as_police(app, world):
    """The service layer as the police user of `world`, committed at the end."""
    principal = Principal(
        subject=world["police"].user_id,
        role="police",
        agency="police",
        municipalities=frozenset({"0301"}),
        scopes=ROLE_SCOPES["police"],
        username="user.police",
    )
    with app.app_context():
        yield principal
        db.session.commit()


def _youth(principal: Principal, index: int):
    born = date(oslo_today().year - 15, 1, 1) + timedelta(days=index)
    return register_youth(
        principal,
        {
            "national_id": youth_number(born),
            "birth_date": born,
            "given_name": "Test",
            "family_name": f"Testesen{index}",
            "municipality": "0301",
            "guardians": [{"name": "Test Forelder", "relation": "mother"}],
        },
    )


@pytest.fixture
def many_cases(app, world):
    with as_police(app, world) as police:
        for index in range(ROWS):
            youth = _youth(police, index)
            open_case(
                police,
                {
                    "youth_id": youth.id,
                    "origin": "police",
                    "summary": f"Case {index}",
                    "participant_codes": ["health", "slt"],
                },
            )


@pytest.fixture
def busy_case(app, world) -> str:
    """One case with ROWS reactions (each with conditions and signatures), events and notes."""
    today = oslo_today()
    with as_police(app, world) as police:
        case = open_case(
            police, {"youth_id": _youth(police, 0).id, "origin": "police", "participant_codes": ["health", "slt"]}
        )
        lead = CaseAccess(Relation.LEAD)
        for index in range(ROWS):
            create_reaction(
                police,
                case,
                {
                    "type": "drug_contract",
                    "legal_basis": "conditional_waiver",
                    "starts_on": today,
                    "ends_on": today + timedelta(days=180),
                    "conditions": [
                        {"kind": "drug_test", "every_days": 14, "responsible_agency": "health"},
                        {"kind": "meeting", "description": f"Meeting {index}", "responsible_agency": "slt"},
                    ],
                    "signatures": [{"party": "youth", "signed_on": today}, {"party": "guardian", "signed_on": today}],
                },
            )
            log_event(
                police,
                case,
                lead,
                {
                    "kind": "meeting",
                    "occurred_at": datetime.now(UTC),
                    "summary": f"Event {index}",
                    "category": "general",
                    "visibility": "shared",
                },
            )
            write_note(police, case, lead, {"body": f"Note {index}", "category": "general", "visibility": "shared"})
        return case.id


def _same_count_for_both_pages(count_queries, actor, url):
    small, small_count = count_queries(actor, f"{url}?limit={SMALL}")
    large, large_count = count_queries(actor, f"{url}?limit={LARGE}")
    assert len(small.json["items"]) == SMALL and len(large.json["items"]) == LARGE
    print(f"{url}: {small_count} queries for {SMALL} items, {large_count} for {LARGE}")  # noqa: T201 (the figure, with -s)
    assert large_count == small_count
    return large


def test_case_list_issues_as_many_queries_for_50_cases_as_for_5(world, many_cases, count_queries):
    page = _same_count_for_both_pages(count_queries, world["police"], "/api/v1/cases")
    assert all(sorted(item["participants"]) == ["health", "police", "slt"] for item in page.json["items"])


def test_case_list_for_a_consented_participant_does_not_grow_with_the_page(world, many_cases, count_queries):
    cases = world["police"].get(f"/api/v1/cases?limit={LARGE}").json["items"]
    for case in cases:
        world.consent(case, ["health"])
    _same_count_for_both_pages(count_queries, world["health"], "/api/v1/cases")


def test_youth_list_issues_as_many_queries_for_50_youths_as_for_5(world, many_cases, count_queries):
    page = _same_count_for_both_pages(count_queries, world["police"], "/api/v1/youths")
    assert all(item["guardians"] for item in page.json["items"])


def test_reaction_list_loads_conditions_and_signatures_without_a_query_per_reaction(world, busy_case, count_queries):
    page = _same_count_for_both_pages(count_queries, world["police"], f"/api/v1/cases/{busy_case}/reactions")
    assert all(len(item["conditions"]) == 2 and len(item["signatures"]) == 2 for item in page.json["items"])


def test_event_list_issues_as_many_queries_for_50_events_as_for_5(world, busy_case, count_queries):
    _same_count_for_both_pages(count_queries, world["police"], f"/api/v1/cases/{busy_case}/events")


def test_note_list_issues_as_many_queries_for_50_notes_as_for_5(world, busy_case, count_queries):
    _same_count_for_both_pages(count_queries, world["police"], f"/api/v1/cases/{busy_case}/notes")


def test_reading_one_case_takes_a_small_fixed_number_of_queries(world, many_cases, count_queries):
    case_id = world["police"].get("/api/v1/cases?limit=1").json["items"][0]["id"]
    resp, count = count_queries(world["police"], f"/api/v1/cases/{case_id}")
    print(f"GET /api/v1/cases/{{id}}: {count} queries")  # noqa: T201 (the figure, with -s)
    assert resp.json["id"] == case_id
    assert count <= SINGLE_CASE_MAX_QUERIES


@contextmanager
def _statements_seen(app):
    """The kind (first word) of each statement the app's engine sends, and whether it ran in
    autocommit, as a list filled while the block runs."""
    with app.app_context():
        engine = db.engine
    seen: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement.split()[0].upper(), in_autocommit(conn)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_read_runs_in_autocommit(app, world):
    """A GET's statements (the audit insert among them) each commit on their own, with no
    BEGIN/COMMIT round trips."""
    case = world.case()
    with _statements_seen(app) as seen:
        assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 200
    # on PostgreSQL the lead's read inserts its event in the caller's statement
    # (tests/access/test_read_event_in_statement.py)
    assert [kind for kind, _ in seen] == (["WITH"] if _on_postgresql(app) else ["SELECT", "INSERT"])
    assert {autocommit for _, autocommit in seen} == {True}


def _on_postgresql(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def _reads_then_one_transaction(statements: list[tuple[str, bool]], postgresql: bool) -> None:
    """On PostgreSQL a write's statements in autocommit are plain SELECTs before its transaction
    begins (casesvc/common/connection.py: LateTransaction); once one runs in the transaction, all
    that follow do, or else the last one writes alone. On SQLite all run in one transaction."""
    flags = [autocommit for _, autocommit in statements]
    if not postgresql:
        assert set(flags) == {False}
        return
    # the last statement alone may write in autocommit: a write that never began a transaction
    # ends with one statement holding its rows and its audit event
    began = flags.index(False) if False in flags else len(flags) - 1
    assert not any(flags[began + 1 :]), statements
    assert {kind for kind, _ in statements[:began]} <= {"SELECT"}, statements


def test_a_write_reads_in_autocommit_and_changes_in_one_transaction(app, world):
    """Registering a youth (the ORM's inserts): reads first, then one transaction. Logging an
    event (one row, the reminders it settles, its audit event) on PostgreSQL: the caller's
    SELECT, then one statement that writes them all, atomic on its own, with no BEGIN or COMMIT."""
    postgresql = _on_postgresql(app)
    with _statements_seen(app) as opening:
        youth = world.youth()
    case = world.case(youth=youth)
    with _statements_seen(app) as logging:
        resp = world["police"].post(
            f"/api/v1/cases/{case['id']}/events", json={"kind": "meeting", "occurred_at": "2026-01-05T08:00:00Z"}
        )
    assert resp.status_code == 201
    for statements in (opening, logging):
        _reads_then_one_transaction(statements, postgresql)
    assert False in {autocommit for _, autocommit in opening}  # the youth and its audit event, in one transaction
    if postgresql:
        assert {autocommit for _, autocommit in logging} == {True}
        assert [kind for kind, _ in logging] == ["SELECT", "WITH"]


def test_a_reads_connection_goes_back_to_the_pool_out_of_autocommit(app):
    """The next request to take that connection from the pool may be a write: it must get one
    transaction, not statements that each commit on their own."""
    with app.test_request_context("/api/v1/cases"):
        open_for_read()
        conn = request_connection()
        assert in_autocommit(conn)
        driver = conn.connection.dbapi_connection
        postgresql = conn.dialect.name == "postgresql"
        close_for_read()
    if postgresql:
        assert driver.autocommit is False
    with app.app_context():
        with db.engine.connect() as again:
            assert not in_autocommit(again)


def test_a_writes_connection_left_in_its_transaction_goes_back_rolled_back(app):
    """A write whose late transaction began and was never ended by its session (PostgreSQL): its
    connection goes back to the pool out of any transaction, what it sent undone, and out of
    autocommit like a read's."""
    with app.test_request_context("/api/v1/cases", method="POST"):
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a write on SQLite runs on its session's connection, in its transaction")
        open_for_write()
        conn = request_connection()
        assert in_autocommit(conn)
        driver = conn.connection.dbapi_connection
        late = late_transaction(conn)
        assert late is not None
        late.begin()
        backend = conn.exec_driver_sql("SELECT txid_current()").scalar()  # in the transaction
        assert driver.info.transaction_status == TransactionStatus.INTRANS
        close_for_read()
    assert driver.info.transaction_status == TransactionStatus.IDLE
    assert driver.autocommit is False
    with app.app_context():
        with db.engine.connect() as again:
            status = again.exec_driver_sql(f"SELECT txid_status({int(backend)})").scalar()
    assert status == "aborted"


# --- writes: the statements of a write do not grow with what the case already holds ------------


def _empty_case(app, world) -> str:
    with as_police(app, world) as police:
        return open_case(
            police, {"youth_id": _youth(police, 1).id, "origin": "police", "participant_codes": ["health", "slt"]}
        ).id


def _event_body(summary: str) -> dict:
    return {
        "kind": "meeting",
        "occurred_at": datetime.now(UTC).isoformat(),
        "summary": summary,
        "category": "general",
        "visibility": "shared",
    }


# The lead's event: the caller with the case and its participants (one statement), then on
# PostgreSQL one statement for the rest (the contact reminders it settles, their escalations, the
# event's and the audit event's inserts); on SQLite each of those four is a statement. (A
# participant that is not the lead, or a correction, also asks for the consents naming its agency.)
EVENT_WRITE_MAX_QUERIES = {"postgresql": 2, "sqlite": 5}


def test_logging_an_event_takes_as_many_statements_on_a_busy_case_as_on_an_empty_one(
    app, world, busy_case, count_queries
):
    empty = _empty_case(app, world)
    counts = []
    for case_id in (empty, busy_case, empty):
        resp, count = count_queries(
            world["police"], f"/api/v1/cases/{case_id}/events", "post", 201, json=_event_body(f"Meeting on {case_id}")
        )
        assert resp.json["case_id"] == case_id
        counts.append(count)
    assert len(set(counts)) == 1
    with app.app_context():
        assert counts[0] <= EVENT_WRITE_MAX_QUERIES[db.engine.dialect.name]


def test_writing_a_note_takes_as_many_statements_on_a_busy_case_as_on_an_empty_one(
    app, world, busy_case, count_queries
):
    empty = _empty_case(app, world)
    counts = []
    for case_id in (empty, busy_case):
        resp, count = count_queries(
            world["police"],
            f"/api/v1/cases/{case_id}/notes",
            "post",
            201,
            json={"body": "A note", "category": "general", "visibility": "shared"},
        )
        assert resp.json["case_id"] == case_id
        counts.append(count)
    assert counts[0] == counts[1]


def _patch(count_queries, world, case_id: str, body: dict):
    etag = world["police"].get(f"/api/v1/cases/{case_id}").headers["ETag"]
    return count_queries(
        world["police"], f"/api/v1/cases/{case_id}", "patch", 200, json=body, headers={"If-Match": etag}
    )


def test_changing_a_case_takes_as_many_statements_on_a_busy_case_as_on_an_empty_one(
    app, world, busy_case, count_queries
):
    empty = _empty_case(app, world)
    counts = []
    for case_id in (empty, busy_case):
        resp, count = _patch(count_queries, world, case_id, {"summary": f"Changed {case_id}"})
        assert resp.json["summary"] == f"Changed {case_id}"
        counts.append(count)
    assert counts[0] == counts[1]


def test_changing_the_participants_does_not_take_a_statement_per_participant(app, world, count_queries):
    case_id = _empty_case(app, world)  # police (lead), health and slt
    _, remove_one = _patch(count_queries, world, case_id, {"participants": ["police", "health"]})
    _, add_one = _patch(count_queries, world, case_id, {"participants": ["police", "health", "slt"]})
    _, remove_two = _patch(count_queries, world, case_id, {"participants": ["police"]})
    resp, add_two = _patch(count_queries, world, case_id, {"participants": ["police", "health", "slt"]})
    assert sorted(resp.json["participants"]) == ["health", "police", "slt"]
    assert remove_one == remove_two and add_one == add_two


def test_a_read_through_the_orm_goes_on_the_reads_one_connection(app, world):
    """A read takes one connection, in autocommit, for all its statements: those on the driver's
    cursor and those of the ORM session (casesvc/common/connection.py), so a read that uses the
    ORM opens no second connection and sends no BEGIN."""
    case = world.case()
    world["police"].post(
        f"/api/v1/cases/{case['id']}/events", json={"kind": "meeting", "occurred_at": "2026-01-05T10:00:00Z"}
    )
    with app.app_context():
        engine = db.engine
    seen: list[tuple[int, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((id(conn.connection.dbapi_connection), in_autocommit(conn)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = world["police"].get(f"/api/v1/cases/{case['id']}/events")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 200 and len(resp.json["items"]) == 1
    assert len(seen) >= 2  # the caller's statement, the ORM's page of events (and the audit insert)
    assert len({connection for connection, _ in seen}) == 1
    assert {autocommit for _, autocommit in seen} == {True}
