"""Continuity (README "Continuity"): handing over the lead, moving a case with the
youth to another municipality, and the case's history of moves."""

from __future__ import annotations

from datetime import date, timedelta

import icalendar
import pytest
from sqlalchemy import func, select

from casesvc.agencies.models import Agency
from casesvc.audit import sealing as audit_sealing
from casesvc.audit.models import AuditEvent
from casesvc.common.timeutil import oslo_today, rfc3339, utcnow
from casesvc.consents.models import Consent
from casesvc.continuity.models import CaseMove
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES
from casesvc.reactions.models import Condition
from casesvc.reminders import handlers as reminder_handlers
from casesvc.reminders.models import Reminder, WebhookDelivery
from casesvc.reminders.store import enqueue_deliveries
from tests.conftest import PROBLEM, assert_problem, run_worker
from tests.reminders.test_reminders_api import drug_contract

REASON = "The coordinator follows up after the concern conversation"


def assignees(app, case_id: str) -> dict[tuple[str, str], str]:
    """(kind, source id) -> assignee agency of the case's open reminders."""
    with app.app_context():
        rows = db.session.execute(
            select(Reminder.kind, Reminder.source_id, Reminder.assignee_agency).where(
                Reminder.case_id == case_id, Reminder.status.in_(("pending", "acknowledged"))
            )
        )
        out = {(kind, source): agency for kind, source, agency in rows}
        db.session.remove()
        return out


def calendar_uids(actor) -> set[str]:
    resp = actor.get("/api/v1/reminders.ics")
    assert resp.status_code == 200
    return {str(e["uid"]) for e in icalendar.Calendar.from_ical(resp.data).walk("VEVENT")}


def consent_body(**fields) -> dict:
    today = oslo_today()
    return {
        "given_by": "both",
        "given_on": today.isoformat(),
        "expires_on": (today + timedelta(days=180)).isoformat(),
        "purpose": "Follow-up in the new municipality",
        "categories": ["general", "health"],
        **fields,
    }


def transfer_body(**fields) -> dict:
    return {"municipality": "4601", "lead": "west", "reason": "The family moved", "consent": consent_body(), **fields}


@pytest.fixture
def followed_case(world, app):
    """A case led by police (0301) with health and slt under consent: a drug contract whose test
    health is responsible for (due), a conversation condition of police's own (due), a consent
    expiring in 10 days (its reminder goes to the lead as lead), a manual reminder for health,
    and a shared health event and an agency-only note by health."""
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"], categories=("general", "health"))
    world.consent(case, ["slt"], expires_on=(oslo_today() + timedelta(days=10)).isoformat())
    base = f"/api/v1/cases/{case['id']}"
    reaction = drug_contract(world, case, responsible="health")
    resp = world["police"].post(
        f"{base}/reactions",
        json={
            "type": "follow_up_plan",
            "legal_basis": "consent",
            "starts_on": (oslo_today() - timedelta(days=20)).isoformat(),
            "conditions": [{"kind": "meeting", "description": "Talk", "every_days": 7, "responsible_agency": "police"}],
        },
    )
    assert resp.status_code == 201, resp.json
    plan = world["police"].post(f"{base}/reactions/{resp.json['id']}/transitions", json={"to": "active"})
    assert plan.status_code == 200, plan.json
    manual = world["police"].post(
        f"{base}/reminders",
        json={"due_at": rfc3339(utcnow() + timedelta(days=2)), "assignee_agency": "health", "text": "Call the school"},
    )
    assert manual.status_code == 201, manual.json
    event = world["health"].post(
        f"{base}/events",
        json={
            "kind": "meeting",
            "occurred_at": rfc3339(utcnow()),
            "category": "health",
            "visibility": "shared",
            "summary": "Health talk",
        },
    )
    assert event.status_code == 201, event.json
    note = world["health"].post(f"{base}/notes", json={"body": "Own notes", "visibility": "agency"})
    assert note.status_code == 201, note.json
    run_worker(app)
    return {
        "case": case,
        "base": base,
        "drug_condition": reaction["conditions"][0]["id"],
        "own_condition": plan.json["conditions"][0]["id"],
        "manual": manual.json["id"],
        "health_event": event.json["id"],
        "agency_note": note.json["id"],
    }


