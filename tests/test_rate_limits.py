"""CONTRACT §3: failed logins are rate limited per client address and per username (or
client_id) with 429 and Retry-After, counted across worker processes when the counters live in
Redis, and audited."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import redis

from casesvc import create_app
from casesvc.auth.clients import create_client
from casesvc.config import load_settings
from casesvc.extensions import db
from tests.conftest import PASSWORD

TOKEN_URL = "/api/v1/auth/token"
REDIS_URL = os.environ.get("CASESVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def make_worker(app, tmp_path):
    """A worker process's app (same database and key) with rate limits on."""
    settings = app.config["CASESVC"]

    def make(per_ip="10/minute", per_username="3/minute", **overrides):
        return create_app({"env": "test", "database_url": settings.database_url, "secret_key": settings.secret_key,
                           "audit_seal_interval": 1e9, "ratelimit_enabled": True,
                           "ratelimit_login_per_ip": per_ip, "ratelimit_login_per_username": per_username,
                           **overrides}, instance_path=tmp_path).test_client()

    return make


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own, removed afterwards: runs never see each other's counts.
    Without a Redis server the shared-counter test is skipped — except in CI, which has one."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis server at {REDIS_URL} (set CASESVC_TEST_REDIS_URL); CI runs this test")
    prefix = f"casesvc-test-{uuid.uuid4().hex}"
    yield prefix
    conn = redis.Redis.from_url(REDIS_URL)
    for key in conn.scan_iter(match=f"*{prefix}*"):
        conn.delete(key)


def attempt(client, username="user.police", password="wrong password entirely", addr="192.0.2.10"):
    return client.post(TOKEN_URL, data={"grant_type": "password", "username": username, "password": password},
                       environ_base={"REMOTE_ADDR": addr})


def assert_429(resp):
    assert resp.status_code == 429, resp.get_data(as_text=True)
    assert resp.json["error"] == "slow_down"
    assert "access_token" not in resp.json
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 61  # the windows here are a minute; seconds rounded up
    assert "no-store" in resp.headers["Cache-Control"]


def test_failed_logins_for_one_username_are_limited_even_with_the_right_password(world, make_worker):
    worker = make_worker(per_username="3/minute")
    for _ in range(3):
        assert attempt(worker).status_code == 400
    assert_429(attempt(worker))
    assert_429(attempt(worker, password=PASSWORD))          # locked for now, whatever the password
    assert_429(attempt(worker, username="USER.POLICE"))     # case does not make another username
    assert attempt(worker, username="user.health", password=PASSWORD).status_code == 200  # others are not


def test_the_username_limit_holds_across_client_addresses(world, make_worker):
    worker = make_worker(per_username="3/minute")
    for n in range(3):
        attempt(worker, addr=f"198.51.100.{n}")
    assert_429(attempt(worker, addr="198.51.100.99"))


def test_failed_logins_from_one_address_are_limited_across_usernames(world, make_worker):
    worker = make_worker(per_ip="4/minute", per_username="100/minute")
    for name in ("user.police", "user.health", "user.nav", "no.such.user"):
        assert attempt(worker, username=name, addr="203.0.113.7").status_code == 400
    assert_429(attempt(worker, username="user.cw", password=PASSWORD, addr="203.0.113.7"))
    assert attempt(worker, username="user.cw", password=PASSWORD, addr="203.0.113.8").status_code == 200


def test_successful_logins_do_not_count(world, make_worker):
    worker = make_worker(per_ip="3/minute", per_username="3/minute")
    for _ in range(6):
        assert attempt(worker, password=PASSWORD).status_code == 200


def test_failed_client_credentials_are_limited_per_client(world, app, make_worker):
    with app.app_context():
        api_client, secret = create_client("limited-client", "police", "police", "cases:read")
        db.session.commit()
        client_id = api_client.id
    worker = make_worker(per_username="2/minute")

    def creds(secret_):
        return worker.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": client_id,
                                            "client_secret": secret_}, environ_base={"REMOTE_ADDR": "192.0.2.50"})

    assert creds("wrong").status_code == 401
    assert creds("wrong").status_code == 401
    assert_429(creds(secret))


def test_in_memory_counts_are_per_process(world, make_worker):
    """The default: each worker counts for itself (set CASESVC_RATELIMIT_STORAGE_URI to share)."""
    first, second = make_worker(per_username="2/minute"), make_worker(per_username="2/minute")
    attempt(first)
    attempt(first)
    assert_429(attempt(first))
    assert attempt(second).status_code == 400


def test_with_redis_the_counts_are_shared_by_every_worker(world, make_worker, redis_prefix):
    first, second = (make_worker(per_username="3/minute", ratelimit_storage_uri=REDIS_URL,
                                 ratelimit_key_prefix=redis_prefix) for _ in range(2))
    assert attempt(first).status_code == 400
    assert attempt(second).status_code == 400
    assert attempt(first).status_code == 400
    assert_429(attempt(second))  # the third failure was counted by another process
    assert_429(attempt(first))
    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"*{redis_prefix}*"))
    assert keys, "the counters live in Redis under the test's prefix"
    assert not any(b"user.police" in k for k in keys)  # usernames are hashed in the keys


def test_failed_logins_are_audited_with_the_user_when_known(world, client):
    client.post(TOKEN_URL, data={"grant_type": "password", "username": "user.police", "password": "nope, wrong"})
    client.post(TOKEN_URL, data={"grant_type": "password", "username": "nobody.at.all", "password": "nope, wrong"})
    events = world["auditor"].get("/api/v1/audit/events?action=auth.token").json["items"]
    failed = [e for e in events if e["outcome"] != "allowed"]
    assert len(failed) == 2
    known = next(e for e in failed if e["actor"])
    assert known["actor"] == world["police"].user_id
    assert known["actor_role"] == "police" and known["actor_agency"] == "police"
    assert all(e["ip"] for e in failed)


def test_refused_attempts_are_audited_with_the_user(world, make_worker):
    worker = make_worker(per_username="1/minute")
    attempt(worker)
    assert_429(attempt(worker))
    events = world["auditor"].get("/api/v1/audit/events?action=auth.token").json["items"]
    assert [e["status"] for e in events] == [429, 400]
    assert {e["actor"] for e in events} == {world["police"].user_id}


def test_successful_logins_are_audited_with_the_user(world, client):
    client.post(TOKEN_URL, data={"grant_type": "password", "username": "user.health", "password": PASSWORD})
    events = world["auditor"].get("/api/v1/audit/events?action=auth.token&outcome=allowed").json["items"]
    assert [e["actor"] for e in events] == [world["health"].user_id]


def test_limits_are_on_by_default_outside_tests(monkeypatch, tmp_path: Path):
    for name in ("CASESVC_RATELIMIT_ENABLED", "CASESVC_RATELIMIT_STORAGE_URI", "CASESVC_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(tmp_path)
    assert settings.env == "development"
    assert settings.ratelimit_enabled
    assert settings.ratelimit_storage_uri == "memory://"
    assert settings.ratelimit_login_per_ip and settings.ratelimit_login_per_username
