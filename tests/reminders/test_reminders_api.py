"""Reminders through the API (README "Reminders and webhooks"): who sees which reminders, ack/done/dismiss/snooze,
manual reminders, the calendar feed, the cases `due_before` filter, and settling — an event
answers its reminder and schedules the next, closing a case or a reaction dismisses, withdrawing
a consent settles consent_expiring."""

from __future__ import annotations

from datetime import timedelta

import icalendar
import pytest
from sqlalchemy import select, update

from casesvc.cases.models import Case
from casesvc.common.timeutil import oslo_today, rfc3339, utcnow
from casesvc.extensions import db
from casesvc.reminders import rules
from casesvc.reminders.models import Reminder
from tests.conftest import assert_problem, run_worker

# --- building a case with something to be reminded of --------------------------------------------


def move_case(world, case, to, by="police"):
    resp = world[by].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": to, "reason": "Test reason"})
    assert resp.status_code == 200, resp.json


def drug_contract(world, case, every_days=14, starts_ago=20, responsible="health", by="police", **fields):
    today = oslo_today()
    starts = today - timedelta(days=starts_ago)
    body = {
        "type": "drug_contract",
        "legal_basis": "conditional_waiver",
        "starts_on": starts.isoformat(),
        "ends_on": (starts + timedelta(days=180)).isoformat(),
        "conditions": [
            {
                "kind": "drug_test",
                "description": "Urine sample",
                "every_days": every_days,
                "responsible_agency": responsible,
            }
        ],
        "signatures": [
            {"party": "youth", "signed_on": today.isoformat()},
            {"party": "guardian", "signed_on": today.isoformat()},
        ],
        **fields,
    }
    resp = world[by].post(f"/api/v1/cases/{case['id']}/reactions", json=body)
    assert resp.status_code == 201, resp.json
    reaction = resp.json
    resp = world[by].post(f"/api/v1/cases/{case['id']}/reactions/{reaction['id']}/transitions", json={"to": "active"})
    assert resp.status_code == 200, resp.json
    return resp.json


def stored(app, **filters) -> list[dict]:
    with app.app_context():
        stmt = select(Reminder).filter_by(**filters).order_by(Reminder.due_at, Reminder.id)
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "due_at": r.due_at,
                "case_id": r.case_id,
                "assignee_agency": r.assignee_agency,
                "source_id": r.source_id,
            }
            for r in db.session.scalars(stmt)
        ]