# --- handover ---------------------------------------------------------------------------------


def test_the_lead_hands_over_and_the_old_lead_stays_a_participant_under_consent(world, followed_case):
    base = followed_case["base"]
    before = world["police"].get(base)
    resp = world["police"].post(f"{base}/handover", json={"to": "slt", "reason": REASON})
    assert resp.status_code == 200, resp.json
    assert resp.json["lead_agency"] == "slt"
    assert "police" in resp.json["participants"]
    assert resp.headers["ETag"] != before.headers["ETag"]
    assert resp.json["version"] == before.json["version"] + 1
    assert world["slt"].get(base).headers["ETag"] == resp.headers["ETag"]
    # the old lead is now a participant like any other: no consent names it
    assert_problem(world["police"].get(base), 403, "consent-required")
    assert_problem(world["police"].post(f"{base}/notes", json={"body": "A note"}), 403, "consent-required")
    assert base.rsplit("/", 1)[1] not in {c["id"] for c in world["police"].get("/api/v1/cases").json["items"]}
    # the new lead decides now; a consent naming the old lead lets it back in
    world.consent(followed_case["case"], ["police"], by="slt")
    assert world["police"].get(base).status_code == 200
    assert_problem(
        world["police"].post(f"{base}/handover", json={"to": "police", "reason": REASON}), 403, "lead-agency-required"
    )


def test_pending_reminders_of_the_lead_as_lead_follow_the_new_lead(world, app, followed_case):
    case_id = followed_case["case"]["id"]
    before = assignees(app, case_id)
    consent_reminders = [key for key in before if key[0] == "consent_expiring"]
    assert consent_reminders and all(before[key] == "police" for key in consent_reminders)
    assert before[("condition_due", followed_case["own_condition"])] == "police"
    assert before[("condition_due", followed_case["drug_condition"])] == "health"
    resp = world["police"].post(f"{followed_case['base']}/handover", json={"to": "slt", "reason": REASON})
    assert resp.status_code == 200, resp.json
    after = assignees(app, case_id)
    assert all(after[key] == "slt" for key in consent_reminders)
    # a condition's reminders stay with its responsible agency, the old lead's own among them
    assert after[("condition_due", followed_case["own_condition"])] == "police"
    assert after[("condition_due", followed_case["drug_condition"])] == "health"
    assert after[("manual", world["police"].user_id)] == "health"
    # the new lead's list and calendar show what it now holds
    listed = world["slt"].get(f"/api/v1/reminders?case_id={case_id}").json["items"]
    assert {r["kind"] for r in listed} == {"consent_expiring"}
    with app.app_context():
        moved = db.session.scalars(
            select(Reminder.id).where(Reminder.case_id == case_id, Reminder.kind == "consent_expiring")
        ).all()
    assert {f"{rid}@casesvc" for rid in moved} <= calendar_uids(world["slt"])
    assert not {f"{rid}@casesvc" for rid in moved} & calendar_uids(world["police"])


def test_an_escalation_the_old_lead_held_for_want_of_a_coordinator_follows_the_new_lead(world, app):
    case = world.case(participants=("health", "nav"))
    world.consent(case, ["health", "nav"])
    world.consent(case, ["nav"], expires_on=(oslo_today() + timedelta(days=10)).isoformat())
    run_worker(app)
    run_worker(app, now=utcnow() + timedelta(days=4))  # still pending: escalated to the lead (no coordinator)
    with app.app_context():
        escalations = db.session.scalars(
            select(Reminder.assignee_agency).where(Reminder.case_id == case["id"], Reminder.kind == "escalation")
        ).all()
    assert escalations and set(escalations) == {"police"}
    assert (
        world["police"].post(f"/api/v1/cases/{case['id']}/handover", json={"to": "nav", "reason": REASON}).status_code
        == 200
    )
    assert {agency for (kind, _), agency in assignees(app, case["id"]).items() if kind == "escalation"} == {"nav"}


