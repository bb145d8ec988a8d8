"""README "The audit log", recording: every request that reads or writes youth or case data — allowed,
denied or failed — and every login leaves one audit event of ids and codes (never names or free
text), durable before the response goes out; a write's event commits with the write."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from casesvc.audit import sealing, service
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import db
from casesvc.web import commit
from casesvc.youths.models import Youth
from tests.conftest import PASSWORD, youth_number

TOKEN_URL = "/api/v1/auth/token"
WHEN = "2027-01-05T08:00:00Z"


# --- reading what was recorded -----------------------------------------------------------------


def head_seq(app) -> int:
    """Seal, then the seq of the newest event: what a test records after it is `events(app, since)`."""
    with app.app_context():
        sealing.seal()
        seq = db.session.scalar(select(func.max(AuditEvent.seq))) or 0
        db.session.remove()
        return seq


def events(app, since: int = 0) -> list[dict]:
    """Seal, then every event after seq `since`, oldest first, as the API shows them."""
    with app.app_context():
        sealing.seal()
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.seq > since).order_by(AuditEvent.seq)).all()
        out = [sealing.event_dict(row) for row in rows]
        db.session.remove()
        return out


def one_event(app, since: int) -> dict:
    recorded = events(app, since)
    assert len(recorded) == 1, [(e["action"], e["status"]) for e in recorded]
    return recorded[0]


def unsealed(app) -> list[dict]:
    """The inbox as committed, read on a connection of its own (what survives a crash now)."""
    with app.app_context():
        with db.engine.connect() as conn:
            rows = conn.execute(select(AuditInbox).order_by(AuditInbox.n)).mappings().all()
        return [dict(r) for r in rows]


def youth_count(app) -> int:
    with app.app_context():
        with db.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Youth))


def youth_body(born: date | None = None, start: int = 700, **fields) -> dict:
    born = born or date(oslo_today().year - 15, 3, 9)
    return {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": born.isoformat(),
        "national_id": youth_number(born, start),
        "municipality": "0301",
        **fields,
    }


def login(client, username: str, password: str):
    return client.post(TOKEN_URL, data={"grant_type": "password", "username": username, "password": password})


# --- one event per request, with who, what, where --------------------------------------------


def test_reading_a_case_records_one_event_naming_actor_case_youth_and_request(world, app):
    case = world.case()
    since = head_seq(app)
    police = world["police"]
    resp = police.get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 200
    event = one_event(app, since)
    assert event["actor"] == police.user_id
    assert (event["actor_role"], event["actor_agency"]) == ("police", "police")
    assert event["action"] == "cases.get_case"
    assert (event["resource_type"], event["resource_id"]) == ("case", case["id"])
    assert (event["case_id"], event["youth_id"]) == (case["id"], case["youth_id"])
    assert (event["outcome"], event["status"]) == ("allowed", 200)
    assert event["request_id"] == resp.headers["X-Request-Id"] and event["request_id"]
    assert event["ip"] == "127.0.0.1"
    assert event["at"].endswith("Z") and event["id"]


def test_the_callers_request_id_is_the_one_recorded(world, app):
    case = world.case()
    since = head_seq(app)
    resp = world["police"].get(f"/api/v1/cases/{case['id']}", headers={"X-Request-Id": "trace-4711"})
    assert resp.headers["X-Request-Id"] == "trace-4711"
    assert one_event(app, since)["request_id"] == "trace-4711"


def test_the_client_address_is_recorded(world, app):
    case = world.case()
    since = head_seq(app)
    world["police"].get(f"/api/v1/cases/{case['id']}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert one_event(app, since)["ip"] == "192.0.2.7"


def test_a_read_is_committed_before_the_response_is_returned(world, app):
    """The read's event is in the inbox, committed, as soon as the client has the response."""
    case = world.case()
    before = len(unsealed(app))
    resp = world["police"].get(f"/api/v1/cases/{case['id']}")
    rows = unsealed(app)
    assert len(rows) == before + 1
    assert rows[-1]["request_id"] == resp.headers["X-Request-Id"]
    assert rows[-1]["action"] == "cases.get_case"


# --- lists: one event holding exactly the ids returned ----------------------------------------


