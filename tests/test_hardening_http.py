"""Hardening of the HTTP surface (README: Security, hardening): an atomic Idempotency-Key, CORS
preflights without a token, a safe X-Request-Id and an audit export no spreadsheet runs, the
calendar address from CASESVC_PUBLIC_URL, tokens that must expire, security headers on /docs,
an honest 409 for a lost race, and 404 for a path that is not there."""

from __future__ import annotations

import contextlib
import csv
import io
import threading
import time
from datetime import UTC, date, datetime, timedelta

import jwt as pyjwt
import pytest
from sqlalchemy import select, update

from casesvc import create_app
from casesvc.audit import verify as audit_verify
from casesvc.cases.models import Case
from casesvc.extensions import db
from casesvc.followups.models import Note
from casesvc.web.idempotency import IN_FLIGHT, IN_FLIGHT_LEASE, IdempotencyKey
from tests.conftest import youth_number


def notes_url(case) -> str:
    return f"/api/v1/cases/{case['id']}/notes"


# --- 1. Idempotency-Key is reserved before the work --------------------------------------------


def test_two_simultaneous_posts_with_one_key_create_one_note(world, app, monkeypatch):
    """The first request reserves the key before it works; the second, arriving while the first
    is still at work, is told so (409) or replays its answer, and creates nothing."""
    from casesvc.followups import service as followups

    case = world.case()
    inside = threading.Barrier(2, timeout=3)
    original = followups.write_note

    def slow_write(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            inside.wait()  # without a reservation both requests meet here, both in their work
        return original(*args, **kwargs)

    monkeypatch.setattr(followups, "write_note", slow_write)
    clients = [app.test_client() for _ in range(2)]
    start = threading.Barrier(2, timeout=10)
    answers = []
    headers = {"Authorization": f"Bearer {world['police'].token}", "Idempotency-Key": "simultaneous-1"}

    def post(client):
        start.wait()
        answers.append(client.post(notes_url(case), json={"body": "Fake note"}, headers=headers))

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in answers)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Note)) == 1
    created = [r for r in answers if r.status_code == 201]
    assert statuses in ([201, 409], [201, 201]), [r.get_json() for r in answers]
    if statuses == [201, 409]:
        busy = next(r for r in answers if r.status_code == 409)
        assert busy.json["type"].endswith("idempotency-key-in-use")
        assert busy.headers["Retry-After"]
    else:
        assert created[0].json["id"] == created[1].json["id"]
        assert [r.headers.get("Idempotent-Replayed") for r in created].count("true") == 1
    again = world["police"].post(
        notes_url(case), json={"body": "Fake note"}, headers={"Idempotency-Key": "simultaneous-1"}
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == created[0].json["id"]


def test_a_key_whose_request_failed_can_be_used_again_at_once(world):
    case = world.case()
    headers = {"Idempotency-Key": "failed-then-fixed"}
    refused = world["police"].post(notes_url(case), json={"body": ""}, headers=headers)
    assert refused.status_code == 422
    fixed = world["police"].post(notes_url(case), json={"body": "Fake note"}, headers=headers)
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


def test_a_reservation_left_by_a_crashed_request_is_taken_over_after_its_lease(world, app):
    case = world.case()
    with app.app_context():
        db.session.add(
            IdempotencyKey(
                owner=world["police"].user_id,
                key="crashed-1",
                endpoint="followups.create_note",
                fingerprint="x",
                status_code=IN_FLIGHT,
                body="",
                headers="{}",
                created_at=datetime.now(UTC) - IN_FLIGHT_LEASE - timedelta(seconds=1),
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        db.session.commit()
    resp = world["police"].post(notes_url(case), json={"body": "Fake note"}, headers={"Idempotency-Key": "crashed-1"})
    assert resp.status_code == 201, resp.json
    assert "Idempotent-Replayed" not in resp.headers


def test_the_same_key_on_another_kind_of_request_is_a_request_of_its_own(world):
    """Keys are unique per user, key and endpoint."""
    case = world.case()
    headers = {"Idempotency-Key": "per-endpoint"}
    note = world["police"].post(notes_url(case), json={"body": "Fake note"}, headers=headers)
    youth = world["police"].post(
        "/api/v1/youths",
        headers=headers,
        json={
            "given_name": "Fake",
            "family_name": "Person",
            "birth_date": "2011-05-17",
            "national_id": youth_number(date(2011, 5, 17), 900),
            "municipality": "0301",
        },
    )
    assert note.status_code == 201 and youth.status_code == 201, youth.json
    assert "Idempotent-Replayed" not in youth.headers


# --- 2. OPTIONS and CORS ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/youths/some-id", "/api/v1/reminders"])
def test_options_answers_without_a_token(client, path):
    resp = client.options(path)
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)
    assert "GET" in resp.headers["Allow"]
    assert "Access-Control-Allow-Origin" not in resp.headers  # no origin is allowed by default


@pytest.fixture
def cors_client(app, tmp_path):
    settings = app.config["CASESVC"]
    other = create_app(
        {
            "env": "test",
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "audit_seal_interval": 1e9,
            "cors_origins": ("https://front.example",),
        },
        instance_path=tmp_path,
    )
    return other.test_client()


def test_a_preflight_from_an_allowed_origin_is_answered_for_an_authorised_call(cors_client):
    resp = cors_client.options(
        "/api/v1/cases",
        headers={
            "Origin": "https://front.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
        },
    )
    assert resp.status_code in (200, 204)
    assert resp.headers["Access-Control-Allow-Origin"] == "https://front.example"
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "idempotency-key" in allowed
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


def test_an_origin_outside_the_allowlist_gets_no_cors_headers(cors_client):
    resp = cors_client.options(
        "/api/v1/cases", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_an_allowed_origin_can_read_the_answer_and_its_headers(world, cors_client):
    resp = cors_client.get(
        "/api/v1/auth/me",
        headers={"Origin": "https://front.example", "Authorization": f"Bearer {world['police'].token}"},
    )
    assert resp.status_code == 200 and resp.json["role"] == "police"
    assert resp.headers["Access-Control-Allow-Origin"] == "https://front.example"
    assert "etag" in resp.headers["Access-Control-Expose-Headers"].lower()


def test_cors_origins_come_from_the_environment(monkeypatch, tmp_path):
    from casesvc.config import ConfigError, load_settings

    monkeypatch.setenv("CASESVC_CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings(tmp_path, {"env": "test"}).cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("CASESVC_CORS_ORIGINS", "*")
    with pytest.raises(ConfigError, match="CASESVC_CORS_ORIGINS"):
        load_settings(tmp_path, {"env": "test"})


# --- 7. CSV injection and X-Request-Id ----------------------------------------------------------


@pytest.mark.parametrize("incoming", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "a b", "x" * 65])
def test_an_unsafe_request_id_is_replaced(client, incoming):
    resp = client.get("/api/v1/cases", headers={"X-Request-Id": incoming})
    assert resp.headers["X-Request-Id"] != incoming
    assert len(resp.headers["X-Request-Id"]) == 36  # a fresh UUID


def test_a_safe_request_id_is_kept(client):
    resp = client.get("/api/v1/cases", headers={"X-Request-Id": "front-1234.abc_DEF:9"})
    assert resp.headers["X-Request-Id"] == "front-1234.abc_DEF:9"


def write_dangerous_events(app):
    """Events whose text fields start as formulas do, written as someone with database rights
    (or an older version of the service) could have."""
    from casesvc.audit.service import record

    with app.app_context():
        for i, value in enumerate(
            ['=HYPERLINK("http://evil")', "+cmd", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "'quoted"]
        ):
            record("test.dangerous", "allowed", request_id=value, resource_id=f"res-{i}", ip=value)


def test_the_csv_export_neutralises_formulas_and_still_verifies(world, app, tmp_path):
    write_dangerous_events(app)
    resp = world["auditor"].get("/api/v1/audit/export", query_string={"format": "csv"})
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    cells = [value for row in rows for value in row.values() if value]
    assert not [c for c in cells if c[0] in "=+-@\t\r"], "a cell a spreadsheet would run"
    assert "'=HYPERLINK" in text and "'+cmd" in text and "''quoted" in text
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8", newline="")
    verdict = audit_verify.verify_export(str(path))
    assert verdict["valid"] is True and verdict["checked"] == len(rows)
    events = {e["resource_id"]: e for e in audit_verify.read_export(str(path)) if e["action"] == "test.dangerous"}
    assert events["res-0"]["request_id"] == '=HYPERLINK("http://evil")'
    assert events["res-6"]["request_id"] == "'quoted"


# --- 8. The calendar address -------------------------------------------------------------------


def test_the_calendar_address_does_not_follow_the_host_header(world, app, tmp_path):
    settings = app.config["CASESVC"]
    served = create_app(
        {
            "env": "test",
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "audit_seal_interval": 1e9,
            "public_url": "https://casesvc.kommune.example",
        },
        instance_path=tmp_path,
    ).test_client()
    resp = served.post(
        "/api/v1/reminders/feed", headers={"Authorization": f"Bearer {world['health'].token}", "Host": "evil.example"}
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["url"].startswith("https://casesvc.kommune.example/api/v1/reminders.ics?feed=")


def test_production_refuses_to_start_without_a_public_url(monkeypatch, tmp_path):
    from casesvc.config import ConfigError, load_settings

    monkeypatch.setenv("CASESVC_ENV", "production")
    monkeypatch.setenv("CASESVC_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CASESVC_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1/none")
    monkeypatch.delenv("CASESVC_PUBLIC_URL", raising=False)
    with pytest.raises(ConfigError, match="CASESVC_PUBLIC_URL"):
        load_settings(tmp_path)
    monkeypatch.setenv("CASESVC_PUBLIC_URL", "http://casesvc.example")
    with pytest.raises(ConfigError, match="https"):
        load_settings(tmp_path)
    monkeypatch.setenv("CASESVC_PUBLIC_URL", "https://casesvc.example/")
    assert load_settings(tmp_path).public_url == "https://casesvc.example"


# --- 10. The smaller ones ----------------------------------------------------------------------


def own_token(app, **claims) -> str:
    return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")


@pytest.mark.parametrize("missing", ["exp", "iat", "jti"])
def test_a_service_token_without_exp_iat_or_jti_is_refused(world, app, client, missing):
    now = int(time.time())
    claims = {
        "sub": world["police"].user_id,
        "type": "access",
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "fake-jti-1",
        "role": "police",
        "agency": "police",
        "scope": "cases:read",
        "username": "user.police",
    }
    complete = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {own_token(app, **claims)}"})
    assert complete.status_code == 200, complete.json
    del claims[missing]
    resp = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {own_token(app, **claims)}"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_docs_page_has_a_content_security_policy_and_cannot_be_framed(client):
    resp = client.get("/docs/")
    assert resp.status_code == 200
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_a_transition_that_loses_a_race_without_if_match_is_409(world, app, monkeypatch):
    from casesvc.cases import service as cases

    case = world.case()
    original = cases.transition_case

    def raced(principal, loaded, to, reason):
        with db.engine.begin() as conn:  # another request changes the case meanwhile
            conn.execute(update(Case).where(Case.id == loaded.id).values(version=Case.version + 1))
        return original(principal, loaded, to, reason)

    monkeypatch.setattr(cases, "transition_case", raced)
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": "active"})
    assert resp.status_code == 409, resp.json
    assert resp.json["type"].endswith("/conflict")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/cases/x/no-such-thing"])
def test_an_unknown_api_path_is_404_with_or_without_a_token(world, client, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 404, anonymous.get_data(as_text=True)
    assert anonymous.mimetype == "application/problem+json"
    assert world["police"].get(path).status_code == 404


# --- 11. The problem document in the OpenAPI description ----------------------------------------


def test_the_problem_schema_allows_the_extension_members_the_service_sends(client):
    spec = client.get("/api/v1/openapi.json").json
    problem = spec["components"]["schemas"]["Problem"]
    assert problem.get("additionalProperties") is not False
    assert {"errors", "allowed", "current", "to", "missing", "existing_id"} <= set(problem["properties"])


@pytest.mark.parametrize(
    "path,method",
    [
        ("/api/v1/cases/{case_id}/transitions", "post"),
        ("/api/v1/cases/{case_id}/reactions/{reaction_id}/transitions", "post"),
        ("/api/v1/cases/{case_id}/reactions/{reaction_id}/signatures", "post"),
        ("/api/v1/youths", "post"),
        ("/api/v1/youths/{youth_id}", "patch"),
    ],
)
def test_the_409s_are_documented_as_problems(client, path, method):
    responses = client.get("/api/v1/openapi.json").json["paths"][path][method]["responses"]
    assert responses["409"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
