"""README "The audit log", the youth's access log: `GET /api/v1/youths/{id}/access-log` shows which agency,
role and user read or changed the youth's data, when and with what outcome — paginated, for the
lead agency, a coordinator taking part, admin and auditor; nobody else."""

from __future__ import annotations

import pytest

from tests.audit.test_audit_recording import events, head_seq
from tests.conftest import PROBLEM, assert_problem, assert_unauthorized

WHEN = "2027-01-05T08:00:00Z"


def log_url(youth) -> str:
    return f"/api/v1/youths/{youth['id']}/access-log"


def whole_log(reader, youth, limit: int = 200) -> list[dict]:
    items, cursor = [], None
    for _ in range(100):
        resp = reader.get(log_url(youth), query_string={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.json
        items.extend(resp.json["items"])
        cursor = resp.json["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


@pytest.fixture
def story(world):
    """A youth whose case police leads, with health and slt taking part under consent; other
    agencies reading it, an outsider trying to."""
    youth = world.youth()
    case = world.case(youth=youth, participants=("health", "slt"))
    other_youth = world.youth()
    other_case = world.case(youth=other_youth)
    world.consent(case, ["health", "slt"])
    base = f"/api/v1/cases/{case['id']}"
    assert world["health"].get(base).status_code == 200
    assert world["health"].post(f"{base}/notes", json={"body": "Test note"}).status_code == 201
    assert world["slt"].get(f"{base}/notes").status_code == 200
    assert world["west"].get(base).status_code == 404
    assert world["police"].get(f"/api/v1/cases/{other_case['id']}").status_code == 200
    return {"youth": youth, "case": case, "other_youth": other_youth}


def test_the_lead_agency_sees_who_read_and_changed_the_youths_data(world, story):
    items = whole_log(world["police"], story["youth"])
    health, slt, west = world["health"], world["slt"], world["west"]

    def entries(actor):
        return [
            (e["actor_agency"], e["actor_role"], e["action"], e["outcome"])
            for e in items
            if e["actor"] == actor.user_id
        ]

    assert entries(health) == [
        ("health", "school_health", "followups.create_note", "allowed"),
        ("health", "school_health", "cases.get_case", "allowed"),
    ]
    assert entries(slt) == [("slt", "coordinator", "followups.list_notes", "allowed")]
    assert entries(west) == [("west", "police", "cases.get_case", "denied")]
    police_actions = [e["action"] for e in items if e["actor"] == world["police"].user_id]
    assert {"youths.create_youth", "cases.create_case", "consents.create_consent"} <= set(police_actions)
    assert all(e["at"].endswith("Z") for e in items)
    assert all(e["case_id"] in (story["case"]["id"], None) for e in items)


def test_the_log_is_newest_first_and_holds_only_this_youths_events(world, story):
    items = whole_log(world["police"], story["youth"])
    times = [e["at"] for e in items]
    assert times == sorted(times, reverse=True)
    other = whole_log(world["police"], story["other_youth"])
    assert story["case"]["id"] not in {e["case_id"] for e in other}
    assert all(e["action"] != "followups.create_note" for e in other)


def test_the_log_holds_ids_and_codes_not_content(world, story):
    entry = whole_log(world["police"], story["youth"])[0]
    assert set(entry) <= {
        "at",
        "actor",
        "actor_role",
        "actor_agency",
        "action",
        "resource_type",
        "resource_id",
        "case_id",
        "outcome",
        "basis",
    }


def test_reading_the_access_log_is_in_the_access_log(world, story):
    police = world["police"]
    whole_log(police, story["youth"])
    newest = police.get(log_url(story["youth"]), query_string={"limit": 1}).json["items"][0]
    assert (newest["action"], newest["actor"]) == ("audit.access_log", police.user_id)


def test_a_coordinator_taking_part_with_consent_sees_it(world, story):
    items = whole_log(world["slt"], story["youth"])
    assert any(e["actor"] == world["health"].user_id for e in items)


def test_a_non_lead_participant_with_consent_gets_403(world, story):
    resp = world["health"].get(log_url(story["youth"]))
    assert resp.status_code == 403 and resp.mimetype == PROBLEM
    assert resp.json["type"] == "/problems/lead-agency-required"


@pytest.mark.parametrize("who", ["west", "police2", "nav"])
def test_an_outsider_gets_404(world, app, story, who):
    since = head_seq(app)
    resp = world[who].get(log_url(story["youth"]))
    assert resp.status_code == 404 and resp.mimetype == PROBLEM
    body = assert_problem(resp, 404, "not-found")
    assert "items" not in body
    refused = [(e["action"], e["outcome"], e["status"], e["actor"]) for e in events(app, since)]
    assert refused == [("audit.access_log", "denied", 404, world[who].user_id)]


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_and_auditor_see_it(world, story, who):
    items = whole_log(world[who], story["youth"])
    assert any(e["actor"] == world["west"].user_id and e["outcome"] == "denied" for e in items)


def test_an_auditor_token_without_audit_read_gets_403(world, story):
    auditor = world["auditor"]
    narrowed = world.as_user(auditor.user_id, "auditor", None, "user.auditor", scopes=[])
    resp = narrowed.get(log_url(story["youth"]))
    assert resp.status_code == 403 and resp.json["type"] == "/problems/insufficient-scope"
    assert_problem(resp, 403, "insufficient-scope")
    assert "items" not in resp.json


def test_a_lead_token_without_cases_read_gets_403(world, story):
    police = world["police"]
    narrowed = world.as_user(police.user_id, "police", "police", "user.police", scopes=["notes:read"])
    resp = narrowed.get(log_url(story["youth"]))
    assert resp.status_code == 403
    assert_problem(resp, 403, "insufficient-scope")
    assert "items" not in resp.json


@pytest.mark.parametrize("who", ["police", "admin"])
def test_an_unknown_youth_is_404(world, who):
    resp = world[who].get("/api/v1/youths/00000000-0000-4000-8000-000000000000/access-log")
    assert resp.status_code == 404
    assert "youth" in assert_problem(resp, 404, "not-found")["detail"]


def test_the_log_needs_a_token(world, app, client, story):
    since = head_seq(app)
    resp = client.get(log_url(story["youth"]))
    assert resp.status_code == 401
    assert_unauthorized(resp)
    refused = [(e["action"], e["outcome"], e["status"], e["actor"]) for e in events(app, since)]
    assert refused == [("audit.access_log", "denied", 401, None)]


def test_the_log_is_paginated(world, story):
    police = world["police"]
    everything = whole_log(police, story["youth"])
    assert len(everything) > 6
    first = police.get(log_url(story["youth"]), query_string={"limit": 3})
    assert len(first.json["items"]) == 3 and first.json["next_cursor"]
    paged = whole_log(police, story["youth"], limit=3)
    # every page request adds its own entry at the head; the entries already there come once, in order
    seen = [(e["at"], e["actor"], e["action"]) for e in paged if e["action"] != "audit.access_log"]
    assert seen == [(e["at"], e["actor"], e["action"]) for e in everything if e["action"] != "audit.access_log"]
    assert len(set(seen)) == len(seen)


def test_a_withdrawn_consent_takes_the_coordinator_out(world, story):
    consent = world["police"].get(f"/api/v1/cases/{story['case']['id']}/consents").json["items"][0]
    resp = world["police"].post(f"/api/v1/cases/{story['case']['id']}/consents/{consent['id']}/withdraw")
    assert resp.status_code == 200, resp.json
    refused = world["slt"].get(log_url(story["youth"]))
    assert refused.status_code in (403, 404)
    assert_problem(refused, refused.status_code)
    assert "items" not in refused.json
    lead = world["police"].get(log_url(story["youth"]))
    assert lead.status_code == 200
    assert any(e["action"] == "consents.withdraw_consent" for e in lead.json["items"]), lead.json["items"]
