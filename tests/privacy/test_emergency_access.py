"""README "Emergency access", emergency access: a participant without consent opens a case in an emergency —
that user alone, for CASESVC_EMERGENCY_ACCESS_HOURS, read-only, as a consent covering general and
health would let, never another agency's agency-only entries. Audited with `basis: "emergency"`,
reminded to the lead, reviewed once by an auditor or admin."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from casesvc.common.timeutil import utcnow

REASON = "Found unconscious at school; the nurse needs the follow-up history now."
EVENT = {
    "kind": "meeting",
    "occurred_at": "2027-01-05T08:00:00Z",
    "category": "general",
    "visibility": "shared",
    "summary": "Met",
}


def open_access(actor, case, reason=REASON):
    return actor.post(f"/api/v1/cases/{case['id']}/emergency-access", json={"reason": reason})


def events_of(world, **query):
    resp = world["auditor"].get("/api/v1/audit/events", query_string={"limit": 200, **query})
    assert resp.status_code == 200, resp.json
    return resp.json["items"]


@pytest.fixture
def story(world):
    """Police leads; health takes part without consent; nav takes part under a consent that
    covers general only. Police wrote a shared health note and an agency-only note; nav wrote a
    shared general event and an agency-only event."""
    case = world.case(participants=("health", "nav"))
    base = f"/api/v1/cases/{case['id']}"
    world.consent(case, ["nav"])
    shared_health = (
        world["police"]
        .post(f"{base}/notes", json={"body": "Health note", "category": "health", "visibility": "shared"})
        .json
    )
    police_own = world["police"].post(f"{base}/notes", json={"body": "Police only", "visibility": "agency"}).json
    nav_shared = world["nav"].post(f"{base}/events", json=EVENT).json
    nav_own = world["nav"].post(f"{base}/events", json={**EVENT, "visibility": "agency"}).json
    return {
        "case": case,
        "base": base,
        "shared_health": shared_health["id"],
        "police_own": police_own["id"],
        "nav_shared": nav_shared["id"],
        "nav_own": nav_own["id"],
    }


def test_a_participant_without_consent_opens_the_case_for_the_user_alone(world, story):
    health, base = world["health"], story["base"]
    assert health.get(base).status_code == 403
    before = utcnow()
    resp = open_access(health, story["case"])
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["case_id"] == story["case"]["id"]
    assert body["user"] == health.user_id and body["agency"] == "health"
    assert "reason" not in body
    assert resp.headers["Location"].endswith(f"/audit/emergency-accesses/{body['id']}")
    from datetime import datetime

    started = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) <= started <= utcnow()
    assert expires - started == timedelta(hours=4)

    assert health.get(base).status_code == 200
    assert health.get(f"/api/v1/youths/{story['case']['youth_id']}").status_code == 200
    notes = {n["id"] for n in health.get(f"{base}/notes").json["items"]}
    assert notes == {story["shared_health"]}  # health entries too; never police's agency-only note
    events = {e["id"] for e in health.get(f"{base}/events").json["items"]}
    assert events == {story["nav_shared"]}  # never nav's agency-only event
    assert health.get(f"{base}/events/{story['nav_own']}").status_code == 404
    assert health.get(f"{base}/notes/{story['police_own']}").status_code == 404
    assert health.get(f"{base}/reactions").status_code == 200
    assert health.get(f"{base}/consents").status_code == 200


def test_an_emergency_access_writes_nothing(world, story):
    health, base = world["health"], story["base"]
    open_access(health, story["case"])
    for resp in (
        health.post(f"{base}/notes", json={"body": "A note"}),
        health.post(f"{base}/events", json=EVENT),
        health.post(f"{base}/reactions", json={"type": "follow_up_plan", "legal_basis": "consent"}),
    ):
        assert resp.status_code == 403
        assert resp.json["type"].endswith("consent-required")
    youth = world["police"].get(f"/api/v1/youths/{story['case']['youth_id']}")
    patched = health.patch(
        f"/api/v1/youths/{story['case']['youth_id']}",
        json={"school": "Elsewhere"},
        headers={"If-Match": youth.headers["ETag"]},
    )
    assert patched.status_code == 404
    opened = health.post("/api/v1/cases", json={"youth_id": story["case"]["youth_id"], "origin": "health"})
    assert opened.status_code == 422 and "youth_id" in opened.json["errors"]
    assert len(world["police"].get(f"{base}/notes").json["items"]) == 2
    refused = [e for e in events_of(world, actor=health.user_id) if e["outcome"] != "allowed"]
    assert refused and all(e["basis"] is None for e in refused)  # only what the access let through is marked


def test_the_access_is_the_users_not_the_agencys(world, story):
    colleague = world.actor("school_health", "health", "user.health.colleague")
    open_access(world["health"], story["case"])
    resp = colleague.get(story["base"])
    assert resp.status_code == 403 and resp.json["type"].endswith("consent-required")


def test_the_access_ends_after_the_configured_hours(world, story, monkeypatch):
    import casesvc.access.cases as cases_service

    open_access(world["health"], story["case"])
    later = utcnow() + timedelta(hours=4, seconds=1)
    monkeypatch.setattr(cases_service, "utcnow", lambda: later)
    resp = world["health"].get(story["base"])
    assert resp.status_code == 403 and resp.json["type"].endswith("consent-required")
    # and may then be opened again
    monkeypatch.undo()


def test_the_hours_are_a_setting(world, story, app, monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(app.config, "CASESVC", replace(app.config["CASESVC"], emergency_access_hours=1))
    body = open_access(world["health"], story["case"]).json
    assert body["expires_at"] > body["started_at"]
    from datetime import datetime

    span = datetime.fromisoformat(body["expires_at"][:-1]) - datetime.fromisoformat(body["started_at"][:-1])
    assert span == timedelta(hours=1)


@pytest.mark.parametrize(
    "who,status,kind",
    [
        ("police", 409, "nothing-to-break"),  # the lead
        ("nav", 409, "nothing-to-break"),  # a participant under consent
        ("cw", 404, "not-found"),  # not a participant
        ("west", 404, "not-found"),  # another municipality
        ("admin", 403, "case-content-forbidden"),
        ("auditor", 403, "case-content-forbidden"),
    ],
)
def test_only_a_participant_without_consent_may_break_the_glass(world, story, who, status, kind):
    resp = open_access(world[who], story["case"])
    assert resp.status_code == status
    assert resp.json["type"].endswith(kind)
    assert world["auditor"].get("/api/v1/audit/emergency-accesses").json["items"] == []


def test_a_second_access_while_one_runs_is_409(world, story):
    assert open_access(world["health"], story["case"]).status_code == 201
    resp = open_access(world["health"], story["case"])
    assert resp.status_code == 409 and resp.json["type"].endswith("emergency-access-active")


def test_an_unknown_case_is_404(world):
    resp = open_access(world["health"], {"id": "5b0c2a3e-1111-4222-8333-444455556666"})
    assert resp.status_code == 404


@pytest.mark.parametrize("reason", ["", "Too short", " " * 30, None])
def test_a_reason_of_at_least_20_characters_is_required(world, story, reason):
    resp = world["health"].post(f"{story['base']}/emergency-access", json={} if reason is None else {"reason": reason})
    assert resp.status_code == 422
    assert "reason" in resp.json["errors"]
    assert world["health"].get(story["base"]).status_code == 403


def test_the_grant_and_every_read_under_it_are_marked_in_the_audit_log(world, story):
    health = world["health"]
    grant = open_access(health, story["case"]).json
    health.get(story["base"])
    health.get(f"{story['base']}/notes")
    health.get(f"/api/v1/youths/{story['case']['youth_id']}")
    world["police"].get(story["base"])
    mine = events_of(world, actor=health.user_id)
    opened = [e for e in mine if e["action"] == "emergency.open_access"]
    assert len(opened) == 1
    assert opened[0]["resource_type"] == "emergency_access" and opened[0]["resource_id"] == grant["id"]
    assert opened[0]["basis"] == "emergency" and opened[0]["case_id"] == story["case"]["id"]
    reads = {e["action"]: e["basis"] for e in mine if e["action"] != "emergency.open_access"}
    assert reads == {
        "cases.get_case": "emergency",
        "followups.list_notes": "emergency",
        "youths.get_youth": "emergency",
    }
    police = [e for e in events_of(world, actor=world["police"].user_id) if e["action"] == "cases.get_case"]
    assert police and all(e["basis"] is None for e in police)
    texts = json.dumps(events_of(world))
    assert REASON not in texts
    assert world["auditor"].get("/api/v1/audit/verify").json["valid"] is True


def test_refused_reads_before_the_access_carry_no_basis(world, story):
    world["health"].get(story["base"])
    refused = [e for e in events_of(world, actor=world["health"].user_id) if e["action"] == "cases.get_case"]
    assert refused[0]["outcome"] == "denied" and refused[0]["basis"] is None


def test_the_youths_access_log_marks_the_reads(world, story):
    open_access(world["health"], story["case"])
    world["health"].get(story["base"])
    world["nav"].get(story["base"])
    items = (
        world["police"]
        .get(f"/api/v1/youths/{story['case']['youth_id']}/access-log", query_string={"limit": 200})
        .json["items"]
    )
    by = {(e["actor_agency"], e["action"]): e["basis"] for e in items}
    assert by[("health", "cases.get_case")] == "emergency"
    assert by[("health", "emergency.open_access")] == "emergency"
    assert by[("nav", "cases.get_case")] is None


def test_the_export_carries_basis_and_verifies_offline(world, story, tmp_path, test_db_cli):
    open_access(world["health"], story["case"])
    world["health"].get(story["base"])
    jsonl = world["auditor"].get("/api/v1/audit/export", query_string={"format": "jsonl"})
    lines = [json.loads(line) for line in jsonl.get_data(as_text=True).splitlines()]
    assert {e["basis"] for e in lines} == {None, "emergency"}
    marked = [e for e in lines if e["basis"] == "emergency"]
    assert {e["action"] for e in marked} == {"emergency.open_access", "cases.get_case"}
    csv_text = world["auditor"].get("/api/v1/audit/export", query_string={"format": "csv"}).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    # (the CSV export holds one event more: the JSONL export's own)
    assert [r["basis"] for r in rows][: len(lines)] == ["" if e["basis"] is None else e["basis"] for e in lines]
    for name, text in (("export.jsonl", jsonl.get_data(as_text=True)), ("export.csv", csv_text)):
        path = tmp_path / name
        path.write_text(text)
        code, _out, err = test_db_cli("audit", "verify", "--file", str(path))
        assert code == 0, err
    # a changed basis is found
    tampered = [dict(e) for e in lines]
    tampered[next(i for i, e in enumerate(tampered) if e["basis"])]["basis"] = None
    path = tmp_path / "tampered.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in tampered))
    code, _, _ = test_db_cli("audit", "verify", "--file", str(path))
    assert code == 1


def test_the_lead_agency_is_reminded_to_review(world, story):
    grant = open_access(world["health"], story["case"]).json
    items = world["police"].get("/api/v1/reminders", query_string={"case_id": story["case"]["id"]}).json["items"]
    review = [r for r in items if r["kind"] == "emergency_access_review"]
    assert len(review) == 1
    assert review[0]["assignee_agency"] == "police" and review[0]["status"] == "pending"
    assert review[0]["source"] == {"type": "emergency_access", "id": grant["id"]}


def test_auditors_list_the_accesses_with_the_reason_and_review_them_once(world, story):
    grant = open_access(world["health"], story["case"]).json
    auditor = world["auditor"]
    listed = auditor.get("/api/v1/audit/emergency-accesses").json["items"]
    assert [(a["id"], a["reason"], a["reviewed"], a["review"]) for a in listed] == [(grant["id"], REASON, False, None)]
    assert auditor.get("/api/v1/audit/emergency-accesses", query_string={"reviewed": "true"}).json["items"] == []
    url = f"/api/v1/audit/emergency-accesses/{grant['id']}/review"
    resp = auditor.post(url, json={"finding": "unjustified", "comment": "No emergency on record that night."})
    assert resp.status_code == 201, resp.json
    assert resp.json["reviewed"] is True
    assert resp.json["review"]["finding"] == "unjustified"
    assert resp.json["review"]["comment"] == "No emergency on record that night."
    assert resp.json["review"]["reviewed_by"] == auditor.user_id
    again = world["admin"].post(url, json={"finding": "justified"})
    assert again.status_code == 409 and again.json["type"].endswith("already-reviewed")
    done = auditor.get("/api/v1/audit/emergency-accesses", query_string={"reviewed": "true"}).json["items"]
    assert [a["id"] for a in done] == [grant["id"]]
    assert auditor.get("/api/v1/audit/emergency-accesses", query_string={"reviewed": "false"}).json["items"] == []
    reviews = [
        e
        for e in events_of(world, actor=auditor.user_id)
        if e["resource_id"] == grant["id"] and e["action"].startswith("emergency.review_access")
    ]
    assert [e["action"] for e in reviews if e["outcome"] == "allowed"] == ["emergency.review_access.unjustified"]
    assert "No emergency on record" not in json.dumps(events_of(world))


def test_the_list_filters_by_when_the_access_was_opened(world, story):
    open_access(world["health"], story["case"])
    past = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    auditor = world["auditor"]
    assert (
        len(auditor.get("/api/v1/audit/emergency-accesses", query_string={"from": past, "to": future}).json["items"])
        == 1
    )
    assert auditor.get("/api/v1/audit/emergency-accesses", query_string={"from": future}).json["items"] == []


def test_a_bad_finding_is_422(world, story):
    grant = open_access(world["health"], story["case"]).json
    resp = world["auditor"].post(f"/api/v1/audit/emergency-accesses/{grant['id']}/review", json={"finding": "fine"})
    assert resp.status_code == 422 and "finding" in resp.json["errors"]


@pytest.mark.parametrize("who", ["police", "health"])
def test_staff_neither_list_nor_review(world, story, who):
    grant = open_access(world["health"], story["case"]).json
    assert world[who].get("/api/v1/audit/emergency-accesses").status_code == 403
    resp = world[who].post(f"/api/v1/audit/emergency-accesses/{grant['id']}/review", json={"finding": "justified"})
    assert resp.status_code == 403
    assert world["auditor"].get("/api/v1/audit/emergency-accesses").json["items"][0]["reviewed"] is False


def test_retention_deletes_the_reason_and_the_review_with_the_case(world, story, app, monkeypatch):
    from sqlalchemy import func, select

    from casesvc.cli import main
    from casesvc.common.timeutil import rfc3339
    from casesvc.emergency.models import EmergencyAccess, EmergencyReview
    from casesvc.extensions import db

    grant = open_access(world["health"], story["case"]).json
    world["auditor"].post(
        f"/api/v1/audit/emergency-accesses/{grant['id']}/review",
        json={"finding": "justified", "comment": "The school called the ambulance."},
    )
    for to, reason in (("active", None), ("completed", "Contract fulfilled")):
        assert (
            world["police"].post(f"{story['base']}/transitions", json={"to": to, "reason": reason}).status_code == 200
        )
    monkeypatch.setenv("CASESVC_ENV", "test")
    monkeypatch.setenv("CASESVC_DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    assert main(["retention", "run", "--now", rfc3339(utcnow() + timedelta(days=1826))]) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmergencyAccess)) == 0
        assert db.session.scalar(select(func.count()).select_from(EmergencyReview)) == 0
    assert world["auditor"].get("/api/v1/audit/emergency-accesses").json["items"] == []


def test_the_document_says_how_long_a_reason_must_be(client):
    spec = client.get("/api/v1/openapi.json").json
    body = spec["paths"]["/api/v1/cases/{case_id}/emergency-access"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert spec["components"]["schemas"][ref]["properties"]["reason"]["minLength"] == 20
