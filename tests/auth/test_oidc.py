"""README "Identity": tokens of an external identity provider, with keys generated here and the JWKS
served over HTTP on loopback. RS256 and ES256 are accepted; iss, aud, exp and nbf are checked
with a small clock skew; keys are cached and fetched again on an unknown kid, at most once per
interval; claims map to role, agency and scopes; users are provisioned on first sight."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select

from casesvc import create_app
from casesvc.auth import oidc
from casesvc.auth.models import ExternalIdentity, User
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_oauth_error, assert_problem

ISSUER = "https://idp.example.test/realms/casesvc"
AUDIENCE = "casesvc-api"
ME = "/api/v1/auth/me"


# --- keys and a JWKS endpoint --------------------------------------------------------------------


class Key:
    def __init__(self, alg: str, kid: str):
        self.alg, self.kid = alg, kid
        self.private = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwk(self) -> dict:
        algo = pyjwt.algorithms.RSAAlgorithm if self.alg == "RS256" else pyjwt.algorithms.ECAlgorithm
        return {**json.loads(algo.to_jwk(self.private.public_key())), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        return pyjwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


@pytest.fixture(scope="module")
def rsa_key():
    return Key("RS256", "rsa-1")


@pytest.fixture(scope="module")
def ec_key():
    return Key("ES256", "ec-1")


class JwksServer:
    """Serves `keys` at /jwks and counts the requests; `hang` makes it never answer."""

    def __init__(self):
        self.keys: list[Key] = []
        self.hits = 0
        self.hang = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.hang.is_set():
                    outer.release.wait(10)
                    return
                body = json.dumps({"keys": [k.jwk() for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks(rsa_key, ec_key):
    server = JwksServer()
    server.keys = [rsa_key, ec_key]
    yield server
    server.close()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def make_oidc_app(app, jwks, tmp_path):
    """An app (another worker, same database) trusting the test provider."""
    settings = app.config["CASESVC"]

    def make(**overrides):
        values = {
            "env": "test",
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "audit_seal_interval": 1e9,
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": jwks.url,
            "oidc_jwks_timeout": 2.0,
            **overrides,
        }
        made = create_app(values, instance_path=tmp_path)
        clock = FakeClock()
        oidc.jwks_cache(made).clock = clock
        made.clock = clock
        return made

    return make


@pytest.fixture
def oidc_app(make_oidc_app):
    return make_oidc_app()


@pytest.fixture
def idp(oidc_app, world):
    """A test client of the OIDC app; the world's agencies exist."""
    return oidc_app.test_client()


def claims(sub="alice", role="police", agency="police", scope="cases:read cases:write", **extra) -> dict:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "casesvc_role": role,
        "casesvc_agency": agency,
        "scope": scope,
        **extra,
    }
    return {k: v for k, v in body.items() if v is not None}


def call(client, token, url=ME):
    return client.get(url, headers={"Authorization": f"Bearer {token}"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def assert_401(resp):
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.mimetype == "application/problem+json"


def users_named(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User).where(User.username == name))


# --- accepted tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa_key", "ec_key"], ids=["RS256", "ES256"])
def test_provider_tokens_signed_with_rs256_or_es256_are_accepted(idp, request, which):
    key = request.getfixturevalue(which)
    resp = call(idp, key.sign(claims(sub=f"user-{key.alg}")))
    assert resp.status_code == 200, resp.json
    assert resp.json["role"] == "police" and resp.json["agency"] == "police"
    assert set(resp.json["scopes"]) == {"cases:read", "cases:write"}
    assert resp.json["municipalities"] == ["0301"]


def test_a_user_is_provisioned_on_first_sight_by_sub_and_reused_after(idp, oidc_app, rsa_key):
    first = call(idp, rsa_key.sign(claims(sub="alice")))
    second = call(idp, rsa_key.sign(claims(sub="alice", scope="cases:read")))
    assert first.status_code == second.status_code == 200
    assert first.json["subject"] == second.json["subject"]
    with oidc_app.app_context():
        identity = db.session.get(ExternalIdentity, (ISSUER, "alice"))
        assert identity is not None and identity.user_id == first.json["subject"]
        user = db.session.get(User, identity.user_id)
        assert (user.role, user.agency_code, user.active) == ("police", "police", True)
    assert users_named(oidc_app, "oidc:alice") == 1


def test_two_first_requests_at_once_leave_one_user_and_no_orphan(idp, oidc_app):
    """The second of two first requests finds the identity made by the first when it inserts its
    own: its user goes with it, on a read's connection in autocommit too (no active user without
    an identity, which no one could sign in as or disable through the provider)."""
    from casesvc.common.connection import close_for_read, open_for_read

    with oidc_app.test_request_context("/api/v1/cases"):
        open_for_read()  # as a GET does before it asks who the caller is
        try:
            oidc._provision(ISSUER, "bob", "police", "police")
            oidc._provision(ISSUER, "bob", "police", "police")  # the loser of the race
        finally:
            close_for_read()
    with oidc_app.app_context():
        names = db.session.scalars(select(User.username).where(User.username.like("oidc:bob%"))).all()
        identity = db.session.get(ExternalIdentity, (ISSUER, "bob"))
        assert names == ["oidc:bob"]
        assert identity is not None and db.session.get(User, identity.user_id).username == "oidc:bob"


def test_a_provisioned_user_cannot_log_in_with_a_password(idp, client, rsa_key):
    call(idp, rsa_key.sign(claims(sub="alice")))
    for password in ("!external", "", PASSWORD):
        resp = client.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": "oidc:alice", "password": password}
        )
        assert resp.status_code == 400
        assert_oauth_error(resp, 400, "invalid_request" if password == "" else "invalid_grant")


