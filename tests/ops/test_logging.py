"""Structured logs (README: Logs): with CASESVC_LOG_FORMAT=json every line is one JSON object;
each request writes exactly one, with time, level, request id, method, route template, status,
duration and actor id; and no line holds personal data. A scenario full of distinctive names,
numbers and texts runs through the API, and every line written is searched for them."""

from __future__ import annotations

import json
import re
import signal
from datetime import date, timedelta

import pytest

from casesvc import create_app
from casesvc.common.timeutil import oslo_today
from casesvc.config import ConfigError, load_settings
from casesvc.logging_setup import configure_logging
from tests.conftest import World, start_reminders_worker, youth_number

REQUEST_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "actor",
}
BORN = date(2011, 3, 9)
NATIONAL_ID = youth_number(BORN, 700)
SECRETS = {  # what must never reach a log line
    "given name": "Zorblatt",
    "family name": "Quixlewood",
    "guardian": "Mirabelle Fandangoe",
    "school": "Snorkelvik skole",
    "phone": "+47 41234987",
    "email": "fandangoe@example.invalid",
    "national id": NATIONAL_ID,
    "case summary": "Glimmerfrost kvelden",
    "note": "Pjuskebusk notat",
    "event": "Trollsvamp samtale",
    "reason": "Vindelsnurr avslutning",
    "username": "wobbegong.fakeuser",
    "password": "Fakepassword-Humbug-77",
    "purpose": "Kvistfjell oppfølging",
}


@pytest.fixture
def json_app(app, tmp_path):
    """A second app on the test database, logging JSON lines; the text format is back afterwards."""
    json_app = create_app(
        {
            "env": "test",
            "database_url": app.config["CASESVC"].database_url,
            "audit_seal_interval": 1e9,
            "log_format": "json",
        },
        instance_path=tmp_path,
    )
    yield json_app
    configure_logging(app.config["CASESVC"].log_format)


def scenario(world: World) -> int:
    """What caseworkers do in a day, with every kind of personal data; returns the requests made."""
    police, health = world["police"], world["health"]
    youth = {
        "given_name": SECRETS["given name"],
        "family_name": SECRETS["family name"],
        "birth_date": BORN.isoformat(),
        "national_id": NATIONAL_ID,
        "municipality": "0301",
        "school": SECRETS["school"],
        "guardians": [
            {"name": SECRETS["guardian"], "relation": "mother", "phone": SECRETS["phone"], "email": SECRETS["email"]}
        ],
    }
    calls = []
    created = police.post("/api/v1/youths", json=youth)
    assert created.status_code == 201, created.json
    calls.append(created)
    calls.append(police.post("/api/v1/youths", json=youth))  # 409, a duplicate
    calls.append(police.post("/api/v1/youths", json={**youth, "birth_date": "not a date"}))  # 422
    calls.append(police.get("/api/v1/youths", query_string={"national_id": NATIONAL_ID}))
    calls.append(police.get(f"/api/v1/youths/{created.json['id']}"))
    case = police.post(
        "/api/v1/cases",
        json={
            "youth_id": created.json["id"],
            "origin": "police",
            "summary": SECRETS["case summary"],
            "participants": ["health"],
        },
    )
    assert case.status_code == 201, case.json
    calls.append(case)
    base = f"/api/v1/cases/{case.json['id']}"
    calls.append(police.post(f"{base}/notes", json={"body": SECRETS["note"]}))
    calls.append(
        police.post(
            f"{base}/events",
            json={"kind": "meeting", "occurred_at": "2027-01-05T08:00:00Z", "summary": SECRETS["event"]},
        )
    )
    calls.append(
        police.post(
            f"{base}/consents",
            json={
                "given_by": "both",
                "given_on": oslo_today().isoformat(),
                "expires_on": (oslo_today() + timedelta(days=365)).isoformat(),
                "purpose": SECRETS["purpose"],
                "agencies": ["health"],
                "categories": ["general"],
            },
        )
    )
    calls.append(health.get(base))
    calls.append(police.post(f"{base}/transitions", json={"to": "withdrawn", "reason": SECRETS["reason"]}))
    calls.append(
        world.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": SECRETS["username"], "password": SECRETS["password"]},
        )
    )
    calls.append(world.client.get(f"/api/v1/{SECRETS['family name']}"))  # no such route: 404, token or not
    calls.append(world["west"].get(base))  # 404 to another municipality
    assert [c.status_code for c in calls] == [201, 409, 422, 200, 200, 201, 201, 201, 201, 200, 200, 400, 404, 404]
    return len(calls)