def test_a_moved_reminder_is_announced_to_the_new_lead_not_the_old(world, app, followed_case):
    case_id = followed_case["case"]["id"]
    for code in ("police", "slt"):
        resp = world["admin"].put(
            f"/api/v1/agencies/{code}/webhook", json={"url": f"http://127.0.0.1:9/{code}", "secret": "s" * 32}
        )
        assert resp.status_code in (200, 201), resp.json
    with app.app_context():
        reminder = db.session.scalars(
            select(Reminder).where(Reminder.case_id == case_id, Reminder.kind == "consent_expiring")
        ).first()
        enqueue_deliveries([reminder])
        db.session.commit()
        reminder_id = reminder.id
    assert (
        world["police"].post(f"{followed_case['base']}/handover", json={"to": "slt", "reason": REASON}).status_code
        == 200
    )
    with app.app_context():
        rows = db.session.execute(
            select(WebhookDelivery.agency_code, WebhookDelivery.state).where(WebhookDelivery.reminder_id == reminder_id)
        ).all()
    assert sorted(rows) == [("police", "cancelled"), ("slt", "pending")]


def test_handover_needs_a_participant_serving_the_municipality_on_to(world, followed_case):
    base = followed_case["base"]
    for to, message in (("nav", "take part"), ("police", "already leads"), ("nosuch", "take part")):
        body = assert_problem(
            world["police"].post(f"{base}/handover", json={"to": to, "reason": REASON}), 422, "validation-error"
        )
        assert message in body["errors"]["to"][0]
    body = assert_problem(world["police"].post(f"{base}/handover", json={"to": "slt"}), 422, "validation-error")
    assert "reason" in body["errors"]
    assert world["police"].get(base).json["lead_agency"] == "police"


def test_handover_to_a_participant_that_no_longer_serves_the_municipality_is_422(world, app, followed_case):
    with app.app_context():
        db.session.get(Agency, "slt").municipalities = ["4601"]
        db.session.commit()
    body = assert_problem(
        world["police"].post(f"{followed_case['base']}/handover", json={"to": "slt", "reason": REASON}),
        422,
        "validation-error",
    )
    assert "does not serve" in body["errors"]["to"][0]


def test_a_closed_case_is_not_handed_over_or_transferred(world, followed_case):
    base = followed_case["base"]
    for to in ("active", "withdrawn"):
        assert world["police"].post(f"{base}/transitions", json={"to": to, "reason": "Done"}).status_code == 200
    etag = world["police"].get(base).headers["ETag"]
    assert_problem(world["police"].post(f"{base}/handover", json={"to": "slt", "reason": REASON}), 409, "case-closed")
    assert_problem(world["police"].post(f"{base}/transfer", json=transfer_body()), 409, "case-closed")
    after = world["police"].get(base)
    assert (after.json["lead_agency"], after.json["municipality"], after.headers["ETag"]) == ("police", "0301", etag)


# --- transfer ---------------------------------------------------------------------------------


def test_a_transfer_moves_the_case_the_youth_and_the_follow_up_to_the_new_municipality(world, app, followed_case):
    base, case = followed_case["base"], followed_case["case"]
    etag = world["police"].get(base).headers["ETag"]
    youth_etag = world["police"].get(f"/api/v1/youths/{case['youth_id']}").headers["ETag"]
    resp = world["police"].post(f"{base}/transfer", json=transfer_body())
    assert resp.status_code == 200, resp.json
    assert (resp.json["municipality"], resp.json["lead_agency"], resp.json["participants"]) == (
        "4601",
        "west",
        ["west"],
    )
    assert resp.headers["ETag"] != etag
    # the youth's municipality follows
    youth = world["west"].get(f"/api/v1/youths/{case['youth_id']}")
    assert youth.status_code == 200 and youth.json["municipality"] == "4601"
    assert youth.headers["ETag"] != youth_etag
    # the consent is recorded with the transfer, naming the receiving lead
    consents = world["west"].get(f"{base}/consents?active=true").json["items"]
    assert [(c["categories"], c["recorded_by_agency"]) for c in consents if "west" in c["agencies"]] == [
        (["general", "health"], "police")
    ]
    assert len(consents) == 3  # the consents given before move with the case
    # the history moved: reactions, consents, and the health entry through the transfer's consent
    assert len(world["west"].get(f"{base}/reactions").json["items"]) == 2
    assert world["west"].get(f"{base}/events/{followed_case['health_event']}").status_code == 200
    # conditions whose responsible agency left get the new lead
    with app.app_context():
        responsible = dict(db.session.execute(select(Condition.id, Condition.responsible_agency)).all())
    assert responsible == {followed_case["drug_condition"]: "west", followed_case["own_condition"]: "west"}
    # agency-only entries stay their author's, seen by no one else
    assert followed_case["agency_note"] not in {n["id"] for n in world["west"].get(f"{base}/notes").json["items"]}
    assert_problem(world["west"].get(f"{base}/notes/{followed_case['agency_note']}"), 404, "not-found")