def test_a_provider_user_works_on_the_api_under_the_access_policy(idp, world, rsa_key):
    world.case(by="police")
    token = rsa_key.sign(claims(sub="bob", agency="police"))
    assert len(call(idp, token, "/api/v1/cases").json["items"]) == 1
    other = rsa_key.sign(claims(sub="carol", role="police", agency="police2"))
    assert call(idp, other, "/api/v1/cases").json["items"] == []  # not a participant


def test_scopes_the_role_may_not_hold_are_dropped(idp, rsa_key):
    resp = call(idp, rsa_key.sign(claims(scope="cases:read admin audit:read openid profile")))
    assert resp.status_code == 200
    assert resp.json["scopes"] == ["cases:read"]


def test_admin_and_auditor_come_without_agency(idp, rsa_key):
    resp = call(idp, rsa_key.sign(claims(sub="root", role="admin", agency=None, scope="admin audit:read")))
    assert resp.status_code == 200, resp.json
    assert resp.json["role"] == "admin" and resp.json["agency"] is None


def test_claim_names_are_configurable(make_oidc_app, world, rsa_key):
    custom = make_oidc_app(
        oidc_role_claim="https://casesvc.example/role", oidc_agency_claim="org", oidc_scope_claim="scp"
    ).test_client()
    token = rsa_key.sign(
        claims(
            role=None,
            agency=None,
            scope=None,
            **{"https://casesvc.example/role": "school_health", "org": "health", "scp": ["notes:read", "cases:read"]},
        )
    )
    resp = call(custom, token)
    assert resp.status_code == 200, resp.json
    assert (resp.json["role"], resp.json["agency"]) == ("school_health", "health")
    assert resp.json["scopes"] == ["cases:read", "notes:read"]
    # the default claim names mean nothing to it
    assert call(custom, rsa_key.sign(claims())).status_code == 403


def test_the_provider_moving_a_user_to_another_agency_is_followed(idp, oidc_app, rsa_key):
    first = call(idp, rsa_key.sign(claims(sub="dana", agency="police")))
    moved = call(idp, rsa_key.sign(claims(sub="dana", agency="police2")))
    assert moved.status_code == 200 and moved.json["agency"] == "police2"
    assert moved.json["subject"] == first.json["subject"]
    with oidc_app.app_context():
        assert db.session.get(User, first.json["subject"]).agency_code == "police2"


def test_the_services_own_tokens_still_work_beside_the_provider(idp, world):
    resp = idp.get(ME, headers={"Authorization": f"Bearer {world['health'].token}"})
    assert resp.status_code == 200 and resp.json["agency"] == "health"
    assert resp.json["subject"] == world["health"].user_id
    assert (resp.json["username"], resp.json["role"], resp.json["kind"]) == ("user.health", "school_health", "user")


# --- 403: who the token says is unknown ----------------------------------------------------------


