"""README "Identity": refresh tokens rotate and a reused one revokes its whole login; RFC 7009
revocation is refused on the very next request, in every worker process, and costs no extra
query."""

from __future__ import annotations

from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_refresh_token, decode_token
from sqlalchemy import event, func, select

from casesvc import create_app
from casesvc.auth.models import RefreshFamily, RefreshToken, RevokedToken
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_oauth_error, assert_token_granted, assert_token_works

TOKEN_URL = "/api/v1/auth/token"
REVOKE_URL = "/api/v1/auth/revoke"
ME = "/api/v1/auth/me"


def login(client, username="user.police", **extra):
    resp = client.post(TOKEN_URL, data={"grant_type": "password", "username": username, "password": PASSWORD, **extra})
    assert resp.status_code == 200, resp.json
    return resp.json


def refresh(client, refresh_token, **extra):
    return client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def me(client, token):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


def assert_refused(resp, detail_word=None):
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.mimetype == "application/problem+json"
    if detail_word:
        assert detail_word in resp.json["detail"]


@pytest.fixture
def second_worker(app, tmp_path):
    """Another process's app: same database, same signing key, nothing else shared."""
    settings = app.config["CASESVC"]
    other = create_app(
        {
            "env": "test",
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "audit_seal_interval": 1e9,
        },
        instance_path=tmp_path,
    )
    return other.test_client()


# --- rotation ------------------------------------------------------------------------------------


def test_each_refresh_returns_a_new_refresh_token_that_works(world, client):
    first = login(client)
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.json
    assert second.json["refresh_token"] != first["refresh_token"]
    third = refresh(client, second.json["refresh_token"])
    assert third.status_code == 200, third.json
    assert me(client, third.json["access_token"]).status_code == 200


def test_a_refresh_token_can_be_spent_only_once(world, client):
    first = login(client)
    assert refresh(client, first["refresh_token"]).status_code == 200
    again = refresh(client, first["refresh_token"])
    assert again.status_code == 400
    assert again.json["error"] == "invalid_grant"
    assert "access_token" not in again.json


def test_reusing_a_spent_refresh_token_revokes_the_whole_login(world, client):
    first = login(client)
    rotated = refresh(client, first["refresh_token"]).json
    assert me(client, rotated["access_token"]).status_code == 200
    assert_token_works(client, rotated["access_token"], "user.police")

    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 400  # the theft signal
    assert_oauth_error(reused, 400, "invalid_grant")

    # the thief's and the user's newest tokens alike: refresh and access tokens of that login
    newest = refresh(client, rotated["refresh_token"])
    assert newest.status_code == 400 and newest.json["error"] == "invalid_grant"
    assert_refused(me(client, rotated["access_token"]), "revoked")
    assert_refused(me(client, first["access_token"]), "revoked")


def test_reuse_revokes_only_that_login_not_the_users_other_sessions(world, client):
    stolen = login(client)
    other_device = login(client)
    refresh(client, stolen["refresh_token"])
    refresh(client, stolen["refresh_token"])
    assert_refused(me(client, stolen["access_token"]), "revoked")  # the stolen login did end
    assert me(client, other_device["access_token"]).status_code == 200
    assert_token_works(client, other_device["access_token"], "user.police")
    renewed = refresh(client, other_device["refresh_token"])
    assert renewed.status_code == 200
    assert_token_granted(renewed, other_device["scope"])
    assert_token_works(client, renewed.json["access_token"], "user.police")


def test_refresh_reuse_is_audited_with_the_user(world, client, app):
    first = login(client)
    refresh(client, first["refresh_token"])
    refresh(client, first["refresh_token"])
    events = world["auditor"].get("/api/v1/audit/events?action=auth.refresh_token_reuse")
    assert events.status_code == 200, events.json
    [event_] = events.json["items"]
    assert event_["actor"] == world["police"].user_id
    assert event_["actor_role"] == "police" and event_["actor_agency"] == "police"
    with app.app_context():
        family = db.session.get(RefreshFamily, decode_token(first["access_token"])["fam"])
        assert family.revoked_at is not None and family.revoked_reason == "reuse"


def test_a_refresh_token_not_issued_by_a_login_is_refused(world, client, app):
    """A validly signed refresh token that was never stored (e.g. minted before rotation
    existed) cannot be exchanged."""
    with app.app_context():
        forged = create_refresh_token(
            identity=world["police"].user_id,
            additional_claims={"role": "police", "agency": "police", "scope": "cases:read"},
        )
    resp = refresh(client, forged)
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"


def test_refresh_tokens_are_stored_by_jti_only(world, client, app):
    body = login(client)
    with app.app_context():
        rows = db.session.scalars(select(RefreshToken)).all()
        assert [r.jti for r in rows] == [decode_token(body["refresh_token"])["jti"]]
        assert rows[0].used_at is None


