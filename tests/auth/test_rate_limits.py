"""README "Identity": failed logins are rate limited per client address and per username (or
client_id) with 429 and Retry-After, counted across worker processes (the counters live in the
service's own database by default, or in Redis), and audited. Only refused credentials count."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, insert, select

from casesvc import create_app
from casesvc.auth.clients import create_client
from casesvc.auth.limits import DatabaseStorage
from casesvc.auth.models import RateLimitCounter
from casesvc.config import load_settings
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_oauth_error, assert_token_granted, assert_token_works

TOKEN_URL = "/api/v1/auth/token"
REDIS_URL = os.environ.get("CASESVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def make_worker(app, tmp_path):
    """A worker process's app (same database and key) with rate limits on."""
    settings = app.config["CASESVC"]

    def make(per_ip="10/minute", per_username="3/minute", **overrides):
        return create_app(
            {
                "env": "test",
                "database_url": settings.database_url,
                "secret_key": settings.secret_key,
                "audit_seal_interval": 1e9,
                "ratelimit_enabled": True,
                "ratelimit_login_per_ip": per_ip,
                "ratelimit_login_per_username": per_username,
                **overrides,
            },
            instance_path=tmp_path,
        ).test_client()

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
    return client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


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
        resp = attempt(worker)
        assert resp.status_code == 400
        assert_oauth_error(resp, 400, "invalid_grant")
    assert_429(attempt(worker))
    assert_429(attempt(worker, password=PASSWORD))  # locked for now, whatever the password
    assert_429(attempt(worker, username="USER.POLICE"))  # case does not make another username
    other = attempt(worker, username="user.health", password=PASSWORD)
    assert other.status_code == 200  # others are not
    assert_token_works(worker, assert_token_granted(other)["access_token"], "user.health")


def test_the_username_limit_holds_across_client_addresses(world, make_worker):
    worker = make_worker(per_username="3/minute")
    for n in range(3):
        attempt(worker, addr=f"198.51.100.{n}")
    assert_429(attempt(worker, addr="198.51.100.99"))


def test_failed_logins_from_one_address_are_limited_across_usernames(world, make_worker):
    worker = make_worker(per_ip="4/minute", per_username="100/minute")
    for name in ("user.police", "user.health", "user.nav", "no.such.user"):
        resp = attempt(worker, username=name, addr="203.0.113.7")
        assert resp.status_code == 400
        assert_oauth_error(resp, 400, "invalid_grant")
    assert_429(attempt(worker, username="user.cw", password=PASSWORD, addr="203.0.113.7"))
    elsewhere = attempt(worker, username="user.cw", password=PASSWORD, addr="203.0.113.8")
    assert elsewhere.status_code == 200
    assert_token_works(worker, assert_token_granted(elsewhere)["access_token"], "user.cw")


def test_successful_logins_do_not_count(world, make_worker):
    worker = make_worker(per_ip="3/minute", per_username="3/minute")
    for _ in range(6):
        resp = attempt(worker, password=PASSWORD)
        assert resp.status_code == 200
        assert_token_works(worker, assert_token_granted(resp)["access_token"], "user.police")


def test_failed_client_credentials_are_limited_per_client(world, app, make_worker):
    with app.app_context():
        api_client, secret = create_client("limited-client", "police", "police", "cases:read")
        db.session.commit()
        client_id = api_client.id
    worker = make_worker(per_username="2/minute")

    def creds(secret_):
        return worker.post(
            TOKEN_URL,
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret_},
            environ_base={"REMOTE_ADDR": "192.0.2.50"},
        )

    for _ in range(2):
        refused = creds("wrong")
        assert refused.status_code == 401
        assert_oauth_error(refused, 401, "invalid_client")
    assert_429(creds(secret))


def test_in_memory_counts_are_per_process(world, app, make_worker):
    """CASESVC_RATELIMIT_STORAGE_URI=memory://: each worker counts for itself."""
    first, second = (make_worker(per_username="2/minute", ratelimit_storage_uri="memory://") for _ in range(2))
    assert attempt(first).status_code == 400
    assert attempt(first).status_code == 400
    assert_429(attempt(first))
    assert attempt(second).status_code == 400
    assert counters(app) == {}  # nothing went to the database


# --- the default: counters in the service's own database ------------------------------------------


def counters(app) -> dict:
    """The rate_limit_counters rows, read afresh from the database: {key: hits}."""
    with app.app_context(), db.engine.connect() as conn:
        return dict(conn.execute(select(RateLimitCounter.key, RateLimitCounter.hits)).all())


def test_by_default_every_worker_counts_in_the_database_and_429_comes_at_exactly_the_limit(world, make_worker):
    first, second = make_worker(per_username="5/minute"), make_worker(per_username="5/minute")
    assert first.application.config["CASESVC"].ratelimit_storage_uri == "casesvc-db://"
    answers = [attempt(worker).status_code for worker in (first, second, first, second, first)]
    assert answers == [400] * 5  # three failures in one worker, two in the other: five in all
    assert_429(attempt(second))
    assert_429(attempt(first, password=PASSWORD))