def test_after_a_transfer_the_old_municipalitys_agencies_get_404(world, followed_case):
    base, case = followed_case["base"], followed_case["case"]
    assert world["police"].post(f"{base}/transfer", json=transfer_body()).status_code == 200
    for code in ("police", "health", "slt", "nav"):
        assert_problem(world[code].get(base), 404, "not-found")
        assert_problem(world[code].get(f"{base}/events"), 404, "not-found")
        assert_problem(world[code].get(f"{base}/history"), 404, "not-found")
        assert_problem(world[code].post(f"{base}/notes", json={"body": "A note"}), 404, "not-found")
        assert case["id"] not in {c["id"] for c in world[code].get("/api/v1/cases?limit=200").json["items"]}
    assert case["id"] in {c["id"] for c in world["west"].get("/api/v1/cases?municipality=4601").json["items"]}


def test_reminders_of_a_transferred_case_go_to_the_new_lead_and_none_stays_behind(world, app, followed_case):
    case_id = followed_case["case"]["id"]
    before_uids = calendar_uids(world["health"])
    assert world["police"].post(f"{followed_case['base']}/transfer", json=transfer_body()).status_code == 200
    after = assignees(app, case_id)
    assert after and set(after.values()) == {"west"}
    assert after[("condition_due", followed_case["drug_condition"])] == "west"
    assert ("manual", world["police"].user_id) not in after  # health left: its manual reminder is dismissed
    with app.app_context():
        manual = db.session.get(Reminder, followed_case["manual"])
        assert (manual.status, manual.settled_by) == ("dismissed", "case-transferred")
    listed = world["west"].get(f"/api/v1/reminders?case_id={case_id}").json["items"]
    assert {r["kind"] for r in listed} == {"condition_due", "consent_expiring"}
    assert {f"{r['id']}@casesvc" for r in listed} <= calendar_uids(world["west"])
    assert before_uids and not calendar_uids(world["health"]) & before_uids
    assert world["health"].get(f"/api/v1/reminders?case_id={case_id}").json["items"] == []


def test_a_transfer_needs_its_consent_under_the_rules_of_a_consent(world, followed_case):
    base = followed_case["base"]
    body = assert_problem(
        world["police"].post(f"{base}/transfer", json={k: v for k, v in transfer_body().items() if k != "consent"}),
        422,
        "validation-error",
    )
    assert "consent" in body["errors"]
    # the youth is 15: a guardian must consent
    body = assert_problem(
        world["police"].post(f"{base}/transfer", json=transfer_body(consent=consent_body(given_by="youth"))),
        422,
        "validation-error",
    )
    assert "consent.given_by" in body["errors"]
    past = (oslo_today() - timedelta(days=1)).isoformat()
    body = assert_problem(
        world["police"].post(
            f"{base}/transfer",
            json=transfer_body(
                consent=consent_body(given_on=(oslo_today() - timedelta(days=9)).isoformat(), expires_on=past)
            ),
        ),
        422,
        "validation-error",
    )
    assert "consent.expires_on" in body["errors"]
    assert world["police"].get(base).json["municipality"] == "0301"
    assert len(world["police"].get(f"{base}/consents").json["items"]) == 2


def test_a_youth_of_16_may_consent_to_the_transfer_alone(world):
    youth = world.youth(born=date(oslo_today().year - 17, 1, 10))
    case = world.case(participants=("health",), youth=youth)
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/transfer", json=transfer_body(consent=consent_body(given_by="youth"))
    )
    assert resp.status_code == 200, resp.json