def _entries(world, case):
    police = world["police"]
    base = f"/api/v1/cases/{case['id']}"
    for i in range(3):
        assert (
            police.post(
                f"{base}/events", json={"kind": "meeting", "occurred_at": WHEN, "summary": "Test meeting"}
            ).status_code
            == 201
        )
        assert police.post(f"{base}/notes", json={"body": f"Test note {i}"}).status_code == 201
        assert (
            police.post(
                f"{base}/reactions",
                json={"type": "follow_up_plan", "legal_basis": "consent", "starts_on": "2027-01-01"},
            ).status_code
            == 201
        )
    world.consent(case, ["health"])
    world.consent(case, ["slt"])
    world.consent(case, ["health", "slt"])


@pytest.mark.parametrize(
    "path", ["/api/v1/cases", "/api/v1/youths", "{case}/events", "{case}/notes", "{case}/reactions", "{case}/consents"]
)
def test_a_list_call_records_one_event_with_exactly_the_ids_it_returned(world, app, path):
    youth = world.youth()
    case = world.case(youth=youth)
    world.case()
    world.case()
    _entries(world, case)
    url = path.format(case=f"/api/v1/cases/{case['id']}")
    police = world["police"]

    since = head_seq(app)
    first = police.get(url, query_string={"limit": 2})
    assert first.status_code == 200 and first.json["next_cursor"]
    event = one_event(app, since)
    assert event["ids"] == [item["id"] for item in first.json["items"]]
    assert len(event["ids"]) == 2
    assert (event["outcome"], event["actor"]) == ("allowed", police.user_id)

    since = head_seq(app)
    rest = police.get(url, query_string={"limit": 200, "cursor": first.json["next_cursor"]})
    event = one_event(app, since)
    assert event["ids"] == [item["id"] for item in rest.json["items"]]
    assert set(event["ids"]).isdisjoint(first.json["items"][i]["id"] for i in range(2))


def test_an_empty_list_records_an_empty_list_of_ids(world, app):
    since = head_seq(app)
    resp = world["west"].get("/api/v1/cases")
    assert resp.json["items"] == []
    event = one_event(app, since)
    assert event["ids"] == [] and event["outcome"] == "allowed"


def test_a_filtered_list_records_only_what_the_filter_returned(world, app):
    youth = world.youth()
    mine = world.case(youth=youth)
    world.case()
    since = head_seq(app)
    resp = world["police"].get("/api/v1/cases", query_string={"youth_id": youth["id"]})
    assert [c["id"] for c in resp.json["items"]] == [mine["id"]]
    assert one_event(app, since)["ids"] == [mine["id"]]


# --- denied and failed requests are recorded too ----------------------------------------------


def test_an_outsider_reading_a_case_is_recorded_as_denied_with_the_case_it_tried(world, app):
    case = world.case()
    since = head_seq(app)
    assert world["west"].get(f"/api/v1/cases/{case['id']}").status_code == 404
    event = one_event(app, since)
    assert (event["outcome"], event["status"]) == ("denied", 404)
    assert (event["actor"], event["actor_agency"]) == (world["west"].user_id, "west")
    assert (event["case_id"], event["youth_id"]) == (case["id"], case["youth_id"])


def test_a_participant_without_consent_is_recorded_as_denied(world, app):
    case = world.case(participants=("health",))
    since = head_seq(app)
    resp = world["health"].get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 403 and resp.json["type"].endswith("consent-required")
    event = one_event(app, since)
    assert (event["outcome"], event["status"], event["actor_agency"]) == ("denied", 403, "health")
    assert event["case_id"] == case["id"]


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_or_auditor_on_case_content_is_recorded_as_denied(world, app, who):
    case = world.case()
    since = head_seq(app)
    resp = world[who].get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 403
    event = one_event(app, since)
    assert (event["outcome"], event["status"]) == ("denied", 403)
    assert (event["actor"], event["actor_role"], event["actor_agency"]) == (world[who].user_id, who, None)
    assert event["action"] == "cases.get_case"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_a_request_without_a_valid_token_is_recorded_as_denied(world, app, client, headers):
    case = world.case()
    since = head_seq(app)
    resp = client.get(f"/api/v1/cases/{case['id']}", headers=headers)
    assert resp.status_code == 401
    event = one_event(app, since)
    assert (event["outcome"], event["status"], event["actor"]) == ("denied", 401, None)
    assert event["request_id"] == resp.headers["X-Request-Id"]


def test_an_unknown_case_id_that_is_not_an_id_is_not_recorded_as_a_case(world, app):
    since = head_seq(app)
    assert world["police"].get("/api/v1/cases/not-a-uuid").status_code == 404
    event = one_event(app, since)
    assert (event["outcome"], event["case_id"]) == ("denied", None)