def test_the_address_limit_is_shared_by_the_workers_too(world, make_worker):
    first, second = (
        make_worker(per_ip="4/minute", per_username="100/minute"),
        make_worker(per_ip="4/minute", per_username="100/minute"),
    )
    for worker, name in ((first, "user.police"), (second, "user.health"), (first, "user.nav"), (second, "nobody")):
        resp = attempt(worker, username=name, addr="203.0.113.9")
        assert resp.status_code == 400
        assert_oauth_error(resp, 400, "invalid_grant")
    assert_429(attempt(first, username="user.cw", password=PASSWORD, addr="203.0.113.9"))
    assert_429(attempt(second, username="user.cw", password=PASSWORD, addr="203.0.113.9"))


def test_a_counted_attempt_outlives_the_failed_requests_rollback(world, app, make_worker):
    """The failed login's own transaction is rolled back (and so is its audit hook's); the count
    was committed on its own and a freshly started worker sees it."""
    assert attempt(make_worker(per_username="2/minute")).status_code == 400
    rows = counters(app)
    assert sorted(rows.values()) == [1, 1]  # one per username, one per address
    assert not any("user.police" in key for key in rows)  # usernames are hashed in the keys
    late = make_worker(per_username="2/minute")
    assert attempt(late).status_code == 400
    assert_429(attempt(late))


def test_concurrent_failed_logins_are_all_counted(world, app, make_worker):
    workers = [make_worker(per_ip="1000/minute", per_username="1000/minute") for _ in range(4)]

    def fail_five(worker):
        for _ in range(5):
            assert attempt(worker).status_code == 400

    threads = [threading.Thread(target=fail_five, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counters(app).values()) == [20, 20]  # no increment lost to a race


def test_retry_after_is_what_is_left_of_the_window_in_the_database(world, app, make_worker):
    worker = make_worker(per_username="1/minute")
    assert attempt(worker).status_code == 400
    with app.app_context(), db.engine.begin() as conn:  # 50 seconds of the window have gone by
        conn.execute(RateLimitCounter.__table__.update().values(expires_at=time.time() + 10))
    refused = attempt(worker)
    assert_429(refused)
    assert 9 <= int(refused.headers["Retry-After"]) <= 11  # whole seconds, rounded up


def test_expired_counters_are_deleted_and_do_not_count(world, app, make_worker):
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            insert(RateLimitCounter),
            [
                {
                    "key": "LIMITER/casesvc/expired-test-key/login-name/10/1/minute",
                    "hits": 99,
                    "expires_at": time.time() - 1,
                }
            ],
        )
    worker = make_worker(per_username="2/minute")
    assert attempt(worker).status_code == 400
    rows = counters(app)
    assert "LIMITER/casesvc/expired-test-key/login-name/10/1/minute" not in rows
    assert sorted(rows.values()) == [1, 1]


def test_an_ended_window_starts_again_from_one(world, app, make_worker):
    worker = make_worker(per_username="2/minute")
    assert attempt(worker).status_code == 400
    assert attempt(worker).status_code == 400
    assert_429(attempt(worker))
    with app.app_context(), db.engine.begin() as conn:  # a minute goes by
        conn.execute(RateLimitCounter.__table__.update().values(expires_at=time.time() - 1))
    assert attempt(worker, password=PASSWORD).status_code == 200
    assert attempt(worker).status_code == 400
    assert sorted(counters(app).values()) == [1, 1]


def test_without_its_database_the_limit_falls_back_to_counting_in_the_process(
    world, make_worker, monkeypatch, tmp_path
):
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'counters.sqlite3'}")
    monkeypatch.setattr(DatabaseStorage, "_engine", staticmethod(lambda: unreachable))
    worker = make_worker(per_username="2/minute")
    for _ in range(2):
        resp = attempt(worker)
        assert resp.status_code == 400
        assert_oauth_error(resp, 400, "invalid_grant")
    assert_429(attempt(worker))
    other = attempt(worker, username="user.health", password=PASSWORD)
    assert other.status_code == 200
    assert_token_works(worker, assert_token_granted(other)["access_token"], "user.health")


def test_a_count_that_cannot_be_written_leaves_the_answer_as_it_was(world, make_worker, monkeypatch):
    """The database fails between the check and the count: logged, not a 500."""
    from sqlalchemy.exc import OperationalError

    def fails(self, key, expiry, amount=1):
        raise OperationalError("UPDATE", {}, Exception("the database went away"))

    monkeypatch.setattr(DatabaseStorage, "incr", fails)
    worker = make_worker(per_username="2/minute")
    resp = attempt(worker)
    assert resp.status_code == 400 and resp.json["error"] == "invalid_grant"
    ok = attempt(worker, password=PASSWORD)
    assert ok.status_code == 200
    assert_token_works(worker, assert_token_granted(ok)["access_token"], "user.police")


