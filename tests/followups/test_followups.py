"""Events and notes through the API: drug tests are health data, results belong to drug tests,
links stay inside the case, and entries are never edited — a correction is a new entry."""

from __future__ import annotations

import pytest

from tests.conftest import assert_problem

WHEN = "2027-01-05T08:00:00Z"


def events_url(case):
    return f"/api/v1/cases/{case['id']}/events"


def notes_url(case):
    return f"/api/v1/cases/{case['id']}/notes"


def log(world, case, by="police", **fields):
    body = {"kind": "meeting", "occurred_at": WHEN, "summary": "Test meeting", **fields}
    return world[by].post(events_url(case), json=body)


def logged(world, case, by="police", **fields) -> dict:
    resp = log(world, case, by=by, **fields)
    assert resp.status_code == 201, resp.json
    return resp.json


def note(world, case, by="police", **fields) -> dict:
    resp = world[by].post(notes_url(case), json={"body": "Test note", **fields})
    assert resp.status_code == 201, resp.json
    return resp.json


def drug_contract(world, case, agency="health") -> dict:
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reactions",
        json={
            "type": "drug_contract",
            "legal_basis": "conditional_waiver",
            "starts_on": "2027-01-01",
            "ends_on": "2027-07-01",
            "conditions": [
                {"kind": "drug_test", "responsible_agency": agency, "every_days": 7},
                {"kind": "meeting", "responsible_agency": "police"},
            ],
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


# --- drug tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("category", [None, "general", "health"])
def test_a_drug_test_is_stored_as_health_whatever_the_request_says(world, category):
    case = world.case()
    fields = {"kind": "drug_test", "result": "negative"}
    if category:
        fields["category"] = category
    event = logged(world, case, **fields)
    assert event["category"] == "health"
    stored = world["police"].get(f"{events_url(case)}/{event['id']}").json
    assert stored["category"] == "health"
    assert stored["result"] == "negative"


def test_a_drug_test_logged_as_general_is_not_shared_as_general(world):
    """The rewrite matters: a participant whose consent covers only general data must not see it."""
    case = world.case(participants=("nav",))
    world.consent(case, ["nav"], categories=("general",))
    event = logged(world, case, kind="drug_test", result="positive", category="general")
    assert world["nav"].get(f"{events_url(case)}/{event['id']}").status_code == 404
    assert world["nav"].get(events_url(case)).json["items"] == []


def test_other_kinds_keep_the_category_they_are_given(world):
    case = world.case()
    assert logged(world, case, kind="home_visit", category="health")["category"] == "health"
    assert logged(world, case, kind="meeting")["category"] == "general"


def test_a_drug_test_needs_a_result(world):
    case = world.case()
    problem = assert_problem(log(world, case, kind="drug_test"), 422)
    assert "result" in problem["errors"]
    problem = assert_problem(log(world, case, kind="drug_test", result=None), 422)
    assert "result" in problem["errors"]
    assert world["police"].get(events_url(case)).json["items"] == []


@pytest.mark.parametrize("result", ["negative", "positive", "missed", "invalid"])
def test_every_drug_test_result_is_accepted(world, result):
    case = world.case()
    assert logged(world, case, kind="drug_test", result=result)["result"] == result


def test_an_unknown_result_is_422(world):
    case = world.case()
    assert "result" in assert_problem(log(world, case, kind="drug_test", result="clean"), 422)["errors"]


@pytest.mark.parametrize("kind", ["meeting", "conversation", "phone_call", "home_visit", "school_report", "other"])
def test_only_a_drug_test_has_a_result(world, kind):
    case = world.case()
    problem = assert_problem(log(world, case, kind=kind, result="negative"), 422)
    assert "result" in problem["errors"]
    assert logged(world, case, kind=kind)["result"] is None


def test_an_unknown_kind_is_422(world):
    case = world.case()
    assert "kind" in assert_problem(log(world, case, kind="party"), 422)["errors"]


# --- links to reactions and conditions -------------------------------------------------------


def test_an_event_linked_to_a_condition_names_its_reaction(world):
    case = world.case()
    reaction = drug_contract(world, case)
    condition = reaction["conditions"][0]
    event = logged(world, case, kind="drug_test", result="negative", condition_id=condition["id"])
    assert event["condition_id"] == condition["id"]
    assert event["reaction_id"] == reaction["id"]


def test_a_condition_of_another_case_is_422(world):
    case = world.case()
    other = world.case()
    foreign = drug_contract(world, other)["conditions"][0]
    problem = assert_problem(log(world, case, kind="drug_test", result="negative", condition_id=foreign["id"]), 422)
    assert "condition_id" in problem["errors"]
    assert world["police"].get(events_url(case)).json["items"] == []
    assert world["police"].get(events_url(other)).json["items"] == []


def test_an_unknown_condition_is_422(world):
    case = world.case()
    problem = assert_problem(log(world, case, condition_id="00000000-0000-0000-0000-000000000000"), 422)
    assert "condition_id" in problem["errors"]


def test_a_condition_of_another_reaction_of_the_same_case_is_422(world):
    case = world.case()
    first = drug_contract(world, case)
    second = drug_contract(world, case)
    problem = assert_problem(
        log(
            world,
            case,
            kind="drug_test",
            result="negative",
            reaction_id=second["id"],
            condition_id=first["conditions"][0]["id"],
        ),
        422,
    )
    assert "condition_id" in problem["errors"]


def test_a_reaction_of_another_case_is_422(world):
    case = world.case()
    foreign = drug_contract(world, world.case())
    problem = assert_problem(log(world, case, reaction_id=foreign["id"]), 422)
    assert "reaction_id" in problem["errors"]


def test_filter_events_by_condition(world):
    case = world.case()
    reaction = drug_contract(world, case)
    test_condition, meeting_condition = (c["id"] for c in reaction["conditions"])
    a = logged(world, case, kind="drug_test", result="negative", condition_id=test_condition)
    b = logged(world, case, kind="meeting", condition_id=meeting_condition)
    logged(world, case)
    get = world["police"].get
    assert [e["id"] for e in get(events_url(case), query_string={"condition_id": test_condition}).json["items"]] == [
        a["id"]
    ]
    assert {e["id"] for e in get(events_url(case), query_string={"reaction_id": reaction["id"]}).json["items"]} == {
        a["id"],
        b["id"],
    }
    assert [e["id"] for e in get(events_url(case), query_string={"kind": "drug_test"}).json["items"]] == [a["id"]]


# --- never edited, never deleted -------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_an_event_cannot_be_edited_or_deleted(world, method):
    case = world.case()
    event = logged(world, case)
    actor = world["police"]
    item = f"{events_url(case)}/{event['id']}"
    resp = getattr(actor, method)(item) if method == "delete" else getattr(actor, method)(item, json={"summary": "x"})
    problem = assert_problem(resp, 405, "method-not-allowed")
    assert problem["status"] == 405
    assert "GET" in resp.headers.get("Allow", "")
    assert method.upper() not in resp.headers["Allow"]
    stored = actor.get(item)
    assert stored.status_code == 200
    assert stored.json["summary"] == "Test meeting"


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_note_cannot_be_edited_or_deleted(world, method):
    case = world.case()
    written = note(world, case)
    actor = world["police"]
    item = f"{notes_url(case)}/{written['id']}"
    resp = getattr(actor, method)(item) if method == "delete" else getattr(actor, method)(item, json={"body": "x"})
    assert_problem(resp, 405, "method-not-allowed")
    assert actor.get(item).json["body"] == "Test note"


@pytest.mark.parametrize("collection", ["events", "notes"])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_collections_cannot_be_replaced_or_deleted(world, collection, method):
    case = world.case()
    logged(world, case)
    note(world, case)
    actor = world["police"]
    target = f"/api/v1/cases/{case['id']}/{collection}"
    resp = getattr(actor, method)(target) if method == "delete" else getattr(actor, method)(target, json=[])
    assert_problem(resp, 405, "method-not-allowed")
    assert len(actor.get(target).json["items"]) == 1


# --- corrections -----------------------------------------------------------------------------


def test_an_event_correction_names_the_corrected_event_and_leaves_it_alone(world):
    case = world.case()
    original = logged(world, case, summary="Met at school")
    correction = logged(world, case, summary="Met at the youth club", corrects=original["id"])
    assert correction["corrects"] == original["id"]
    assert correction["id"] != original["id"]
    assert world["police"].get(f"{events_url(case)}/{original['id']}").json["summary"] == "Met at school"
    assert world["police"].get(f"{events_url(case)}/{correction['id']}").json["corrects"] == original["id"]
    listed = {e["id"]: e for e in world["police"].get(events_url(case)).json["items"]}
    assert set(listed) == {original["id"], correction["id"]}
    assert listed[original["id"]]["corrects"] is None


def test_a_note_correction_names_the_corrected_note(world):
    case = world.case()
    original = note(world, case, body="Mother called")
    correction = note(world, case, body="Father called", corrects=original["id"])
    assert correction["corrects"] == original["id"]
    assert world["police"].get(f"{notes_url(case)}/{original['id']}").json["body"] == "Mother called"


def test_a_correction_may_be_corrected_again(world):
    case = world.case()
    first = note(world, case)
    second = note(world, case, corrects=first["id"])
    third = note(world, case, corrects=second["id"])
    assert third["corrects"] == second["id"]


def test_correcting_an_event_of_another_case_is_422(world):
    case = world.case()
    other = world.case()
    foreign = logged(world, other)
    problem = assert_problem(log(world, case, corrects=foreign["id"]), 422)
    assert "corrects" in problem["errors"]
    assert world["police"].get(events_url(case)).json["items"] == []


def test_correcting_a_note_of_another_case_is_422(world):
    case = world.case()
    foreign = note(world, world.case())
    resp = world["police"].post(notes_url(case), json={"body": "Correction", "corrects": foreign["id"]})
    assert "corrects" in assert_problem(resp, 422)["errors"]


def test_a_correction_must_name_an_entry_of_its_own_type(world):
    case = world.case()
    a_note = note(world, case)
    an_event = logged(world, case)
    assert "corrects" in assert_problem(log(world, case, corrects=a_note["id"]), 422)["errors"]
    resp = world["police"].post(notes_url(case), json={"body": "Correction", "corrects": an_event["id"]})
    assert "corrects" in assert_problem(resp, 422)["errors"]


def test_correcting_an_unknown_entry_is_422(world):
    case = world.case()
    problem = assert_problem(log(world, case, corrects="00000000-0000-0000-0000-000000000000"), 422)
    assert "corrects" in problem["errors"]


def test_an_entry_the_caller_cannot_see_cannot_be_corrected(world):
    """An agency-only note of another agency is invisible, so naming it is the same as naming
    nothing: 422, never a hint that it exists."""
    case = world.case(participants=("health",))
    world.consent(case, ["health"], categories=("general", "health"))
    private = note(world, case, by="health", visibility="agency")
    resp = world["police"].post(notes_url(case), json={"body": "Correction", "corrects": private["id"]})
    problem = assert_problem(resp, 422)
    unknown = assert_problem(
        world["police"].post(
            notes_url(case), json={"body": "Correction", "corrects": "00000000-0000-0000-0000-000000000000"}
        ),
        422,
    )
    assert problem["errors"] == unknown["errors"]


@pytest.mark.parametrize("entry", ["event", "note"])
def test_the_lead_corrects_a_health_entry_of_another_agency_only_under_a_consent_covering_health(world, entry):
    """The lead's writes need no consent, but a correction must see the entry it corrects: a
    health entry of another agency reaches the lead only under a consent naming it that covers
    health. (The lead's plain writes skip the consent query; a correction asks it.)"""
    case = world.case(participants=("health",))
    world.consent(case, ["health"], categories=("general", "health"))
    url = events_url(case) if entry == "event" else notes_url(case)
    body = {"kind": "meeting", "occurred_at": WHEN, "summary": "Test meeting"} if entry == "event" else {"body": "B"}
    written = world["health"].post(url, json={**body, "category": "health"})
    assert written.status_code == 201, written.json
    correction = {**body, "category": "health", "corrects": written.json["id"]}
    assert "corrects" in assert_problem(world["police"].post(url, json=correction), 422)["errors"]
    world.consent(case, ["police"], categories=("general", "health"))
    corrected = world["police"].post(url, json=correction)
    assert corrected.status_code == 201, corrected.json
    assert corrected.json["corrects"] == written.json["id"]


def test_the_author_is_recorded_from_the_token(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    event = logged(world, case, by="health")
    assert event["author"] == {"agency": "health", "user_id": world["health"].user_id}
    written = note(world, case, by="health")
    assert written["author"]["agency"] == "health"
    assert written["created_at"]


def test_an_author_in_the_request_cannot_forge_authorship(world):
    case = world.case()
    resp = world["police"].post(notes_url(case), json={"body": "x", "author": {"agency": "health"}})
    assert resp.status_code == 201, resp.json
    assert resp.json["author"] == {"agency": "police", "user_id": world["police"].user_id}
