"""README "Identity": the token endpoint, scopes per role, bearer token checks, /auth/me, and the
settings production refuses to start without."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token, decode_token

from casesvc import create_app
from casesvc.auth.models import User
from casesvc.common.timeutil import oslo_today
from casesvc.config import ConfigError, load_settings
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_token_granted, assert_token_works, assert_unauthorized, youth_number

TOKEN_URL = "/api/v1/auth/token"
STAFF_SCOPES = {
    "cases:read",
    "cases:write",
    "notes:read",
    "notes:write",
    "consents:write",
    "reminders:read",
    "reminders:write",
}
MAX_SCOPES = {
    "police": STAFF_SCOPES,
    "health": STAFF_SCOPES,
    "nav": STAFF_SCOPES,
    "cw": STAFF_SCOPES,
    "slt": STAFF_SCOPES | {"statistics:read"},
    "admin": {"admin", "audit:read", "statistics:read"},
    "auditor": {"audit:read"},
}


def login(client, username: str, password: str = PASSWORD, as_json: bool = False, **extra):
    params = {"grant_type": "password", "username": username, "password": password, **extra}
    if as_json:
        return client.post(TOKEN_URL, json=params)
    return client.post(TOKEN_URL, data=params)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def assert_401(resp) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = resp.json
    assert body["status"] == 401 and body["type"] and body["title"] and body["detail"]


# --- the token endpoint --------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_password_grant_answers_an_rfc6749_token(world, client, as_json):
    resp = login(client, "user.police", as_json=as_json)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    assert set(body["scope"].split()) == STAFF_SCOPES
    assert "no-store" in resp.headers["Cache-Control"]
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json["subject"] == world["police"].user_id


@pytest.mark.parametrize(
    "username,password",
    [("user.police", "wrong password entirely"), ("user.nobody", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_failed_login_is_400_invalid_grant(world, client, username, password):
    resp = login(client, username, password)
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"
    assert "access_token" not in resp.json
    assert "no-store" in resp.headers["Cache-Control"]


def test_wrong_password_and_unknown_user_answer_the_same(world, client):
    wrong = login(client, "user.police", "wrong password entirely")
    unknown = login(client, "user.nobody")
    assert wrong.json == unknown.json


def test_unsupported_grant_type(world, client):
    resp = client.post(TOKEN_URL, data={"grant_type": "authorization_code", "code": "x"})
    assert resp.status_code == 400
    assert resp.json["error"] == "unsupported_grant_type"


def test_missing_grant_type_or_credentials_is_invalid_request(world, client):
    assert client.post(TOKEN_URL, data={"username": "user.police"}).json["error"] == "invalid_request"
    assert (
        client.post(TOKEN_URL, data={"grant_type": "password", "username": "user.police"}).json["error"]
        == "invalid_request"
    )


def test_disabled_user_cannot_log_in(world, client, app):
    assert login(client, "user.health").status_code == 200
    with app.app_context():
        db.session.get(User, world["health"].user_id).active = False
        db.session.commit()
    resp = login(client, "user.health")
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"


# --- scopes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(MAX_SCOPES))
def test_each_role_gets_its_maximum_scope_set(world, client, code):
    resp = login(client, f"user.{code}")
    assert resp.status_code == 200
    assert set(resp.json["scope"].split()) == MAX_SCOPES[code]


def test_asking_a_subset_gives_that_subset(world, client):
    resp = login(client, "user.police", scope="cases:read notes:read")
    assert resp.status_code == 200
    assert set(resp.json["scope"].split()) == {"cases:read", "notes:read"}
    me = client.get("/api/v1/auth/me", headers=bearer(resp.json["access_token"]))
    assert set(me.json["scopes"]) == {"cases:read", "notes:read"}


def test_narrowed_token_is_held_to_its_scopes(world, client):
    token = login(client, "user.police", scope="cases:read").json["access_token"]
    assert client.get("/api/v1/youths", headers=bearer(token)).status_code == 200
    born = date(oslo_today().year - 15, 4, 2)
    body = {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": born.isoformat(),
        "national_id": youth_number(born),
        "municipality": "0301",
    }
    resp = client.post("/api/v1/youths", headers=bearer(token), json=body)
    assert resp.status_code == 403
    assert resp.json["type"].endswith("insufficient-scope")


@pytest.mark.parametrize(
    "code,scope",
    [
        ("police", "cases:read admin"),
        ("police", "audit:read"),
        ("admin", "cases:read"),
        ("auditor", "admin"),
        ("auditor", "notes:read"),
        ("police", "no-such:scope"),
    ],
)
def test_asking_a_scope_the_role_lacks_is_invalid_scope(world, client, code, scope):
    resp = login(client, f"user.{code}", scope=scope)
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_scope"
    assert "access_token" not in resp.json


# --- refresh -------------------------------------------------------------------------------------


def test_refresh_grant_gives_a_new_access_token(world, client):
    first = login(client, "user.police").json
    resp = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert resp.status_code == 200, resp.json
    assert resp.json["token_type"] == "Bearer"
    assert resp.json["access_token"] != first["access_token"]
    assert set(resp.json["scope"].split()) == STAFF_SCOPES
    assert client.get("/api/v1/auth/me", headers=bearer(resp.json["access_token"])).status_code == 200


def test_refresh_cannot_widen_scopes(world, client):
    narrow = login(client, "user.police", scope="cases:read").json
    wider = client.post(
        TOKEN_URL,
        data={
            "grant_type": "refresh_token",
            "refresh_token": narrow["refresh_token"],
            "scope": "cases:read cases:write",
        },
    )
    assert wider.status_code == 400
    assert wider.json["error"] == "invalid_scope"
    same = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": narrow["refresh_token"]})
    assert same.status_code == 200
    assert same.json["scope"].split() == ["cases:read"]


def test_refresh_can_narrow_further(world, client):
    full = login(client, "user.police").json
    resp = client.post(
        TOKEN_URL, json={"grant_type": "refresh_token", "refresh_token": full["refresh_token"], "scope": "notes:read"}
    )
    assert resp.status_code == 200
    assert resp.json["scope"] == "notes:read"


def test_access_token_is_not_a_refresh_token(world, client):
    access = login(client, "user.police").json["access_token"]
    resp = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": access})
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"


def test_refresh_for_a_disabled_user_is_refused(world, client, app):
    refresh = login(client, "user.nav").json["refresh_token"]
    with app.app_context():
        db.session.get(User, world["nav"].user_id).active = False
        db.session.commit()
    resp = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"


def test_garbage_refresh_token_is_invalid_grant(world, client):
    resp = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": "not.a.token"})
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_grant"


# --- bearer tokens -------------------------------------------------------------------------------


def test_me_returns_subject_role_agency_and_scopes(world, client):
    token = login(client, "user.health").json["access_token"]
    me = client.get("/api/v1/auth/me", headers=bearer(token)).json
    assert me["subject"] == world["health"].user_id
    assert me["role"] == "school_health"
    assert me["agency"] == "health"
    assert set(me["scopes"]) == STAFF_SCOPES


def test_me_for_admin_has_no_agency(world, client):
    token = login(client, "user.admin").json["access_token"]
    me = client.get("/api/v1/auth/me", headers=bearer(token)).json
    assert me["role"] == "admin"
    assert me["agency"] is None
    assert set(me["scopes"]) == {"admin", "audit:read", "statistics:read"}


def test_missing_token_is_401(world, client):
    assert_401(client.get("/api/v1/auth/me"))
    assert_401(client.get("/api/v1/cases"))


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 40]
)
def test_malformed_token_is_401(world, client, header):
    assert_401(client.get("/api/v1/auth/me", headers={"Authorization": header}))


def test_expired_token_is_401(world, client, app):
    with app.app_context():
        token = create_access_token(
            identity=world["police"].user_id,
            expires_delta=timedelta(seconds=-30),
            additional_claims={"role": "police", "agency": "police", "scope": " ".join(sorted(STAFF_SCOPES))},
        )
    resp = client.get("/api/v1/auth/me", headers=bearer(token))
    assert_401(resp)
    assert "expired" in resp.json["detail"]


def test_tampered_payload_is_401(world, client):
    header, payload, signature = world["police"].token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"], claims["agency"], claims["scope"] = "admin", None, "admin audit:read"
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_401(client.get("/api/v1/auth/me", headers=bearer(forged)))


def test_tampered_signature_is_401(world, client):
    header, payload, signature = world["police"].token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    forged = f"{header}.{payload}.{b64(bytes(raw))}"
    assert_401(client.get("/api/v1/auth/me", headers=bearer(forged)))


def test_token_signed_with_another_key_is_401(world, client, app):
    with app.app_context():
        claims = decode_token(world["police"].token)
    forged = pyjwt.encode(claims, "another-key-that-is-long-enough-for-hs256-0123456789", algorithm="HS256")
    assert_401(client.get("/api/v1/auth/me", headers=bearer(forged)))


def test_alg_none_token_is_401(world, client, app):
    with app.app_context():
        claims = decode_token(world["police"].token)
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}."
        assert_401(client.get("/api/v1/auth/me", headers=bearer(unsigned)))


def test_refresh_token_used_as_access_token_is_401(world, client):
    refresh = login(client, "user.police").json["refresh_token"]
    assert_401(client.get("/api/v1/auth/me", headers=bearer(refresh)))
    assert_401(client.get("/api/v1/youths", headers=bearer(refresh)))


def test_token_of_another_installation_is_401(world, client, tmp_path):
    """Same claims, signed by a service with another secret key."""
    other = create_app(
        {
            "env": "test",
            "database_url": f"sqlite:///{tmp_path / 'x.sqlite3'}",
            "secret_key": "a-completely-different-signing-key-0123456789",
        },
        instance_path=tmp_path,
    )
    with other.app_context():
        token = create_access_token(
            identity=world["police"].user_id,
            additional_claims={"role": "police", "agency": "police", "scope": " ".join(sorted(STAFF_SCOPES))},
        )
    assert_401(client.get("/api/v1/auth/me", headers=bearer(token)))


def test_a_token_is_verified_once_then_remembered(world, client, monkeypatch):
    from casesvc.auth import principal

    verified = []
    real = principal.verify_jwt_in_request
    monkeypatch.setattr(principal, "verify_jwt_in_request", lambda: verified.append(1) or real())
    fresh = world.as_user(world["police"].user_id, "police", "police", "user.police")
    for _ in range(3):
        assert client.get("/api/v1/auth/me", headers=bearer(fresh.token)).status_code == 200
    assert len(verified) == 1


def test_a_remembered_token_is_refused_once_it_expires(world, client, app):
    """The remembered claims are checked for expiry on every use: past `exp`, the token goes
    back through the full check, which refuses it."""
    with app.app_context():
        token = create_access_token(
            identity=world["police"].user_id,
            expires_delta=timedelta(seconds=-1),
            additional_claims={"role": "police", "agency": "police", "scope": " ".join(sorted(STAFF_SCOPES))},
        )
    claims = pyjwt.decode(token, options={"verify_signature": False})
    app.extensions.setdefault("casesvc.verified_claims", {})[token] = claims  # keyed by the token itself
    resp = client.get("/api/v1/auth/me", headers=bearer(token))
    assert_401(resp)
    assert "expired" in resp.json["detail"]


def test_what_another_installation_verified_is_not_remembered_here(world, client, tmp_path):
    other = create_app(
        {
            "env": "test",
            "database_url": f"sqlite:///{tmp_path / 'x.sqlite3'}",
            "secret_key": "a-completely-different-signing-key-0123456789",
        },
        instance_path=tmp_path,
    )
    with other.app_context():
        token = create_access_token(
            identity=world["police"].user_id,
            additional_claims={"role": "police", "agency": "police", "scope": " ".join(sorted(STAFF_SCOPES))},
        )
    with other.test_request_context(headers=bearer(token)):
        from casesvc.auth.principal import bearer_token, verified_claims

        assert verified_claims(bearer_token())["sub"] == world["police"].user_id  # remembered by the other one
    assert_401(client.get("/api/v1/auth/me", headers=bearer(token)))


# --- production settings -------------------------------------------------------------------------

GOOD_KEY = "k" * 48
PG_URL = "postgresql+psycopg://casesvc@db.invalid/casesvc"


@pytest.fixture
def production(monkeypatch):
    for name in ("CASESVC_SECRET_KEY", "CASESVC_DATABASE_URL", "CASESVC_TOKEN_TTL", "CASESVC_REFRESH_TTL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASESVC_ENV", "production")
    monkeypatch.setenv("CASESVC_PUBLIC_URL", "https://casesvc.example")
    return monkeypatch


def test_production_starts_with_a_long_key_and_postgresql(production, tmp_path):
    production.setenv("CASESVC_SECRET_KEY", GOOD_KEY)
    production.setenv("CASESVC_DATABASE_URL", PG_URL)
    settings = load_settings(tmp_path)
    assert settings.env == "production"
    assert settings.secret_key == GOOD_KEY
    assert settings.password_hash_profile == "default"
    assert not settings.allow_synthetic_ids


def test_production_refuses_to_start_without_a_secret_key(production, tmp_path):
    production.setenv("CASESVC_DATABASE_URL", PG_URL)
    with pytest.raises(ConfigError, match="CASESVC_SECRET_KEY"):
        load_settings(tmp_path)
    assert not (tmp_path / "secret_key").exists()  # no silently generated key either
    with pytest.raises(ConfigError, match="CASESVC_SECRET_KEY"):
        create_app(instance_path=tmp_path)


def test_production_refuses_a_short_secret_key(production, tmp_path):
    production.setenv("CASESVC_DATABASE_URL", PG_URL)
    production.setenv("CASESVC_SECRET_KEY", "k" * 31)
    with pytest.raises(ConfigError, match="CASESVC_SECRET_KEY"):
        load_settings(tmp_path)


@pytest.mark.parametrize("url", [None, "sqlite:///somewhere/casesvc.sqlite3"], ids=["default", "explicit"])
def test_production_refuses_sqlite(production, tmp_path, url):
    production.setenv("CASESVC_SECRET_KEY", GOOD_KEY)
    if url:
        production.setenv("CASESVC_DATABASE_URL", url)
    with pytest.raises(ConfigError, match="CASESVC_DATABASE_URL"):
        load_settings(tmp_path)


def test_a_disabled_users_live_access_token_is_refused_at_once(world, app):
    police = world["police"]
    assert police.get("/api/v1/auth/me").status_code == 200
    with app.app_context():
        db.session.get(User, police.user_id).active = False
        db.session.commit()
    resp = police.get("/api/v1/auth/me")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_whose_agency_claim_no_longer_matches_the_user_is_refused(world):
    police = world["police"]
    forged = world.as_user(police.user_id, "police", "police2", "user.police")
    assert forged.get("/api/v1/auth/me").status_code == 401
    assert_unauthorized(forged.get("/api/v1/auth/me"))
    assert forged.get("/api/v1/cases").status_code == 401  # refused everywhere, not only by /me
    assert_token_works(police.client, police.token, "user.police", agency="police")  # the user's own token stands


@pytest.mark.parametrize(
    "url_tail, body",
    [
        ("", {"origin": "nonsense"}),  # create case
        ("/{case}/events", {"kind": "nonsense"}),  # create event
        ("/{case}/notes", {}),  # create note
    ],
)
def test_missing_scope_is_403_before_the_body_is_validated(world, url_tail, body):
    case = world.case()
    reader = world.actor("police", "police", "reader.police", scopes={"cases:read", "notes:read"})
    resp = reader.post("/api/v1/cases" + url_tail.format(case=case["id"]), json=body)
    assert resp.status_code == 403
    assert resp.json["type"].endswith("insufficient-scope")
    assert "errors" not in resp.json


# --- signing key rotation ------------------------------------------------------------------------

OLD_KEY = "old-signing-key-" + "o" * 40
NEW_KEY = "new-signing-key-" + "n" * 40


@pytest.fixture
def installation(app, tmp_path):
    """`installation(key, previous=())`: a worker of this installation (same database) signing with `key`."""
    url = app.config["CASESVC"].database_url

    def make(key, previous=()):
        return create_app(
            {
                "env": "test",
                "database_url": url,
                "secret_key": key,
                "secret_keys_previous": tuple(previous),
                "audit_seal_interval": 1e9,
            },
            instance_path=tmp_path,
        )

    return make


def test_tokens_name_their_signing_key_in_kid(world, client):
    from casesvc.auth.keys import kid_for

    token = login(client, "user.police").json["access_token"]
    kid = pyjwt.get_unverified_header(token)["kid"]
    assert kid == kid_for(client.application.config["CASESVC"].secret_key)
    assert client.application.config["CASESVC"].secret_key[:8] not in kid


def test_after_rotation_tokens_of_the_previous_key_keep_working_until_it_is_dropped(world, installation):
    before = installation(OLD_KEY).test_client()
    session = login(before, "user.police").json

    rotated = installation(NEW_KEY, previous=[OLD_KEY]).test_client()
    assert rotated.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 200
    assert_token_works(rotated, session["access_token"], "user.police", role="police")
    renewed = rotated.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]})
    assert renewed.status_code == 200, renewed.json
    assert_token_granted(renewed, session["scope"])
    assert before.get("/api/v1/auth/me", headers=bearer(renewed.json["access_token"])).status_code == 401  # new key
    assert_401(before.get("/api/v1/auth/me", headers=bearer(renewed.json["access_token"])))

    dropped = installation(NEW_KEY).test_client()
    assert_401(dropped.get("/api/v1/auth/me", headers=bearer(session["access_token"])))
    assert dropped.get("/api/v1/auth/me", headers=bearer(renewed.json["access_token"])).status_code == 200
    assert_token_works(dropped, renewed.json["access_token"], "user.police", role="police")


def test_a_token_naming_an_unknown_kid_is_401(world, client, app):
    with app.app_context():
        claims = decode_token(world["police"].token)
    forged = pyjwt.encode(
        claims, "a-key-nobody-configured-0123456789abcdef", algorithm="HS256", headers={"kid": "0123456789abcdef"}
    )
    assert_401(client.get("/api/v1/auth/me", headers=bearer(forged)))