# --- only refused credentials count -------------------------------------------------------------


def test_asking_for_a_scope_the_role_lacks_does_not_lock_the_user_out(world, make_worker):
    worker = make_worker(per_ip="3/minute", per_username="3/minute")
    for _ in range(10):
        resp = worker.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": "user.police", "password": PASSWORD, "scope": "admin"},
            environ_base={"REMOTE_ADDR": "192.0.2.10"},
        )
        assert resp.status_code == 400 and resp.json["error"] == "invalid_scope"
    assert attempt(worker, password=PASSWORD).status_code == 200
    for _ in range(3):  # wrong passwords still count
        assert attempt(worker).json["error"] == "invalid_grant"
    assert_429(attempt(worker))


@pytest.mark.parametrize(
    "data, error",
    [
        ({"grant_type": "password", "username": "user.police"}, "invalid_request"),
        ({"grant_type": "magic", "username": "user.police"}, "unsupported_grant_type"),
        ({"username": "user.police", "password": "wrong password entirely"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
def test_malformed_token_requests_do_not_count(world, make_worker, data, error):
    worker = make_worker(per_ip="2/minute", per_username="2/minute")
    for _ in range(5):
        resp = worker.post(TOKEN_URL, data=data, environ_base={"REMOTE_ADDR": "192.0.2.10"})
        assert resp.status_code == 400 and resp.json["error"] == error
    ok = attempt(worker, password=PASSWORD)
    assert ok.status_code == 200
    assert_token_works(worker, assert_token_granted(ok)["access_token"], "user.police")


def test_bad_refresh_tokens_count_per_address(world, make_worker):
    worker = make_worker(per_ip="2/minute")
    for _ in range(2):
        resp = worker.post(
            TOKEN_URL,
            data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
            environ_base={"REMOTE_ADDR": "192.0.2.10"},
        )
        assert resp.json["error"] == "invalid_grant"
    assert_429(attempt(worker, password=PASSWORD))


def test_with_redis_the_counts_are_shared_by_every_worker(world, make_worker, redis_prefix):
    first, second = (
        make_worker(per_username="3/minute", ratelimit_storage_uri=REDIS_URL, ratelimit_key_prefix=redis_prefix)
        for _ in range(2)
    )
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
    assert settings.ratelimit_storage_uri == "casesvc-db://"
    assert settings.ratelimit_login_per_ip and settings.ratelimit_login_per_username


# --- attempts at the same moment ------------------------------------------------------------------


def test_attempts_fired_together_get_no_further_than_the_limit(world, app, make_worker, monkeypatch):
    """The per-username count is taken before the password is checked, atomically with the
    comparison: twelve attempts checked at once (each password check held for a while, so all of
    them are in flight together) get exactly the limit's three answers, and 429 for the rest."""
    from casesvc.auth import tokens

    checking = threading.Barrier(3, timeout=10)
    original = tokens.verify_password

    def slow_verify(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            checking.wait()  # the admitted attempts meet here, all three in their check at once
        return original(*args, **kwargs)

    monkeypatch.setattr(tokens, "verify_password", slow_verify)
    workers = [make_worker(per_ip="1000/minute", per_username="3/minute") for _ in range(4)]
    start = threading.Barrier(12, timeout=10)
    answers = []

    def fire(worker):
        start.wait()
        answers.append(attempt(worker).status_code)

    threads = [threading.Thread(target=fire, args=(workers[i % 4],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [400] * 3 + [429] * 9
    name_counts = [hits for key, hits in counters(app).items() if key.endswith("login-name/3/1/minute")]
    assert name_counts == [3]  # the refused attempts' counts were given back


def test_a_correct_login_gives_its_count_back_and_a_failure_keeps_it(world, app, make_worker):
    worker = make_worker(per_ip="1000/minute", per_username="3/minute")
    assert attempt(worker).status_code == 400
    assert attempt(worker, password=PASSWORD).status_code == 200
    assert attempt(worker).status_code == 400
    name_counts = [hits for key, hits in counters(app).items() if key.endswith("login-name/3/1/minute")]
    assert name_counts == [2]


def test_giving_back_never_goes_below_zero_nor_opens_a_window(world, app):
    with app.app_context():
        storage = DatabaseStorage()
        assert storage.incr("give-back-test", 60, amount=-1) == 0  # no window: nothing to lower
        assert counters(app) == {}
        storage.incr("give-back-test", 60)
        assert storage.incr("give-back-test", 60, amount=-5) == 0
        assert counters(app) == {"give-back-test": 0}
        with db.engine.begin() as conn:  # the window ends
            conn.execute(RateLimitCounter.__table__.update().values(hits=2, expires_at=time.time() - 1))
        assert storage.incr("give-back-test", 60, amount=-1) == 0
        assert counters(app) == {"give-back-test": 2}  # an ended window is left alone (and counts as empty)
        db.session.remove()