def log_event(world, case, by="health", **fields):
    body = {"kind": "meeting", "occurred_at": rfc3339(utcnow()), "summary": "Met", **fields}
    resp = world[by].post(f"/api/v1/cases/{case['id']}/events", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


@pytest.fixture
def contract_case(world, app):
    """A case led by police with health (consent covering health) responsible for a drug test every
    14 days since 15 days ago: one condition_due reminder for health, a day overdue."""
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"], categories=("general", "health"))
    reaction = drug_contract(world, case, starts_ago=15)
    run_worker(app)
    reminder = stored(app, kind="condition_due")[0]
    return case, reaction, reminder


def listed(actor, **query):
    resp = actor.get("/api/v1/reminders", query_string=query)
    assert resp.status_code == 200, resp.json
    return resp.json["items"]


# --- who sees what ---------------------------------------------------------------------------------


def test_the_assignee_agency_sees_its_reminder_with_the_contract_fields(world, contract_case):
    case, reaction, reminder = contract_case
    items = listed(world["health"])
    assert [i["id"] for i in items] == [reminder["id"]]
    item = items[0]
    condition_id = reaction["conditions"][0]["id"]
    assert item["case_id"] == case["id"]
    assert item["kind"] == "condition_due"
    assert item["assignee_agency"] == "health"
    assert item["assignee_user"] is None
    assert item["status"] == "pending"
    assert item["source"] == {"type": "condition", "id": condition_id}
    starts = oslo_today() - timedelta(days=15)
    assert item["due_at"] == rfc3339(rules.day_start(starts + timedelta(days=14)))


def test_another_participant_does_not_see_an_agencys_reminders(world, contract_case):
    assert listed(world["police"]) == []
    assert listed(world["slt"]) == []


def test_a_reminder_of_another_agency_is_404(world, contract_case):
    _, _, reminder = contract_case
    assert_problem(world["police"].get(f"/api/v1/reminders/{reminder['id']}"), 404)
    assert_problem(world["police"].post(f"/api/v1/reminders/{reminder['id']}/done"), 404)


def test_the_assignee_without_an_active_consent_does_not_see_the_reminder(world, app):
    case = world.case(participants=("health", "slt"))
    drug_contract(world, case)
    run_worker(app)
    reminder = stored(app, kind="condition_due")[0]
    assert reminder["assignee_agency"] == "health"
    assert listed(world["health"]) == []
    assert_problem(world["health"].get(f"/api/v1/reminders/{reminder['id']}"), 404)


def test_withdrawing_the_consent_hides_the_reminder_on_the_next_request(world, contract_case):
    case, _, reminder = contract_case
    consent = world["police"].get(f"/api/v1/cases/{case['id']}/consents").json["items"][0]
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw")
    assert resp.status_code == 200
    assert listed(world["health"]) == []
    assert_problem(world["health"].get(f"/api/v1/reminders/{reminder['id']}"), 404)


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_and_auditor_cannot_read_reminders(world, contract_case, who):
    assert_problem(world[who].get("/api/v1/reminders"), 403, "case-content-forbidden")
    assert_problem(world[who].get("/api/v1/reminders.ics"), 403, "case-content-forbidden")


def test_reading_reminders_needs_the_reminders_read_scope(world, contract_case):
    actor = world.actor("school_health", "health", "nurse.noscope", scopes={"cases:read", "reminders:write"})
    assert_problem(actor.get("/api/v1/reminders"), 403, "insufficient-scope")


def test_handling_a_reminder_needs_the_reminders_write_scope(world, contract_case):
    _, _, reminder = contract_case
    actor = world.actor("school_health", "health", "nurse.readonly", scopes={"cases:read", "reminders:read"})
    assert len(listed(actor)) == 1
    assert_problem(actor.post(f"/api/v1/reminders/{reminder['id']}/ack"), 403, "insufficient-scope")


def test_an_unknown_reminder_is_404(world, contract_case):
    assert_problem(world["health"].get("/api/v1/reminders/no-such-id"), 404)


# --- filters and pages ------------------------------------------------------------------------------


def test_filters_by_status_case_and_due_before(world, app, contract_case):
    _case, _, reminder = contract_case
    other = world.case(participants=("health",))
    world.consent(other, ["health"])
    manual = (
        world["police"]
        .post(
            f"/api/v1/cases/{other['id']}/reminders",
            json={"due_at": rfc3339(utcnow() + timedelta(days=5)), "assignee_agency": "health"},
        )
        .json
    )
    health = world["health"]
    assert {i["id"] for i in listed(health)} == {reminder["id"], manual["id"]}
    assert [i["id"] for i in listed(health, case_id=other["id"])] == [manual["id"]]
    assert [i["id"] for i in listed(health, due_before=rfc3339(utcnow()))] == [reminder["id"]]
    assert listed(health, status="done") == []
    health.post(f"/api/v1/reminders/{reminder['id']}/done")
    assert [i["id"] for i in listed(health, status="done")] == [reminder["id"]]
    assert [i["id"] for i in listed(health, status="pending")] == [manual["id"]]


def test_a_bad_filter_is_422(world, contract_case):
    assert_problem(world["health"].get("/api/v1/reminders?status=late"), 422)
    assert_problem(world["health"].get("/api/v1/reminders?due_before=tomorrow"), 422)


def test_reminders_are_listed_soonest_first_in_pages(world, app):
    case = world.case(participants=("health",))
    now = utcnow()
    ids = []
    for days in (3, 1, 2):
        resp = world["police"].post(
            f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(now + timedelta(days=days))}
        )
        assert resp.status_code == 201
        ids.append((days, resp.json["id"]))
    expected = [i for _, i in sorted(ids)]
    first = world["police"].get("/api/v1/reminders?limit=2").json
    assert [i["id"] for i in first["items"]] == expected[:2]
    second = world["police"].get(f"/api/v1/reminders?limit=2&cursor={first['next_cursor']}").json
    assert [i["id"] for i in second["items"]] == expected[2:]
    assert second["next_cursor"] is None