def test_the_receiving_lead_must_serve_the_new_municipality(world, followed_case):
    base = followed_case["base"]
    for lead in ("police2", "nosuch"):
        body = assert_problem(
            world["police"].post(f"{base}/transfer", json=transfer_body(lead=lead)), 422, "validation-error"
        )
        assert "lead" in body["errors"]
    body = assert_problem(
        world["police"].post(f"{base}/transfer", json=transfer_body(municipality="0301", lead="police2")),
        422,
        "validation-error",
    )
    assert "municipality" in body["errors"]
    body = assert_problem(
        world["police"].post(f"{base}/transfer", json=transfer_body(municipality="46")), 422, "validation-error"
    )
    assert "municipality" in body["errors"]


def test_a_transfer_needs_the_consents_write_scope_too(world, followed_case):
    police = world.as_user(
        world["police"].user_id, "police", "police", "user.police", scopes=ROLE_SCOPES["police"] - {"consents:write"}
    )
    assert_problem(police.post(f"{followed_case['base']}/transfer", json=transfer_body()), 403, "insufficient-scope")
    # checked before the body is read: a bad body tells it nothing
    assert_problem(police.post(f"{followed_case['base']}/transfer", json={}), 403, "insufficient-scope")
    assert world["police"].get(followed_case["base"]).json["municipality"] == "0301"


def test_a_coordinator_taking_part_under_consent_may_transfer(world, followed_case):
    resp = world["slt"].post(f"{followed_case['base']}/transfer", json=transfer_body())
    assert resp.status_code == 200, resp.json
    assert_problem(world["slt"].get(followed_case["base"]), 404, "not-found")


def test_a_failed_transfer_leaves_nothing_half_moved(world, app, followed_case, monkeypatch):
    base, case = followed_case["base"], followed_case["case"]
    before_case = world["police"].get(base)
    before_youth = world["police"].get(f"/api/v1/youths/{case['youth_id']}").json
    before_reminders = assignees(app, case["id"])
    with app.app_context():
        before_consents = db.session.scalar(select(func.count()).select_from(Consent))
        before_conditions = dict(db.session.execute(select(Condition.id, Condition.responsible_agency)).all())

    def fail(*args, **kwargs):
        raise RuntimeError("the last step fails")

    monkeypatch.setattr(reminder_handlers, "enqueue_deliveries", fail)  # the last step of a transfer
    resp = world["police"].post(f"{base}/transfer", json=transfer_body())
    assert resp.status_code == 500 and resp.mimetype == PROBLEM
    assert "the last step fails" not in resp.get_data(as_text=True)
    after_case = world["police"].get(base)
    assert after_case.json == before_case.json and after_case.headers["ETag"] == before_case.headers["ETag"]
    assert world["police"].get(f"/api/v1/youths/{case['youth_id']}").json == before_youth
    assert assignees(app, case["id"]) == before_reminders
    assert world["police"].get(f"{base}/history").json["items"] == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Consent)) == before_consents
        assert dict(db.session.execute(select(Condition.id, Condition.responsible_agency)).all()) == before_conditions
    assert_problem(world["west"].get(base), 404, "not-found")
    assert world["health"].get(base).status_code == 200


# --- history and audit ------------------------------------------------------------------------


def test_the_history_lists_both_moves_with_ids_and_codes_only(world, followed_case):
    base, case = followed_case["base"], followed_case["case"]
    assert world["police"].post(f"{base}/handover", json={"to": "slt", "reason": REASON}).status_code == 200
    # health shares the case under consent: it sees the history too
    seen = world["health"].get(f"{base}/history")
    assert seen.status_code == 200
    (handover,) = seen.json["items"]
    assert {
        k: handover[k]
        for k in (
            "kind",
            "case_id",
            "actor",
            "actor_agency",
            "from_agency",
            "to_agency",
            "from_municipality",
            "to_municipality",
            "consent_id",
            "departed",
        )
    } == {
        "kind": "handover",
        "case_id": case["id"],
        "actor": world["police"].user_id,
        "actor_agency": "police",
        "from_agency": "police",
        "to_agency": "slt",
        "from_municipality": "0301",
        "to_municipality": "0301",
        "consent_id": None,
        "departed": [],
    }
    assert "reason" not in handover and REASON not in seen.get_data(as_text=True)
    assert_problem(world["police"].get(f"{base}/history"), 403, "consent-required")  # the old lead, without consent
    resp = world["slt"].post(f"{base}/transfer", json=transfer_body())
    assert resp.status_code == 200, resp.json
    items = world["west"].get(f"{base}/history").json["items"]
    assert [i["kind"] for i in items] == ["transfer", "handover"]  # newest first
    transfer = items[0]
    assert (
        transfer["from_agency"],
        transfer["to_agency"],
        transfer["from_municipality"],
        transfer["to_municipality"],
        transfer["actor_agency"],
    ) == ("slt", "west", "0301", "4601", "slt")
    assert sorted(transfer["departed"]) == ["health", "police", "slt"]
    consent_ids = {c["id"] for c in world["west"].get(f"{base}/consents").json["items"] if c["agencies"] == ["west"]}
    assert {transfer["consent_id"]} == consent_ids
    page = world["west"].get(f"{base}/history?limit=1").json
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = world["west"].get(f"{base}/history?limit=1&cursor={page['next_cursor']}").json
    assert [i["kind"] for i in rest["items"]] == ["handover"] and rest["next_cursor"] is None


