"""Case responses are rendered by `case_body` from plain rows (the read path) or from the ORM
object (writes), not by marshmallow. These tests hold every such response equal to what the
documented `CaseSchema` dumps from the stored case, so the OpenAPI document stays true."""

from __future__ import annotations

import pytest

from casesvc.access import load_case_view
from casesvc.cases.models import Case
from casesvc.cases.schemas import CaseSchema, case_body
from casesvc.extensions import db


def documented(case_id: str) -> dict:
    db.session.expire_all()
    return CaseSchema().dump(db.session.get(Case, case_id))


@pytest.fixture(autouse=True)
def _app_context(app):
    with app.app_context():
        yield


def varied_cases(world) -> list[dict]:
    """An open case; a closed one (outcome, reason, closed_at); one with a coordinator and a
    legal hold; one led by another agency with the lead alone taking part."""
    plain = world.case()
    closed = world.case()
    for to, reason in (("active", None), ("breached", "Missed two tests in a row.")):
        resp = world["police"].post(f"/api/v1/cases/{closed['id']}/transitions", json={"to": to, "reason": reason})
        assert resp.status_code == 200, resp.json
    youth = world.youth()
    held = (
        world["police"]
        .post(
            "/api/v1/cases",
            json={
                "youth_id": youth["id"],
                "origin": "police",
                "summary": "Testsak med koordinator — «æøå»",
                "participants": ["slt", "health"],
                "coordinator": world["slt"].user_id,
            },
        )
        .json
    )
    url = f"/api/v1/cases/{held['id']}"
    resp = world["police"].patch(
        url, json={"legal_hold": True}, headers={"If-Match": world["police"].get(url).headers["ETag"]}
    )
    assert resp.status_code == 200, resp.json
    alone = world.case(by="health", participants=())
    return [
        world["health" if case is alone else "police"].get(f"/api/v1/cases/{case['id']}").json
        for case in (plain, closed, held, alone)
    ]


def test_get_case_answers_what_the_schema_documents(world):
    for case in varied_cases(world):
        by = "health" if case["lead_agency"] == "health" else "police"
        resp = world[by].get(f"/api/v1/cases/{case['id']}")
        assert resp.status_code == 200
        assert resp.json == documented(case["id"])
        assert list(resp.json) == list(CaseSchema().fields)  # the documented order, id first


def test_writes_answer_what_the_schema_documents(world):
    closed, held = varied_cases(world)[1:3]
    assert closed["status"] == "breached" and closed["closed_at"] and closed["status_reason"]
    assert held["legal_hold"] is True and held["coordinator"] == world["slt"].user_id
    for case in (closed, held):
        assert case == documented(case["id"])


def test_a_page_of_cases_answers_what_the_schema_documents(world):
    made = varied_cases(world)
    resp = world["police"].get("/api/v1/cases?limit=2")
    items = resp.json["items"]
    resp2 = world["police"].get(f"/api/v1/cases?limit=2&cursor={resp.json['next_cursor']}")
    items += resp2.json["items"]
    police_led = [case["id"] for case in reversed(made) if case["lead_agency"] == "police"]
    assert [item["id"] for item in items] == police_led
    for item in items:
        assert item == documented(item["id"])


@pytest.mark.parametrize("which", range(4))
def test_the_read_record_and_the_orm_object_render_alike(world, which):
    case_id = varied_cases(world)[which]["id"]
    view = load_case_view(case_id)
    db.session.expire_all()
    orm = db.session.get(Case, case_id)
    assert view.participant_codes == tuple(orm.participant_codes)
    assert case_body(view) == case_body(orm) == CaseSchema().dump(orm)


def test_an_unknown_case_has_no_read_record(world):
    assert load_case_view("00000000-0000-4000-8000-000000000000") is None


AWKWARD_SUMMARY = 'Sitat "i anførsel", bakstrek \\ og /, linjeskift\nfane\tklokke\x07 DEL\x7f «æøå» 🙂 \u2028 slutt'


def test_a_page_is_the_bytes_the_app_writes_for_what_the_schema_documents(world, app):
    """On PostgreSQL the page's statement writes each case's body (`case_body_sql`): the page is
    byte for byte what the app's JSON writer makes of the documented cases, whatever the text
    holds; on SQLite `case_body` writes it, and the same holds."""
    awkward = world.case(summary=AWKWARD_SUMMARY, participants=("slt", "health"))
    closed = varied_cases(world)[1]
    resp = world["police"].get("/api/v1/cases?limit=50")
    assert resp.status_code == 200
    items = {item["id"]: item for item in resp.json["items"]}
    assert items[awkward["id"]]["summary"] == AWKWARD_SUMMARY
    # in joining order (agencies added in the same instant in code order), as documented (below)
    assert sorted(items[awkward["id"]]["participants"]) == ["health", "police", "slt"]
    assert items[closed["id"]]["closed_at"].endswith("Z") and items[closed["id"]]["legal_hold"] is False
    for item in resp.json["items"]:
        assert item == documented(item["id"])
        assert list(item) == list(CaseSchema().fields)
    expected = {"items": [documented(item["id"]) for item in resp.json["items"]], "next_cursor": None}
    assert resp.get_data() == app.json.dumps(expected).encode() + b"\n"