# --- ack, done, dismiss, snooze ----------------------------------------------------------------------


def test_ack_marks_acknowledged_and_takes_the_reminder_for_the_user(world, contract_case):
    _, _, reminder = contract_case
    resp = world["health"].post(f"/api/v1/reminders/{reminder['id']}/ack")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "acknowledged"
    assert resp.json["assignee_user"] == world["health"].user_id
    assert resp.headers["ETag"]


@pytest.mark.parametrize("action, status", [("done", "done"), ("dismiss", "dismissed")])
def test_done_and_dismiss_settle_the_reminder(world, contract_case, action, status):
    _, _, reminder = contract_case
    resp = world["health"].post(f"/api/v1/reminders/{reminder['id']}/{action}")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == status
    assert resp.json["settled_at"] is not None


def test_a_settled_reminder_cannot_move_again(world, contract_case):
    _, _, reminder = contract_case
    world["health"].post(f"/api/v1/reminders/{reminder['id']}/done")
    body = assert_problem(
        world["health"].post(f"/api/v1/reminders/{reminder['id']}/dismiss"), 409, "transition-not-allowed"
    )
    assert body["allowed"] == []
    assert_problem(
        world["health"].post(
            f"/api/v1/reminders/{reminder['id']}/snooze", json={"until": rfc3339(utcnow() + timedelta(days=1))}
        ),
        409,
    )


def test_an_acknowledged_reminder_can_be_done_but_not_acknowledged_again(world, contract_case):
    _, _, reminder = contract_case
    world["health"].post(f"/api/v1/reminders/{reminder['id']}/ack")
    body = assert_problem(world["health"].post(f"/api/v1/reminders/{reminder['id']}/ack"), 409)
    assert set(body["allowed"]) == {"done", "dismissed"}
    assert world["health"].post(f"/api/v1/reminders/{reminder['id']}/done").json["status"] == "done"


def test_snooze_makes_the_reminder_pending_and_due_at_the_given_time(world, contract_case):
    _, _, reminder = contract_case
    world["health"].post(f"/api/v1/reminders/{reminder['id']}/ack")
    until = rfc3339(utcnow() + timedelta(days=2))
    resp = world["health"].post(f"/api/v1/reminders/{reminder['id']}/snooze", json={"until": until})
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["due_at"]) == ("pending", until)
    assert listed(world["health"], due_before=rfc3339(utcnow())) == []


def test_snooze_into_the_past_or_without_until_is_422(world, contract_case):
    _, _, reminder = contract_case
    url = f"/api/v1/reminders/{reminder['id']}/snooze"
    assert_problem(world["health"].post(url, json={"until": rfc3339(utcnow() - timedelta(hours=1))}), 422)
    assert_problem(world["health"].post(url, json={}), 422)


# --- manual reminders -------------------------------------------------------------------------------


def test_a_manual_reminder_is_created_for_a_named_participating_agency(world, app):
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health"])
    due = rfc3339(utcnow() + timedelta(days=3))
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders",
        json={"due_at": due, "assignee_agency": "health", "text": "Ring the school"},
    )
    assert resp.status_code == 201, resp.json
    assert resp.headers["Location"].endswith(f"/api/v1/reminders/{resp.json['id']}")
    assert (resp.json["kind"], resp.json["assignee_agency"], resp.json["due_at"]) == ("manual", "health", due)
    assert resp.json["source"] == {"type": "user", "id": world["police"].user_id}
    got = world["health"].get(f"/api/v1/reminders/{resp.json['id']}")
    assert got.status_code == 200
    assert got.json["text"] == "Ring the school"


def test_a_manual_reminder_defaults_to_the_callers_agency(world):
    case = world.case(participants=("health",))
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow())})
    assert resp.status_code == 201, resp.json
    assert resp.json["assignee_agency"] == "police"


def test_a_manual_reminder_for_an_agency_outside_the_case_is_422(world):
    case = world.case(participants=("health",))
    body = assert_problem(
        world["police"].post(
            f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow()), "assignee_agency": "nav"}
        ),
        422,
    )
    assert "assignee_agency" in body["errors"]