def test_a_validation_error_is_recorded_as_error_and_creates_nothing(world, app):
    youth = world.youth()
    since = head_seq(app)
    resp = world["police"].post("/api/v1/cases", json={"youth_id": youth["id"], "origin": "nowhere"})
    assert resp.status_code == 422
    event = one_event(app, since)
    assert (event["outcome"], event["status"], event["action"]) == ("error", 422, "cases.create_case")
    assert event["actor"] == world["police"].user_id


# --- a write and its event commit together ------------------------------------------------------


def test_a_write_records_one_allowed_event_naming_what_it_created(world, app):
    since = head_seq(app)
    before = len(unsealed(app))
    resp = world["police"].post("/api/v1/youths", json=youth_body())
    assert resp.status_code == 201
    staged = unsealed(app)
    assert len(staged) == before + 1  # committed before the response came back
    event = one_event(app, since)
    assert (event["action"], event["outcome"], event["status"]) == ("youths.create_youth", "allowed", 201)
    assert (event["resource_type"], event["resource_id"], event["youth_id"]) == (
        "youth",
        resp.json["id"],
        resp.json["id"],
    )
    assert event["request_id"] == resp.headers["X-Request-Id"]


def test_when_the_event_cannot_be_staged_the_write_does_not_happen(world, app, monkeypatch):
    def broken(response, last=True):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(commit, "stage_for_commit", broken)
    before = youth_count(app)
    since = head_seq(app)
    resp = world["police"].post("/api/v1/youths", json=youth_body())
    assert resp.status_code == 500
    assert youth_count(app) == before
    recorded = events(app, since)
    assert [(e["action"], e["outcome"]) for e in recorded] == [("youths.create_youth", "error")]


def _staged_events(monkeypatch) -> list[dict]:
    """The events `_event_from_request` makes from here on, as a list filled as they are made."""
    made: list[dict] = []
    real = service._event_from_request

    def keep(status):
        event = real(status)
        made.append(event)
        return event

    monkeypatch.setattr(service, "_event_from_request", keep)
    return made


def test_a_write_whose_commit_fails_after_staging_leaves_neither_row_nor_allowed_event(world, app, monkeypatch):
    """The staged event is in the write's transaction: when that commit fails, both are gone,
    and the failure itself is recorded."""
    real = service.stage_for_commit
    made = _staged_events(monkeypatch)

    def stage_then_break(response, last=True):
        touched = real(response, last)
        staged = made[-1]
        # a second row with the staged event's id: the commit fails on the unique constraint
        db.session.add(AuditInbox(**{key: staged[key] for key in service.EVENT_KEYS}))
        return touched

    monkeypatch.setattr(commit, "stage_for_commit", stage_then_break)
    before = youth_count(app)
    since = head_seq(app)
    resp = world["police"].post("/api/v1/youths", json=youth_body())
    assert resp.status_code >= 400
    assert youth_count(app) == before
    recorded = events(app, since)
    assert [e["outcome"] for e in recorded] == ["error"]
    assert recorded[0]["status"] == resp.status_code
    assert recorded[0]["request_id"] == resp.headers["X-Request-Id"]
    assert made[0]["id"] not in {e["id"] for e in recorded}


def test_an_event_and_its_audit_event_are_written_both_or_neither(world, app, monkeypatch):
    """Logging an event is one row and its audit event (on PostgreSQL one statement, with no
    transaction around it: casesvc/common/connection.py): when the audit event cannot be
    inserted, the logged event is not there either, and the failure is recorded."""
    case = world.case()
    base = f"/api/v1/cases/{case['id']}/events"
    police = world["police"]
    made: list[dict] = []
    real = service._event_from_request

    def failing_first(status):  # the first event made lacks its id: its insert fails
        event = real(status)
        if not made:
            event["id"] = None
        made.append(event)
        return event

    monkeypatch.setattr(service, "_event_from_request", failing_first)
    since = head_seq(app)
    resp = police.post(base, json={"kind": "meeting", "occurred_at": WHEN, "summary": "Test meeting"})
    assert resp.status_code >= 400
    assert made[0]["action"] == "followups.create_event"
    monkeypatch.undo()
    assert police.get(base).json["items"] == []
    recorded = events(app, since)
    assert (recorded[0]["action"], recorded[0]["outcome"], recorded[0]["status"]) == (
        "followups.create_event",
        "error",
        resp.status_code,
    )


