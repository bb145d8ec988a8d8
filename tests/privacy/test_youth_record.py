"""README "The youth's record", the youth's record: everything the caller's agency may read about the youth, and
the access log for it; for the lead agency of one of the youth's cases or a coordinator taking
part in one; JSON, or a printable page in bokmål with `Accept: text/html`."""

from __future__ import annotations

import json
import re

import pytest

EVENT = {
    "kind": "meeting",
    "occurred_at": "2027-01-05T08:00:00Z",
    "category": "general",
    "visibility": "shared",
    "summary": "Met at school",
}


def record_url(youth_id: str) -> str:
    return f"/api/v1/youths/{youth_id}/record"


def get_record(actor, youth_id: str) -> dict:
    resp = actor.get(record_url(youth_id))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    return json.loads(resp.get_data(as_text=True))


@pytest.fixture
def story(world):
    """Police leads case A with health, slt and nav under consent (general only for health and
    nav); nav leads case B of the same youth, slt taking part without consent, police not at all. Entries of
    every kind of visibility."""
    youth = world.youth(given_name="Testa", family_name="Innsynsen")
    case = world.case(youth=youth, participants=("health", "slt", "nav"))
    base = f"/api/v1/cases/{case['id']}"
    world.consent(case, ["nav"])  # so that nav sees the youth and opens case B
    world.consent(case, ["slt"], categories=("general", "health"))
    world.consent(case, ["health"], categories=("general",))
    world.consent(case, ["health"], decision="refused", categories=("health",))
    reaction = (
        world["police"]
        .post(
            f"{base}/reactions",
            json={
                "type": "follow_up_plan",
                "legal_basis": "consent",
                "starts_on": "2027-01-04",
                "conditions": [
                    {"kind": "meeting", "description": "Weekly talk", "every_days": 7, "responsible_agency": "slt"}
                ],
            },
        )
        .json
    )
    ids = {
        "police_shared": world["police"].post(f"{base}/events", json=EVENT).json["id"],
        "police_own": world["police"]
        .post(f"{base}/notes", json={"body": "Police only", "visibility": "agency"})
        .json["id"],
        "health_own": world["health"]
        .post(f"{base}/notes", json={"body": "Nurse only", "visibility": "agency"})
        .json["id"],
        "health_shared_health": world["health"]
        .post(f"{base}/events", json={**EVENT, "category": "health", "summary": "Health talk"})
        .json["id"],
        "slt_shared": world["slt"].post(f"{base}/notes", json={"body": "Coordinator note"}).json["id"],
        "slt_own": world["slt"].post(f"{base}/notes", json={"body": "Slt only", "visibility": "agency"}).json["id"],
    }
    case_b = world["nav"].post(
        "/api/v1/cases", json={"youth_id": youth["id"], "origin": "nav", "participants": ["slt"]}
    )
    assert case_b.status_code == 201, case_b.json
    return {"youth": youth, "case": case, "base": base, "reaction": reaction, "ids": ids, "case_b": case_b.json}


def _entry_ids(case_record: dict) -> set[str]:
    return {e["id"] for e in case_record["events"]} | {n["id"] for n in case_record.get("notes", [])}


def test_the_lead_agency_gets_the_youth_its_cases_and_the_entries_it_may_read(world, story):
    record = get_record(world["police"], story["youth"]["id"])
    assert record["youth"]["id"] == story["youth"]["id"]
    assert record["youth"]["given_name"] == "Testa"
    assert record["youth"]["guardians"][0]["name"] == "Test Forelder"
    assert record["agency"] == "police"
    assert [c["id"] for c in record["cases"]] == [story["case"]["id"]]  # not nav's case
    case = record["cases"][0]
    assert case["access"] == "lead"
    assert [r["id"] for r in case["reactions"]] == [story["reaction"]["id"]]
    assert case["reactions"][0]["conditions"][0]["description"] == "Weekly talk"
    assert {c["decision"] for c in case["consents"]} == {"given", "refused"}
    ids = story["ids"]
    # its own entries whatever their visibility; shared general entries; never another agency's
    # agency-only entries; no health entry of another agency without a consent covering health
    assert _entry_ids(case) == {ids["police_shared"], ids["police_own"], ids["slt_shared"]}
    assert "left_out" in record and "own data" in record["left_out"]


def test_a_participant_neither_lead_nor_coordinator_is_refused(world, story):
    """health takes part under consent but is neither the lead nor a coordinator: 403."""
    resp = world["health"].get(record_url(story["youth"]["id"]))
    assert resp.status_code == 403
    assert resp.json["type"].endswith("lead-agency-required")