def test_a_manual_reminder_for_a_user_of_another_agency_is_422(world):
    case = world.case(participants=("health",))
    body = assert_problem(
        world["police"].post(
            f"/api/v1/cases/{case['id']}/reminders",
            json={"due_at": rfc3339(utcnow()), "assignee_agency": "health", "assignee_user": world["police"].user_id},
        ),
        422,
    )
    assert "assignee_user" in body["errors"]


def test_a_manual_reminder_needs_a_due_time(world):
    case = world.case(participants=("health",))
    body = assert_problem(world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"text": "x"}), 422)
    assert "due_at" in body["errors"]


def test_only_participants_with_access_create_manual_reminders(world):
    case = world.case(participants=("health",))
    body = {"due_at": rfc3339(utcnow())}
    assert_problem(world["nav"].post(f"/api/v1/cases/{case['id']}/reminders", json=body), 404)
    assert_problem(world["health"].post(f"/api/v1/cases/{case['id']}/reminders", json=body), 403, "consent-required")
    assert_problem(
        world["admin"].post(f"/api/v1/cases/{case['id']}/reminders", json=body), 403, "case-content-forbidden"
    )


def test_no_manual_reminder_on_a_closed_case(world):
    case = world.case(participants=("health",))
    move_case(world, case, "withdrawn")
    assert_problem(
        world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow())}), 409
    )


def test_the_same_idempotency_key_creates_one_manual_reminder(world, app):
    case = world.case(participants=("health",))
    url = f"/api/v1/cases/{case['id']}/reminders"
    body = {"due_at": rfc3339(utcnow() + timedelta(days=1))}
    first = world["police"].post(url, json=body, headers={"Idempotency-Key": "rem-1"})
    again = world["police"].post(url, json=body, headers={"Idempotency-Key": "rem-1"})
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert len(stored(app, kind="manual")) == 1


# --- the calendar feed --------------------------------------------------------------------------------


def test_the_calendar_is_valid_icalendar_with_one_event_per_pending_reminder(world, app, contract_case):
    case, _, reminder = contract_case
    extra = (
        world["police"]
        .post(
            f"/api/v1/cases/{case['id']}/reminders",
            json={
                "due_at": rfc3339(utcnow() + timedelta(days=1)),
                "assignee_agency": "health",
                "text": "Secret words about the youth",
            },
        )
        .json
    )
    settled = (
        world["police"]
        .post(
            f"/api/v1/cases/{case['id']}/reminders",
            json={"due_at": rfc3339(utcnow() + timedelta(days=1)), "assignee_agency": "health"},
        )
        .json
    )
    world["health"].post(f"/api/v1/reminders/{settled['id']}/dismiss")
    resp = world["health"].get("/api/v1/reminders.ics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(resp.data)
    assert str(calendar["version"]) == "2.0"
    events = {str(e["uid"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {f"{reminder['id']}@casesvc", f"{extra['id']}@casesvc"}
    event = events[f"{reminder['id']}@casesvc"]
    assert event.decoded("dtstart") == reminder["due_at"]
    assert "condition_due" in str(event["summary"])
    assert case["id"] in str(event["description"])


def test_the_calendar_holds_no_names_summaries_or_text(world, app, contract_case):
    case, _, _ = contract_case
    world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders",
        json={"due_at": rfc3339(utcnow()), "assignee_agency": "health", "text": "Secret words about the youth"},
    )
    body = world["health"].get("/api/v1/reminders.ics").get_data(as_text=True)
    for forbidden in ("Secret words", "Testesen", "Test case", "Urine sample", "Test Forelder"):
        assert forbidden not in body


def test_the_calendar_shows_only_the_callers_agency(world, contract_case):
    calendar = icalendar.Calendar.from_ical(world["police"].get("/api/v1/reminders.ics").data)
    assert list(calendar.walk("VEVENT")) == []


# --- the cases due_before filter ----------------------------------------------------------------------


def test_cases_filter_by_a_pending_reminder_due_before(world, app):
    late = world.case(participants=("health",))
    early = world.case(participants=("health",))
    quiet = world.case(participants=("health",))
    now = utcnow()
    for case, days in ((late, 10), (early, 1)):
        world["police"].post(
            f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(now + timedelta(days=days))}
        )
    found = world["police"].get("/api/v1/cases", query_string={"due_before": rfc3339(now + timedelta(days=5))}).json
    assert [c["id"] for c in found["items"]] == [early["id"]]
    found = world["police"].get("/api/v1/cases", query_string={"due_before": rfc3339(now + timedelta(days=20))}).json
    assert {c["id"] for c in found["items"]} == {early["id"], late["id"]}
    assert quiet["id"] not in {c["id"] for c in found["items"]}


def test_a_settled_reminder_does_not_count_for_due_before(world):
    case = world.case(participants=("health",))
    reminder = world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow())}).json
    world["police"].post(f"/api/v1/reminders/{reminder['id']}/done")
    found = world["police"].get("/api/v1/cases", query_string={"due_before": rfc3339(utcnow() + timedelta(days=1))})
    assert found.json["items"] == []


