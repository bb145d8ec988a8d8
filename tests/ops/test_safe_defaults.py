"""README "Identity": with CASESVC_ENV=production the service refuses to start on unsafe
settings, and the refusal names the setting. (The signing key and SQLite refusals of
load_settings are in test_auth.py; here: debug mode, the identity settings, and the command.)"""

from __future__ import annotations

import pytest

from casesvc import create_app
from casesvc.cli import main
from casesvc.config import ConfigError, load_settings

GOOD_KEY = "k" * 48
PG_URL = "postgresql+psycopg://casesvc@db.invalid/casesvc"
IDENTITY_VARS = (
    "CASESVC_SECRET_KEY",
    "CASESVC_SECRET_KEY_PREVIOUS",
    "CASESVC_DATABASE_URL",
    "FLASK_DEBUG",
    "CASESVC_DEBUG",
    "CASESVC_OIDC_ISSUER",
    "CASESVC_OIDC_AUDIENCE",
    "CASESVC_OIDC_JWKS_URL",
    "CASESVC_RATELIMIT_ENABLED",
    "CASESVC_RATELIMIT_STORAGE_URI",
    "CASESVC_RATELIMIT_LOGIN_PER_IP",
    "CASESVC_RATELIMIT_LOGIN_PER_USERNAME",
    "CASESVC_TOKEN_TTL",
)


@pytest.fixture
def env(monkeypatch):
    for name in IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASESVC_ENV", "production")
    monkeypatch.setenv("CASESVC_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("CASESVC_DATABASE_URL", PG_URL)
    monkeypatch.setenv("CASESVC_PUBLIC_URL", "https://casesvc.example")
    return monkeypatch


def test_production_defaults_are_safe(env, tmp_path):
    settings = load_settings(tmp_path)
    assert not settings.debug
    assert settings.ratelimit_enabled
    assert settings.token_ttl == 900
    assert not settings.oidc_enabled
    app = create_app(instance_path=tmp_path)
    assert not app.debug and not app.testing


@pytest.mark.parametrize("value", ["1", "true"])
def test_production_refuses_flask_debug_mode(env, tmp_path, value):
    env.setenv("FLASK_DEBUG", value)
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        load_settings(tmp_path)
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        create_app(instance_path=tmp_path)


def test_debug_mode_is_allowed_outside_production(env, tmp_path):
    env.setenv("CASESVC_ENV", "development")
    env.setenv("FLASK_DEBUG", "1")
    assert load_settings(tmp_path).debug


def test_production_refuses_a_short_previous_signing_key(env, tmp_path):
    env.setenv("CASESVC_SECRET_KEY_PREVIOUS", "short-old-key")
    with pytest.raises(ConfigError, match="CASESVC_SECRET_KEY_PREVIOUS"):
        load_settings(tmp_path)
    env.setenv("CASESVC_SECRET_KEY_PREVIOUS", "o" * 48)
    assert load_settings(tmp_path).secret_keys_previous == ("o" * 48,)


@pytest.mark.parametrize(
    "given, missing",
    [
        ({"CASESVC_OIDC_ISSUER": "https://idp.example.test"}, "CASESVC_OIDC_AUDIENCE"),
        (
            {"CASESVC_OIDC_ISSUER": "https://idp.example.test", "CASESVC_OIDC_AUDIENCE": "casesvc"},
            "CASESVC_OIDC_JWKS_URL",
        ),
        ({"CASESVC_OIDC_JWKS_URL": "https://idp.example.test/jwks"}, "CASESVC_OIDC_ISSUER"),
    ],
    ids=["issuer-only", "no-jwks-url", "jwks-url-only"],
)
@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_half_configured_identity_provider_is_refused_naming_what_is_missing(
    env, tmp_path, given, missing, environment
):
    env.setenv("CASESVC_ENV", environment)
    for name, value in given.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError, match=missing):
        load_settings(tmp_path)


def test_production_refuses_a_jwks_url_without_https(env, tmp_path):
    env.setenv("CASESVC_OIDC_ISSUER", "https://idp.example.test")
    env.setenv("CASESVC_OIDC_AUDIENCE", "casesvc")
    env.setenv("CASESVC_OIDC_JWKS_URL", "http://idp.example.test/jwks")
    with pytest.raises(ConfigError, match="CASESVC_OIDC_JWKS_URL"):
        load_settings(tmp_path)
    env.setenv("CASESVC_OIDC_JWKS_URL", "https://idp.example.test/jwks")
    assert load_settings(tmp_path).oidc_enabled


@pytest.mark.parametrize(
    "name, value",
    [
        ("CASESVC_RATELIMIT_LOGIN_PER_IP", "lots"),
        ("CASESVC_RATELIMIT_LOGIN_PER_USERNAME", "10 per fortnight"),
        ("CASESVC_RATELIMIT_STORAGE_URI", "postgres://somewhere"),
    ],
)
def test_bad_rate_limit_settings_are_refused_by_name(env, tmp_path, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings(tmp_path)


@pytest.mark.parametrize("setting, value", [("FLASK_DEBUG", "1"), ("CASESVC_SECRET_KEY", "")])
def test_the_server_command_refuses_to_start_in_one_line_naming_the_setting(env, tmp_path, capsys, setting, value):
    env.setenv(setting, value)
    env.setenv("CASESVC_INSTANCE_PATH", str(tmp_path))
    code = main(["serve", "--port", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0]
