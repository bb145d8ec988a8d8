"""Hardening of the records (README: Security, hardening): business dates within a window and a
worker that goes on past a source it cannot compute, no national-id existence oracle, youths
only in the caller's municipalities, youth changes under the rule of case changes, and bounded
input (ASCII digits, integers, trimmed names, list sizes, one signature per party)."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from casesvc.audit.models import AuditEvent
from casesvc.audit.sealing import seal
from casesvc.cases.models import Case
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.extensions import db
from casesvc.ops.metrics import process_registry
from casesvc.reactions.models import Reaction
from casesvc.reminders import worker as reminders
from casesvc.youths import national_id
from tests.conftest import youth_number

TODAY = oslo_today()


def youth_body(**fields) -> dict:
    born = date(TODAY.year - 15, 3, 9)
    return {
        "given_name": "Fake",
        "family_name": "Person",
        "birth_date": born.isoformat(),
        "national_id": youth_number(born, 700),
        "municipality": "0301",
        **fields,
    }


def errors_of(resp, field: str) -> list[str]:
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert field in resp.json["errors"], resp.json
    return resp.json["errors"][field]


def contract(world, case, **fields) -> dict:
    body = {
        "type": "youth_contract",
        "legal_basis": "conditional_waiver",
        "starts_on": TODAY.isoformat(),
        "ends_on": (TODAY + timedelta(days=180)).isoformat(),
        "signatures": [
            {"party": "youth", "signed_on": TODAY.isoformat()},
            {"party": "guardian", "signed_on": TODAY.isoformat()},
        ],
        "conditions": [{"kind": "meeting", "every_days": 30, "responsible_agency": "police"}],
        **fields,
    }
    return world["police"].post(f"/api/v1/cases/{case['id']}/reactions", json=body)


# --- 3. Business dates, and a worker that isolates a failing source ------------------------------


@pytest.mark.parametrize(
    "field,value", [("starts_on", "9999-12-30"), ("ends_on", "9999-12-31"), ("starts_on", "0001-01-01")]
)
def test_reaction_dates_outside_the_window_are_422(world, field, value):
    case = world.case()
    body = {"starts_on": "9999-12-30", "ends_on": "9999-12-31"} if field == "ends_on" else {field: value}
    errors_of(contract(world, case, **body), field)


def test_a_signature_date_outside_the_window_is_422(world):
    case = world.case()
    resp = contract(world, case, signatures=[{"party": "youth", "signed_on": "9999-12-31"}])
    errors_of(resp, "signatures.0.signed_on")


def test_a_consent_expiring_in_year_9999_is_422(world):
    case = world.case(participants=("health",))
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/consents",
        json={
            "given_by": "both",
            "given_on": TODAY.isoformat(),
            "expires_on": "9999-12-31",
            "purpose": "Follow-up",
            "agencies": ["health"],
            "categories": ["general"],
        },
    )
    errors_of(resp, "expires_on")


def test_an_event_in_year_9999_is_422(world):
    case = world.case()
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/events",
        json={"kind": "meeting", "occurred_at": "9999-12-31T12:00:00Z", "summary": "Met"},
    )
    errors_of(resp, "occurred_at")


def test_the_worker_logs_and_counts_a_source_it_cannot_compute_and_goes_on(world, app, caplog):
    case, other = world.case(), world.case()
    bad = contract(world, case)
    good = contract(world, other)
    for made, c in ((bad, case), (good, other)):
        assert made.status_code == 201, made.json
        moved = world["police"].post(
            f"/api/v1/cases/{c['id']}/reactions/{made.json['id']}/transitions", json={"to": "active"}
        )
        assert moved.status_code == 200, moved.json
    with app.app_context():  # stored before the dates were bounded
        db.session.execute(
            update(Reaction)
            .where(Reaction.id == bad.json["id"])
            .values(starts_on=date(9999, 12, 30), ends_on=date(9999, 12, 31))
        )
        db.session.commit()
    failures = "casesvc_reminder_source_failures_total"
    before = process_registry().get_sample_value(failures, {"rule": "condition_due"}) or 0
    with caplog.at_level(logging.WARNING), app.app_context():
        result = reminders.run(utcnow() + timedelta(days=40))
    bad_condition = bad.json["conditions"][0]["id"]
    assert result["failed"]["condition_due"] == 1
    assert any(bad_condition in r.getMessage() for r in caplog.records)
    assert process_registry().get_sample_value(failures, {"rule": "condition_due"}) == before + 1
    listed = world["police"].get("/api/v1/reminders", query_string={"case_id": other["id"]}).json["items"]
    assert "condition_due" in {r["kind"] for r in listed}  # the other source got its reminder


# --- 4. No national-id existence oracle --------------------------------------------------------


def registered_in_oslo(world) -> dict:
    resp = world["police"].post("/api/v1/youths", json=youth_body())
    assert resp.status_code == 201, resp.json
    return resp.json


def audit_events(app, action: str) -> list:
    with app.app_context():
        seal()
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_registering_a_known_number_the_caller_may_not_see_names_no_youth(world, app):
    youth = registered_in_oslo(world)
    resp = world["west"].post("/api/v1/youths", json={**youth_body(), "municipality": "4601"})
    assert resp.status_code == 409
    assert "existing_id" not in resp.json and youth["id"] not in resp.get_data(as_text=True)
    [event] = [e for e in audit_events(app, "youths.create_youth") if e.actor == world["west"].user_id]
    assert (event.outcome, event.youth_id) == ("denied", youth["id"])


def test_the_caller_who_may_see_the_youth_gets_its_id(world):
    youth = registered_in_oslo(world)
    resp = world["police"].post("/api/v1/youths", json=youth_body())
    assert resp.status_code == 409 and resp.json["existing_id"] == youth["id"]


def test_changing_ones_own_youth_to_a_hidden_youths_number_names_no_youth(world, app):
    hidden = registered_in_oslo(world)
    born = date(TODAY.year - 14, 1, 2)
    own = (
        world["west"]
        .post(
            "/api/v1/youths",
            json=youth_body(birth_date=born.isoformat(), national_id=youth_number(born, 710), municipality="4601"),
        )
        .json
    )
    etag = world["west"].get(f"/api/v1/youths/{own['id']}").headers["ETag"]
    resp = world["west"].patch(
        f"/api/v1/youths/{own['id']}",
        headers={"If-Match": etag},
        json={"national_id": hidden["national_id"], "birth_date": hidden["birth_date"]},
    )
    assert resp.status_code == 409
    assert hidden["id"] not in resp.get_data(as_text=True)
    [event] = [e for e in audit_events(app, "youths.patch_youth") if e.status == 409]
    assert (event.outcome, event.youth_id) == ("denied", hidden["id"])


# --- 5. Youths only in the caller's municipalities ---------------------------------------------


def test_a_youth_in_a_municipality_the_agency_does_not_serve_is_422(world):
    resp = world["police"].post("/api/v1/youths", json=youth_body(municipality="4601"))
    assert "serve" in errors_of(resp, "municipality")[0]


def test_moving_a_youth_to_a_municipality_the_agency_does_not_serve_is_422(world):
    youth = registered_in_oslo(world)
    etag = world["police"].get(f"/api/v1/youths/{youth['id']}").headers["ETag"]
    resp = world["police"].patch(
        f"/api/v1/youths/{youth['id']}", headers={"If-Match": etag}, json={"municipality": "4601"}
    )
    errors_of(resp, "municipality")


# --- 6. Youth changes follow the rule of case changes ------------------------------------------


def test_a_participant_under_consent_may_not_change_the_youth(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    url = f"/api/v1/youths/{case['youth_id']}"
    etag = world["health"].get(url).headers["ETag"]
    resp = world["health"].patch(
        url,
        headers={"If-Match": etag},
        json={"guardians": [{"name": "Evil", "relation": "mother", "email": "attacker@example.com"}]},
    )
    assert resp.status_code == 403 and resp.json["type"].endswith("lead-agency-required")
    guardians = world["police"].get(url).json["guardians"]
    assert [g["name"] for g in guardians] == ["Test Forelder"]


def test_the_registering_agency_changes_its_youth_while_no_case_exists(world):
    youth = registered_in_oslo(world)
    url = f"/api/v1/youths/{youth['id']}"
    resp = world["police"].patch(
        url, headers={"If-Match": world["police"].get(url).headers["ETag"]}, json={"school": "Fake School"}
    )
    assert resp.status_code == 200 and resp.json["school"] == "Fake School"


def test_the_registering_agency_that_is_no_longer_lead_may_not_change_the_youth(world, app):
    case = world.case(by="police", participants=("health",))
    with app.app_context():  # the lead went over to health (a handover)
        db.session.execute(update(Case).where(Case.id == case["id"]).values(lead_agency="health"))
        db.session.commit()
    url = f"/api/v1/youths/{case['youth_id']}"
    resp = world["police"].patch(
        url, headers={"If-Match": world["police"].get(url).headers["ETag"]}, json={"school": "Fake School"}
    )
    assert resp.status_code == 403 and resp.json["type"].endswith("lead-agency-required")


# --- 9. Validation gaps ------------------------------------------------------------------------


def test_full_width_digits_are_not_a_municipality(world):
    errors_of(world["police"].post("/api/v1/youths", json=youth_body(municipality="０３０１")), "municipality")  # noqa: RUF001 (full-width, on purpose)


def test_every_days_must_be_a_whole_number(world):
    case = world.case()
    resp = contract(world, case, conditions=[{"kind": "meeting", "every_days": 1.5, "responsible_agency": "police"}])
    errors_of(resp, "conditions.0.every_days")


@pytest.mark.parametrize("every_days", [30.0, 30])
def test_every_days_as_json_schema_counts_integers_is_accepted(world, every_days):
    """30.0 is an integer to JSON Schema, so to the document: it is stored as 30. True and "30" are not."""
    case = world.case()
    resp = contract(
        world, case, conditions=[{"kind": "meeting", "every_days": every_days, "responsible_agency": "police"}]
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["conditions"][0]["every_days"] == 30 and isinstance(resp.json["conditions"][0]["every_days"], int)
    for wrong in (True, "30"):
        errors_of(
            contract(
                world, case, conditions=[{"kind": "meeting", "every_days": wrong, "responsible_agency": "police"}]
            ),
            "conditions.0.every_days",
        )


@pytest.mark.parametrize(
    "born,individuals", [(date(TODAY.year + 4, 1, 1), range(500, 1000)), (date(1906, 1, 1), range(500))]
)
def test_birth_dates_in_the_future_or_long_ago_are_422(world, born, individuals):
    """The number itself is valid for that date: the date is what is refused."""
    number = next(n for i in individuals if (n := national_id.make(born, i, synthetic=True)))
    body = youth_body(birth_date=born.isoformat(), national_id=number)
    errors_of(world["police"].post("/api/v1/youths", json=body), "birth_date")


@pytest.mark.parametrize("name", ["   ", "\u200b", " \u200b\t"])
def test_blank_names_are_422(world, name):
    errors_of(world["police"].post("/api/v1/youths", json=youth_body(given_name=name)), "given_name")
    guardian = youth_body(guardians=[{"name": name, "relation": "mother"}])
    errors_of(world["police"].post("/api/v1/youths", json=guardian), "guardians.0.name")


def test_names_are_stored_trimmed(world):
    resp = world["police"].post("/api/v1/youths", json=youth_body(given_name="  Fake  "))
    assert resp.status_code == 201 and resp.json["given_name"] == "Fake"


def test_a_second_signature_by_the_same_party_is_422(world):
    case = world.case()
    made = contract(world, case, signatures=[{"party": "youth", "signed_on": TODAY.isoformat()}])
    assert made.status_code == 201, made.json
    url = f"/api/v1/cases/{case['id']}/reactions/{made.json['id']}/signatures"
    again = world["police"].post(url, json={"party": "youth", "signed_on": TODAY.isoformat()})
    errors_of(again, "party")
    twice = contract(world, case, signatures=[{"party": "youth", "signed_on": TODAY.isoformat()}] * 2)
    errors_of(twice, "signatures")


def test_list_sizes_are_bounded(world):
    case = world.case()
    many = [{"kind": "meeting", "every_days": 30, "responsible_agency": "police"}] * 101
    errors_of(contract(world, case, conditions=many), "conditions")
    guardians = [{"name": "Fake Forelder", "relation": "mother"}] * 11
    errors_of(world["police"].post("/api/v1/youths", json=youth_body(guardians=guardians)), "guardians")