def test_both_moves_are_audited_without_their_reason(world, app, followed_case):
    base, case = followed_case["base"], followed_case["case"]
    assert world["police"].post(f"{base}/handover", json={"to": "slt", "reason": REASON}).status_code == 200
    assert_problem(world["health"].post(f"{base}/transfer", json=transfer_body()), 403, "lead-agency-required")
    assert (
        world["slt"].post(f"{base}/transfer", json=transfer_body(reason="Moved to the west coast")).status_code == 200
    )
    assert world["west"].get(f"{base}/history").status_code == 200
    with app.app_context():
        audit_sealing.seal()
        rows = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.case_id == case["id"], AuditEvent.action.like("continuity.%"))
            .order_by(AuditEvent.seq)
        ).all()
        seen = [(r.action, r.actor_agency, r.outcome, r.resource_type, r.youth_id) for r in rows]
        text = " ".join(str(audit_sealing.event_dict(r)) for r in rows)
    assert seen == [
        ("continuity.handover_case", "police", "allowed", "case", case["youth_id"]),
        ("continuity.transfer_case", "health", "denied", "case", case["youth_id"]),
        ("continuity.transfer_case", "slt", "allowed", "case", case["youth_id"]),
        ("continuity.case_history", "west", "allowed", "case", case["youth_id"]),
    ]
    assert REASON not in text and "west coast" not in text


def test_drug_tests_already_logged_reach_the_conditions_new_responsible_agency(world, followed_case):
    base = followed_case["base"]
    test = world["health"].post(
        f"{base}/events",
        json={
            "kind": "drug_test",
            "occurred_at": rfc3339(utcnow()),
            "result": "negative",
            "visibility": "agency",
            "condition_id": followed_case["drug_condition"],
            "summary": "Sample",
        },
    )
    assert test.status_code == 201, test.json
    # a consent without health: only the drug-test rule lets the result through
    resp = world["police"].post(f"{base}/transfer", json=transfer_body(consent=consent_body(categories=["general"])))
    assert resp.status_code == 200, resp.json
    assert world["west"].get(f"{base}/events/{test.json['id']}").status_code == 200
    assert_problem(world["west"].get(f"{base}/events/{followed_case['health_event']}"), 404, "not-found")


def test_a_case_coordinator_of_an_agency_that_left_is_unset(world):
    case = world.case(participants=("health", "slt"), coordinator=world["slt"].user_id)
    assert case["coordinator"] == world["slt"].user_id
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/transfer", json=transfer_body())
    assert resp.status_code == 200, resp.json
    assert resp.json["coordinator"] is None


def test_retention_takes_a_moved_case_with_its_history(world, app, test_db_cli):
    case = world.case(participants=("health", "slt"))
    base = f"/api/v1/cases/{case['id']}"
    assert world["police"].post(f"{base}/handover", json={"to": "slt", "reason": REASON}).status_code == 200
    assert world["slt"].post(f"{base}/transfer", json=transfer_body()).status_code == 200
    for to in ("active", "completed"):
        assert world["west"].post(f"{base}/transitions", json={"to": to, "reason": "Done"}).status_code == 200
    code, out, _ = test_db_cli("retention", "run", "--now", rfc3339(utcnow() + timedelta(days=1826)))
    assert code == 0 and case["id"] in out
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseMove)) == 0
