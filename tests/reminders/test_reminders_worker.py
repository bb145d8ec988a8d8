"""The worker, `casesvc reminders run [--now T]`: each rule creates its reminder when (and only
when) it is due, to the right agency; escalation; idempotence (the same --now twice creates
nothing new, and a source that has its reminder is not looked at again); exactly once under four
concurrent workers; the command line."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from casesvc.cases.models import Case
from casesvc.common.timeutil import add_years, oslo_today, rfc3339, utcnow
from casesvc.extensions import db
from casesvc.reminders import rules, worker
from casesvc.reminders.models import Reminder, WebhookAttempt, WebhookDelivery
from tests.conftest import run_worker

SECRET = "worker-test-webhook-secret"


# --- helpers -------------------------------------------------------------------------------------


def settings_of(app, **overrides):
    return replace(app.config["CASESVC"], **overrides)


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
                "source_type": r.source_type,
                "source_id": r.source_id,
                "created_at": r.created_at,
            }
            for r in db.session.scalars(stmt)
        ]


def count(app, model=Reminder) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def move_case(world, case, to, by="police"):
    resp = world[by].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": to, "reason": "Test reason"})
    assert resp.status_code == 200, resp.json


def backdate_case(app, case, days):
    with app.app_context():
        db.session.execute(update(Case).where(Case.id == case["id"]).values(opened_at=utcnow() - timedelta(days=days)))
        db.session.commit()


def reaction(world, case, type="drug_contract", starts_on=None, activate=True, by="police", **fields):
    today = oslo_today()
    starts = starts_on or today - timedelta(days=2)
    body = {
        "type": type,
        "legal_basis": "conditional_waiver" if type != "follow_up_plan" else "consent",
        "starts_on": starts.isoformat(),
        **fields,
    }
    if type in ("drug_contract", "youth_contract"):
        body.setdefault("ends_on", (starts + timedelta(days=180)).isoformat())
        body.setdefault(
            "signatures",
            [{"party": "youth", "signed_on": today.isoformat()}, {"party": "guardian", "signed_on": today.isoformat()}],
        )
    resp = world[by].post(f"/api/v1/cases/{case['id']}/reactions", json=body)
    assert resp.status_code == 201, resp.json
    if activate:
        moved = world[by].post(
            f"/api/v1/cases/{case['id']}/reactions/{resp.json['id']}/transitions", json={"to": "active"}
        )
        assert moved.status_code == 200, moved.json
        return moved.json
    return resp.json


def condition(every_days=14, responsible="health", kind="drug_test"):
    return {"kind": kind, "every_days": every_days, "responsible_agency": responsible}


def at_day(days: int):
    """An instant `days` from now (the worker's --now)."""
    return utcnow() + timedelta(days=days)


# --- condition_due ---------------------------------------------------------------------------------


def test_condition_due_is_created_as_soon_as_the_next_date_is_known(world, app):
    case = world.case(participants=("health",))
    made = reaction(world, case, conditions=[condition(14)])
    result = run_worker(app)
    assert result["created"]["condition_due"] == 1
    [reminder] = stored(app, kind="condition_due")
    assert reminder["due_at"] == rules.day_start(oslo_today() - timedelta(days=2) + timedelta(days=14))
    assert reminder["assignee_agency"] == "health"
    assert (reminder["source_type"], reminder["source_id"]) == ("condition", made["conditions"][0]["id"])


def test_condition_due_counts_from_the_last_matching_event(world, app):
    case = world.case(participants=("health",))
    made = reaction(world, case, starts_on=oslo_today() - timedelta(days=30), conditions=[condition(7)])
    tested = utcnow() - timedelta(days=3)
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/events",
        json={
            "kind": "drug_test",
            "result": "negative",
            "occurred_at": rfc3339(tested),
            "condition_id": made["conditions"][0]["id"],
        },
    )
    assert resp.status_code == 201, resp.json
    run_worker(app)
    pending = [r for r in stored(app, kind="condition_due") if r["status"] == "pending"]
    assert [r["due_at"] for r in pending] == [rules.day_start(rules.oslo_date(tested) + timedelta(days=7))]


