"""README "Access-log review", the access-log review: `GET /audit/review` and `casesvc audit review` list the
findings of a window — emergency_access, bulk_read, off_hours, probing — with ids, never names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from casesvc.common.timeutil import rfc3339, utcnow

PROBLEM = "application/problem+json"


def findings(world, kind=None, **query) -> list[dict]:
    resp = world["auditor"].get("/api/v1/audit/review", query_string=query)
    assert resp.status_code == 200, resp.json
    items = resp.json["findings"]
    return [f for f in items if kind is None or f["kind"] == kind]


@pytest.fixture
def settings(app, monkeypatch):
    """Change the review's settings for one test."""

    def change(**values):
        monkeypatch.setitem(app.config, "CASESVC", replace(app.config["CASESVC"], **values))

    return change


def test_only_auditors_and_admins_run_the_review(world):
    for who in ("police", "slt"):
        resp = world[who].get("/api/v1/audit/review")
        assert resp.status_code == 403 and resp.mimetype == PROBLEM
    resp = world["admin"].get("/api/v1/audit/review")
    assert resp.status_code == 200
    assert resp.json["settings"] == {"bulk_reads": 50, "off_hours": "22-06", "probes": 20}


def test_the_review_itself_is_audited(world):
    world["auditor"].get("/api/v1/audit/review")
    events = world["auditor"].get("/api/v1/audit/events", query_string={"action": "review.audit_review"}).json["items"]
    assert len(events) == 1 and events[0]["outcome"] == "allowed"


def test_every_emergency_access_is_listed_with_whether_it_was_reviewed(world):
    case = world.case(participants=("health", "nav"))
    first = (
        world["health"]
        .post(
            f"/api/v1/cases/{case['id']}/emergency-access",
            json={"reason": "Found unconscious at school, no consent yet."},
        )
        .json
    )
    second = (
        world["nav"]
        .post(
            f"/api/v1/cases/{case['id']}/emergency-access",
            json={"reason": "The youth is missing tonight; police asked us."},
        )
        .json
    )
    world["auditor"].post(
        f"/api/v1/audit/emergency-accesses/{first['id']}/review",
        json={"finding": "justified", "comment": "Ambulance report seen."},
    )
    found = {f["emergency_access_id"]: f for f in findings(world, "emergency_access")}
    assert set(found) == {first["id"], second["id"]}
    assert (found[first["id"]]["reviewed"], found[first["id"]]["finding"]) == (True, "justified")
    assert (found[second["id"]]["reviewed"], found[second["id"]]["finding"]) == (False, None)
    assert found[first["id"]]["actor"] == world["health"].user_id
    assert found[first["id"]]["case_id"] == case["id"] and found[first["id"]]["youth_id"] == case["youth_id"]
    assert "Ambulance" not in json.dumps(found) and "unconscious" not in json.dumps(found)


def test_a_user_reading_more_youths_than_the_limit_in_a_day_is_a_bulk_read(world, settings):
    settings(review_bulk_reads=3)
    cases = [world.case(participants=("health",)) for _ in range(4)]
    for case in cases[:3]:
        world["police"].get(f"/api/v1/cases/{case['id']}")
    assert findings(world, "bulk_read") == []  # 3 is not more than 3 (the creations are no reads)
    world["police"].get(f"/api/v1/youths/{cases[3]['youth_id']}")
    world["police"].get(f"/api/v1/cases/{cases[0]['id']}/notes")  # the same youth again: still 4
    found = findings(world, "bulk_read")
    assert len(found) == 1
    assert found[0]["actor"] == world["police"].user_id and found[0]["youths"] == 4
    assert found[0]["youth_ids"] == sorted(c["youth_id"] for c in cases)


def test_youth_lists_count_by_the_youths_they_returned(world, settings):
    settings(review_bulk_reads=2)
    youths = [world.youth() for _ in range(3)]
    assert findings(world, "bulk_read") == []
    world["police"].get("/api/v1/youths", query_string={"limit": 200})
    found = findings(world, "bulk_read")
    assert [f["youths"] for f in found] == [3]
    assert found[0]["youth_ids"] == sorted(y["id"] for y in youths)


def test_reads_in_the_off_hours_are_found_and_the_setting_turns_them_off(world, settings, monkeypatch):
    import casesvc.audit.service as audit_service

    case = world.case(participants=("health",))
    night = datetime(2027, 1, 5, 22, 30, tzinfo=UTC)  # 23:30 in Oslo
    monkeypatch.setattr(audit_service, "utcnow", lambda: night)
    world["police"].get(f"/api/v1/cases/{case['id']}")
    world["police"].get(f"/api/v1/cases/{case['id']}/events")
    monkeypatch.setattr(audit_service, "utcnow", lambda: night + timedelta(hours=5))  # 04:30 next day
    world["police"].get(f"/api/v1/cases/{case['id']}")
    monkeypatch.setattr(audit_service, "utcnow", lambda: night + timedelta(hours=10))  # 09:30: office hours
    world["police"].get(f"/api/v1/cases/{case['id']}")
    monkeypatch.undo()
    window = {"from": "2027-01-05T00:00:00Z", "to": "2027-01-07T00:00:00Z"}
    found = findings(world, "off_hours", **window)
    assert len(found) == 1  # one user, one night
    assert found[0]["reads"] == 3 and found[0]["night"] == "2027-01-05"
    assert found[0]["at"] == "2027-01-05T22:30:00.000000Z"
    assert found[0]["case_ids"] == [case["id"]] and found[0]["youth_ids"] == [case["youth_id"]]
    settings(review_off_hours="")
    assert findings(world, "off_hours", **window) == []
    settings(review_off_hours="08-10")
    assert [f["reads"] for f in findings(world, "off_hours", **window)] == [1]


