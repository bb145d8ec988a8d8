"""The invariants of README "Security model", one rule at a time, through the HTTP API."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

import casesvc.common.timeutil as timeutil
from casesvc.agencies.models import Agency
from casesvc.common.timeutil import oslo_today
from casesvc.consents.models import Consent, ConsentAgency
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES
from tests.conftest import youth_number

MISSING = "00000000-0000-4000-8000-000000000000"
EVENT = {"kind": "meeting", "occurred_at": "2027-01-05T08:00:00Z", "summary": "Met"}
REACTION = {"type": "follow_up_plan", "legal_basis": "consent", "starts_on": "2027-01-04"}


def assert_problem(resp, status: int, type_slug: str):
    assert resp.status_code == status, (resp.status_code, resp.json)
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json["type"] == f"/problems/{type_slug}", resp.json


def ids(resp) -> set[str]:
    assert resp.status_code == 200, resp.json
    assert resp.json["next_cursor"] is None  # everything on one page
    return {item["id"] for item in resp.json["items"]}


def event(world, case, by="police", **fields) -> dict:
    resp = world[by].post(f"/api/v1/cases/{case['id']}/events", json={**EVENT, **fields})
    assert resp.status_code == 201, resp.json
    return resp.json


def note(world, case, by="police", **fields) -> dict:
    resp = world[by].post(f"/api/v1/cases/{case['id']}/notes", json={"body": "A note", **fields})
    assert resp.status_code == 201, resp.json
    return resp.json


def shift_clock(monkeypatch, days: int) -> None:
    """Move "now" (and so today in Oslo, used by every consent check) by `days`."""
    real = timeutil.utcnow
    monkeypatch.setattr(timeutil, "utcnow", lambda: real() + timedelta(days=days))


# --- 1. outsiders get 404, never 403 ---------------------------------------------------------


def _case_with_everything(world) -> dict:
    case = world.case(participants=("health", "slt"))
    base = f"/api/v1/cases/{case['id']}"
    consent = world.consent(case, ["health"])
    reaction = world["police"].post(f"{base}/reactions", json=REACTION).json
    return {
        "case": case,
        "urls": [
            base,
            f"{base}/reactions",
            f"{base}/reactions/{reaction['id']}",
            f"{base}/events",
            f"{base}/events/{event(world, case)['id']}",
            f"{base}/notes",
            f"{base}/notes/{note(world, case)['id']}",
            f"{base}/consents",
            f"{base}/consents/{consent['id']}",
            f"/api/v1/youths/{case['youth_id']}",
        ],
    }


@pytest.mark.parametrize("outsider", ["police2", "cw", "west", "westhealth"])
def test_outsiders_get_404_for_the_case_every_entry_under_it_and_the_youth(world, outsider):
    data = _case_with_everything(world)
    for url in data["urls"]:
        resp = world[outsider].get(url)
        assert_problem(resp, 404, "not-found")
        # the same answer as for an id that does not exist: existence is not leaked
        missing = world[outsider].get(
            url.replace(data["case"]["id"], MISSING).replace(data["case"]["youth_id"], MISSING)
        )
        assert (missing.status_code, missing.json["type"]) == (404, resp.json["type"])
        # the insider sees each of them
        assert world["police"].get(url).status_code == 200, url


@pytest.mark.parametrize("outsider", ["police2", "west"])
def test_outsiders_writes_to_the_case_are_404_and_change_nothing(world, outsider):
    case = world.case()
    base = f"/api/v1/cases/{case['id']}"
    etag = world["police"].get(base).headers["ETag"]
    attempts = [
        world[outsider].post(f"{base}/events", json=EVENT),
        world[outsider].post(f"{base}/notes", json={"body": "x"}),
        world[outsider].post(f"{base}/reactions", json=REACTION),
        world[outsider].post(f"{base}/transitions", json={"to": "active"}),
        world[outsider].patch(base, json={"summary": "Hijacked"}, headers={"If-Match": etag}),
        world[outsider].post(
            f"{base}/consents",
            json={
                "given_by": "both",
                "given_on": oslo_today().isoformat(),
                "expires_on": (oslo_today() + timedelta(days=30)).isoformat(),
                "purpose": "x",
                "agencies": ["health"],
            },
        ),
    ]
    for resp in attempts:
        assert_problem(resp, 404, "not-found")
    after = world["police"].get(base).json
    assert (after["summary"], after["status"]) == ("Test case", "open")
    assert ids(world["police"].get(f"{base}/events")) == set()
    assert ids(world["police"].get(f"{base}/reactions")) == set()
    assert ids(world["police"].get(f"{base}/consents")) == set()


def test_participant_whose_agency_stops_serving_the_municipality_loses_the_case(world, app):
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    assert world["health"].get(f"/api/v1/cases/{case['id']}").status_code == 200
    with app.app_context():
        db.session.get(Agency, "health").municipalities = ["4601"]
        db.session.commit()
    assert_problem(world["health"].get(f"/api/v1/cases/{case['id']}"), 404, "not-found")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    assert_problem(world["health"].get(f"/api/v1/youths/{case['youth_id']}"), 404, "not-found")


def test_opening_a_case_with_a_participant_not_serving_the_municipality_is_422(world):
    youth = world.youth()
    resp = world["police"].post(
        "/api/v1/cases", json={"youth_id": youth["id"], "origin": "police", "participants": ["health", "westhealth"]}
    )
    assert_problem(resp, 422, "validation-error")
    assert "participants" in resp.json["errors"]
    assert ids(world["police"].get("/api/v1/cases")) == set()


def test_adding_a_participant_not_serving_the_municipality_is_422(world):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    resp = world["police"].patch(
        base,
        json={"participants": ["police", "health", "west"]},
        headers={"If-Match": world["police"].get(base).headers["ETag"]},
    )
    assert_problem(resp, 422, "validation-error")
    assert "participants" in resp.json["errors"]
    assert sorted(world["police"].get(base).json["participants"]) == ["health", "police"]
    # one that serves it may be added
    resp = world["police"].patch(
        base,
        json={"participants": ["police", "health", "nav"]},
        headers={"If-Match": world["police"].get(base).headers["ETag"]},
    )
    assert resp.status_code == 200, resp.json
    assert sorted(resp.json["participants"]) == ["health", "nav", "police"]


def test_a_consent_naming_a_non_participant_grants_nothing_and_is_422(world):
    case = world.case(participants=("health",))
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/consents",
        json={
            "given_by": "both",
            "given_on": oslo_today().isoformat(),
            "expires_on": (oslo_today() + timedelta(days=30)).isoformat(),
            "purpose": "x",
            "agencies": ["cw"],
        },
    )
    assert_problem(resp, 422, "validation-error")
    assert_problem(world["cw"].get(f"/api/v1/cases/{case['id']}"), 404, "not-found")


# --- 2. the lead sees all; other participants need an active consent -------------------------


def test_participant_without_consent_gets_consent_required_on_the_case_and_what_is_under_it(world):
    case = world.case(participants=("health", "nav"))
    base = f"/api/v1/cases/{case['id']}"
    entry = event(world, case)
    world.consent(case, ["nav"])  # a consent for someone else does not help health
    for url in (
        base,
        f"{base}/events",
        f"{base}/events/{entry['id']}",
        f"{base}/notes",
        f"{base}/reactions",
        f"{base}/consents",
    ):
        assert_problem(world["health"].get(url), 403, "consent-required")
        assert world["nav"].get(url).status_code == 200
    assert_problem(world["health"].post(f"{base}/events", json=EVENT), 403, "consent-required")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    assert case["id"] in ids(world["nav"].get("/api/v1/cases"))


def test_lead_sees_the_case_without_any_consent(world):
    case = world.case(participants=("health",))
    assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 200
    assert case["id"] in ids(world["police"].get("/api/v1/cases"))


def test_consent_gives_the_participant_the_case_and_its_shared_entries(world):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    shared, private = event(world, case), event(world, case, visibility="agency")
    assert_problem(world["health"].get(base), 403, "consent-required")
    world.consent(case, ["health"])
    assert world["health"].get(base).status_code == 200
    assert case["id"] in ids(world["health"].get("/api/v1/cases"))
    assert ids(world["health"].get(f"{base}/events")) == {shared["id"]}
    assert_problem(world["health"].get(f"{base}/events/{private['id']}"), 404, "not-found")


# --- 3. agency entries, health entries, drug tests -------------------------------------------


def test_agency_visibility_entries_are_hidden_from_the_lead(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health", "police"], categories=("general", "health"))
    base = f"/api/v1/cases/{case['id']}"
    own_event = event(world, case, by="health", visibility="agency")
    own_note = note(world, case, by="health", visibility="agency", category="health")
    assert_problem(world["police"].get(f"{base}/events/{own_event['id']}"), 404, "not-found")
    assert_problem(world["police"].get(f"{base}/notes/{own_note['id']}"), 404, "not-found")
    assert own_event["id"] not in ids(world["police"].get(f"{base}/events"))
    assert own_note["id"] not in ids(world["police"].get(f"{base}/notes"))
    # the author sees them
    assert world["health"].get(f"{base}/events/{own_event['id']}").status_code == 200
    assert ids(world["health"].get(f"{base}/notes")) == {own_note["id"]}


def test_lead_agency_entries_are_hidden_from_consenting_participants(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health"], categories=("general", "health"))
    base = f"/api/v1/cases/{case['id']}"
    private = note(world, case, by="police", visibility="agency")
    assert_problem(world["health"].get(f"{base}/notes/{private['id']}"), 404, "not-found")
    assert ids(world["health"].get(f"{base}/notes")) == set()


def test_health_entries_need_a_consent_covering_health(world):
    case = world.case(participants=("health", "nav"))
    world.consent(case, ["health"], categories=("general", "health"))
    world.consent(case, ["nav"], categories=("general",))
    base = f"/api/v1/cases/{case['id']}"
    health_note = note(world, case, by="health", category="health")
    general_note = note(world, case, by="health")
    # nav under a general consent: the general note only
    assert ids(world["nav"].get(f"{base}/notes")) == {general_note["id"]}
    assert_problem(world["nav"].get(f"{base}/notes/{health_note['id']}"), 404, "not-found")
    # the lead, named by no consent, is no different
    assert ids(world["police"].get(f"{base}/notes")) == {general_note["id"]}
    assert_problem(world["police"].get(f"{base}/notes/{health_note['id']}"), 404, "not-found")
    # a consent covering health for the lead opens it to the lead (and only to the lead)
    world.consent(case, ["police"], categories=("general", "health"))
    assert ids(world["police"].get(f"{base}/notes")) == {general_note["id"], health_note["id"]}
    assert world["police"].get(f"{base}/notes/{health_note['id']}").status_code == 200
    assert_problem(world["nav"].get(f"{base}/notes/{health_note['id']}"), 404, "not-found")


def test_a_drug_test_is_stored_as_health_whatever_the_request_says(world):
    case = world.case(participants=("health",))
    world.consent(case, ["health"], categories=("general",))
    reaction = (
        world["police"]
        .post(
            f"/api/v1/cases/{case['id']}/reactions",
            json={
                **REACTION,
                "legal_basis": "conditional_waiver",
                "conditions": [{"kind": "drug_test", "responsible_agency": "police"}],
            },
        )
        .json
    )
    test = event(world, case, kind="drug_test", result="negative", category="general", reaction_id=reaction["id"])
    assert test["category"] == "health"
    assert_problem(world["health"].get(f"/api/v1/cases/{case['id']}/events/{test['id']}"), 404, "not-found")


def test_drug_test_reaches_the_condition_responsible_agency_even_when_agency_only(world):
    case = world.case(participants=("health", "nav"))
    world.consent(case, ["health"], categories=("general",))  # no health consent for health
    world.consent(case, ["nav"], categories=("general", "health"))  # nav is not responsible
    base = f"/api/v1/cases/{case['id']}"
    reaction = world["police"].post(
        f"{base}/reactions",
        json={
            **REACTION,
            "legal_basis": "conditional_waiver",
            "conditions": [{"kind": "drug_test", "every_days": 14, "responsible_agency": "health"}],
        },
    )
    assert reaction.status_code == 201, reaction.json
    condition = reaction.json["conditions"][0]["id"]
    linked = event(world, case, kind="drug_test", result="positive", condition_id=condition, visibility="agency")
    unlinked = event(world, case, kind="drug_test", result="negative", visibility="agency")
    assert linked["category"] == "health"
    # the responsible agency sees the linked result, not the unlinked one
    assert world["health"].get(f"{base}/events/{linked['id']}").status_code == 200
    assert_problem(world["health"].get(f"{base}/events/{unlinked['id']}"), 404, "not-found")
    assert ids(world["health"].get(f"{base}/events")) == {linked["id"]}
    assert ids(world["health"].get(f"{base}/events?condition_id={condition}")) == {linked["id"]}
    # an agency with a health consent that is not responsible does not
    assert_problem(world["nav"].get(f"{base}/events/{linked['id']}"), 404, "not-found")
    assert ids(world["nav"].get(f"{base}/events")) == set()


def test_drug_test_exception_still_needs_access_to_the_case(world):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    reaction = (
        world["police"]
        .post(
            f"{base}/reactions",
            json={
                **REACTION,
                "legal_basis": "conditional_waiver",
                "conditions": [{"kind": "drug_test", "responsible_agency": "health"}],
            },
        )
        .json
    )
    linked = event(world, case, kind="drug_test", result="positive", condition_id=reaction["conditions"][0]["id"])
    assert_problem(world["health"].get(f"{base}/events/{linked['id']}"), 403, "consent-required")


# --- 4. withdrawal and expiry take effect on the very next request ---------------------------


def test_withdrawal_takes_effect_on_the_very_next_request(world):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    consent = world.consent(case, ["health"])
    assert world["health"].get(base).status_code == 200
    assert world["health"].get(f"/api/v1/youths/{case['youth_id']}").status_code == 200
    resp = world["police"].post(f"{base}/consents/{consent['id']}/withdraw")
    assert resp.status_code == 200, resp.json
    assert resp.json["withdrawn_at"] is not None and resp.json["active"] is False
    assert_problem(world["health"].get(base), 403, "consent-required")
    assert_problem(world["health"].post(f"{base}/notes", json={"body": "x"}), 403, "consent-required")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    assert_problem(world["health"].get(f"/api/v1/youths/{case['youth_id']}"), 404, "not-found")
    assert case["youth_id"] not in ids(world["health"].get("/api/v1/youths"))


def test_withdrawing_the_health_consent_hides_health_entries_at_once(world):
    case = world.case(participants=("health", "nav"))
    base = f"/api/v1/cases/{case['id']}"
    world.consent(case, ["health"], categories=("general", "health"))
    general = world.consent(case, ["nav"], categories=("general",))
    health = world.consent(case, ["nav"], categories=("general", "health"))
    health_note = note(world, case, by="health", category="health")
    assert ids(world["nav"].get(f"{base}/notes")) == {health_note["id"]}
    assert world["nav"].get(f"{base}/notes/{health_note['id']}").status_code == 200
    assert world["police"].post(f"{base}/consents/{health['id']}/withdraw").status_code == 200
    assert_problem(world["nav"].get(f"{base}/notes/{health_note['id']}"), 404, "not-found")
    assert ids(world["nav"].get(f"{base}/notes")) == set()
    assert world["nav"].get(base).status_code == 200  # the general consent still stands
    assert world["police"].post(f"{base}/consents/{general['id']}/withdraw").status_code == 200
    assert_problem(world["nav"].get(base), 403, "consent-required")


def test_consent_expiring_today_works_today_and_not_tomorrow(world, monkeypatch):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    consent = world.consent(case, ["health"], expires_on=oslo_today().isoformat())
    assert consent["active"] is True
    assert world["health"].get(base).status_code == 200
    assert case["id"] in ids(world["health"].get("/api/v1/cases"))

    shift_clock(monkeypatch, days=1)
    assert_problem(world["health"].get(base), 403, "consent-required")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    assert_problem(world["health"].get(f"/api/v1/youths/{case['youth_id']}"), 404, "not-found")
    assert case["youth_id"] not in ids(world["health"].get("/api/v1/youths"))
    assert world["police"].get(f"{base}/consents/{consent['id']}").json["active"] is False
    assert ids(world["police"].get(f"{base}/consents?active=true")) == set()


def test_consent_given_tomorrow_works_only_from_tomorrow(world, monkeypatch):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    tomorrow = oslo_today() + timedelta(days=1)
    world.consent(case, ["health"], given_on=tomorrow.isoformat())
    assert_problem(world["health"].get(base), 403, "consent-required")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    shift_clock(monkeypatch, days=1)
    assert world["health"].get(base).status_code == 200
    assert case["id"] in ids(world["health"].get("/api/v1/cases"))


def test_an_already_expired_consent_grants_nothing(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    with app.app_context():
        db.session.add(
            Consent(
                case_id=case["id"],
                given_by="both",
                given_on=today - timedelta(days=30),
                expires_on=today - timedelta(days=1),
                purpose="Old",
                covers_general=True,
                covers_health=True,
                recorded_by_agency="police",
                grants=[ConsentAgency(agency_code="health")],
            )
        )
        db.session.commit()
    assert_problem(world["health"].get(f"/api/v1/cases/{case['id']}"), 403, "consent-required")
    assert case["id"] not in ids(world["health"].get("/api/v1/cases"))
    # and recording one like it is refused
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/consents",
        json={
            "given_by": "both",
            "given_on": (today - timedelta(days=30)).isoformat(),
            "expires_on": (today - timedelta(days=1)).isoformat(),
            "purpose": "x",
            "agencies": ["health"],
        },
    )
    assert_problem(resp, 422, "validation-error")
    assert "expires_on" in resp.json["errors"]


# --- 5. admin and auditor: 403 on every case-content endpoint --------------------------------


def _content_endpoints(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1/cases", "/api/v1/youths")):
            continue
        if rule.rule.endswith("/access-log"):  # audit data (who read what), meant for admin and auditor
            continue
        url = re.sub(r"<(?:[^:>]+:)?[^>]+>", MISSING, rule.rule)
        found += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_and_auditor_get_403_on_every_case_content_endpoint(world, app, who):
    endpoints = _content_endpoints(app)
    assert len(endpoints) >= 20  # cases, reactions, signatures, events, notes, consents, youths
    case = world.case()
    # an empty body: the refusal comes before any field is validated
    for method, url in endpoints:
        for target in (url, url.replace(MISSING, case["id"], 1)):  # a missing id, an existing case
            resp = world[who].client.open(
                target,
                method=method,
                json={},
                headers={"Authorization": f"Bearer {world[who].token}", "If-Match": '"1"'},
            )
            assert resp.status_code == 403, (method, target, resp.status_code, resp.json)
            assert resp.json["type"] == "/problems/case-content-forbidden", (method, target)


# --- 6. youths ---------------------------------------------------------------------------------


def test_youth_without_a_case_is_visible_to_the_creating_agency_only(world):
    youth = world.youth(by="police2")
    assert world["police2"].get(f"/api/v1/youths/{youth['id']}").status_code == 200
    assert youth["id"] in ids(world["police2"].get("/api/v1/youths"))
    assert ids(world["police2"].get(f"/api/v1/youths?national_id={youth['national_id']}")) == {youth["id"]}
    for other in ("police", "health", "slt", "west"):
        assert_problem(world[other].get(f"/api/v1/youths/{youth['id']}"), 404, "not-found")
        assert ids(world[other].get("/api/v1/youths")) == set()
        assert ids(world[other].get(f"/api/v1/youths?national_id={youth['national_id']}")) == set()


def test_youth_is_visible_through_any_readable_case_and_to_its_creator(world):
    youth = world.youth(by="police2")
    first = world.case(by="police2", participants=("nav", "cw"), youth=youth)
    nav_consent = world.consent(first, ["nav"], by="police2")
    url = f"/api/v1/youths/{youth['id']}"
    assert world["police2"].get(url).status_code == 200  # creator and lead
    assert world["nav"].get(url).status_code == 200  # consenting participant
    assert_problem(world["cw"].get(url), 404, "not-found")  # participant without consent
    assert_problem(world["health"].get(url), 404, "not-found")  # not taking part
    assert youth["id"] in ids(world["nav"].get("/api/v1/youths"))
    assert youth["id"] not in ids(world["cw"].get("/api/v1/youths"))
    # nav opens its own case on the youth; after its consent on the first is withdrawn it still
    # sees the youth through the case it leads, while cw (no consent anywhere) still does not
    second = world.case(by="nav", participants=("cw",), youth=youth)
    world["police2"].post(f"/api/v1/cases/{first['id']}/consents/{nav_consent['id']}/withdraw")
    assert_problem(world["nav"].get(f"/api/v1/cases/{first['id']}"), 403, "consent-required")
    assert world["nav"].get(url).status_code == 200
    assert_problem(world["cw"].get(url), 404, "not-found")
    world.consent(second, ["cw"], by="nav")
    assert world["cw"].get(url).status_code == 200
    assert youth["id"] in ids(world["cw"].get("/api/v1/youths"))


def test_opening_a_case_on_a_youth_one_cannot_see_is_422_not_a_leak(world):
    youth = world.youth(by="police2")
    resp = world["police"].post("/api/v1/cases", json={"youth_id": youth["id"], "origin": "police"})
    assert_problem(resp, 422, "validation-error")
    missing = world["police"].post("/api/v1/cases", json={"youth_id": MISSING, "origin": "police"})
    assert (missing.status_code, missing.json["errors"]) == (422, resp.json["errors"])


def test_patching_a_youth_follows_visibility(world):
    youth = world.youth(by="police2")
    resp = world["police"].patch(f"/api/v1/youths/{youth['id']}", json={"school": "X"}, headers={"If-Match": '"1"'})
    assert_problem(resp, 404, "not-found")
    etag = world["police2"].get(f"/api/v1/youths/{youth['id']}").headers["ETag"]
    resp = world["police2"].patch(
        f"/api/v1/youths/{youth['id']}", json={"school": "Testskolen"}, headers={"If-Match": etag}
    )
    assert resp.status_code == 200, resp.json


# --- lists never show what GET refuses --------------------------------------------------------


def _busy_world(world, app) -> dict:
    """Cases under every relationship, youths with and without cases, entries of every kind."""
    cases, entries = [], {"events": [], "notes": []}
    a = world.case(by="police", participants=("health", "nav", "slt", "cw"))
    world.consent(a, ["health"], categories=("general",))
    world.consent(a, ["slt", "police"], categories=("general", "health"))
    b = world.case(by="police2", participants=("nav",))
    c = world.case(by="west", participants=("westhealth",), youth=world.youth(by="west", municipality="4601"))
    world.consent(c, ["westhealth"], by="west", categories=("general", "health"))
    d = world.case(by="health", participants=("police",))
    withdrawn = world.consent(d, ["police"], by="health")
    world["health"].post(f"/api/v1/cases/{d['id']}/consents/{withdrawn['id']}/withdraw")
    e = world.case(by="nav", participants=("cw",))
    today = oslo_today()
    with app.app_context():
        db.session.add(
            Consent(
                case_id=e["id"],
                given_by="both",
                given_on=today - timedelta(days=9),
                expires_on=today - timedelta(days=1),
                purpose="Old",
                covers_general=True,
                covers_health=False,
                recorded_by_agency="nav",
                grants=[ConsentAgency(agency_code="cw")],
            )
        )
        db.session.commit()
    cases += [a, b, c, d, e]
    world.youth(by="nav")  # no case
    world.youth(by="westhealth", municipality="4601")

    reaction = (
        world["police"]
        .post(
            f"/api/v1/cases/{a['id']}/reactions",
            json={
                **REACTION,
                "legal_basis": "conditional_waiver",
                "conditions": [{"kind": "drug_test", "responsible_agency": "health"}],
            },
        )
        .json
    )
    condition = reaction["conditions"][0]["id"]
    for by in ("police", "health", "slt"):
        for visibility in ("shared", "agency"):
            for category in ("general", "health"):
                entries["events"].append((a, event(world, a, by=by, visibility=visibility, category=category)))
                entries["notes"].append((a, note(world, a, by=by, visibility=visibility, category=category)))
    entries["events"].append(
        (a, event(world, a, kind="drug_test", result="missed", condition_id=condition, visibility="agency"))
    )
    entries["events"].append(
        (a, event(world, a, by="slt", kind="drug_test", result="negative", reaction_id=reaction["id"]))
    )
    for case, by in ((b, "police2"), (c, "west"), (d, "health"), (e, "nav")):
        entries["events"].append((case, event(world, case, by=by)))
        entries["notes"].append((case, note(world, case, by=by, category="health")))
    return {"cases": cases, "entries": entries}


def test_lists_show_exactly_what_get_allows(world, app):
    data = _busy_world(world, app)
    all_youths = {case["youth_id"] for case in data["cases"]}
    for who in ("police", "police2", "health", "nav", "cw", "slt", "west", "westhealth"):
        actor = world[who]
        readable = {case["id"] for case in data["cases"] if actor.get(f"/api/v1/cases/{case['id']}").status_code == 200}
        assert ids(actor.get("/api/v1/cases?limit=200")) == readable, who
        listed_youths = ids(actor.get("/api/v1/youths?limit=200"))
        known_youths = all_youths | listed_youths
        assert listed_youths == {y for y in known_youths if actor.get(f"/api/v1/youths/{y}").status_code == 200}, who
        for kind in ("events", "notes"):
            for case in data["cases"]:
                base = f"/api/v1/cases/{case['id']}/{kind}"
                under = [entry["id"] for c, entry in data["entries"][kind] if c["id"] == case["id"]]
                listing = actor.get(f"{base}?limit=200")
                if case["id"] not in readable:
                    assert listing.status_code in (403, 404), (who, kind)
                    assert all(actor.get(f"{base}/{i}").status_code in (403, 404) for i in under)
                    continue
                visible = {i for i in under if actor.get(f"{base}/{i}").status_code == 200}
                assert ids(listing) == visible, (who, kind, case["id"])
    # the test sees real differences: not everyone sees everything, nor nothing
    assert ids(world["police"].get("/api/v1/cases")) != ids(world["health"].get("/api/v1/cases"))


def test_lists_and_gets_agree_on_the_drug_test_exception(world, app):
    data = _busy_world(world, app)
    a = data["cases"][0]
    base = f"/api/v1/cases/{a['id']}/events"
    linked, unlinked = [e for c, e in data["entries"]["events"] if e["kind"] == "drug_test"]
    # health is responsible for the linked one (police wrote it, visibility agency), not the other
    assert linked["id"] in ids(world["health"].get(f"{base}?limit=200"))
    assert world["health"].get(f"{base}/{linked['id']}").status_code == 200
    assert unlinked["id"] not in ids(world["health"].get(f"{base}?limit=200"))
    assert world["health"].get(f"{base}/{unlinked['id']}").status_code == 404
    # slt has a health consent but is not responsible: the shared one only
    assert linked["id"] not in ids(world["slt"].get(f"{base}?limit=200"))
    assert unlinked["id"] in ids(world["slt"].get(f"{base}?limit=200"))


# --- 7. who writes ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["health", "nav", "cw"])
def test_only_lead_or_coordinator_change_participants_transitions_and_consents(world, who):
    case = world.case(participants=(who, "slt"))
    base = f"/api/v1/cases/{case['id']}"
    world.consent(case, [who, "slt"])
    reaction = world["police"].post(f"{base}/reactions", json=REACTION).json
    spare = world.consent(case, ["slt"])
    etag = world["police"].get(base).headers["ETag"]
    consent_body = {
        "given_by": "both",
        "given_on": oslo_today().isoformat(),
        "expires_on": (oslo_today() + timedelta(days=30)).isoformat(),
        "purpose": "x",
        "agencies": [who],
    }
    refused = {
        "participants": world[who].patch(
            base, json={"participants": ["police", who, "slt", "police2"]}, headers={"If-Match": etag}
        ),
        "transition": world[who].post(f"{base}/transitions", json={"to": "active"}),
        "reaction transition": world[who].post(
            f"{base}/reactions/{reaction['id']}/transitions", json={"to": "cancelled", "reason": "x"}
        ),
        "consent": world[who].post(f"{base}/consents", json=consent_body),
        "withdraw": world[who].post(f"{base}/consents/{spare['id']}/withdraw"),
    }
    for resp in refused.values():
        assert_problem(resp, 403, "lead-agency-required")
    after = world["police"].get(base).json
    assert (after["status"], sorted(after["participants"])) == ("open", sorted(["police", who, "slt"]))
    # ordinary writes are open to the same participant
    assert world[who].post(f"{base}/events", json=EVENT).status_code == 201
    assert world[who].post(f"{base}/notes", json={"body": "x"}).status_code == 201
    assert world[who].post(f"{base}/reactions", json=REACTION).status_code == 201

    # the coordinator (with a consent) may do all of it
    slt = world["slt"]
    resp = slt.patch(base, json={"participants": ["police", who, "slt", "police2"]}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.json
    assert sorted(resp.json["participants"]) == sorted(["police", who, "slt", "police2"])
    assert slt.post(f"{base}/transitions", json={"to": "active"}).status_code == 200
    assert (
        slt.post(f"{base}/reactions/{reaction['id']}/transitions", json={"to": "cancelled", "reason": "x"}).status_code
        == 200
    )
    assert slt.post(f"{base}/consents", json=consent_body).status_code == 201
    assert slt.post(f"{base}/consents/{spare['id']}/withdraw").status_code == 200


def test_coordinator_without_consent_cannot_use_the_coordinator_powers(world):
    case = world.case(participants=("slt",))
    base = f"/api/v1/cases/{case['id']}"
    assert_problem(world["slt"].post(f"{base}/transitions", json={"to": "active"}), 403, "consent-required")
    assert_problem(
        world["slt"].post(
            f"{base}/consents",
            json={
                "given_by": "both",
                "given_on": oslo_today().isoformat(),
                "expires_on": (oslo_today() + timedelta(days=30)).isoformat(),
                "purpose": "x",
                "agencies": ["slt"],
            },
        ),
        403,
        "consent-required",
    )
    assert ids(world["police"].get(f"{base}/consents")) == set()


def test_a_coordinator_not_taking_part_gets_404(world):
    case = world.case(participants=("health",))
    assert_problem(
        world["slt"].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": "active"}), 404, "not-found"
    )


def test_token_without_cases_write_gets_403_on_writes_and_still_reads(world):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    reader = world.as_user(
        world["police"].user_id, "police", "police", "user.police", scopes=ROLE_SCOPES["police"] - {"cases:write"}
    )
    etag = reader.get(base).headers["ETag"]
    writes = [
        reader.post(
            "/api/v1/youths",
            json={
                "given_name": "Test",
                "family_name": "Testesen",
                "birth_date": "2012-05-17",
                "municipality": "0301",
                "national_id": youth_number(date(2012, 5, 17), 900),
            },
        ),
        reader.patch(f"/api/v1/youths/{case['youth_id']}", json={"school": "x"}, headers={"If-Match": '"1"'}),
        reader.post("/api/v1/cases", json={"youth_id": case["youth_id"], "origin": "police"}),
        reader.patch(base, json={"summary": "x"}, headers={"If-Match": etag}),
        reader.post(f"{base}/transitions", json={"to": "active"}),
        reader.post(f"{base}/reactions", json=REACTION),
        reader.post(f"{base}/events", json=EVENT),
        # scope is checked before the record: a missing case does not turn into a 404
        reader.post(f"/api/v1/cases/{MISSING}/events", json=EVENT),
        # and before the body: an invalid one tells nothing about the fields
        reader.post("/api/v1/youths", json={}),
        reader.post(f"{base}/events", json={"kind": "nonsense"}),
    ]
    for resp in writes:
        assert_problem(resp, 403, "insufficient-scope")
    assert reader.get(base).status_code == 200
    assert reader.get(f"{base}/events").status_code == 200
    # notes have their own scope, so a note can still be written
    assert reader.post(f"{base}/notes", json={"body": "x"}).status_code == 201
    after = world["police"].get(base).json
    assert (after["summary"], after["status"]) == ("Test case", "open")
    assert ids(world["police"].get(f"{base}/events")) == set()
    assert ids(world["police"].get("/api/v1/cases")) == {case["id"]}


@pytest.mark.parametrize(
    "scope,call",
    [
        ("notes:write", lambda a, base: a.post(f"{base}/notes", json={"body": "x"})),
        ("notes:read", lambda a, base: a.get(f"{base}/notes")),
        (
            "consents:write",
            lambda a, base: a.post(
                f"{base}/consents",
                json={
                    "given_by": "both",
                    "given_on": oslo_today().isoformat(),
                    "expires_on": (oslo_today() + timedelta(days=3)).isoformat(),
                    "purpose": "x",
                    "agencies": ["health"],
                },
            ),
        ),
        ("cases:read", lambda a, base: a.get(base)),
    ],
)
def test_each_endpoint_needs_its_own_scope(world, scope, call):
    case = world.case(participants=("health",))
    base = f"/api/v1/cases/{case['id']}"
    narrowed = world.as_user(
        world["police"].user_id, "police", "police", "user.police", scopes=ROLE_SCOPES["police"] - {scope}
    )
    assert_problem(call(narrowed, base), 403, "insufficient-scope")
    assert call(world["police"], base).status_code in (200, 201)