@pytest.mark.parametrize("case_of", ["draft_reaction", "no_every_days", "closed_case"])
def test_no_condition_due_without_a_recurring_condition_on_an_active_reaction_of_a_live_case(world, app, case_of):
    case = world.case(participants=("health",))
    if case_of == "draft_reaction":
        reaction(world, case, conditions=[condition(14)], activate=False)
    elif case_of == "no_every_days":
        reaction(world, case, conditions=[condition(None)])
    else:
        reaction(world, case, conditions=[condition(14)])
        move_case(world, case, "withdrawn")
    assert run_worker(app, at_day(60))["created"]["condition_due"] == 0
    assert stored(app, kind="condition_due") == []


# --- reaction_ending ----------------------------------------------------------------------------


def test_reaction_ending_is_created_14_days_before_the_end_and_not_earlier(world, app):
    case = world.case(participants=("health",))
    ends = oslo_today() + timedelta(days=20)
    made = reaction(world, case, ends_on=ends.isoformat())
    assert run_worker(app, at_day(5))["created"]["reaction_ending"] == 0
    assert run_worker(app, at_day(6))["created"]["reaction_ending"] == 1
    [reminder] = stored(app, kind="reaction_ending")
    assert reminder["due_at"] == rules.day_start(ends - timedelta(days=14))
    assert (reminder["assignee_agency"], reminder["source_id"]) == ("police", made["id"])


