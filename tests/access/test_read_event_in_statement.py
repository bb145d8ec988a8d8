"""On PostgreSQL the lead's read of one case inserts its own audit event in the caller's
statement (`access.clauses.case_led_by_caller_row`), and a page of cases in the page's
statement; elsewhere, and for every other caller, the event is recorded after the answer is
decided (`audit.service.record_response`). Either way each read leaves exactly one event, with
the status the caller got and the basis it was read under: these tests hold that for every
cell of the access matrix, so a statement that inserted an event the policy then refused (or
left one out) fails here, and compare the event of the statement with the one recorded after."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sa_event, select

from casesvc.audit.service import EVENT_KEYS
from casesvc.auth import principal
from casesvc.cases import views as case_views
from casesvc.extensions import db
from tests.access.test_policy_matrix import CELLS, build, expected_for, outcome
from tests.audit.test_audit_recording import events, head_seq

# every field of an event but its own id, its time and the request's id
_SAME_FOR_EITHER = [name for name in EVENT_KEYS if name not in ("id", "at", "request_id")]


def _on_postgres(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def _recorded_for(app, since: int, resp) -> list[dict]:
    return [e for e in events(app, since) if e["request_id"] == resp.headers["X-Request-Id"]]


@pytest.mark.parametrize("relationship, code", CELLS, ids=[f"{rel}-{code}" for rel, code in CELLS])
def test_each_read_of_a_case_leaves_one_event_with_the_status_it_got(world, app, relationship, code):
    w = build(world, app, relationship, code)
    since = head_seq(app)
    resp = world[code].get(w["base"])
    assert outcome(resp) == expected_for(relationship, code)["get_case"]
    recorded = _recorded_for(app, since, resp)
    assert [(e["action"], e["status"], e["case_id"]) for e in recorded] == [
        ("cases.get_case", resp.status_code, w["case"]["id"])
    ]
    expected_basis = "emergency" if relationship == "participant under emergency access" else None
    assert recorded[0]["basis"] == expected_basis
    if resp.status_code == 200:
        assert recorded[0]["youth_id"] == w["case"]["youth_id"]
        assert recorded[0]["actor"] == world[code].user_id


def _statements_of(app, actor, url) -> tuple[object, list[str]]:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0].upper())

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        resp = actor.get(url)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    return resp, seen


@pytest.mark.parametrize("reader", ["police", "health"], ids=["lead", "participant with consent"])
def test_the_leads_read_is_one_statement_on_postgresql(world, app, reader):
    """The lead's access rests on the rows of the caller's statement alone: its event rides that
    statement. A participant's rests on consents, read by a statement of their own (and on the
    day, and on an emergency access): its event follows the decision."""
    case = world.case()
    world.consent(case, ["health"])
    resp, seen = _statements_of(app, world[reader], f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 200
    # SQLite has no INSERT inside a SELECT: there the event is a statement of its own
    caller = "WITH" if _on_postgres(app) else "SELECT"
    expected = [caller] if reader == "police" and _on_postgres(app) else [caller, "INSERT"]
    if reader != "police":
        expected.insert(1, "SELECT")  # the consents naming the participant's agency
    assert seen == expected


def test_a_read_the_policy_refuses_records_its_event_after_the_decision(world, app):
    case = world.case()  # health takes part, without a consent
    since = head_seq(app)
    resp, seen = _statements_of(app, world["health"], f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 403
    assert seen[-1] == "INSERT"  # the refusal's event, after the policy decided
    assert [e["status"] for e in _recorded_for(app, since, resp)] == [403]


def test_the_statements_event_is_the_one_recorded_after_the_answer(world, app, monkeypatch):
    """The same read, once with the event in the statement and once recorded after the answer:
    the two events agree on everything but their own id, time and request id."""
    case = world.case()
    url = f"/api/v1/cases/{case['id']}"
    since = head_seq(app)
    in_statement = world["police"].get(url)
    monkeypatch.setattr(principal, "_read_event_in_statement", lambda claims, scopes: False)
    after = world["police"].get(url)
    assert in_statement.status_code == after.status_code == 200
    first, second = _recorded_for(app, since, in_statement), _recorded_for(app, since, after)
    assert len(first) == len(second) == 1
    assert {k: first[0][k] for k in _SAME_FOR_EITHER} == {k: second[0][k] for k in _SAME_FOR_EITHER}


def test_a_failure_after_the_read_adds_its_own_event(world, app, monkeypatch):
    """The statement recorded the read (the case was read for the caller); a failure while
    answering is recorded too, as a second event of the same request on PostgreSQL."""
    case = world.case()

    def broken(case, status=200):
        raise RuntimeError("the answer could not be written")

    monkeypatch.setattr(case_views, "case_response", broken)
    since = head_seq(app)
    resp = world["police"].get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 500
    statuses = [e["status"] for e in _recorded_for(app, since, resp)]
    assert statuses == ([200, 500] if _on_postgres(app) else [500])


def test_a_nul_in_the_query_is_refused_with_one_event(world, app):
    """The query's NUL is refused (400) after the caller is loaded: the caller's statement
    records no read for it."""
    case = world.case()
    since = head_seq(app)
    resp = world["police"].get(f"/api/v1/cases/{case['id']}?q=%00")
    assert resp.status_code == 400
    assert [e["status"] for e in _recorded_for(app, since, resp)] == [400]


def test_a_read_inside_a_transaction_already_begun_records_its_event_after(app):
    """A read whose session is already in a transaction goes on in it (requests.py): its event
    is not put in the statement, where nothing would commit it, but recorded and committed as any
    request's. Only a read in autocommit takes the statement's way, and only on PostgreSQL."""
    from casesvc.audit.service import events_ride_reads

    with app.test_request_context("/api/v1/cases"):
        db.session.execute(select(1))  # a transaction has begun
        assert events_ride_reads() is False
        db.session.remove()
    with app.test_request_context("/api/v1/cases"):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        assert events_ride_reads() is _on_postgres(app)
        db.session.remove()


def test_a_revoked_token_leaves_no_read_event_in_the_statement(world, app, client):
    case = world.case()
    police = world["police"]
    assert client.post("/api/v1/auth/revoke", data={"token": police.token}).status_code == 200
    since = head_seq(app)
    resp = police.get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 401
    assert [e["status"] for e in _recorded_for(app, since, resp)] == [401]


# --- a page of cases: its event in the page's statement --------------------------------------


def test_a_page_of_cases_records_the_ids_it_answered_in_its_own_statement(world, app):
    cases = [world.case() for _ in range(3)]
    url = "/api/v1/cases?limit=2"
    since = head_seq(app)
    first, seen = _statements_of(app, world["police"], url)
    assert first.status_code == 200 and len(first.json["items"]) == 2 and first.json["next_cursor"]
    # the caller, then the page (with its event, on PostgreSQL)
    assert seen == (["SELECT", "WITH"] if _on_postgres(app) else ["SELECT", "SELECT", "INSERT"])
    second = world["police"].get(f"{url}&cursor={first.json['next_cursor']}")
    empty = world["police"].get("/api/v1/cases?limit=2&status=completed")
    assert second.status_code == empty.status_code == 200
    answered = [[item["id"] for item in resp.json["items"]] for resp in (first, second, empty)]
    assert answered[0] + answered[1] == [case["id"] for case in reversed(cases)]
    assert answered[2] == []
    recorded = [_recorded_for(app, since, resp) for resp in (first, second, empty)]
    assert [[(e["action"], e["status"], e["ids"]) for e in r] for r in recorded] == [
        [("cases.list_cases", 200, ids)] for ids in answered
    ]


def test_a_page_that_fails_while_answering_adds_its_own_event(world, app, monkeypatch):
    world.case()

    def broken(case):
        raise RuntimeError("the answer could not be written")

    monkeypatch.setattr(case_views, "case_item", broken)
    since = head_seq(app)
    resp = world["police"].get("/api/v1/cases?limit=5")
    assert resp.status_code == 500
    statuses = [e["status"] for e in _recorded_for(app, since, resp)]
    assert statuses == ([200, 500] if _on_postgres(app) else [500])
