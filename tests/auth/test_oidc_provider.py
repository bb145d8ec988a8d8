"""README "Identity" against a real OpenID provider: the npm package oauth2-mock-server, installed
here with the machine's node and npm (pinned by tests/oidc_provider/package-lock.json) and run
on 127.0.0.1 with a random port. The service is called with the tokens that provider issues.

Skipped only when node or npm is missing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import jwt as pyjwt
import pytest

from casesvc import create_app
from casesvc.auth.models import ExternalIdentity
from casesvc.extensions import db
from tests.conftest import assert_unauthorized

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
PROVIDER_FILES = ("package.json", "package-lock.json", "server.mjs")
AUDIENCE = "casesvc-api"
ME = "/api/v1/auth/me"

NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(
    not (NODE and NPM),
    reason="node and npm are needed to run the OpenID provider (oauth2-mock-server); they are not installed",
)


def _install() -> Path:
    """`npm ci` into a directory keyed by the lock file's hash, reused by later runs."""
    digest = hashlib.sha256(b"".join((PROVIDER_DIR / name).read_bytes() for name in PROVIDER_FILES)).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"casesvc-oidc-provider-{digest}"
    if (target / "node_modules" / "oauth2-mock-server" / "package.json").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix="casesvc-oidc-provider-"))
    for name in PROVIDER_FILES:
        shutil.copy(PROVIDER_DIR / name, staging / name)
    result = subprocess.run(
        [NPM, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=staging,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    try:
        staging.rename(target)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def provider():
    """The running provider: {"issuer", "jwks_uri", "token_endpoint"}."""
    directory = _install()
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (the provider's stderr, closed in teardown)
    process = subprocess.Popen(
        [NODE, "server.mjs"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    try:
        line = process.stdout.readline()
        if not line:
            errors.seek(0)
            pytest.fail(f"the OpenID provider did not start: {errors.read()}")
        info = json.loads(line)
        assert info["issuer"].startswith("http://127.0.0.1:")
        yield info
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        errors.close()


def post(url: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10) as resp:
        return json.loads(resp.read())


def provider_token(
    provider,
    alg="RS256",
    username="oidc.alice",
    role="police",
    agency="police",
    scope="cases:read cases:write notes:read",
    audience=AUDIENCE,
    **extra,
) -> str:
    """A token issued by the provider's token endpoint (password grant: `sub` is the username)."""
    params = {
        "grant_type": "password",
        "username": username,
        "password": "irrelevant",
        "scope": scope,
        "casesvc_role": role,
        "audience": audience,
        **extra,
    }
    if agency:
        params["casesvc_agency"] = agency
    return post(f"{provider['token_endpoint']}?alg={alg}", params)["access_token"]


@pytest.fixture
def service(app, provider, tmp_path, world):
    """The service (same database as `world`) trusting the provider."""
    settings = app.config["CASESVC"]
    made = create_app(
        {
            "env": "test",
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "audit_seal_interval": 1e9,
            "oidc_issuer": provider["issuer"],
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": provider["jwks_uri"],
            "oidc_jwks_min_refresh_seconds": 0,
        },
        instance_path=tmp_path,
    )
    return made


def call(app, token, url=ME):
    return app.test_client().get(url, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_of_a_real_provider_are_accepted_and_the_user_provisioned(service, provider, alg):
    token = provider_token(provider, alg=alg, username=f"oidc.{alg.lower()}")
    assert pyjwt.get_unverified_header(token)["alg"] == alg
    resp = call(service, token)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert (resp.json["role"], resp.json["agency"]) == ("police", "police")
    assert set(resp.json["scopes"]) == {"cases:read", "cases:write", "notes:read"}
    with service.app_context():
        identity = db.session.get(ExternalIdentity, (provider["issuer"], f"oidc.{alg.lower()}"))
        assert identity is not None and identity.user_id == resp.json["subject"]


def test_a_real_provider_user_works_with_cases(service, provider, world):
    world.case(by="police")
    resp = call(service, provider_token(provider), "/api/v1/cases")
    assert resp.status_code == 200
    assert len(resp.json["items"]) == 1


def test_a_real_providers_token_for_another_audience_is_401(service, provider):
    resp = call(service, provider_token(provider, audience="some-other-api"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_of_the_real_provider_is_401(service, provider):
    resp = call(service, provider_token(provider, exp_offset="-600"))
    assert resp.status_code == 401
    assert "expired" in resp.json["detail"]


def test_an_unknown_role_from_the_real_provider_is_403(service, provider):
    resp = call(service, provider_token(provider, role="janitor"))
    assert resp.status_code == 403
    assert resp.json["type"].endswith("unknown-role")


def test_a_key_rotation_at_the_real_provider_is_picked_up(service, provider):
    assert call(service, provider_token(provider)).status_code == 200  # keys cached
    new_kid = post(f"{provider['issuer']}/rotate")["kid"]
    token = provider_token(provider)
    assert pyjwt.get_unverified_header(token)["kid"] == new_kid
    assert call(service, token).status_code == 200


def test_a_real_providers_token_can_be_revoked_here(service, provider):
    token = provider_token(provider, username="oidc.revoked")
    assert call(service, token).status_code == 200
    assert (call(service, token).json["role"], call(service, token).json["agency"]) == ("police", "police")
    revoked = service.test_client().post("/api/v1/auth/revoke", data={"token": token})
    assert revoked.status_code == 200
    assert revoked.json == {}
    assert call(service, token).status_code == 401
    refused = assert_unauthorized(call(service, token))
    assert "revoked" in refused["detail"]