# --- settling ----------------------------------------------------------------------------------------


def test_a_matching_event_settles_the_reminder_and_schedules_the_next(world, app, contract_case):
    case, reaction, reminder = contract_case
    condition = reaction["conditions"][0]["id"]
    event = log_event(
        world, case, kind="drug_test", result="negative", condition_id=condition, occurred_at=rfc3339(utcnow())
    )
    kept = stored(app, kind="condition_due")
    assert [(r["id"], r["status"]) for r in kept if r["id"] == reminder["id"]] == [(reminder["id"], "done")]
    following = [r for r in kept if r["status"] == "pending"]
    assert len(following) == 1
    assert following[0]["due_at"] == rules.day_start(oslo_today() + timedelta(days=14))
    with app.app_context():
        assert db.session.get(Reminder, reminder["id"]).settled_by == f"event:{event['id']}"
    # the worker agrees: nothing more to create for this condition
    assert run_worker(app)["created"]["condition_due"] == 0


def test_a_missed_test_does_not_settle_the_condition_and_reminds_the_lead_the_same_day(world, app, contract_case):
    case, reaction, reminder = contract_case
    event = log_event(world, case, kind="drug_test", result="missed", condition_id=reaction["conditions"][0]["id"])
    assert stored(app, id=reminder["id"])[0]["status"] == "pending"
    missed = stored(app, kind="missed_test")
    assert len(missed) == 1
    assert missed[0]["assignee_agency"] == "police"
    assert missed[0]["source_id"] == event["id"]
    assert missed[0]["due_at"] == rules.day_start(oslo_today())
    assert [i["kind"] for i in listed(world["police"])] == ["missed_test"]


def test_an_event_without_the_condition_does_not_settle_it(world, app, contract_case):
    case, _, reminder = contract_case
    log_event(world, case, kind="meeting")
    assert stored(app, id=reminder["id"])[0]["status"] == "pending"


@pytest.fixture
def uncontacted_case(world, app):
    """An active case opened 40 days ago with nothing logged since: one no_recent_contact
    reminder, pending."""
    case = world.case(participants=("health",))
    move_case(world, case, "active")
    with app.app_context():
        db.session.execute(update(Case).where(Case.id == case["id"]).values(opened_at=utcnow() - timedelta(days=40)))
        db.session.commit()
    run_worker(app)
    assert [r["status"] for r in stored(app, kind="no_recent_contact")] == ["pending"]
    return case


def test_an_event_settles_no_recent_contact(world, app, uncontacted_case):
    log_event(world, uncontacted_case, by="police", kind="phone_call")
    assert stored(app, kind="no_recent_contact")[0]["status"] == "done"


def _settlement(app, kind: str) -> list[tuple[str, str | None, int]]:
    with app.app_context():
        return [
            (r.status, r.settled_by, r.version)
            for r in db.session.scalars(select(Reminder).filter_by(kind=kind).order_by(Reminder.id))
        ]


def test_an_event_settles_no_recent_contact_with_its_escalation(world, app, uncontacted_case):
    run_worker(app, utcnow() + timedelta(days=4))  # still pending four days on: escalated
    assert [e["status"] for e in stored(app, kind="escalation")] == ["pending"]
    (_, _, contact_version), (_, _, escalation_version) = (
        _settlement(app, "no_recent_contact")[0],
        _settlement(app, "escalation")[0],
    )
    event = log_event(world, uncontacted_case, by="police", kind="phone_call")
    by = f"event:{event['id']}"
    assert _settlement(app, "no_recent_contact") == [("done", by, contact_version + 1)]
    assert _settlement(app, "escalation") == [("done", by, escalation_version + 1)]


