"""Cases through the API: opening (lead, participants, municipality), the state machine,
filters, and PATCH of participants and coordinator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casesvc.agencies.service import create_agency
from casesvc.extensions import db
from tests.conftest import assert_problem

STATUSES = ("open", "active", "completed", "breached", "withdrawn")
ALLOWED = {
    "open": {"active", "withdrawn"},
    "active": {"completed", "breached", "withdrawn"},
    "completed": set(),
    "breached": set(),
    "withdrawn": set(),
}
CLOSED = {"completed", "breached", "withdrawn"}


def move(world, case, to, reason="Test reason", by="police"):
    return world[by].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": to, "reason": reason})


def case_in(world, status) -> dict:
    case = world.case()
    path = {
        "open": [],
        "active": ["active"],
        "withdrawn": ["withdrawn"],
        "completed": ["active", "completed"],
        "breached": ["active", "breached"],
    }[status]
    for to in path:
        resp = move(world, case, to)
        assert resp.status_code == 200, resp.json
        case = resp.json
    assert case["status"] == status
    return case


def patch(world, case, body, by="police"):
    url = f"/api/v1/cases/{case['id']}"
    etag = world[by].get(url).headers["ETag"]
    return world[by].patch(url, json=body, headers={"If-Match": etag})


# --- opening ---------------------------------------------------------------------------------


def test_open_makes_the_callers_agency_lead_and_a_participant(world):
    youth = world.youth(by="health")
    resp = world["health"].post(
        "/api/v1/cases", json={"youth_id": youth["id"], "origin": "school", "participants": ["nav"]}
    )
    assert resp.status_code == 201, resp.json
    case = resp.json
    assert resp.headers["Location"].endswith(f"/api/v1/cases/{case['id']}")
    assert resp.headers["ETag"]
    assert case["lead_agency"] == "health"
    assert sorted(case["participants"]) == ["health", "nav"]
    assert case["status"] == "open"
    assert case["opened_at"] and case["closed_at"] is None and case["outcome"] is None


def test_the_lead_is_a_participant_even_when_no_participants_are_given(world):
    youth = world.youth()
    resp = world["police"].post("/api/v1/cases", json={"youth_id": youth["id"], "origin": "police"})
    assert resp.status_code == 201, resp.json
    assert resp.json["participants"] == ["police"]


def test_a_lead_agency_cannot_be_chosen_in_the_request(world):
    youth = world.youth()
    resp = world["police"].post(
        "/api/v1/cases",
        json={"youth_id": youth["id"], "origin": "police", "lead_agency": "slt", "participants": ["slt"]},
    )
    assert "lead_agency" in assert_problem(resp, 422)["errors"]
    assert world["police"].get("/api/v1/cases").json["items"] == []


def test_the_municipality_defaults_to_the_youths(world, app):
    with app.app_context():
        create_agency("regional", "police", "Test regional", ["0301", "4601"])
        db.session.commit()
    regional = world.actor("police", "regional", name="user.regional")
    resp = regional.post(
        "/api/v1/youths",
        json={
            "given_name": "Test",
            "family_name": "Testesen",
            "birth_date": "2010-05-17",
            "national_id": _number("2010-05-17"),
            "municipality": "4601",
        },
    )
    assert resp.status_code == 201, resp.json
    case = regional.post("/api/v1/cases", json={"youth_id": resp.json["id"], "origin": "police"})
    assert case.status_code == 201, case.json
    assert case.json["municipality"] == "4601"


def test_an_explicit_municipality_overrides_the_youths(world, app):
    with app.app_context():
        create_agency("regional", "police", "Test regional", ["0301", "4601"])
        db.session.commit()
    regional = world.actor("police", "regional", name="user.regional")
    resp = regional.post(
        "/api/v1/youths",
        json={
            "given_name": "Test",
            "family_name": "Testesen",
            "birth_date": "2010-05-17",
            "national_id": _number("2010-05-17"),
            "municipality": "0301",
        },
    )
    assert resp.status_code == 201, resp.json
    case = regional.post(
        "/api/v1/cases", json={"youth_id": resp.json["id"], "origin": "police", "municipality": "4601"}
    )
    assert case.status_code == 201, case.json
    assert case.json["municipality"] == "4601"


def _number(born: str) -> str:
    from datetime import date

    from tests.conftest import youth_number

    return youth_number(date.fromisoformat(born), 900)


def test_422_when_the_callers_agency_does_not_serve_the_municipality(world):
    youth = world.youth()
    problem = assert_problem(
        world["police"].post(
            "/api/v1/cases", json={"youth_id": youth["id"], "origin": "police", "municipality": "4601"}
        ),
        422,
    )
    assert "municipality" in problem["errors"]
    assert world["police"].get("/api/v1/cases").json["items"] == []


def test_422_when_a_participant_does_not_serve_the_municipality(world):
    youth = world.youth()
    problem = assert_problem(
        world["police"].post(
            "/api/v1/cases",
            json={"youth_id": youth["id"], "origin": "police", "participants": ["health", "westhealth"]},
        ),
        422,
    )
    assert "participants" in problem["errors"]


def test_422_for_an_unknown_participant(world):
    youth = world.youth()
    problem = assert_problem(
        world["police"].post(
            "/api/v1/cases", json={"youth_id": youth["id"], "origin": "police", "participants": ["nosuchagency"]}
        ),
        422,
    )
    assert "participants" in problem["errors"]


def test_422_for_an_unknown_youth(world):
    problem = assert_problem(
        world["police"].post(
            "/api/v1/cases", json={"youth_id": "00000000-0000-0000-0000-000000000000", "origin": "police"}
        ),
        422,
    )
    assert "youth_id" in problem["errors"]


def test_422_for_a_youth_the_caller_may_not_see(world):
    youth = world.youth(by="nav")
    problem = assert_problem(
        world["police"].post("/api/v1/cases", json={"youth_id": youth["id"], "origin": "police"}), 422
    )
    assert "youth_id" in problem["errors"]


def test_422_for_an_unknown_origin(world):
    youth = world.youth()
    problem = assert_problem(
        world["police"].post("/api/v1/cases", json={"youth_id": youth["id"], "origin": "rumour"}), 422
    )
    assert "origin" in problem["errors"]


def test_a_coordinator_given_at_opening_must_belong_to_a_participant(world):
    youth = world.youth()
    bad = world["police"].post(
        "/api/v1/cases",
        json={
            "youth_id": youth["id"],
            "origin": "police",
            "participants": ["health"],
            "coordinator": world["slt"].user_id,
        },
    )
    assert "coordinator" in assert_problem(bad, 422)["errors"]
    good = world["police"].post(
        "/api/v1/cases",
        json={
            "youth_id": youth["id"],
            "origin": "police",
            "participants": ["slt"],
            "coordinator": world["slt"].user_id,
        },
    )
    assert good.status_code == 201, good.json
    assert good.json["coordinator"] == world["slt"].user_id


# --- the state machine -----------------------------------------------------------------------


@pytest.mark.parametrize("start", STATUSES)
def test_every_disallowed_move_is_409_listing_the_allowed_ones(world, start):
    case = case_in(world, start)
    for to in (*STATUSES, "archived"):
        if to in ALLOWED[start]:
            continue
        problem = assert_problem(move(world, case, to), 409, "transition-not-allowed")
        assert set(problem["allowed"]) == ALLOWED[start], (start, to)
        assert problem["current"] == start
        assert problem["to"] == to
    stored = world["police"].get(f"/api/v1/cases/{case['id']}").json
    assert stored["status"] == start
    assert stored["version"] == case["version"]


@pytest.mark.parametrize("start,to", [(s, t) for s in STATUSES for t in sorted(ALLOWED[s])])
def test_every_allowed_move_succeeds(world, start, to):
    case = case_in(world, start)
    resp = move(world, case, to, reason="Because")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == to
    assert resp.headers["ETag"] != f'"{case["version"]}"'
    stored = world["police"].get(f"/api/v1/cases/{case['id']}").json
    assert stored["status"] == to
    if to in CLOSED:
        assert stored["outcome"] == to
        closed_at = datetime.fromisoformat(stored["closed_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - closed_at).total_seconds()) < 300
        assert stored["status_reason"] == "Because"
    else:
        assert stored["closed_at"] is None and stored["outcome"] is None


def test_the_etag_moves_on_with_a_transition(world):
    case = world.case()
    before = world["police"].get(f"/api/v1/cases/{case['id']}").headers["ETag"]
    resp = move(world, case, "active")
    assert resp.headers["ETag"] != before


@pytest.mark.parametrize(
    "start,to", [("open", "withdrawn"), ("active", "completed"), ("active", "breached"), ("active", "withdrawn")]
)
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_closing_without_a_reason_is_422(world, start, to, reason):
    case = case_in(world, start)
    body = {"to": to} if reason is None else {"to": to, "reason": reason}
    problem = assert_problem(world["police"].post(f"/api/v1/cases/{case['id']}/transitions", json=body), 422)
    assert "reason" in problem["errors"]
    stored = world["police"].get(f"/api/v1/cases/{case['id']}").json
    assert stored["status"] == start
    assert stored["closed_at"] is None and stored["outcome"] is None


def test_activating_needs_no_reason(world):
    case = world.case()
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": "active"})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "active"


def test_a_transition_without_to_is_422(world):
    case = world.case()
    problem = assert_problem(world["police"].post(f"/api/v1/cases/{case['id']}/transitions", json={"reason": "x"}), 422)
    assert "to" in problem["errors"]


def test_status_sent_in_a_patch_is_ignored(world):
    case = world.case()
    resp = patch(world, case, {"status": "active", "summary": "Test summary, changed"})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "open" and resp.json["summary"] == "Test summary, changed"
    assert world["police"].get(f"/api/v1/cases/{case['id']}").json["status"] == "open"


def test_only_the_lead_or_a_coordinator_moves_the_case(world):
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"])
    assert_problem(move(world, case, "active", by="health"), 403, "lead-agency-required")
    assert world["police"].get(f"/api/v1/cases/{case['id']}").json["status"] == "open"
    resp = move(world, case, "active", by="slt")
    assert resp.status_code == 200, resp.json


# --- filters ---------------------------------------------------------------------------------


def _ids(resp):
    assert resp.status_code == 200, resp.json
    return {c["id"] for c in resp.json["items"]}


def test_filter_by_status(world):
    opened = world.case()
    active = case_in(world, "active")
    withdrawn = case_in(world, "withdrawn")
    get = world["police"].get
    assert _ids(get("/api/v1/cases", query_string={"status": "open"})) == {opened["id"]}
    assert _ids(get("/api/v1/cases", query_string={"status": "active"})) == {active["id"]}
    assert _ids(get("/api/v1/cases", query_string={"status": "withdrawn"})) == {withdrawn["id"]}
    assert _ids(get("/api/v1/cases", query_string={"status": "completed"})) == set()
    assert _ids(get("/api/v1/cases")) == {opened["id"], active["id"], withdrawn["id"]}
    assert "status" in assert_problem(get("/api/v1/cases", query_string={"status": "bogus"}), 422)["errors"]


def test_filter_by_participant(world):
    with_nav = world.case(participants=("nav",))
    with_health = world.case(participants=("health",))
    get = world["police"].get
    assert _ids(get("/api/v1/cases", query_string={"participant": "nav"})) == {with_nav["id"]}
    assert _ids(get("/api/v1/cases", query_string={"participant": "health"})) == {with_health["id"]}
    assert _ids(get("/api/v1/cases", query_string={"participant": "police"})) == {with_nav["id"], with_health["id"]}
    assert _ids(get("/api/v1/cases", query_string={"participant": "cw"})) == set()


def test_filter_by_youth(world):
    youth = world.youth()
    first = world.case(youth=youth)
    second = world.case(youth=youth)
    other = world.case()
    assert other["youth_id"] != youth["id"]
    assert _ids(world["police"].get("/api/v1/cases", query_string={"youth_id": youth["id"]})) == {
        first["id"],
        second["id"],
    }


def test_filter_by_municipality(world, app):
    with app.app_context():
        create_agency("regional", "police", "Test regional", ["0301", "4601"])
        db.session.commit()
    regional = world.actor("police", "regional", name="user.regional")
    ids = {}
    for mun, born in (("0301", "2010-05-17"), ("4601", "2011-06-18")):
        youth = regional.post(
            "/api/v1/youths",
            json={
                "given_name": "Test",
                "family_name": "Testesen",
                "birth_date": born,
                "national_id": _number(born),
                "municipality": mun,
            },
        )
        assert youth.status_code == 201, youth.json
        case = regional.post("/api/v1/cases", json={"youth_id": youth.json["id"], "origin": "police"})
        assert case.status_code == 201, case.json
        ids[mun] = case.json["id"]
    assert _ids(regional.get("/api/v1/cases", query_string={"municipality": "4601"})) == {ids["4601"]}
    assert _ids(regional.get("/api/v1/cases", query_string={"municipality": "0301"})) == {ids["0301"]}
    assert _ids(regional.get("/api/v1/cases")) == set(ids.values())


def test_filters_combine(world):
    youth = world.youth()
    a = world.case(youth=youth, participants=("nav",))
    world.case(youth=youth, participants=("health",))
    move(world, a, "active")
    world.case(participants=("nav",))
    resp = world["police"].get(
        "/api/v1/cases", query_string={"youth_id": youth["id"], "participant": "nav", "status": "active"}
    )
    assert _ids(resp) == {a["id"]}


# --- PATCH participants and coordinator --------------------------------------------------------


def test_patch_needs_if_match(world):
    case = world.case()
    assert_problem(world["police"].patch(f"/api/v1/cases/{case['id']}", json={"summary": "x"}), 428)
    assert_problem(
        world["police"].patch(f"/api/v1/cases/{case['id']}", json={"summary": "x"}, headers={"If-Match": '"999"'}), 412
    )
    assert world["police"].get(f"/api/v1/cases/{case['id']}").json["summary"] == "Test case"


def test_patch_participants_adds_and_removes(world):
    case = world.case(participants=("health", "slt"))
    resp = patch(world, case, {"participants": ["police", "nav", "cw"]})
    assert resp.status_code == 200, resp.json
    assert sorted(resp.json["participants"]) == ["cw", "nav", "police"]
    assert sorted(world["police"].get(f"/api/v1/cases/{case['id']}").json["participants"]) == ["cw", "nav", "police"]


def test_changing_only_the_participants_moves_the_etag_on(world):
    case = world.case(participants=("health",))
    url = f"/api/v1/cases/{case['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(url, json={"participants": ["police", "health", "nav"]}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.json
    assert resp.headers["ETag"] != etag
    stale = world["police"].patch(url, json={"participants": ["police"]}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert sorted(world["police"].get(url).json["participants"]) == ["health", "nav", "police"]


def test_the_lead_cannot_be_removed(world):
    case = world.case(participants=("health", "slt"))
    problem = assert_problem(patch(world, case, {"participants": ["health", "slt"]}), 422)
    assert "participants" in problem["errors"]
    assert "police" in world["police"].get(f"/api/v1/cases/{case['id']}").json["participants"]


def test_an_empty_participant_list_is_422(world):
    case = world.case()
    assert "participants" in assert_problem(patch(world, case, {"participants": []}), 422)["errors"]


def test_adding_a_participant_from_another_municipality_is_422(world):
    case = world.case(participants=("health",))
    problem = assert_problem(patch(world, case, {"participants": ["police", "health", "westhealth"]}), 422)
    assert "participants" in problem["errors"]
    assert sorted(world["police"].get(f"/api/v1/cases/{case['id']}").json["participants"]) == ["health", "police"]


def test_the_coordinator_must_be_a_user_of_a_participating_agency(world):
    case = world.case(participants=("health",))
    problem = assert_problem(patch(world, case, {"coordinator": world["slt"].user_id}), 422)
    assert "coordinator" in problem["errors"]
    problem = assert_problem(patch(world, case, {"coordinator": "00000000-0000-0000-0000-000000000000"}), 422)
    assert "coordinator" in problem["errors"]
    problem = assert_problem(patch(world, case, {"coordinator": world["admin"].user_id}), 422)
    assert "coordinator" in problem["errors"]
    resp = patch(world, case, {"coordinator": world["health"].user_id})
    assert resp.status_code == 200, resp.json
    assert resp.json["coordinator"] == world["health"].user_id


def test_a_coordinator_can_be_set_together_with_its_agency(world):
    case = world.case(participants=("health",))
    resp = patch(world, case, {"participants": ["police", "health", "slt"], "coordinator": world["slt"].user_id})
    assert resp.status_code == 200, resp.json
    assert resp.json["coordinator"] == world["slt"].user_id


def test_removing_the_coordinators_agency_is_422(world):
    case = world.case(participants=("health", "slt"))
    assert patch(world, case, {"coordinator": world["slt"].user_id}).status_code == 200
    problem = assert_problem(patch(world, case, {"participants": ["police", "health"]}), 422)
    assert "coordinator" in problem["errors"]
    stored = world["police"].get(f"/api/v1/cases/{case['id']}").json
    assert "slt" in stored["participants"]
    assert stored["coordinator"] == world["slt"].user_id


def test_the_coordinator_can_be_cleared(world):
    case = world.case(participants=("slt",))
    assert patch(world, case, {"coordinator": world["slt"].user_id}).status_code == 200
    resp = patch(world, case, {"coordinator": None})
    assert resp.status_code == 200, resp.json
    assert resp.json["coordinator"] is None


def test_only_the_lead_or_a_coordinator_changes_participants(world):
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"])
    assert_problem(
        patch(world, case, {"participants": ["police", "health", "slt", "nav"]}, by="health"),
        403,
        "lead-agency-required",
    )
    resp = patch(world, case, {"participants": ["police", "health", "slt", "nav"]}, by="slt")
    assert resp.status_code == 200, resp.json
    assert "nav" in resp.json["participants"]