def test_refused_ids_and_fruitless_searches_over_the_limit_are_probing(world, settings):
    settings(review_probes=4)
    case = world.case(participants=("health",))
    west = world["west"]
    for _ in range(2):
        assert west.get(f"/api/v1/cases/{case['id']}").status_code == 404
    assert west.get(f"/api/v1/youths/{case['youth_id']}").status_code == 404
    assert findings(world, "probing") == []
    assert west.get("/api/v1/youths", query_string={"national_id": "01010112345"}).json["items"] == []
    assert findings(world, "probing") == []  # four: not more than four
    existing = world["police"].get(f"/api/v1/youths/{case['youth_id']}").json
    body = {k: existing[k] for k in ("given_name", "family_name", "birth_date", "national_id")}
    resp = west.post("/api/v1/youths", json={**body, "municipality": "4601"})
    assert resp.status_code == 409 and resp.json["type"].endswith("youth-exists")
    found = findings(world, "probing")
    assert len(found) == 1
    assert found[0]["actor"] == west.user_id and found[0]["probes"] == 5
    assert found[0]["fruitless_searches"] == 1
    assert found[0]["case_ids"] == [case["id"]] and found[0]["youth_ids"] == [case["youth_id"]]
    assert "01010112345" not in json.dumps(found)


def test_a_409_to_a_user_who_sees_the_youth_and_a_fruitful_search_are_no_probes(world, settings):
    settings(review_probes=1)
    youth = world.youth()
    police = world["police"]
    assert police.get("/api/v1/youths", query_string={"national_id": youth["national_id"]}).json["items"]
    body = {k: youth[k] for k in ("given_name", "family_name", "birth_date", "national_id", "municipality")}
    assert police.post("/api/v1/youths", json=body).status_code == 409
    assert police.post("/api/v1/youths", json=body).status_code == 409
    assert findings(world, "probing") == []
    events = world["auditor"].get("/api/v1/audit/events", query_string={"action": "youths.create_youth"}).json["items"]
    refused = [e for e in events if e["status"] == 409]
    assert refused and all(e["outcome"] == "error" and e["youth_id"] == youth["id"] for e in refused)


def test_a_409_youth_exists_to_a_user_who_cannot_see_the_youth_is_recorded_as_denied(world):
    youth = world.youth()
    body = {k: youth[k] for k in ("given_name", "family_name", "birth_date", "national_id", "municipality")}
    assert world["nav"].post("/api/v1/youths", json=body).status_code == 409
    events = world["auditor"].get("/api/v1/audit/events", query_string={"actor": world["nav"].user_id}).json["items"]
    assert [(e["status"], e["outcome"], e["youth_id"]) for e in events] == [(409, "denied", youth["id"])]


def test_the_window_bounds_the_findings(world):
    case = world.case(participants=("health",))
    world["health"].post(
        f"/api/v1/cases/{case['id']}/emergency-access", json={"reason": "Found unconscious at school, no consent yet."}
    )
    earlier = rfc3339(utcnow() - timedelta(minutes=5))
    assert findings(world, "emergency_access", to=earlier) == []
    later = rfc3339(utcnow() + timedelta(hours=1))
    assert findings(world, "emergency_access", **{"from": later, "to": rfc3339(utcnow() + timedelta(hours=2))}) == []
    assert len(findings(world, "emergency_access")) == 1


def test_a_window_ending_before_it_starts_is_422(world):
    resp = world["auditor"].get(
        "/api/v1/audit/review", query_string={"from": "2027-02-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    )
    assert resp.status_code == 422 and "from" in resp.json["errors"]
    resp = world["auditor"].get("/api/v1/audit/review", query_string={"from": "yesterday"})
    assert resp.status_code == 422 and "from" in resp.json["errors"]


def test_the_command_prints_json_lines_and_is_audited(world, test_db_cli):
    case = world.case(participants=("health",))
    world["health"].post(
        f"/api/v1/cases/{case['id']}/emergency-access", json={"reason": "Found unconscious at school, no consent yet."}
    )
    start = rfc3339(utcnow() - timedelta(days=1))
    code, out, err = test_db_cli("audit", "review", "--from", start, "--to", rfc3339(utcnow() + timedelta(minutes=1)))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [f["kind"] for f in lines] == ["emergency_access"]
    assert lines[0]["case_id"] == case["id"]
    events = world["auditor"].get("/api/v1/audit/events", query_string={"action": "audit.review"}).json["items"]
    assert len(events) == 1
    code, _, err = test_db_cli("audit", "review", "--from", "soon")
    assert code == 2 and "--from" in err