def test_an_event_from_before_the_reminders_basis_leaves_it_open(world, app, uncontacted_case):
    """Logged late, a contact older than the case's opening (the reminder's basis) answers nothing."""
    log_event(
        world, uncontacted_case, by="police", kind="phone_call", occurred_at=rfc3339(utcnow() - timedelta(days=45))
    )
    assert [status for status, _, _ in _settlement(app, "no_recent_contact")] == ["pending"]
    log_event(world, uncontacted_case, by="police", kind="phone_call")
    assert [status for status, _, _ in _settlement(app, "no_recent_contact")] == ["done"]


def test_closing_the_case_dismisses_its_open_reminders(world, app, contract_case):
    case, _, reminder = contract_case
    manual = world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow())}).json
    world["police"].post(f"/api/v1/reminders/{manual['id']}/ack")
    move_case(world, case, "withdrawn")
    assert {r["id"]: r["status"] for r in stored(app)} == {reminder["id"]: "dismissed", manual["id"]: "dismissed"}
    assert run_worker(app)["created"]["condition_due"] == 0


def test_closing_a_reaction_dismisses_its_reminders_only(world, app, contract_case):
    case, reaction, reminder = contract_case
    manual = world["police"].post(f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow())}).json
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reactions/{reaction['id']}/transitions",
        json={"to": "completed", "reason": "Done well"},
    )
    assert resp.status_code == 200, resp.json
    assert {r["id"]: r["status"] for r in stored(app)} == {reminder["id"]: "dismissed", manual["id"]: "pending"}


def test_withdrawing_a_consent_settles_its_consent_expiring_reminder(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    consent = world.consent(case, ["health"], expires_on=(today + timedelta(days=10)).isoformat())
    other = world.consent(case, ["health"], expires_on=(today + timedelta(days=20)).isoformat())
    run_worker(app)
    assert {r["source_id"] for r in stored(app, kind="consent_expiring")} == {consent["id"], other["id"]}
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw")
    assert resp.status_code == 200
    assert {r["source_id"]: r["status"] for r in stored(app, kind="consent_expiring")} == {
        consent["id"]: "dismissed",
        other["id"]: "pending",
    }


def test_a_conversation_event_settles_conversation_scheduled(world, app):
    case = world.case(participants=("health",))
    scheduled = utcnow() + timedelta(hours=20)
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reactions",
        json={
            "type": "concern_conversation",
            "legal_basis": "consent",
            "starts_on": oslo_today().isoformat(),
            "scheduled_at": rfc3339(scheduled),
        },
    )
    assert resp.status_code == 201, resp.json
    run_worker(app)
    assert [r["status"] for r in stored(app, kind="conversation_scheduled")] == ["pending"]
    log_event(world, case, by="police", kind="conversation", reaction_id=resp.json["id"])
    assert [r["status"] for r in stored(app, kind="conversation_scheduled")] == ["done"]


def test_settling_a_reminder_settles_its_escalation(world, app, contract_case):
    _, _, reminder = contract_case
    run_worker(app, utcnow() + timedelta(days=3))  # then four days overdue: escalated to slt
    escalation = stored(app, kind="escalation")
    assert [(e["source_id"], e["status"]) for e in escalation] == [(reminder["id"], "pending")]
    world["health"].post(f"/api/v1/reminders/{reminder['id']}/done")
    assert stored(app, kind="escalation")[0]["status"] == "done"


# --- metrics -----------------------------------------------------------------------------------------


def test_metrics_show_pending_overdue_and_escalated_reminders(world, app, client, contract_case):
    case, _, _ = contract_case
    world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow() + timedelta(days=3))}
    )
    run_worker(app, utcnow() + timedelta(days=3))  # the condition is escalated (due in two days)
    text = client.get("/metrics").get_data(as_text=True)
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("casesvc_reminders_", "casesvc_webhook_deliveries"))
    }
    assert lines["casesvc_reminders_pending"] == 3
    assert lines["casesvc_reminders_overdue"] == 1
    assert lines["casesvc_reminders_escalated"] == 1
    assert lines['casesvc_webhook_deliveries_total{outcome="delivered"}'] == 0