# --- revocation (RFC 7009) -----------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_a_revoked_access_token_is_refused_on_the_next_request(world, client, as_json):
    token = login(client)["access_token"]
    assert me(client, token).status_code == 200
    params = {"token": token, "token_type_hint": "access_token"}
    resp = client.post(REVOKE_URL, json=params) if as_json else client.post(REVOKE_URL, data=params)
    assert resp.status_code == 200
    assert "no-store" in resp.headers["Cache-Control"]
    assert_refused(me(client, token), "revoked")
    assert_refused(client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}))


def test_revocation_needs_no_bearer_token_the_token_is_the_credential(world, client):
    token = login(client)["access_token"]
    resp = client.post(REVOKE_URL, data={"token": token})  # no Authorization header, form-encoded
    assert resp.status_code == 200
    assert resp.json == {} and "no-store" in resp.headers["Cache-Control"]
    assert_refused(me(client, token))


def test_revoking_one_access_token_leaves_the_users_other_tokens_working(world, client):
    first, second = login(client), login(client)
    client.post(REVOKE_URL, data={"token": first["access_token"]})
    assert_refused(me(client, first["access_token"]), "revoked")  # the one revoked is
    assert me(client, second["access_token"]).status_code == 200
    assert world["police"].get(ME).status_code == 200
    assert_token_works(client, second["access_token"], "user.police")
    assert_token_works(client, world["police"].token, "user.police")


def test_revocation_is_seen_at_once_by_every_worker_process(world, client, second_worker):
    token = login(client)["access_token"]
    assert me(second_worker, token).status_code == 200
    assert_token_works(second_worker, token, "user.police")
    assert client.post(REVOKE_URL, data={"token": token}).status_code == 200  # through this worker
    assert_refused(me(second_worker, token), "revoked")  # seen by the other


def test_revoking_a_refresh_token_ends_the_whole_login(world, client):
    session = login(client)
    rotated = refresh(client, session["refresh_token"]).json
    assert (
        client.post(
            REVOKE_URL, data={"token": rotated["refresh_token"], "token_type_hint": "refresh_token"}
        ).status_code
        == 200
    )
    assert refresh(client, rotated["refresh_token"]).json["error"] == "invalid_grant"
    assert_refused(me(client, rotated["access_token"]), "revoked")
    assert_refused(me(client, session["access_token"]), "revoked")


def test_a_wrong_token_type_hint_does_not_matter(world, client):
    session = login(client)
    client.post(REVOKE_URL, data={"token": session["access_token"], "token_type_hint": "refresh_token"})
    assert_refused(me(client, session["access_token"]))


@pytest.mark.parametrize("value", ["not-a-token", "a.b.c"])
def test_revoking_an_invalid_token_answers_200_and_changes_nothing(world, client, app, value):
    resp = client.post(REVOKE_URL, data={"token": value})
    assert resp.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RevokedToken)) == 0


def test_a_token_signed_by_someone_else_cannot_be_used_to_revoke_its_jti(world, client, app):
    """Otherwise anyone could revoke anyone's token by guessing or copying its jti."""
    victim = login(client)["access_token"]
    with app.app_context():
        claims = decode_token(victim)
    forged = pyjwt.encode(claims, "someone-elses-key-that-is-long-enough-0123456789", algorithm="HS256")
    assert client.post(REVOKE_URL, data={"token": forged}).status_code == 200
    assert me(client, victim).status_code == 200
    assert_token_works(client, victim, "user.police")


def test_revoke_without_a_token_is_invalid_request(world, client):
    resp = client.post(REVOKE_URL, data={"token_type_hint": "access_token"})
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_request"


def test_revocation_is_audited_with_the_tokens_owner(world, client):
    token = login(client, username="user.health")["access_token"]
    client.post(REVOKE_URL, data={"token": token})
    events = world["auditor"].get("/api/v1/audit/events?action=auth.revoke").json["items"]
    assert [e["actor"] for e in events] == [world["health"].user_id]
    assert events[0]["outcome"] == "allowed"


def test_expired_denylist_entries_are_pruned(world, client, app):
    with app.app_context():
        now = utcnow()
        db.session.add(RevokedToken(jti="long-gone", expires_at=now - timedelta(days=2), revoked_at=now))
        db.session.commit()
    token = login(client)["access_token"]
    client.post(REVOKE_URL, data={"token": token})
    with app.app_context():
        assert db.session.get(RevokedToken, "long-gone") is None
        assert db.session.get(RevokedToken, decode_token(token)["jti"]) is not None


def test_the_revocation_check_is_folded_into_the_query_that_loads_the_caller(world, client, app):
    """At most one extra indexed lookup per request: here none — the denylist and the login's
    family are EXISTS clauses of the one SELECT that reads the user and their agency."""
    token = login(client)["access_token"]
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert me(client, token).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    touching = [s for s in statements if "revoked_tokens" in s or "refresh_families" in s]
    assert len(touching) == 1, statements
    assert "users" in touching[0] and "agencies" in touching[0]
