"""A read of a case, and an event or a note written under it, load the caller and the case in one
statement (`access.case_view.with_case`). The promises stay those of two statements: a disabled
user or a revoked token is refused at once (README "Identity"), a case the caller may not see is
404 whether or not it exists, and each request leaves its own audit event, naming the case it
asked for (README "The audit log")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from casesvc.auth.models import User
from casesvc.extensions import db
from tests.audit.test_audit_recording import events, head_seq
from tests.conftest import PASSWORD, assert_problem, assert_unauthorized

EVENT = {"kind": "meeting", "summary": "Met at school", "category": "general", "visibility": "shared"}


def _requests(case_id: str):
    return [
        ("get", f"/api/v1/cases/{case_id}", None, 200),
        ("get", f"/api/v1/cases/{case_id}/events", None, 200),
        ("post", f"/api/v1/cases/{case_id}/events", {**EVENT, "occurred_at": datetime.now(UTC).isoformat()}, 201),
        ("post", f"/api/v1/cases/{case_id}/notes", {"body": "A note"}, 201),
    ]


def _call(actor, method, url, body):
    return actor.get(url) if method == "get" else actor.post(url, json=body)


@pytest.mark.parametrize("index", range(4), ids=["get case", "list events", "log event", "write note"])
def test_a_disabled_user_is_refused_at_once_on_a_case(world, app, index):
    case = world.case()
    method, url, body, status = _requests(case["id"])[index]
    police = world["police"]
    assert _call(police, method, url, body).status_code == status
    with app.app_context():
        db.session.get(User, police.user_id).active = False
        db.session.commit()
    refused = assert_unauthorized(_call(police, method, url, body))
    assert not {"youth_id", "summary", "participants", "items"} & set(refused)  # nothing of the case


@pytest.mark.parametrize("index", range(4), ids=["get case", "list events", "log event", "write note"])
def test_a_revoked_token_is_refused_at_once_on_a_case(world, client, index):
    case = world.case()
    method, url, body, status = _requests(case["id"])[index]
    token = client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": "user.police", "password": PASSWORD}
    ).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.open(url, method=method.upper(), json=body, headers=headers).status_code == status
    assert client.post("/api/v1/auth/revoke", data={"token": token}).status_code == 200
    assert_unauthorized(client.open(url, method=method.upper(), json=body, headers=headers))


def test_an_unknown_case_and_a_hidden_one_answer_alike(world):
    hidden = world.case(participants=())  # police and health do not share it
    unknown = str(uuid.uuid4())
    for case_id in (hidden["id"], unknown):
        assert_problem(world["health"].get(f"/api/v1/cases/{case_id}"), 404)
        assert_problem(
            world["health"].post(
                f"/api/v1/cases/{case_id}/events", json={**EVENT, "occurred_at": datetime.now(UTC).isoformat()}
            ),
            404,
        )


def test_each_read_records_the_case_it_asked_for(world, app):
    first, second = world.case(), world.case()
    since = head_seq(app)
    for case in (first, second, first):
        resp = world["police"].get(f"/api/v1/cases/{case['id']}")
        assert resp.status_code == 200 and resp.json["id"] == case["id"]
    recorded = [(e["action"], e["case_id"], e["status"]) for e in events(app, since)]
    assert recorded == [
        ("cases.get_case", first["id"], 200),
        ("cases.get_case", second["id"], 200),
        ("cases.get_case", first["id"], 200),
    ]