def test_one_json_line_per_request_and_no_personal_data_in_any_line(json_app, capsys):
    world = World(json_app, json_app.test_client())
    capsys.readouterr()
    requests = scenario(world)
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for line in lines:
        for what, secret in SECRETS.items():
            assert secret.lower() not in line.lower(), f"the {what} is in a log line: {line}"
    request_lines = [r for r in records if r["logger"] == "casesvc.request"]
    assert len(request_lines) == requests
    police = world["police"].user_id
    for record in request_lines:
        assert set(record) == REQUEST_FIELDS, record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
        assert record["level"] == "INFO" and record["duration_ms"] >= 0 and record["request_id"]
        assert record["route"] is None or ("?" not in record["route"] and record["route"].startswith("/api/v1/"))
    assert [r["status"] for r in request_lines] == [
        201,
        409,
        422,
        200,
        200,
        201,
        201,
        201,
        201,
        200,
        200,
        400,
        404,
        404,
    ]
    youth = request_lines[4]
    assert (youth["method"], youth["route"], youth["actor"]) == ("GET", "/api/v1/youths/<youth_id>", police)
    assert request_lines[11]["actor"] is None and request_lines[11]["route"] == "/api/v1/auth/token"
    assert request_lines[12]["route"] is None  # an unmatched path is not written down
    assert request_lines[13]["actor"] == world["west"].user_id
    assert len({r["request_id"] for r in request_lines}) == requests


def test_the_request_id_sent_is_the_one_logged(json_app, capsys):
    world = World(json_app, json_app.test_client())
    capsys.readouterr()
    resp = world["nav"].get("/api/v1/cases", headers={"X-Request-Id": "trace-4711"})
    assert resp.headers["X-Request-Id"] == "trace-4711"
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (line["request_id"], line["route"], line["status"], line["actor"]) == (
        "trace-4711",
        "/api/v1/cases",
        200,
        world["nav"].user_id,
    )


def test_text_lines_carry_the_same_facts(app, client, capsys):
    configure_logging("text")  # as create_app() sets it up (a command run in-process may have raised the level)
    capsys.readouterr()
    client.get("/api/v1/cases", headers={"X-Request-Id": "trace-text"})
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\S+Z INFO \[trace-text\] casesvc\.request: GET /api/v1/cases 401 [\d.]+ms actor=-", line)


@pytest.mark.parametrize("env,expected", [("production", "json"), ("development", "text"), ("test", "text")])
def test_the_default_format_is_json_in_production_and_text_elsewhere(monkeypatch, tmp_path, env, expected):
    for name in ("CASESVC_LOG_FORMAT", "CASESVC_DATABASE_URL", "CASESVC_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    overrides = {
        "env": env,
        "secret_key": "k" * 48,
        "database_url": "postgresql+psycopg://x@localhost/x",
        "public_url": "https://casesvc.example",
    }
    assert load_settings(tmp_path, overrides).log_format == expected
    monkeypatch.setenv("CASESVC_LOG_FORMAT", "text")
    assert load_settings(tmp_path, overrides).log_format == "text"


def test_a_bad_log_format_is_refused_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("CASESVC_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="CASESVC_LOG_FORMAT"):
        load_settings(tmp_path, {"env": "test"})


def test_the_worker_logs_json_lines_of_the_same_shape(tmp_path):
    """`casesvc reminders work` as a service runs it: a line per pass, JSON like the server's."""
    worker, first = start_reminders_worker(tmp_path, 1, CASESVC_LOG_FORMAT="json")
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    passes = [r for r in records if r["message"] == "reminders pass done"]
    assert passes, err
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert passes[0]["logger"] == "casesvc.reminders" and passes[0]["level"] == "INFO"
    assert passes[0]["reminders_created"] == json.loads(first)["created"]