@pytest.mark.parametrize(
    "role, agency, slug",
    [
        ("wizard", "police", "unknown-role"),
        (None, "police", "unknown-role"),
        ("police", "atlantis", "unknown-agency"),
        ("nav", "police", "unknown-agency"),  # an agency of another kind
        ("police", None, "unknown-agency"),  # staff need an agency
        ("auditor", "police", "unknown-agency"),  # auditors have none
    ],
    ids=["unknown-role", "no-role", "unknown-agency", "wrong-kind", "staff-without-agency", "auditor-with-agency"],
)
def test_unknown_role_or_agency_is_403_and_provisions_nobody(idp, oidc_app, rsa_key, role, agency, slug):
    resp = call(idp, rsa_key.sign(claims(sub="mallory", role=role, agency=agency)))
    assert resp.status_code == 403, resp.json
    assert resp.json["type"].endswith(slug)
    with oidc_app.app_context():
        assert db.session.get(ExternalIdentity, (ISSUER, "mallory")) is None


# --- 401: tokens that are not the provider's, or not for us, or not now -----------------------------


def test_alg_none_is_401(idp, rsa_key):
    for alg in ("none", "None"):
        unsigned = (
            f"{b64(json.dumps({'alg': alg, 'typ': 'JWT', 'kid': 'rsa-1'}).encode())}."
            f"{b64(json.dumps(claims()).encode())}."
        )
        assert_401(call(idp, unsigned))


def test_hs256_signed_with_the_providers_public_key_is_401(idp, rsa_key, ec_key):
    """The algorithm-confusion attack: the public key used as an HMAC secret."""
    for key in (rsa_key, ec_key):
        for secret in (key.public_pem(), json.dumps(key.jwk()).encode()):
            signing_input = (
                f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid}).encode())}."
                f"{b64(json.dumps(claims()).encode())}"
            )
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            assert_401(call(idp, f"{signing_input}.{b64(signature)}"))


def test_hs256_with_the_services_own_key_but_the_providers_issuer_is_401(idp, oidc_app, world):
    with oidc_app.app_context():
        own_key = oidc_app.config["CASESVC"].secret_key
    token = pyjwt.encode({**claims(), "sub": world["police"].user_id, "type": "access"}, own_key, algorithm="HS256")
    assert_401(call(idp, token))


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example.test/"},
        {"aud": "some-other-api"},
        {"aud": None},
        {"exp": None},
        {"sub": None},
    ],
    ids=["wrong-issuer", "wrong-audience", "no-audience", "no-exp", "no-sub"],
)
def test_wrong_issuer_audience_or_missing_claims_are_401(idp, rsa_key, change):
    body = {k: v for k, v in {**claims(), **change}.items() if v is not None}
    assert_401(call(idp, rsa_key.sign(body)))


def test_times_are_checked_with_a_small_clock_skew(idp, rsa_key):
    now = int(time.time())
    assert_401(call(idp, rsa_key.sign(claims(exp=now - 120))))  # expired
    assert_401(call(idp, rsa_key.sign(claims(nbf=now + 120))))  # not yet valid
    assert call(idp, rsa_key.sign(claims(exp=now - 10))).status_code == 200  # within the skew
    assert call(idp, rsa_key.sign(claims(nbf=now + 10))).status_code == 200
    for accepted in (call(idp, rsa_key.sign(claims(exp=now - 10))), call(idp, rsa_key.sign(claims(nbf=now + 10)))):
        assert (accepted.json["role"], accepted.json["agency"]) == ("police", "police")


def test_a_token_signed_by_another_key_under_a_published_kid_is_401(idp):
    impostor = Key("RS256", "rsa-1")
    assert_401(call(idp, impostor.sign(claims())))


def test_a_key_of_the_wrong_type_for_the_algorithm_is_401(idp, ec_key):
    """An RS256 header naming the EC key's kid finds no key."""
    token = ec_key.sign(claims())
    _header, payload, signature = token.split(".")
    forged = f"{b64(json.dumps({'alg': 'RS256', 'typ': 'JWT', 'kid': 'ec-1'}).encode())}.{payload}.{signature}"
    assert_401(call(idp, forged))


def test_a_disabled_provider_user_is_refused(idp, oidc_app, rsa_key):
    token = rsa_key.sign(claims(sub="erin"))
    user_id = call(idp, token).json["subject"]
    with oidc_app.app_context():
        db.session.get(User, user_id).active = False
        db.session.commit()
    assert_401(call(idp, token))
    assert_401(call(idp, rsa_key.sign(claims(sub="erin"))))


