"""README "Consent refusals": a refusal (`decision: "refused"`) is recorded and listed with the consents,
grants nothing, cannot be withdrawn, and a later consent may still be given."""

from __future__ import annotations

from datetime import timedelta

from casesvc.common.timeutil import oslo_today


def refusal(**fields) -> dict:
    return {
        "decision": "refused",
        "given_by": "both",
        "given_on": oslo_today().isoformat(),
        "purpose": "Sharing with the school nurse",
        "agencies": ["health"],
        "categories": ["general", "health"],
        **fields,
    }


def consent(**fields) -> dict:
    today = oslo_today()
    return {
        "given_by": "both",
        "given_on": today.isoformat(),
        "expires_on": (today + timedelta(days=90)).isoformat(),
        "purpose": "Follow-up",
        "agencies": ["health"],
        "categories": ["general"],
        **fields,
    }


def post(world, case, body, by="police"):
    return world[by].post(f"/api/v1/cases/{case['id']}/consents", json=body)


def test_a_refusal_is_recorded_without_an_end_date_and_is_never_active(world):
    case = world.case(participants=("health",))
    resp = post(world, case, refusal())
    assert resp.status_code == 201, resp.json
    assert resp.json["decision"] == "refused"
    assert resp.json["expires_on"] is None
    assert resp.json["active"] is False
    assert resp.json["agencies"] == ["health"]
    assert resp.json["categories"] == ["general", "health"]
    again = world["police"].get(resp.headers["Location"])
    assert again.json["decision"] == "refused" and again.json["expires_on"] is None


def test_a_consent_defaults_to_given(world):
    case = world.case(participants=("health",))
    resp = post(world, case, consent())
    assert resp.status_code == 201
    assert resp.json["decision"] == "given" and resp.json["active"] is True


def test_a_consent_given_still_needs_an_end_date(world):
    case = world.case(participants=("health",))
    body = consent()
    del body["expires_on"]
    resp = post(world, case, body)
    assert resp.status_code == 422
    assert "expires_on" in resp.json["errors"]


def test_an_unknown_decision_is_422(world):
    case = world.case(participants=("health",))
    resp = post(world, case, refusal(decision="maybe"))
    assert resp.status_code == 422
    assert "decision" in resp.json["errors"]


def test_a_refusal_grants_nothing(world):
    case = world.case(participants=("health",))
    assert post(world, case, refusal()).status_code == 201
    resp = world["health"].get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 403
    assert resp.json["type"].endswith("consent-required")
    listed = world["health"].get("/api/v1/cases").json["items"]
    assert case["id"] not in {c["id"] for c in listed}


def test_a_refusal_with_a_future_end_date_grants_nothing_either(world):
    case = world.case(participants=("health",))
    ends = (oslo_today() + timedelta(days=30)).isoformat()
    resp = post(world, case, refusal(expires_on=ends))
    assert resp.status_code == 201 and resp.json["expires_on"] == ends
    assert world["health"].get(f"/api/v1/cases/{case['id']}").status_code == 403


def test_a_refusal_cannot_be_withdrawn(world):
    case = world.case(participants=("health",))
    refused = post(world, case, refusal()).json
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/consents/{refused['id']}/withdraw")
    assert resp.status_code == 409
    assert resp.json["type"].endswith("consent-refused")
    assert world["police"].get(f"/api/v1/cases/{case['id']}/consents/{refused['id']}").json["withdrawn_at"] is None


def test_a_later_consent_may_be_given_and_then_grants_access(world):
    case = world.case(participants=("health",))
    post(world, case, refusal())
    assert post(world, case, consent()).status_code == 201
    assert world["health"].get(f"/api/v1/cases/{case['id']}").status_code == 200


def test_refusals_are_listed_with_the_consents_and_can_be_filtered(world):
    case = world.case(participants=("health",))
    refused = post(world, case, refusal()).json
    given = post(world, case, consent()).json
    base = f"/api/v1/cases/{case['id']}/consents"
    items = world["police"].get(base).json["items"]
    assert {(c["id"], c["decision"]) for c in items} == {(refused["id"], "refused"), (given["id"], "given")}
    only = world["police"].get(base, query_string={"decision": "refused"}).json["items"]
    assert [c["id"] for c in only] == [refused["id"]]
    active = world["police"].get(base, query_string={"active": "true"}).json["items"]
    assert [c["id"] for c in active] == [given["id"]]
    inactive = world["police"].get(base, query_string={"active": "false"}).json["items"]
    assert [c["id"] for c in inactive] == [refused["id"]]


def test_a_youth_under_16_may_refuse_alone(world):
    born = oslo_today().replace(year=oslo_today().year - 14, month=1, day=1)
    case = world.case(youth=world.youth(born=born), participants=("health",))
    resp = post(world, case, refusal(given_by="youth"))
    assert resp.status_code == 201, resp.json
    assert resp.json["given_by"] == "youth"


def test_a_refusal_naming_an_agency_outside_the_case_is_422(world):
    case = world.case(participants=("health",))
    resp = post(world, case, refusal(agencies=["nav"]))
    assert resp.status_code == 422
    assert "agencies" in resp.json["errors"]


def test_a_refusal_makes_no_consent_expiring_reminder(world, app):
    from casesvc.reminders import worker as reminders

    case = world.case(participants=("health",))
    soon = (oslo_today() + timedelta(days=5)).isoformat()
    post(world, case, refusal(expires_on=soon))
    with app.app_context():
        reminders.run()
    items = world["police"].get("/api/v1/reminders", query_string={"case_id": case["id"]}).json["items"]
    assert "consent_expiring" not in {r["kind"] for r in items}


def test_the_vocabulary_names_both_decisions(client):
    groups = client.get("/api/v1/vocabulary").json["groups"]
    labels = {item["code"]: item for item in groups["consent_decision"]}
    assert set(labels) == {"given", "refused"}
    assert labels["refused"]["nb"] == "Samtykke nektet"
