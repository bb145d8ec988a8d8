"""Outages, through a TCP proxy the test owns between the service and PostgreSQL (the machine's
PostgreSQL is never touched): a database that cannot be reached is 503 problem+json with
Retry-After everywhere, the token endpoint included, never a 500 and never a hang past a stated
bound; the service recovers without a restart; what was answered 2xx is there afterwards."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from casesvc import create_app
from casesvc.audit.models import AuditInbox
from casesvc.auth import principal
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_problem
from tests.ops.tcp_proxy import TcpProxy

POSTGRES = os.environ.get("CASESVC_TEST_DATABASE_URL", "").startswith("postgresql")
pytestmark = pytest.mark.faults
pg_only = pytest.mark.skipif(not POSTGRES, reason="the outage is staged between the service and PostgreSQL")

STATEMENT_TIMEOUT = 1.0  # the watchdog's deadline is this plus its grace (2 s)
READYZ_TIMEOUT = 1.0


@pytest.fixture
def proxy(app):
    url = make_url(app.config["CASESVC"].database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.close()


@pytest.fixture
def behind(app, proxy, tmp_path):
    """A second casesvc, with the test database's schema and key, whose connections go through
    the proxy."""
    url = make_url(app.config["CASESVC"].database_url).set(host="127.0.0.1", port=proxy.port)
    other = create_app(
        {
            "env": "test",
            "database_url": url.render_as_string(hide_password=False),
            "secret_key": app.config["CASESVC"].secret_key,
            "audit_seal_interval": 1e9,
            "db_connect_timeout": 2,
            "db_statement_timeout": STATEMENT_TIMEOUT,
            "db_pool_timeout": 2.0,
            "readyz_timeout": READYZ_TIMEOUT,
            "retry_after": 7,
        },
        instance_path=tmp_path,
    )
    yield other
    proxy.refuse(False)
    proxy.freeze(False)
    with other.app_context():
        db.engine.dispose()


def _bearer(actor) -> dict:
    return {"Authorization": f"Bearer {actor.token}"}


def _unavailable(resp) -> None:
    body = assert_problem(resp, 503, "database-unavailable")
    assert resp.headers["Retry-After"] == "7"
    assert "SQL" not in body["detail"] and "psycopg" not in resp.get_data(as_text=True)


@pg_only
def test_a_database_that_is_down_is_503_with_retry_after_on_every_endpoint(world, behind, proxy):
    client = behind.test_client()
    police = world["police"]
    assert client.get("/api/v1/cases", headers=_bearer(police)).status_code == 200  # through the proxy
    proxy.refuse()
    _unavailable(client.get("/api/v1/cases", headers=_bearer(police)))
    _unavailable(client.post("/api/v1/youths", headers=_bearer(police), json={"given_name": "Test"}))
    _unavailable(
        client.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": "user.police", "password": PASSWORD}
        )
    )
    ready = client.get("/readyz")
    assert_problem(ready, 503, "unavailable")
    assert ready.headers["Retry-After"] == "7"
    assert client.get("/healthz").json["status"] == "ok"  # the process itself is alive


@pg_only
def test_after_a_restart_the_service_recovers_without_one_and_loses_no_answered_write(world, behind, proxy, app):
    client = behind.test_client()
    police = world["police"]
    case = world.case()
    answered, statuses = [], []
    for round_ in range(3):
        resp = client.post(
            f"/api/v1/cases/{case['id']}/notes",
            headers=_bearer(police),
            json={"body": f"Test note {round_}", "category": "general", "visibility": "shared"},
        )
        statuses.append(resp.status_code)
        if resp.status_code == 201:
            answered.append(resp.json["id"])
        proxy.cut()  # every pooled connection dies, as in a restart while the service is idle:
        time.sleep(1.2)  # idle past CASESVC_DB_PING_AFTER_IDLE, each is pinged, found dead and replaced
    proxy.refuse()
    down = client.post(
        f"/api/v1/cases/{case['id']}/notes",
        headers=_bearer(police),
        json={"body": "Test note while down", "category": "general", "visibility": "shared"},
    )
    _unavailable(down)
    proxy.refuse(False)
    assert client.get("/readyz").json == {"status": "ready"}
    assert statuses == [201, 201, 201]
    listed = world["police"].get(f"/api/v1/cases/{case['id']}/notes").json["items"]
    assert {n["id"] for n in listed} == set(answered)  # every 2xx is there, the refused one is not
    assert world["auditor"].get("/api/v1/audit/verify").json["valid"] is True


@pg_only
def test_a_frozen_database_is_answered_503_within_the_stated_bounds(world, behind, proxy):
    client = behind.test_client()
    police = world["police"]
    assert client.get("/api/v1/cases", headers=_bearer(police)).status_code == 200  # a pooled connection
    proxy.freeze()
    started = time.monotonic()
    assert_problem(client.get("/readyz"), 503, "unavailable")
    assert time.monotonic() - started < READYZ_TIMEOUT + 1.0
    started = time.monotonic()
    _unavailable(client.get("/api/v1/cases", headers=_bearer(police)))
    assert time.monotonic() - started < STATEMENT_TIMEOUT + 2.0 + 2.0  # the deadline and its grace, plus slack
    proxy.freeze(False)
    for _ in range(20):  # the stuck readiness check drains once the bytes flow again
        if client.get("/readyz").status_code == 200:
            break
        time.sleep(0.25)
    assert client.get("/api/v1/cases", headers=_bearer(police)).status_code == 200


@pg_only
def test_a_connection_pinged_after_idling_on_a_frozen_database_is_503_within_the_stated_bounds(world, behind, proxy):
    """The ping that checks a connection which sat idle has the statements' deadline too: it
    does not wait for the database for as long as the database keeps still."""
    client = behind.test_client()
    police = world["police"]
    assert client.get("/api/v1/cases", headers=_bearer(police)).status_code == 200  # a pooled connection
    time.sleep(1.2)  # idle past CASESVC_DB_PING_AFTER_IDLE: it is pinged before its next use
    proxy.freeze()
    thaw = threading.Timer(20, proxy.freeze, args=(False,))  # were it not bounded, it would wait this long
    thaw.start()
    try:
        started = time.monotonic()
        resp = client.get("/api/v1/cases", headers=_bearer(police))
        took = time.monotonic() - started
    finally:
        thaw.cancel()
    _unavailable(resp)
    # the ping's deadline and its grace; a new connection's timeout for the request, another for its
    # audit event (README "Operations": waits and outages); slack for a loaded machine
    assert took < STATEMENT_TIMEOUT + 2.0 + 2 * 2.0 + 2.0
    proxy.freeze(False)
    assert client.get("/api/v1/cases", headers=_bearer(police)).status_code == 200


def test_when_the_caller_lookup_fails_the_event_still_names_the_verified_caller(world, app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def lost(*args):
        raise OperationalError("SELECT …", {}, ConnectionError("connection lost"))

    monkeypatch.setattr(principal, "_caller_query", lost)
    with app.app_context():
        before = db.session.query(AuditInbox).count()
    resp = world["police"].get("/api/v1/cases")
    assert_problem(resp, 503, "database-unavailable")
    with app.app_context():
        event = db.session.query(AuditInbox).order_by(AuditInbox.n.desc()).first()
        assert db.session.query(AuditInbox).count() == before + 1
        assert (event.actor, event.actor_role, event.actor_agency, event.status) == (
            world["police"].user_id,
            "police",
            "police",
            503,
        )
        db.session.remove()


@pg_only
def test_a_connection_lost_in_the_middle_of_a_write_is_503_and_the_write_is_not_there(
    world, behind, proxy, monkeypatch
):
    """The connection drops after the write's transaction began, before its insert: the rollback
    that follows finds the connection gone, and the answer is still 503, never a 500."""
    from casesvc.followups import service as followups

    client = behind.test_client()
    police = world["police"]
    case = world.case()
    write_note = followups.write_note

    def cut_first(*args, **kwargs):
        proxy.cut()  # the caller was read in this transaction; its connection dies here
        return write_note(*args, **kwargs)

    monkeypatch.setattr(followups, "write_note", cut_first)
    lost = client.post(
        f"/api/v1/cases/{case['id']}/notes",
        headers=_bearer(police),
        json={"body": "Test note lost", "category": "general", "visibility": "shared"},
    )
    _unavailable(lost)
    monkeypatch.setattr(followups, "write_note", write_note)
    again = client.post(
        f"/api/v1/cases/{case['id']}/notes",
        headers=_bearer(police),
        json={"body": "Test note kept", "category": "general", "visibility": "shared"},
    )
    assert again.status_code == 201, again.get_data(as_text=True)  # the pool replaced the connection
    assert [n["id"] for n in police.get(f"/api/v1/cases/{case['id']}/notes").json["items"]] == [again.json["id"]]
    assert world["auditor"].get("/api/v1/audit/verify").json["valid"] is True


@pg_only
def test_a_connection_lost_in_the_middle_of_a_read_is_503_and_its_event_is_still_recorded(
    world, app, behind, proxy, monkeypatch
):
    """A read's connection drops after the caller's statement, under the next: the answer is 503,
    and its audit event goes on a new connection, in autocommit, so it is there afterwards (on
    one SQLAlchemy made anew in a transaction, nothing would have committed it)."""
    from casesvc.followups import service as followups

    client = behind.test_client()
    police = world["police"]
    case = world.case()
    list_entries = followups.list_entries

    def cut_first(*args, **kwargs):
        proxy.cut()  # the caller was read on this connection; it dies here
        return list_entries(*args, **kwargs)

    monkeypatch.setattr(followups, "list_entries", cut_first)
    with app.app_context():
        before = db.session.query(AuditInbox).filter_by(status=503).count()
        db.session.remove()
    _unavailable(client.get(f"/api/v1/cases/{case['id']}/events", headers=_bearer(police)))
    with app.app_context():
        recorded = db.session.query(AuditInbox).filter_by(status=503).all()
        assert len(recorded) == before + 1
        assert (recorded[-1].actor, recorded[-1].case_id) == (police.user_id, case["id"])
        db.session.remove()
    monkeypatch.setattr(followups, "list_entries", list_entries)
    assert client.get(f"/api/v1/cases/{case['id']}/events", headers=_bearer(police)).status_code == 200