def test_a_revoked_provider_token_is_refused_on_the_next_request(idp, rsa_key):
    token = rsa_key.sign(claims(sub="frank", jti="provider-jti-1"))
    assert call(idp, token).status_code == 200
    subject = call(idp, token).json["subject"]
    revoked = idp.post("/api/v1/auth/revoke", data={"token": token})
    assert revoked.status_code == 200
    assert revoked.json == {}
    assert_401(call(idp, token))
    assert "revoked" in assert_problem(call(idp, token), 401, "unauthorized")["detail"]
    assert call(idp, rsa_key.sign(claims(sub="frank", jti="provider-jti-2"))).status_code == 200
    assert call(idp, rsa_key.sign(claims(sub="frank", jti="provider-jti-2"))).json["subject"] == subject


def test_a_provider_token_without_jti_can_be_revoked_too(idp, rsa_key):
    token = rsa_key.sign(claims(sub="gina"))
    assert call(idp, token).status_code == 200
    assert call(idp, token).json["role"] == "police"
    idp.post("/api/v1/auth/revoke", data={"token": token})
    assert_401(call(idp, token))
    assert "revoked" in assert_problem(call(idp, token), 401, "unauthorized")["detail"]
    assert call(idp, rsa_key.sign(claims(sub="gina", scope="cases:read"))).status_code == 200  # that token only


def test_without_oidc_settings_provider_tokens_are_401(world, client, rsa_key):
    assert_401(call(client, rsa_key.sign(claims())))


# --- the key cache -------------------------------------------------------------------------------


def test_keys_are_fetched_once_and_cached(idp, jwks, rsa_key, ec_key):
    for n in range(3):
        assert call(idp, rsa_key.sign(claims(sub=f"u{n}"))).status_code == 200
        assert call(idp, ec_key.sign(claims(sub=f"u{n}"))).status_code == 200
    assert jwks.hits == 1


def test_keys_are_fetched_again_when_the_cache_is_old(idp, oidc_app, jwks, rsa_key):
    call(idp, rsa_key.sign(claims()))
    oidc_app.clock.now += oidc_app.config["CASESVC"].oidc_jwks_cache_seconds
    call(idp, rsa_key.sign(claims()))
    assert jwks.hits == 2


def test_a_rotated_provider_key_is_picked_up_on_its_first_token(idp, oidc_app, jwks, rsa_key):
    assert call(idp, rsa_key.sign(claims())).status_code == 200
    oidc_app.clock.now += oidc_app.config["CASESVC"].oidc_jwks_min_refresh_seconds
    new = Key("RS256", "rsa-2")
    jwks.keys = [new, rsa_key]
    assert call(idp, new.sign(claims())).status_code == 200
    assert jwks.hits == 2


def test_unknown_kids_refetch_the_keys_at_most_once_per_interval(idp, oidc_app, jwks, rsa_key):
    assert call(idp, rsa_key.sign(claims())).status_code == 200
    assert jwks.hits == 1
    oidc_app.clock.now += oidc_app.config["CASESVC"].oidc_jwks_min_refresh_seconds
    forged = [Key("RS256", f"made-up-{n}") for n in range(2)]
    for key in forged * 5:
        assert_401(call(idp, key.sign(claims())))
    assert jwks.hits == 2  # one refetch for the first unknown kid, none for the other nine
    oidc_app.clock.now += oidc_app.config["CASESVC"].oidc_jwks_min_refresh_seconds
    assert_401(call(idp, forged[0].sign(claims())))
    assert jwks.hits == 3
    assert call(idp, rsa_key.sign(claims())).status_code == 200  # known keys never wait


def test_an_unreachable_provider_is_503_not_a_hang(make_oidc_app, world, jwks, rsa_key):
    jwks.hang.set()
    slow = make_oidc_app(oidc_jwks_timeout=0.2).test_client()
    resp = call(slow, rsa_key.sign(claims()))
    assert resp.status_code == 503
    assert resp.json["type"].endswith("identity-provider-unavailable")
    assert "Retry-After" in resp.headers


def test_the_jwks_fetch_has_a_timeout_and_keeps_the_old_keys_on_failure(idp, oidc_app, jwks, rsa_key):
    assert call(idp, rsa_key.sign(claims())).status_code == 200
    cache = oidc.jwks_cache(oidc_app)
    cache.timeout = 0.2
    jwks.hang.set()
    oidc_app.clock.now += oidc_app.config["CASESVC"].oidc_jwks_cache_seconds  # stale: fetch again, which fails
    assert call(idp, rsa_key.sign(claims())).status_code == 200  # the cached keys still serve
    assert jwks.hits == 2
