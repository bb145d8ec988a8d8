"""Reactions through the API: contract dates, controlling conditions and legal basis,
signatures before activation, PATCH rules, and the reaction state machine."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from casesvc.common.timeutil import add_years, oslo_today
from tests.conftest import assert_problem

STATUSES = ("draft", "active", "completed", "breached", "cancelled")
ALLOWED = {
    "draft": {"active", "cancelled"},
    "active": {"completed", "breached", "cancelled"},
    "completed": set(),
    "breached": set(),
    "cancelled": set(),
}
START = date(2027, 3, 1)


def reaction_body(type="follow_up_plan", legal_basis="consent", **fields) -> dict:
    body = {"type": type, "legal_basis": legal_basis, "starts_on": START.isoformat()}
    if type in ("youth_contract", "drug_contract"):
        body["ends_on"] = (START + timedelta(days=180)).isoformat()
    body.update(fields)
    return body


def create(world, case, by="police", **fields):
    return world[by].post(f"/api/v1/cases/{case['id']}/reactions", json=reaction_body(**fields))


def created(world, case, by="police", **fields) -> dict:
    resp = create(world, case, by=by, **fields)
    assert resp.status_code == 201, resp.json
    return resp.json


def url(case, reaction, tail=""):
    return f"/api/v1/cases/{case['id']}/reactions/{reaction['id']}{tail}"


def move(world, case, reaction, to, reason="Test reason", by="police"):
    return world[by].post(url(case, reaction, "/transitions"), json={"to": to, "reason": reason})


def sign(world, case, reaction, party, on=None, by="police"):
    return world[by].post(
        url(case, reaction, "/signatures"), json={"party": party, "signed_on": (on or oslo_today()).isoformat()}
    )


def patch(world, case, reaction, body, by="police"):
    etag = world[by].get(url(case, reaction)).headers["ETag"]
    return world[by].patch(url(case, reaction), json=body, headers={"If-Match": etag})


def reaction_in(world, case, status, **fields) -> dict:
    reaction = created(world, case, **fields)
    path = {
        "draft": [],
        "active": ["active"],
        "cancelled": ["cancelled"],
        "completed": ["active", "completed"],
        "breached": ["active", "breached"],
    }[status]
    for to in path:
        resp = move(world, case, reaction, to)
        assert resp.status_code == 200, resp.json
        reaction = resp.json
    assert reaction["status"] == status
    return reaction


def cond(kind="meeting", agency="police", **fields) -> dict:
    return {"kind": kind, "responsible_agency": agency, "description": "Test condition", **fields}


# --- creation --------------------------------------------------------------------------------


def test_a_reaction_is_created_as_a_draft_with_location_and_etag(world):
    case = world.case()
    resp = create(world, case, conditions=[cond("meeting", "health", every_days=14)])
    assert resp.status_code == 201, resp.json
    reaction = resp.json
    assert reaction["status"] == "draft"
    assert reaction["case_id"] == case["id"]
    assert resp.headers["Location"].endswith(url(case, reaction))
    assert resp.headers["ETag"]
    [condition] = reaction["conditions"]
    assert condition["id"] and condition["kind"] == "meeting" and condition["every_days"] == 14
    assert condition["responsible_agency"] == "health"


def test_a_status_sent_at_creation_is_ignored_and_the_reaction_starts_as_draft(world):
    case = world.case()
    resp = create(world, case, status="active")
    assert resp.status_code == 201, resp.json
    assert resp.json["status"] == "draft"


@pytest.mark.parametrize("type", ["youth_contract", "drug_contract"])
def test_a_contract_may_last_exactly_two_years(world, type):
    case = world.case()
    resp = create(world, case, type=type, legal_basis="conditional_waiver", ends_on=date(2029, 3, 1).isoformat())
    assert resp.status_code == 201, resp.json
    assert resp.json["ends_on"] == "2029-03-01"


@pytest.mark.parametrize("type", ["youth_contract", "drug_contract"])
def test_a_contract_one_day_longer_than_two_years_is_422(world, type):
    case = world.case()
    problem = assert_problem(
        create(world, case, type=type, legal_basis="conditional_waiver", ends_on=date(2029, 3, 2).isoformat()), 422
    )
    assert "ends_on" in problem["errors"]


def test_two_years_from_29_february_ends_on_28_february(world):
    case = world.case()
    body = {"type": "youth_contract", "legal_basis": "conditional_waiver", "starts_on": "2028-02-29"}
    assert create(world, case, ends_on="2030-02-28", **body).status_code == 201
    assert "ends_on" in assert_problem(create(world, case, ends_on="2030-03-01", **body), 422)["errors"]


def test_a_contract_at_the_end_of_the_calendar_is_422_on_its_dates_not_a_server_error(world):
    """Business dates lie within ten years of today (README: Security, hardening): a contract
    in year 9999, whose reminders could not be computed, is refused on the field."""
    case = world.case()
    body = {"type": "drug_contract", "legal_basis": "conditional_waiver", "starts_on": "9999-01-01"}
    errors = assert_problem(create(world, case, ends_on="9999-12-31", **body), 422)["errors"]
    assert set(errors) == {"starts_on", "ends_on"}


@pytest.mark.parametrize("type", ["youth_contract", "drug_contract"])
def test_a_contract_needs_an_end_date(world, type):
    case = world.case()
    body = reaction_body(type=type, legal_basis="conditional_waiver")
    del body["ends_on"]
    problem = assert_problem(world["police"].post(f"/api/v1/cases/{case['id']}/reactions", json=body), 422)
    assert "ends_on" in problem["errors"]
    problem = assert_problem(create(world, case, type=type, legal_basis="conditional_waiver", ends_on=None), 422)
    assert "ends_on" in problem["errors"]


def test_a_plan_needs_no_end_date_and_may_run_longer_than_two_years(world):
    case = world.case()
    assert created(world, case, type="follow_up_plan")["ends_on"] is None
    longer = created(world, case, type="follow_up_plan", ends_on=date(2030, 3, 1).isoformat())
    assert longer["ends_on"] == "2030-03-01"


def test_an_end_before_the_start_is_422(world):
    case = world.case()
    problem = assert_problem(create(world, case, ends_on=(START - timedelta(days=1)).isoformat()), 422)
    assert "ends_on" in problem["errors"]


def test_probation_is_at_most_two_years_from_the_start(world):
    case = world.case()
    ok = create(world, case, type="drug_contract", legal_basis="conditional_waiver", probation_ends_on="2029-03-01")
    assert ok.status_code == 201, ok.json
    problem = assert_problem(
        create(world, case, type="drug_contract", legal_basis="conditional_waiver", probation_ends_on="2029-03-02"), 422
    )
    assert "probation_ends_on" in problem["errors"]


def test_only_a_concern_conversation_is_scheduled(world):
    case = world.case()
    ok = create(world, case, type="concern_conversation", scheduled_at="2027-03-02T08:00:00Z")
    assert ok.status_code == 201, ok.json
    assert ok.json["scheduled_at"] == "2027-03-02T08:00:00Z"
    problem = assert_problem(create(world, case, type="follow_up_plan", scheduled_at="2027-03-02T08:00:00Z"), 422)
    assert "scheduled_at" in problem["errors"]


@pytest.mark.parametrize("kind", ["drug_test", "curfew"])
def test_a_controlling_condition_on_a_consent_basis_is_422(world, kind):
    case = world.case()
    problem = assert_problem(
        create(world, case, type="follow_up_plan", legal_basis="consent", conditions=[cond("meeting"), cond(kind)]), 422
    )
    assert "conditions.1.kind" in problem["errors"]
    assert "conditions.0.kind" not in problem["errors"]
    assert world["police"].get(f"/api/v1/cases/{case['id']}/reactions").json["items"] == []


@pytest.mark.parametrize("kind", ["drug_test", "curfew"])
@pytest.mark.parametrize("basis", ["conditional_waiver", "youth_follow_up"])
def test_a_controlling_condition_with_a_legal_basis_is_accepted(world, kind, basis):
    case = world.case()
    resp = create(world, case, type="drug_contract", legal_basis=basis, conditions=[cond(kind, "health")])
    assert resp.status_code == 201, resp.json
    assert resp.json["conditions"][0]["kind"] == kind


@pytest.mark.parametrize("kind", ["meeting", "school_attendance", "activity", "treatment", "other"])
def test_supportive_conditions_rest_on_consent(world, kind):
    case = world.case()
    resp = create(world, case, type="follow_up_plan", legal_basis="consent", conditions=[cond(kind)])
    assert resp.status_code == 201, resp.json
    assert (resp.json["type"], resp.json["legal_basis"]) == ("follow_up_plan", "consent")
    assert [c["kind"] for c in resp.json["conditions"]] == [kind]
    stored = world["police"].get(url(case, resp.json))
    assert stored.status_code == 200 and [c["kind"] for c in stored.json["conditions"]] == [kind]


def test_the_responsible_agency_must_take_part_in_the_case(world):
    case = world.case(participants=("health",))
    problem = assert_problem(create(world, case, conditions=[cond("meeting", "health"), cond("meeting", "nav")]), 422)
    assert "conditions.1.responsible_agency" in problem["errors"]
    problem = assert_problem(create(world, case, conditions=[cond("meeting", "westhealth")]), 422)
    assert "conditions.0.responsible_agency" in problem["errors"]


def test_a_reaction_cannot_be_added_to_a_closed_case(world):
    case = world.case()
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": "withdrawn", "reason": "Test"})
    assert resp.status_code == 200
    assert_problem(create(world, case), 409, "case-closed")
    assert world["police"].get(f"/api/v1/cases/{case['id']}/reactions").json["items"] == []


def test_a_participant_with_consent_may_add_a_reaction(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    resp = create(world, case, by="health", conditions=[cond("treatment", "health")])
    assert resp.status_code == 201, resp.json
    assert resp.json["created_by_agency"] == "health"


# --- signatures and activation ---------------------------------------------------------------


@pytest.mark.parametrize("type", ["youth_contract", "drug_contract"])
def test_a_contract_of_a_minor_needs_youth_and_guardian_to_sign(world, type):
    case = world.case()
    reaction = created(world, case, type=type, legal_basis="conditional_waiver")
    problem = assert_problem(move(world, case, reaction, "active"), 409, "signatures-required")
    assert sorted(problem["missing"]) == ["guardian", "youth"]

    assert sign(world, case, reaction, "youth").status_code == 201
    problem = assert_problem(move(world, case, reaction, "active"), 409, "signatures-required")
    assert problem["missing"] == ["guardian"]
    assert world["police"].get(url(case, reaction)).json["status"] == "draft"

    assert sign(world, case, reaction, "guardian").status_code == 201
    resp = move(world, case, reaction, "active")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "active"


def test_a_guardian_alone_is_not_enough(world):
    case = world.case()
    reaction = created(
        world,
        case,
        type="youth_contract",
        legal_basis="conditional_waiver",
        signatures=[
            {"party": "guardian", "signed_on": oslo_today().isoformat()},
            {"party": "police", "signed_on": oslo_today().isoformat()},
        ],
    )
    assert assert_problem(move(world, case, reaction, "active"), 409, "signatures-required")["missing"] == ["youth"]


def test_signatures_given_at_creation_count(world):
    case = world.case()
    today = oslo_today().isoformat()
    reaction = created(
        world,
        case,
        type="drug_contract",
        legal_basis="conditional_waiver",
        signatures=[{"party": "youth", "signed_on": today}, {"party": "guardian", "signed_on": today}],
    )
    assert sorted(s["party"] for s in reaction["signatures"]) == ["guardian", "youth"]
    assert move(world, case, reaction, "active").status_code == 200


def test_a_youth_of_18_needs_only_their_own_signature(world):
    youth = world.youth(born=add_years(oslo_today(), -18))
    case = world.case(youth=youth)
    reaction = created(world, case, type="youth_contract", legal_basis="conditional_waiver")
    assert assert_problem(move(world, case, reaction, "active"), 409, "signatures-required")["missing"] == ["youth"]
    assert sign(world, case, reaction, "youth").status_code == 201
    resp = move(world, case, reaction, "active")
    assert resp.status_code == 200, resp.json


def test_a_youth_one_day_short_of_18_still_needs_a_guardian(world):
    youth = world.youth(born=add_years(oslo_today(), -18) + timedelta(days=1))
    case = world.case(youth=youth)
    reaction = created(
        world,
        case,
        type="youth_contract",
        legal_basis="conditional_waiver",
        signatures=[{"party": "youth", "signed_on": oslo_today().isoformat()}],
    )
    assert assert_problem(move(world, case, reaction, "active"), 409, "signatures-required")["missing"] == ["guardian"]


def test_a_plan_becomes_active_without_signatures(world):
    case = world.case()
    reaction = created(world, case, type="follow_up_plan")
    assert move(world, case, reaction, "active").status_code == 200
    stored = world["police"].get(url(case, reaction)).json
    assert stored["status"] == "active" and stored["signatures"] == []


def test_a_signature_is_recorded_and_moves_the_etag_on(world):
    case = world.case()
    reaction = created(world, case, type="youth_contract", legal_basis="conditional_waiver")
    before = world["police"].get(url(case, reaction)).headers["ETag"]
    resp = sign(world, case, reaction, "youth", on=oslo_today() - timedelta(days=2))
    assert resp.status_code == 201, resp.json
    assert resp.json["party"] == "youth"
    assert resp.json["signed_on"] == (oslo_today() - timedelta(days=2)).isoformat()
    assert resp.json["recorded_by_agency"] == "police"
    after = world["police"].get(url(case, reaction))
    assert [s["party"] for s in after.json["signatures"]] == ["youth"]
    assert after.headers["ETag"] != before


def test_a_signature_dated_in_the_future_is_422(world):
    case = world.case()
    reaction = created(world, case, type="youth_contract", legal_basis="conditional_waiver")
    problem = assert_problem(sign(world, case, reaction, "youth", on=oslo_today() + timedelta(days=1)), 422)
    assert list(problem["errors"]) == ["signed_on"]  # the field of the body sent, a single signature
    assert world["police"].get(url(case, reaction)).json["signatures"] == []
    listed = assert_problem(
        create(
            world,
            case,
            type="youth_contract",
            legal_basis="conditional_waiver",
            signatures=[
                {"party": "youth", "signed_on": oslo_today().isoformat()},
                {"party": "guardian", "signed_on": (oslo_today() + timedelta(days=1)).isoformat()},
            ],
        ),
        422,
    )
    assert list(listed["errors"]) == ["signatures.1.signed_on"]  # an item of the reaction's list


def test_a_signature_by_an_unknown_party_is_422(world):
    case = world.case()
    reaction = created(world, case, type="youth_contract", legal_basis="conditional_waiver")
    assert "party" in assert_problem(sign(world, case, reaction, "neighbour"), 422)["errors"]


def test_a_closed_reaction_takes_no_more_signatures(world):
    case = world.case()
    reaction = reaction_in(world, case, "cancelled")
    assert_problem(sign(world, case, reaction, "youth"), 409)


def test_a_reaction_cannot_become_active_on_a_closed_case(world):
    case = world.case()
    reaction = created(world, case)
    assert (
        world["police"]
        .post(f"/api/v1/cases/{case['id']}/transitions", json={"to": "withdrawn", "reason": "Test"})
        .status_code
        == 200
    )
    # the draft was cancelled with the case, and a cancelled reaction goes nowhere
    problem = assert_problem(move(world, case, reaction, "active"), 409, "transition-not-allowed")
    assert problem["allowed"] == []
    assert world["police"].get(url(case, reaction)).json["status"] == "cancelled"
    assert_problem(create(world, case), 409, "case-closed")


# --- PATCH -----------------------------------------------------------------------------------


def test_patch_needs_if_match(world):
    case = world.case()
    reaction = created(world, case)
    assert_problem(
        world["police"].patch(url(case, reaction), json={"police_reference": "X-1"}), 428, "precondition-required"
    )
    assert_problem(
        world["police"].patch(url(case, reaction), json={"police_reference": "X-1"}, headers={"If-Match": '"999"'}),
        412,
        "precondition-failed",
    )
    assert world["police"].get(url(case, reaction)).json["police_reference"] is None


def test_patch_changes_fields_and_the_etag(world):
    case = world.case()
    reaction = created(world, case)
    etag = world["police"].get(url(case, reaction)).headers["ETag"]
    resp = world["police"].patch(
        url(case, reaction), json={"police_reference": "X-1", "ends_on": "2027-09-01"}, headers={"If-Match": etag}
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["police_reference"] == "X-1" and resp.json["ends_on"] == "2027-09-01"
    assert resp.headers["ETag"] != etag


@pytest.mark.parametrize("status", ["draft", "active"])
def test_patch_never_changes_the_status(world, status):
    """A status sent in a PATCH is ignored, like any field the PATCH cannot set."""
    case = world.case()
    reaction = reaction_in(world, case, status)
    for target in ("active", "completed", "cancelled", status):
        resp = patch(world, case, reaction, {"status": target, "police_reference": f"X-{target}"})
        assert resp.status_code == 200, resp.json
        assert resp.json["status"] == status and resp.json["police_reference"] == f"X-{target}"
    assert world["police"].get(url(case, reaction)).json["status"] == status


def test_patch_keeps_contracts_within_two_years(world):
    case = world.case()
    reaction = created(world, case, type="youth_contract", legal_basis="conditional_waiver")
    assert "ends_on" in assert_problem(patch(world, case, reaction, {"ends_on": "2029-03-02"}), 422)["errors"]
    assert "ends_on" in assert_problem(patch(world, case, reaction, {"ends_on": None}), 422)["errors"]
    # moving the start moves the limit
    assert (
        "ends_on"
        in assert_problem(patch(world, case, reaction, {"starts_on": "2026-09-01", "ends_on": "2028-09-02"}), 422)[
            "errors"
        ]
    )
    assert patch(world, case, reaction, {"ends_on": "2029-03-01"}).status_code == 200
    assert "ends_on" in assert_problem(patch(world, case, reaction, {"starts_on": "2027-02-28"}), 422)["errors"]


def test_conditions_are_replaced_while_draft(world):
    case = world.case(participants=("health", "nav"))
    reaction = created(world, case, conditions=[cond("meeting", "health")])
    etag = world["police"].get(url(case, reaction)).headers["ETag"]
    resp = world["police"].patch(
        url(case, reaction),
        json={"conditions": [cond("activity", "nav"), cond("school_attendance", "police")]},
        headers={"If-Match": etag},
    )
    assert resp.status_code == 200, resp.json
    assert [(c["kind"], c["responsible_agency"]) for c in resp.json["conditions"]] == [
        ("activity", "nav"),
        ("school_attendance", "police"),
    ]
    assert resp.headers["ETag"] != etag
    stored = world["police"].get(url(case, reaction)).json
    assert [c["kind"] for c in stored["conditions"]] == ["activity", "school_attendance"]


def test_patched_conditions_follow_the_same_rules(world):
    case = world.case(participants=("health",))
    reaction = created(world, case, legal_basis="consent")
    assert (
        "conditions.0.kind"
        in assert_problem(patch(world, case, reaction, {"conditions": [cond("drug_test")]}), 422)["errors"]
    )
    assert (
        "conditions.0.responsible_agency"
        in assert_problem(patch(world, case, reaction, {"conditions": [cond("meeting", "nav")]}), 422)["errors"]
    )


@pytest.mark.parametrize("status", ["active", "completed", "cancelled"])
def test_conditions_cannot_change_outside_draft(world, status):
    case = world.case()
    reaction = reaction_in(world, case, status, conditions=[cond("meeting")])
    assert_problem(patch(world, case, reaction, {"conditions": [cond("activity")]}), 409)
    assert [c["kind"] for c in world["police"].get(url(case, reaction)).json["conditions"]] == ["meeting"]


def test_an_active_reaction_read_and_sent_back_whole_keeps_its_conditions(world):
    """A client that PATCHes back what it read, conditions included, changes what it changed:
    the same conditions are no replacement, so their ids and the events logged against them stay."""
    case = world.case(participants=("health",))
    reaction = reaction_in(
        world,
        case,
        "active",
        legal_basis="conditional_waiver",
        conditions=[cond("drug_test", "health", every_days=14), cond("meeting")],
    )
    world["police"].post(
        f"/api/v1/cases/{case['id']}/events",
        json={
            "kind": "drug_test",
            "occurred_at": "2026-01-05T08:00:00Z",
            "result": "negative",
            "condition_id": reaction["conditions"][0]["id"],
        },
    )
    read = world["police"].get(url(case, reaction))
    resp = world["police"].patch(
        url(case, reaction), json={**read.json, "police_reference": "X-3"}, headers={"If-Match": read.headers["ETag"]}
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["police_reference"] == "X-3"
    assert resp.json["conditions"] == read.json["conditions"]
    # a different condition is still a replacement, refused outside draft
    changed = [{**read.json["conditions"][0], "every_days": 7}, read.json["conditions"][1]]
    assert_problem(patch(world, case, reaction, {"conditions": changed}), 409)


def test_an_active_reaction_still_takes_other_changes(world):
    case = world.case()
    reaction = reaction_in(world, case, "active")
    resp = patch(world, case, reaction, {"police_reference": "X-2"})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "active"


@pytest.mark.parametrize("status", ["completed", "breached", "cancelled"])
def test_a_closed_reaction_cannot_be_patched(world, status):
    case = world.case()
    reaction = reaction_in(world, case, status)
    assert_problem(patch(world, case, reaction, {"police_reference": "X-3"}), 409, "reaction-closed")


# --- the state machine -----------------------------------------------------------------------


@pytest.mark.parametrize("start", STATUSES)
def test_every_disallowed_move_is_409_listing_the_allowed_ones(world, start):
    case = world.case()
    reaction = reaction_in(world, case, start)
    for to in (*STATUSES, "suspended"):
        if to in ALLOWED[start]:
            continue
        problem = assert_problem(move(world, case, reaction, to), 409, "transition-not-allowed")
        assert set(problem["allowed"]) == ALLOWED[start], (start, to)
    assert world["police"].get(url(case, reaction)).json["status"] == start


@pytest.mark.parametrize("start,to", [(s, t) for s in STATUSES for t in sorted(ALLOWED[s])])
def test_every_allowed_move_succeeds(world, start, to):
    case = world.case()
    reaction = reaction_in(world, case, start)
    resp = move(world, case, reaction, to, reason="Because")
    assert resp.status_code == 200, resp.json
    stored = world["police"].get(url(case, reaction)).json
    assert stored["status"] == to
    assert stored["status_reason"] == "Because"


@pytest.mark.parametrize(
    "start,to", [("draft", "cancelled"), ("active", "completed"), ("active", "breached"), ("active", "cancelled")]
)
def test_closing_a_reaction_needs_a_reason(world, start, to):
    case = world.case()
    reaction = reaction_in(world, case, start)
    problem = assert_problem(world["police"].post(url(case, reaction, "/transitions"), json={"to": to}), 422)
    assert "reason" in problem["errors"]
    assert world["police"].get(url(case, reaction)).json["status"] == start


def test_a_concern_conversation_cannot_be_breached(world):
    case = world.case()
    reaction = reaction_in(world, case, "active", type="concern_conversation")
    problem = assert_problem(move(world, case, reaction, "breached"), 409, "transition-not-allowed")
    assert set(problem["allowed"]) == {"completed", "cancelled"}
    assert world["police"].get(url(case, reaction)).json["status"] == "active"
    assert move(world, case, reaction, "completed").status_code == 200


def test_only_the_lead_or_a_coordinator_moves_a_reaction(world):
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"])
    reaction = created(world, case)
    assert_problem(move(world, case, reaction, "active", by="health"), 403, "lead-agency-required")
    assert world["police"].get(url(case, reaction)).json["status"] == "draft"
    assert move(world, case, reaction, "active", by="slt").status_code == 200


def test_a_reaction_of_another_case_is_404(world):
    case = world.case()
    other = world.case()
    reaction = created(world, case)
    assert world["police"].get(url(other, reaction)).status_code == 404
    assert move(world, other, reaction, "active").status_code == 404
    assert world["police"].get(url(case, reaction)).json["status"] == "draft"


def test_filter_reactions_by_status_and_type(world):
    case = world.case()
    plan = reaction_in(world, case, "active")
    talk = created(world, case, type="concern_conversation")
    base = f"/api/v1/cases/{case['id']}/reactions"
    assert [r["id"] for r in world["police"].get(base, query_string={"status": "active"}).json["items"]] == [plan["id"]]
    assert [
        r["id"] for r in world["police"].get(base, query_string={"type": "concern_conversation"}).json["items"]
    ] == [talk["id"]]


def test_conditions_with_logged_events_cannot_be_replaced_so_no_event_is_lost(world):
    case = world.case()
    reaction = create(
        world,
        case,
        type="follow_up_plan",
        legal_basis="conditional_waiver",
        conditions=[{"kind": "drug_test", "every_days": 14, "responsible_agency": "health"}],
    ).json
    condition_id = reaction["conditions"][0]["id"]
    event = (
        world["police"]
        .post(
            f"/api/v1/cases/{case['id']}/events",
            json={
                "kind": "drug_test",
                "occurred_at": "2026-01-05T08:00:00Z",
                "result": "negative",
                "condition_id": condition_id,
            },
        )
        .json
    )
    url = f"/api/v1/cases/{case['id']}/reactions/{reaction['id']}"
    resp = world["police"].patch(
        url,
        json={"conditions": [{"kind": "meeting", "responsible_agency": "police"}]},
        headers={"If-Match": f'"{reaction["version"]}"'},
    )
    assert resp.status_code == 409
    assert resp.json["type"].endswith("conditions-in-use")
    assert world["police"].get(f"/api/v1/cases/{case['id']}/events/{event['id']}").status_code == 200


# --- a condition's responsible agency stays in the case -------------------------------------------


def _patch_participants(world, case, participants):
    case_url = f"/api/v1/cases/{case['id']}"
    etag = world["police"].get(case_url).headers["ETag"]
    return world["police"].patch(case_url, json={"participants": participants}, headers={"If-Match": etag})


def test_an_agency_responsible_for_an_open_reactions_condition_cannot_leave_the_case(world):
    case = world.case(participants=("health", "slt"))
    created(world, case, conditions=[cond("meeting", "health", every_days=14)])
    resp = _patch_participants(world, case, ["police", "slt"])
    assert resp.status_code == 422, resp.json
    assert "health" in " ".join(resp.json["errors"]["participants"])
    assert sorted(world["police"].get(f"/api/v1/cases/{case['id']}").json["participants"]) == [
        "health",
        "police",
        "slt",
    ]
    assert _patch_participants(world, case, ["police", "health"]).status_code == 200  # slt holds no condition


def test_once_the_reaction_is_closed_its_conditions_agency_may_leave(world):
    case = world.case(participants=("health",))
    reaction = created(world, case, conditions=[cond("meeting", "health", every_days=14)])
    cancelled = world["police"].post(url(case, reaction, "/transitions"), json={"to": "cancelled", "reason": "Test"})
    assert cancelled.status_code == 200, cancelled.json
    resp = _patch_participants(world, case, ["police"])
    assert resp.status_code == 200, resp.json
    assert resp.json["participants"] == ["police"]


# --- a closed case leaves no reaction open ---------------------------------------------------------


def _close_case(world, case, to):
    base = f"/api/v1/cases/{case['id']}/transitions"
    if to != "withdrawn":
        assert world["police"].post(base, json={"to": "active"}).status_code == 200
    resp = world["police"].post(base, json={"to": to, "reason": "Test closing"})
    assert resp.status_code == 200, resp.json


@pytest.mark.parametrize(
    "outcome,plan_to,conversation_to",
    [
        ("completed", "completed", "completed"),
        ("breached", "breached", "completed"),  # a concern conversation cannot be breached
        ("withdrawn", "cancelled", "cancelled"),
    ],
)
def test_closing_a_case_ends_its_open_reactions_as_the_case_ended(world, outcome, plan_to, conversation_to):
    case = world.case(participants=("health",))
    plan = created(world, case)
    conversation = created(world, case, type="concern_conversation")
    draft = created(world, case)
    finished = created(world, case)
    for active in (plan, conversation, finished):
        assert move(world, case, active, "active").status_code == 200
    assert move(world, case, finished, "completed", reason="Done before").status_code == 200
    etag = world["police"].get(url(case, plan)).headers["ETag"]
    _close_case(world, case, outcome)
    after = {r["id"]: r for r in world["police"].get(f"/api/v1/cases/{case['id']}/reactions").json["items"]}
    assert after[plan["id"]]["status"] == plan_to
    assert after[conversation["id"]]["status"] == conversation_to
    assert after[draft["id"]]["status"] == "cancelled"
    assert after[finished["id"]]["status"] == "completed"
    assert after[finished["id"]]["status_reason"] == "Done before"  # a closed reaction is left as it was
    assert after[plan["id"]]["status_reason"] == f"The case was closed as {outcome}: Test closing"
    assert world["police"].get(url(case, plan)).headers["ETag"] != etag