def test_a_coordinator_taking_part_gets_the_cases_it_reads(world, story):
    record = get_record(world["slt"], story["youth"]["id"])
    by_id = {c["id"]: c for c in record["cases"]}
    assert story["case"]["id"] in by_id
    ids = story["ids"]
    case = by_id[story["case"]["id"]]
    assert case["access"] == "shared"
    # consent covers health for slt: health's shared health event too; its own agency-only note
    assert _entry_ids(case) == {ids["police_shared"], ids["health_shared_health"], ids["slt_shared"], ids["slt_own"]}
    # nav's case names slt without consent: not in the record
    assert story["case_b"]["id"] not in by_id


@pytest.mark.parametrize(
    "who,status,kind",
    [
        ("cw", 404, "not-found"),
        ("west", 404, "not-found"),
        ("admin", 403, "case-content-forbidden"),
        ("auditor", 403, "case-content-forbidden"),
    ],
)
def test_others_get_nothing(world, story, who, status, kind):
    resp = world[who].get(record_url(story["youth"]["id"]))
    assert resp.status_code == status
    assert resp.json["type"].endswith(kind)
    assert "Testa" not in resp.get_data(as_text=True)


def test_an_unknown_youth_is_404(world):
    resp = world["police"].get(record_url("6b0c2a3e-1111-4222-8333-444455556666"))
    assert resp.status_code == 404


def test_the_record_holds_the_access_log_of_what_the_agency_may_see(world, story):
    world["health"].get(story["base"])
    world["west"].get(story["base"])
    world["nav"].get(f"/api/v1/cases/{story['case_b']['id']}")  # a case police does not read
    record = get_record(world["police"], story["youth"]["id"])
    log = record["access_log"]
    assert log == sorted(log, key=lambda e: e["seq"])
    assert {e["case_id"] for e in log} <= {None, story["case"]["id"]}
    who = {(e["actor_agency"], e["action"], e["outcome"]) for e in log}
    assert ("health", "cases.get_case", "allowed") in who
    assert ("west", "cases.get_case", "denied") in who
    assert ("police", "youths.create_youth", "allowed") in who
    assert set(log[0]) == {
        "seq",
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


def test_the_request_is_audited(world, story):
    get_record(world["police"], story["youth"]["id"])
    events = world["auditor"].get("/api/v1/audit/events", query_string={"action": "record.youth_record"}).json["items"]
    assert len(events) == 1
    assert events[0]["youth_id"] == story["youth"]["id"] and events[0]["outcome"] == "allowed"
    assert events[0]["ids"] == [story["case"]["id"]]
    assert events[0]["resource_type"] == "youth_record"


def test_a_token_without_notes_read_gets_no_notes(world, story):
    from casesvc.policy import ROLE_SCOPES

    police = world["police"]
    narrow = world.as_user(
        police.user_id, "police", "police", "user.police", scopes=ROLE_SCOPES["police"] - {"notes:read"}
    )
    record = get_record(narrow, story["youth"]["id"])
    assert "notes" not in record["cases"][0]
    assert {e["id"] for e in record["cases"][0]["events"]} == {story["ids"]["police_shared"]}


def test_the_html_page_is_in_bokmal_printable_and_without_script(world, story):
    resp = world["police"].get(record_url(story["youth"]["id"]), headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="nb">' in page
    assert "Innsyn: opplysninger om Testa Innsynsen" in page
    for heading in (
        "Personopplysninger",
        "Foresatte",
        "Reaksjoner",
        "Samtykker",
        "Hendelser",
        "Notater",
        "Tilgangslogg",
        "Hva utskriften ikke inneholder",
    ):
        assert heading in page
    assert "Samtykke nektet" in page
    assert "@media print" in page
    assert not re.search(r"<script|javascript:|\son\w+=", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "Police only" in page and "Nurse only" not in page and "Slt only" not in page


def test_the_html_escapes_what_users_wrote(world, story):
    world["police"].post(f"{story['base']}/notes", json={"body": "<script>alert(1)</script> & <b>"})
    page = world["police"].get(record_url(story["youth"]["id"]), headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in page


def test_emergency_reads_are_marked_in_the_records_access_log(world, story):
    case = world.case(youth=story["youth"], participants=("nav",))
    resp = world["nav"].post(
        f"/api/v1/cases/{case['id']}/emergency-access",
        json={"reason": "Found unconscious, family cannot be reached tonight."},
    )
    assert resp.status_code == 201
    world["nav"].get(f"/api/v1/cases/{case['id']}")
    record = get_record(world["police"], story["youth"]["id"])
    marked = [e for e in record["access_log"] if e["basis"] == "emergency"]
    assert {e["action"] for e in marked} == {"emergency.open_access", "cases.get_case"}
    page = world["police"].get(record_url(story["youth"]["id"]), headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Nødtilgang" in page