def test_the_end_of_probation_is_reminded_too(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    ends, probation = today + timedelta(days=10), today + timedelta(days=60)
    reaction(world, case, ends_on=ends.isoformat(), probation_ends_on=probation.isoformat())
    run_worker(app)
    run_worker(app, at_day(46))
    assert [r["due_at"] for r in stored(app, kind="reaction_ending")] == [
        rules.day_start(ends - timedelta(days=14)),
        rules.day_start(probation - timedelta(days=14)),
    ]


def test_the_day_count_is_a_setting(world, app):
    case = world.case(participants=("health",))
    reaction(world, case, ends_on=(oslo_today() + timedelta(days=20)).isoformat())
    assert run_worker(app, reminder_reaction_ending_days=21)["created"]["reaction_ending"] == 1


def patch_reaction(world, case, made, body, by="police"):
    url = f"/api/v1/cases/{case['id']}/reactions/{made['id']}"
    resp = world[by].patch(url, json=body, headers={"If-Match": world[by].get(url).headers["ETag"]})
    assert resp.status_code == 200, resp.json
    return resp.json


def settled(app, kind) -> list[tuple[str, str | None]]:
    with app.app_context():
        return [
            (r.status, r.settled_by)
            for r in db.session.scalars(
                select(Reminder).where(Reminder.kind == kind).order_by(Reminder.created_at, Reminder.id)
            )
        ]


def test_moving_the_end_dismisses_the_old_reminder_and_the_new_end_is_reminded(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    made = reaction(world, case, ends_on=(today + timedelta(days=10)).isoformat())
    assert run_worker(app)["created"]["reaction_ending"] == 1
    later = today + timedelta(days=40)
    patch_reaction(world, case, made, {"ends_on": later.isoformat()})
    assert settled(app, "reaction_ending") == [("dismissed", "reaction-rescheduled")]
    assert run_worker(app)["created"]["reaction_ending"] == 0  # the new end is not due yet
    assert run_worker(app, at_day(26))["created"]["reaction_ending"] == 1
    assert [r["due_at"] for r in stored(app, kind="reaction_ending", status="pending")] == [
        rules.day_start(later - timedelta(days=14))
    ]


def test_a_patch_that_keeps_the_dates_leaves_the_reminders_alone(world, app):
    case = world.case(participants=("health",))
    made = reaction(world, case, ends_on=(oslo_today() + timedelta(days=10)).isoformat())
    run_worker(app)
    patch_reaction(world, case, made, {"police_reference": "TEST-0001", "ends_on": made["ends_on"]})
    assert settled(app, "reaction_ending") == [("pending", None)]


def test_the_end_of_probation_keeps_its_reminder_when_only_the_end_moves(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    made = reaction(
        world,
        case,
        ends_on=(today + timedelta(days=5)).isoformat(),
        probation_ends_on=(today + timedelta(days=10)).isoformat(),
    )
    assert run_worker(app)["created"]["reaction_ending"] == 2
    patch_reaction(world, case, made, {"ends_on": (today + timedelta(days=6)).isoformat()})
    assert sorted(settled(app, "reaction_ending"), key=str) == [
        ("dismissed", "reaction-rescheduled"),
        ("pending", None),
    ]


# --- consent_expiring -----------------------------------------------------------------------------


def test_consent_expiring_is_created_30_days_before_expiry_and_not_earlier(world, app):
    case = world.case(participants=("health",))
    expires = oslo_today() + timedelta(days=40)
    consent = world.consent(case, ["health"], expires_on=expires.isoformat())
    assert run_worker(app, at_day(9))["created"]["consent_expiring"] == 0
    assert run_worker(app, at_day(10))["created"]["consent_expiring"] == 1
    [reminder] = stored(app, kind="consent_expiring")
    assert (reminder["source_id"], reminder["assignee_agency"]) == (consent["id"], "police")
    assert reminder["due_at"] == rules.day_start(expires - timedelta(days=30))


def test_a_withdrawn_consent_is_not_reminded(world, app):
    case = world.case(participants=("health",))
    consent = world.consent(case, ["health"], expires_on=(oslo_today() + timedelta(days=5)).isoformat())
    world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw")
    assert run_worker(app)["created"]["consent_expiring"] == 0


# --- no_recent_contact ---------------------------------------------------------------------------


def test_no_recent_contact_after_30_days_without_an_event_on_an_active_case(world, app):
    case = world.case(participants=("health",))
    move_case(world, case, "active")
    assert run_worker(app, at_day(28))["created"]["no_recent_contact"] == 0
    assert run_worker(app, at_day(31))["created"]["no_recent_contact"] == 1
    [reminder] = stored(app, kind="no_recent_contact")
    assert (reminder["assignee_agency"], reminder["source_id"]) == ("police", case["id"])


def test_an_event_within_30_days_means_no_reminder(world, app):
    case = world.case(participants=("health",))
    move_case(world, case, "active")
    backdate_case(app, case, 60)
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/events",
        json={"kind": "home_visit", "occurred_at": rfc3339(utcnow() - timedelta(days=10))},
    )
    assert resp.status_code == 201
    assert run_worker(app)["created"]["no_recent_contact"] == 0
    assert run_worker(app, at_day(21))["created"]["no_recent_contact"] == 1


def test_a_case_not_yet_active_gets_no_no_recent_contact(world, app):
    case = world.case(participants=("health",))
    backdate_case(app, case, 60)
    assert run_worker(app)["created"]["no_recent_contact"] == 0


# --- conversation_scheduled ----------------------------------------------------------------------


def test_conversation_scheduled_is_created_a_day_before(world, app):
    case = world.case(participants=("health",))
    scheduled = utcnow().replace(microsecond=0) + timedelta(days=3)
    made = reaction(
        world, case, type="concern_conversation", activate=False, legal_basis="consent", scheduled_at=rfc3339(scheduled)
    )
    assert run_worker(app, at_day(1))["created"]["conversation_scheduled"] == 0
    assert run_worker(app, scheduled - timedelta(hours=23))["created"]["conversation_scheduled"] == 1
    [reminder] = stored(app, kind="conversation_scheduled")
    assert reminder["due_at"] == scheduled - timedelta(days=1)
    assert reminder["source_id"] == made["id"]


def test_a_conversation_already_held_is_not_reminded(world, app):
    case = world.case(participants=("health",))
    soon = utcnow().replace(microsecond=0) + timedelta(hours=5)
    reaction(
        world,
        case,
        type="concern_conversation",
        activate=False,
        legal_basis="consent",
        scheduled_at=rfc3339(soon),
        held_at=rfc3339(utcnow()),
    )
    assert run_worker(app)["created"]["conversation_scheduled"] == 0


def test_a_conversation_moved_to_another_day_is_reminded_anew_and_a_held_one_is_settled(world, app):
    case = world.case(participants=("health",))
    soon = utcnow().replace(microsecond=0) + timedelta(hours=5)
    made = reaction(
        world, case, type="concern_conversation", activate=False, legal_basis="consent", scheduled_at=rfc3339(soon)
    )
    assert run_worker(app)["created"]["conversation_scheduled"] == 1
    moved = soon + timedelta(days=2)
    patch_reaction(world, case, made, {"scheduled_at": rfc3339(moved)})
    assert settled(app, "conversation_scheduled") == [("dismissed", "reaction-rescheduled")]
    assert run_worker(app, moved - timedelta(hours=23))["created"]["conversation_scheduled"] == 1
    patch_reaction(world, case, made, {"held_at": rfc3339(utcnow())})
    assert settled(app, "conversation_scheduled") == [
        ("dismissed", "reaction-rescheduled"),
        ("done", "conversation-held"),
    ]


def test_a_conversation_moved_within_the_reminders_day_takes_its_reminder_along(world, app):
    case = world.case(participants=("health",))
    # noon in Oslo two days ahead, moved one hour: the reminder's day stays the same
    noon = rules.day_start(oslo_today() + timedelta(days=2)) + timedelta(hours=12)
    made = reaction(
        world, case, type="concern_conversation", activate=False, legal_basis="consent", scheduled_at=rfc3339(noon)
    )
    assert run_worker(app, noon - timedelta(hours=23))["created"]["conversation_scheduled"] == 1
    patch_reaction(world, case, made, {"scheduled_at": rfc3339(noon + timedelta(hours=1))})
    [reminder] = stored(app, kind="conversation_scheduled")
    assert (reminder["status"], reminder["due_at"]) == ("pending", noon + timedelta(hours=1) - timedelta(days=1))
    assert run_worker(app, noon - timedelta(hours=22))["created"]["conversation_scheduled"] == 0


# --- age_threshold --------------------------------------------------------------------------------


def test_turning_16_while_the_case_is_open_is_reminded_on_the_birthday(world, app):
    birthday = oslo_today() + timedelta(days=5)
    youth = world.youth(born=add_years(birthday, -16))
    case = world.case(youth=youth, participants=("health",))
    assert run_worker(app, at_day(4))["created"]["age_threshold"] == 0
    assert run_worker(app, at_day(5))["created"]["age_threshold"] == 1
    [reminder] = stored(app, kind="age_threshold")
    assert reminder["due_at"] == rules.day_start(birthday)
    assert (reminder["case_id"], reminder["assignee_agency"], reminder["source_id"]) == (
        case["id"],
        "police",
        youth["id"],
    )


def test_turning_18_is_reminded_too(world, app):
    youth = world.youth(born=add_years(oslo_today() - timedelta(days=2), -18))
    case = world.case(youth=youth, participants=("health",))
    backdate_case(app, case, 10)
    assert run_worker(app)["created"]["age_threshold"] == 1
    assert stored(app, kind="age_threshold")[0]["due_at"] == rules.day_start(oslo_today() - timedelta(days=2))


def test_a_birthday_before_the_case_was_opened_is_not_reminded(world, app):
    youth = world.youth(born=add_years(oslo_today() - timedelta(days=3), -16))
    world.case(youth=youth, participants=("health",))
    assert run_worker(app)["created"]["age_threshold"] == 0


# --- plan_review ----------------------------------------------------------------------------------


def test_a_follow_up_plan_is_reviewed_every_three_months(world, app):
    case = world.case(participants=("health",))
    today = oslo_today()
    reaction(world, case, type="follow_up_plan", starts_on=rules.add_months(today, -3))
    assert run_worker(app)["created"]["plan_review"] == 1
    [reminder] = stored(app, kind="plan_review")
    assert reminder["due_at"] == rules.day_start(today)
    assert run_worker(app, at_day(30))["created"]["plan_review"] == 0


def test_a_plan_younger_than_three_months_is_not_reviewed_yet(world, app):
    case = world.case(participants=("health",))
    reaction(world, case, type="follow_up_plan", starts_on=oslo_today() - timedelta(days=60))
    assert run_worker(app)["created"]["plan_review"] == 0


# --- escalation ----------------------------------------------------------------------------------


def overdue_condition(world, app, participants=("health", "slt"), overdue_days=1):
    """A condition whose reminder fell due `overdue_days` ago."""
    case = world.case(participants=participants)
    reaction(world, case, starts_on=oslo_today() - timedelta(days=14 + overdue_days), conditions=[condition(14)])
    run_worker(app)
    [reminder] = stored(app, kind="condition_due")
    return case, reminder


def test_a_reminder_pending_three_days_after_due_escalates_to_the_coordinator_agency_once(world, app):
    now = utcnow()
    case = world.case(participants=("health", "slt"))
    reaction(world, case, starts_on=oslo_today() + timedelta(days=1), conditions=[condition(14)])
    run_worker(app, now)  # created ahead: due in 15 days
    [reminder] = stored(app, kind="condition_due")
    due = reminder["due_at"]
    assert run_worker(app, due + timedelta(days=3, seconds=-1))["created"]["escalation"] == 0
    assert run_worker(app, due + timedelta(days=3))["created"]["escalation"] == 1
    [escalation] = stored(app, kind="escalation")
    assert escalation["assignee_agency"] == "slt"
    assert (escalation["source_type"], escalation["source_id"]) == ("reminder", reminder["id"])
    assert escalation["due_at"] == due + timedelta(days=3)
    assert run_worker(app, due + timedelta(days=30))["created"]["escalation"] == 0
    assert len(stored(app, kind="escalation")) == 1


def test_a_reminder_created_already_overdue_escalates_three_days_after_it_was_created(world, app):
    now = utcnow()
    _, reminder = overdue_condition(world, app, overdue_days=10)
    assert reminder["created_at"] <= utcnow()
    assert run_worker(app, now + timedelta(days=2))["created"]["escalation"] == 0
    assert run_worker(app, reminder["created_at"] + timedelta(days=3))["created"]["escalation"] == 1


def test_without_a_coordinator_participant_the_lead_agency_gets_the_escalation(world, app):
    _, reminder = overdue_condition(world, app, participants=("health",))
    run_worker(app, reminder["created_at"] + timedelta(days=4))
    assert [e["assignee_agency"] for e in stored(app, kind="escalation")] == ["police"]


def test_an_acknowledged_reminder_does_not_escalate(world, app):
    case, reminder = overdue_condition(world, app)
    world.consent(case, ["health"])
    assert world["health"].post(f"/api/v1/reminders/{reminder['id']}/ack").status_code == 200
    assert run_worker(app, reminder["created_at"] + timedelta(days=10))["created"]["escalation"] == 0


def test_the_escalation_days_are_a_setting(world, app):
    _, reminder = overdue_condition(world, app)
    result = run_worker(app, reminder["created_at"] + timedelta(days=1), reminder_escalation_days=1)
    assert result["created"]["escalation"] == 1


# --- idempotence and incremental work -------------------------------------------------------------


def busy_world(world, app):
    """A bit of everything due at once."""
    today = oslo_today()
    case = world.case(participants=("health", "slt"))
    move_case(world, case, "active")
    reaction(
        world,
        case,
        starts_on=today - timedelta(days=40),
        ends_on=(today + timedelta(days=5)).isoformat(),
        conditions=[condition(7), condition(30, "slt", "meeting")],
    )
    reaction(world, case, type="follow_up_plan", starts_on=rules.add_months(today, -4))
    world.consent(case, ["health"], expires_on=(today + timedelta(days=10)).isoformat())
    backdate_case(app, case, 45)
    return case


def test_the_same_now_twice_creates_nothing_new(world, app):
    busy_world(world, app)
    now = utcnow()
    first = run_worker(app, now)
    made = count(app)
    assert {k: v for k, v in first["created"].items() if v} == {
        "condition_due": 2,
        "reaction_ending": 1,
        "consent_expiring": 1,
        "no_recent_contact": 1,
        "plan_review": 1,
    }
    second = run_worker(app, now)
    assert set(second["created"].values()) == {0}
    assert count(app) == made
    later = now + timedelta(days=3)  # all six fell due before they were made: escalated three days on
    assert run_worker(app, later)["created"]["escalation"] == 6
    assert set(run_worker(app, later)["created"].values()) == {0}


def test_a_source_that_has_its_reminder_is_not_a_candidate_again(world, app):
    busy_world(world, app)
    now = utcnow() + timedelta(days=3)
    run_worker(app, now)
    with app.app_context():
        settings = settings_of(app)
        for name, build, _ in worker.RULES:
            stmt, _ = build(now, settings)
            assert db.session.execute(stmt).all() == [], name


# --- exactly once under concurrent workers --------------------------------------------------------


class Receiver:
    def __init__(self):
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_four_concurrent_workers_create_and_deliver_each_reminder_exactly_once(world, app, receiver):
    resp = world["admin"].put("/api/v1/agencies/health/webhook", json={"url": receiver.url, "secret": SECRET})
    assert resp.status_code == 201, resp.json
    for _ in range(6):
        case = world.case(participants=("health",))
        # due one and two days ago: not yet escalated
        reaction(world, case, starts_on=oslo_today() - timedelta(days=15), conditions=[condition(14), condition(13)])
    now = utcnow()
    settings = settings_of(app)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def work():
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results.append(worker.run(now, settings))
            except Exception as exc:  # noqa: BLE001 (reported below: a worker must not fail)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 4
    assert sum(r["created"]["condition_due"] for r in results) == 12
    assert count(app) == 12
    assert sum(r["deliveries"]["delivered"] for r in results) == 12
    delivered = [json.loads(b)["reminder_id"] for b in receiver.bodies]
    assert len(delivered) == 12
    assert sorted(delivered) == sorted(r["id"] for r in stored(app))
    assert count(app, WebhookAttempt) == 12
    with app.app_context():
        assert set(db.session.scalars(select(WebhookDelivery.state))) == {"delivered"}


# --- the command ------------------------------------------------------------------------------------


@pytest.fixture
def cli(fresh_cli):
    return fresh_cli


def test_reminders_run_prints_what_it_did_and_is_idempotent(cli):
    assert cli("db", "upgrade")[0] == 0
    code, out, err = cli("reminders", "run", "--now", "2027-01-05T08:00:00Z")
    assert code == 0, err
    result = json.loads(out)
    assert result["now"] == "2027-01-05T08:00:00Z"
    assert set(result["created"]) == set(rules.KINDS) - {"missed_test", "manual", "emergency_access_review"}
    assert result["deliveries"] == {"delivered": 0, "retrying": 0, "failed": 0}
    assert json.loads(cli("reminders", "run", "--now", "2027-01-05T08:00:00Z")[1])["created"] == result["created"]


@pytest.mark.parametrize("bad", ["yesterday", "2027-01-05T08:00:00", "2027-13-05T08:00:00Z", "2027-01-05"])
def test_reminders_run_with_a_bad_now_is_a_one_line_error(cli, bad):
    code, _, err = cli("reminders", "run", "--now", bad)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--now" in err


def test_reminders_run_on_an_unmigrated_database_is_a_one_line_error(cli):
    code, _, err = cli("reminders", "run")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "casesvc db upgrade" in err
