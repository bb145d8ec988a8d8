"""README "Operations" and "Identity": API clients. `casesvc clients create` prints the secret once (only a hash
is stored); `client_credentials` issues tokens held to the client's scopes; admins list and
disable clients, and a disabled client's live tokens stop working at once."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote_plus

import pytest
from sqlalchemy import select

from casesvc.auth.clients import create_client
from casesvc.auth.models import ApiClient
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_oauth_error, assert_problem, assert_token_granted, assert_token_works

TOKEN_URL = "/api/v1/auth/token"


def make_client(app, name="police-integration", role="police", agency="police", scopes="cases:read reminders:read"):
    with app.app_context():
        client, secret = create_client(name, role, agency, scopes)
        db.session.commit()
        return client.id, secret


def client_token(client, client_id, secret, **extra):
    return client.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, **extra}
    )


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def admin_token(client, **extra):
    resp = client.post(
        TOKEN_URL, data={"grant_type": "password", "username": "user.admin", "password": PASSWORD, **extra}
    )
    assert resp.status_code == 200, resp.json
    return resp.json["access_token"]


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(fresh_cli):
    """`casesvc ...` in-process against a fresh, migrated SQLite file with one police agency."""
    run = fresh_cli
    assert run("db", "upgrade")[0] == 0
    assert (
        run("agencies", "create", "oslo-police", "--kind", "police", "--name", "Test politi", "--municipality", "0301")[
            0
        ]
        == 0
    )
    return run


def test_cli_creates_a_client_and_prints_its_secret_once_as_json(cli, tmp_path):
    code, out, err = cli(
        "clients",
        "create",
        "case-sync",
        "--role",
        "police",
        "--agency",
        "oslo-police",
        "--scopes",
        "cases:read cases:write",
    )
    assert code == 0, err
    printed = json.loads(out)
    assert printed["client_id"] and len(printed["client_secret"]) >= 32
    assert printed["scopes"] == ["cases:read", "cases:write"]
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.sqlite3") as conn:
        row = conn.execute("SELECT * FROM api_clients WHERE id = ?", (printed["client_id"],)).fetchone()
    assert row is not None
    assert printed["client_secret"] not in [str(v) for v in row]  # only its hash is stored
    assert hashlib.sha256(printed["client_secret"].encode()).hexdigest() in row
    with sqlite3.connect(tmp_path / "cli.sqlite3") as conn:  # an admin action: audited
        audited = conn.execute(
            "SELECT resource_id FROM audit_inbox WHERE action = 'clients.create' UNION ALL "
            "SELECT resource_id FROM audit_events WHERE action = 'clients.create'"
        ).fetchall()
    assert audited == [(printed["client_id"],)]


@pytest.mark.parametrize(
    "args, says",
    [
        (("--role", "wizard", "--scopes", "cases:read"), "--role"),
        (("--role", "police", "--scopes", "cases:read"), "--agency"),
        (("--role", "police", "--agency", "nowhere", "--scopes", "cases:read"), "nowhere"),
        (("--role", "nav", "--agency", "oslo-police", "--scopes", "cases:read"), "does not match"),
        (("--role", "admin", "--agency", "oslo-police", "--scopes", "admin"), "no agency"),
        (("--role", "police", "--agency", "oslo-police", "--scopes", "cases:read admin"), "admin"),
        (("--role", "auditor", "--scopes", "cases:read"), "cases:read"),
        (("--role", "police", "--agency", "oslo-police", "--scopes", " "), "--scopes"),
    ],
    ids=[
        "unknown-role",
        "staff-without-agency",
        "unknown-agency",
        "kind-mismatch",
        "admin-with-agency",
        "scope-beyond-role",
        "auditor-case-scope",
        "no-scopes",
    ],
)
def test_cli_refuses_bad_clients_in_one_line(cli, args, says):
    code, out, err = cli("clients", "create", "bad-client", *args)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("casesvc: ")
    assert says in lines[0]


def test_cli_refuses_a_duplicate_client_name(cli):
    assert cli("clients", "create", "twice", "--role", "admin", "--scopes", "admin")[0] == 0
    code, _, err = cli("clients", "create", "twice", "--role", "admin", "--scopes", "admin")
    assert code != 0 and "already exists" in err


# --- client_credentials --------------------------------------------------------------------------


def test_client_credentials_issues_a_token_with_the_clients_scopes(world, app, client):
    client_id, secret = make_client(app)
    resp = client_token(client, client_id, secret)
    assert resp.status_code == 200, resp.json
    assert resp.json["token_type"] == "Bearer" and resp.json["expires_in"] == 900
    assert set(resp.json["scope"].split()) == {"cases:read", "reminders:read"}
    assert "refresh_token" not in resp.json  # RFC 6749 §4.4.3
    me = client.get("/api/v1/auth/me", headers=bearer(resp.json["access_token"])).json
    assert me["subject"] == client_id and me["kind"] == "client"
    assert me["role"] == "police" and me["agency"] == "police"
    assert set(me["scopes"]) == {"cases:read", "reminders:read"}


def test_client_credentials_by_http_basic(world, app, client):
    client_id, secret = make_client(app)
    basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    resp = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert resp.status_code == 200, resp.json
    body = assert_token_granted(resp, "cases:read reminders:read")
    assert "refresh_token" not in body
    me = assert_token_works(client, body["access_token"], kind="client", role="police", agency="police")
    assert me["subject"] == client_id


def test_client_token_can_narrow_but_not_exceed_the_clients_scopes(world, app, client):
    client_id, secret = make_client(app)
    narrow = client_token(client, client_id, secret, scope="reminders:read")
    assert narrow.status_code == 200 and narrow.json["scope"] == "reminders:read"
    # cases:write is within the police role, but not given to this client
    wider = client_token(client, client_id, secret, scope="cases:read cases:write")
    assert wider.status_code == 400
    assert wider.json["error"] == "invalid_scope"


def test_client_token_is_held_to_its_scopes_on_the_api(world, app, client):
    world.case()
    client_id, secret = make_client(app)
    token = client_token(client, client_id, secret).json["access_token"]
    listed = client.get("/api/v1/cases", headers=bearer(token))
    assert listed.status_code == 200 and len(listed.json["items"]) == 1  # the police agency's case
    created = client.post("/api/v1/youths", headers=bearer(token), json={"given_name": "X"})
    assert created.status_code == 403
    assert created.json["type"].endswith("insufficient-scope")


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-client", "missing-secret"])
def test_bad_client_credentials_are_401_invalid_client(world, app, client, case):
    client_id, secret = make_client(app)
    params = {
        "wrong-secret": (client_id, secret + "x"),
        "unknown-client": ("no-such-client", secret),
        "missing-secret": (client_id, ""),
    }[case]
    resp = client_token(client, *params)
    assert resp.status_code == 401
    assert resp.json["error"] == "invalid_client"
    assert "access_token" not in resp.json
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_a_users_password_is_not_a_client_secret(world, app, client):
    resp = client_token(client, world["police"].user_id, PASSWORD)
    assert resp.status_code == 401 and resp.json["error"] == "invalid_client"
    assert_oauth_error(resp, 401, "invalid_client")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


# --- administration ------------------------------------------------------------------------------


def test_admin_lists_clients_without_secrets(world, app, client):
    client_id, secret = make_client(app)
    make_client(app, name="audit-export", role="auditor", agency=None, scopes="audit:read")
    resp = client.get("/api/v1/clients", headers=bearer(admin_token(client)))
    assert resp.status_code == 200, resp.json
    items = resp.json["items"]
    assert {c["name"] for c in items} == {"police-integration", "audit-export"}
    police = next(c for c in items if c["name"] == "police-integration")
    assert police["client_id"] == police["id"] == client_id
    assert police["role"] == "police" and police["agency"] == "police" and police["active"] is True
    assert police["scopes"] == ["cases:read", "reminders:read"]
    assert secret not in resp.get_data(as_text=True)
    assert "secret_hash" not in police and "client_secret" not in police


def test_client_list_is_paginated(world, app, client):
    for n in range(3):
        make_client(app, name=f"client-{n}")
    token = admin_token(client)
    first = client.get("/api/v1/clients?limit=2", headers=bearer(token)).json
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(f"/api/v1/clients?limit=2&cursor={first['next_cursor']}", headers=bearer(token)).json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {c["name"] for c in first["items"] + rest["items"]} == {"client-0", "client-1", "client-2"}


@pytest.mark.parametrize("who", ["police", "auditor"])
def test_only_admins_see_clients(world, app, who):
    make_client(app)
    resp = world[who].get("/api/v1/clients")
    assert resp.status_code == 403
    assert resp.json["type"].endswith("admin-required")


def test_an_admin_token_without_the_admin_scope_cannot_manage_clients(world, app, client):
    client_id, _ = make_client(app)
    token = admin_token(client, scope="audit:read")
    for resp in (
        client.get("/api/v1/clients", headers=bearer(token)),
        client.post(f"/api/v1/clients/{client_id}/disable", headers=bearer(token)),
    ):
        assert resp.status_code == 403
        assert resp.json["type"].endswith("insufficient-scope")
    with app.app_context():
        assert db.session.get(ApiClient, client_id).active


def test_disabling_a_client_refuses_its_live_tokens_and_new_ones(world, app, client):
    client_id, secret = make_client(app)
    live = client_token(client, client_id, secret).json["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(live)).status_code == 200

    resp = client.post(f"/api/v1/clients/{client_id}/disable", headers=bearer(admin_token(client)))
    assert resp.status_code == 200, resp.json
    assert resp.json["active"] is False and resp.json["disabled_at"]

    refused = client.get("/api/v1/auth/me", headers=bearer(live))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    again = client_token(client, client_id, secret)
    assert again.status_code == 401 and again.json["error"] == "invalid_client"


def test_disabled_clients_can_be_listed_apart(world, app, client):
    keep, _ = make_client(app, name="keep")
    gone, _ = make_client(app, name="gone")
    token = admin_token(client)
    client.post(f"/api/v1/clients/{gone}/disable", headers=bearer(token))
    disabled = client.get("/api/v1/clients?active=false", headers=bearer(token)).json["items"]
    assert [c["id"] for c in disabled] == [gone]
    single = client.get(f"/api/v1/clients/{keep}", headers=bearer(token))
    assert single.status_code == 200 and single.json["active"] is True


def test_disabling_an_unknown_client_is_404(world, client):
    token = admin_token(client)
    resp = client.post("/api/v1/clients/no-such-client/disable", headers=bearer(token))
    assert resp.status_code == 404
    assert_problem(resp, 404, "not-found")
    assert client.get("/api/v1/clients", headers=bearer(token)).json["items"] == []  # nothing was made


def test_disabling_a_client_is_audited(world, app, client):
    client_id, _ = make_client(app)
    client.post(f"/api/v1/clients/{client_id}/disable", headers=bearer(admin_token(client)))
    events = world["auditor"].get("/api/v1/audit/events?action=clients.disable_client").json["items"]
    assert len(events) == 1
    assert events[0]["actor"] == world["admin"].user_id
    assert events[0]["resource_type"] == "client" and events[0]["resource_id"] == client_id
    assert events[0]["outcome"] == "allowed"


def test_only_a_hash_of_the_secret_is_stored(world, app):
    client_id, secret = make_client(app)
    with app.app_context():
        row = db.session.execute(select(ApiClient.__table__).where(ApiClient.id == client_id)).first()
    assert secret not in [str(v) for v in row]
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