def test_an_idempotent_replay_is_recorded_and_creates_nothing(world, app):
    police = world["police"]
    body = youth_body()
    since = head_seq(app)
    first = police.post("/api/v1/youths", json=body, headers={"Idempotency-Key": "k-1"})
    created = one_event(app, since)
    since = head_seq(app)
    again = police.post("/api/v1/youths", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json["id"] == first.json["id"]
    event = one_event(app, since)
    assert (event["action"], event["outcome"]) == ("youths.create_youth", "allowed")
    # the replay hands the youth's record out again: its event names the youth, as the first did
    assert _touched(event) == _touched(created) == ("youth", first.json["id"], None, first.json["id"])


def test_an_idempotent_replay_of_an_entry_names_its_case_and_youth_as_the_first_did(world, app):
    """The youth's access log (README "The audit log") finds the replay by the youth's id."""
    police = world["police"]
    case = world.case()
    url = f"/api/v1/cases/{case['id']}/notes"
    body = {"body": "Test note", "category": "general", "visibility": "shared"}
    since = head_seq(app)
    first = police.post(url, json=body, headers={"Idempotency-Key": "k-2"})
    created = one_event(app, since)
    since = head_seq(app)
    again = police.post(url, json=body, headers={"Idempotency-Key": "k-2"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        _touched(one_event(app, since)) == _touched(created) == ("note", first.json["id"], case["id"], case["youth_id"])
    )


def _touched(event: dict) -> tuple:
    return event["resource_type"], event["resource_id"], event["case_id"], event["youth_id"]


# --- logins ---------------------------------------------------------------------------------------


def test_a_successful_login_is_recorded_with_the_user(world, app, client):
    since = head_seq(app)
    resp = login(client, "user.police", PASSWORD)
    assert resp.status_code == 200
    event = one_event(app, since)
    assert (event["action"], event["outcome"], event["status"]) == ("auth.token", "allowed", 200)
    assert (event["actor"], event["actor_role"], event["actor_agency"]) == (world["police"].user_id, "police", "police")


def test_a_failed_login_is_recorded_as_denied_naming_the_user_it_tried(world, app, client):
    since = head_seq(app)
    resp = login(client, "user.police", "wrong password entirely")
    assert resp.status_code == 400 and resp.json["error"] == "invalid_grant"
    event = one_event(app, since)
    assert (event["action"], event["outcome"]) == ("auth.token", "denied")
    assert event["actor"] == world["police"].user_id


def test_a_failed_login_for_an_unknown_user_is_recorded_as_denied_without_an_actor(world, app, client):
    since = head_seq(app)
    assert login(client, "user.nobody", "whatever it is").status_code == 400
    event = one_event(app, since)
    assert (event["action"], event["outcome"], event["actor"]) == ("auth.token", "denied", None)


# --- ids and codes only ----------------------------------------------------------------------------

MARKERS = [
    "Zyxtrafine",
    "Qworblestad",
    "Vexholmgata",
    "Plumbrook skole",
    "Grizelda Hvamstuen",
    "+4799887766",
    "grizelda@example.invalid",
    "Snarkelbury",
    "Wibblethorpe",
    "Frobnicator",
    "Quuxberg",
    "Blorptown",
    "Dreamsplice",
    "Crumbleton",
]


def _all_audit_values(app) -> list[str]:
    """Every value of every audit row, sealed or not, as stored."""
    with app.app_context():
        with db.engine.connect() as conn:
            values = []
            for table in (AuditInbox.__table__, AuditEvent.__table__):
                for row in conn.execute(select(table)):
                    values.extend(str(v) for v in row)
            return values


def test_no_audit_event_contains_names_or_free_text(world, app, client):
    police, health = world["police"], world["health"]
    youth = world.youth(
        given_name="Zyxtrafine",
        family_name="Qworblestad",
        school="Plumbrook skole",
        guardians=[
            {
                "name": "Grizelda Hvamstuen",
                "relation": "mother",
                "phone": "+4799887766",
                "email": "grizelda@example.invalid",
            }
        ],
    )
    case = world.case(youth=youth, participants=("health", "slt"), summary="Vexholmgata incident")
    base = f"/api/v1/cases/{case['id']}"
    entry = police.post(
        f"{base}/events", json={"kind": "meeting", "occurred_at": WHEN, "summary": "Met at Snarkelbury"}
    ).json
    note = police.post(f"{base}/notes", json={"body": "Said Wibblethorpe"}).json
    reaction = police.post(
        f"{base}/reactions",
        json={
            "type": "follow_up_plan",
            "legal_basis": "consent",
            "starts_on": "2027-01-01",
            "conditions": [{"kind": "activity", "description": "Frobnicator club", "responsible_agency": "police"}],
        },
    ).json
    consent = world.consent(case, ["health"], purpose="Quuxberg follow-up")
    assert police.post(f"{base}/transitions", json={"to": "active", "reason": "Blorptown"}).status_code == 200

    for actor in (police, health, world["west"], world["admin"]):
        actor.get(f"{base}")
        actor.get(f"{base}/events/{entry['id']}")
        actor.get(f"{base}/notes/{note['id']}")
        actor.get(f"{base}/reactions/{reaction['id']}")
        actor.get(f"{base}/consents/{consent['id']}")
        actor.get(f"/api/v1/youths/{youth['id']}")
        for path in ("/api/v1/youths", "/api/v1/cases", f"{base}/events", f"{base}/notes"):
            actor.get(path)
    police.get("/api/v1/youths", query_string={"national_id": youth["national_id"]})
    police.get(f"/api/v1/youths/{youth['id']}/access-log")
    # names where ids belong: the URL is the caller's, the log keeps only well-formed ids
    police.get("/api/v1/youths/Zyxtrafine Qworblestad")
    police.get(f"{base}/notes/Dreamsplice")
    police.get("/api/v1/cases/Crumbleton")
    # a refused write with free text in its body
    assert police.post(f"{base}/notes", json={"body": "Dreamsplice", "category": "nonsense"}).status_code == 422
    assert police.patch(
        f"/api/v1/youths/{youth['id']}", json={"given_name": "Crumbleton"}, headers={"If-Match": '"999"'}
    ).status_code in (412, 428)
    login(client, "user.police", "Dreamsplice wrong password")

    values = _all_audit_values(app)
    assert len(values) > 100
    for marker in [*MARKERS, youth["national_id"], PASSWORD]:
        hits = [v for v in values if marker.lower() in v.lower()]
        assert not hits, f"{marker!r} found in the audit log: {hits[:3]}"
    # and the same after sealing
    head_seq(app)
    values = _all_audit_values(app)
    for marker in [*MARKERS, youth["national_id"]]:
        assert not [v for v in values if marker.lower() in v.lower()], marker


def test_reads_of_a_youths_cases_and_entries_carry_the_youths_id(world, app):
    youth = world.youth()
    case = world.case(youth=youth)
    base = f"/api/v1/cases/{case['id']}"
    police = world["police"]
    entry = police.post(f"{base}/events", json={"kind": "meeting", "occurred_at": WHEN, "summary": "x"}).json
    note = police.post(f"{base}/notes", json={"body": "Test note"}).json
    reaction = police.post(
        f"{base}/reactions", json={"type": "follow_up_plan", "legal_basis": "consent", "starts_on": "2027-01-01"}
    ).json
    consent = world.consent(case, ["health"])
    since = head_seq(app)
    paths = [
        base,
        f"{base}/events",
        f"{base}/events/{entry['id']}",
        f"{base}/notes",
        f"{base}/notes/{note['id']}",
        f"{base}/reactions",
        f"{base}/reactions/{reaction['id']}",
        f"{base}/consents",
        f"{base}/consents/{consent['id']}",
        f"/api/v1/youths/{youth['id']}",
    ]
    for path in paths:
        assert police.get(path).status_code == 200, path
    assert world["health"].get(f"{base}/events/{entry['id']}").status_code == 200
    assert world["west"].get(f"{base}/notes/{note['id']}").status_code == 404
    recorded = events(app, since)
    assert len(recorded) == len(paths) + 2
    assert {e["youth_id"] for e in recorded} == {youth["id"]}
    assert {e["case_id"] for e in recorded if e["action"] != "youths.get_youth"} == {case["id"]}


def test_writes_to_a_case_carry_the_case_and_youth_ids(world, app):
    case = world.case()
    since = head_seq(app)
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/notes", json={"body": "Test note"})
    assert resp.status_code == 201
    event = one_event(app, since)
    assert (event["case_id"], event["youth_id"]) == (case["id"], case["youth_id"])
    assert (event["resource_type"], event["resource_id"]) == ("note", resp.json["id"])
