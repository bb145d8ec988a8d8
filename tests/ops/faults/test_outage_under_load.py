"""A database outage under a moderate load, on a real `casesvc serve` (2 gunicorn workers) whose
connections to PostgreSQL go through a TCP proxy the test owns (the machine's PostgreSQL is never
touched). Twice, while 24 clients write and read: the connections are cut and new ones refused
(the server is down), then the bytes stop flowing on open sockets (a stopped or unreachable
server). Every answer is 2xx or 503 problem+json with Retry-After — never another 5xx — and
comes within a stated bound; /readyz is 503 during the outage and 200 after it; the same workers
recover by themselves; every write answered 201 is there afterwards, every request answered 2xx
has its one audit event, and the chain verifies."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from casesvc.extensions import db
from casesvc.followups.models import Note
from tests.conftest import PASSWORD, sealed
from tests.ops.faults.harness import (
    POSTGRES_URL,
    Client,
    Ledger,
    host_env,
    latency,
    new_secret,
    pg_only,
    served,
    serving,
)
from tests.ops.tcp_proxy import TcpProxy

pytestmark = pg_only

CLIENTS = 24
RETRY_AFTER = "7"
STATEMENT_TIMEOUT = 1  # the watchdog cuts a connection that has not answered 2 s later
CONNECT_TIMEOUT = 2  # psycopg's least
POOL_TIMEOUT = 2
# the longest any answer may take while the database is away (README "Operations"): the deadline
# of a statement (or of the ping of a connection that sat idle) and its grace, a new connection's
# timeout for the request, another for its audit event; with room for a loaded machine
BOUND = STATEMENT_TIMEOUT + 2 + 2 * CONNECT_TIMEOUT + 2
PROBE_TIMEOUT = 2
PHASES = (("steady", 2.0), ("down", 3.0), ("recovering", 3.0), ("frozen", 9.0), ("after", 2.5))


@pytest.fixture
def proxy():
    url = make_url(POSTGRES_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.close()


def test_an_outage_under_load_is_answered_503_within_bounds_and_loses_no_answered_write(
    world, app, proxy, tmp_path, figures
):
    cases = [world.case()["id"] for _ in range(4)]
    behind = make_url(POSTGRES_URL).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    home = tmp_path / "host"
    env = host_env(
        behind,
        home,
        new_secret(),
        CASESVC_DB_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT),
        CASESVC_DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        CASESVC_DB_POOL_TIMEOUT=str(POOL_TIMEOUT),
        CASESVC_READYZ_TIMEOUT="1",
        CASESVC_RETRY_AFTER=RETRY_AFTER,
        CASESVC_KEEPALIVE="120",
    )
    ledger = Ledger("outage")
    stop = threading.Event()
    notes: list[str] = []
    odd: list[str] = []  # answers that are neither 2xx nor a proper 503
    readiness: list[tuple[float, int]] = []

    with serving([("host", env, home)]) as [host]:
        workers = host.workers()

        def loading(index: int) -> None:
            rng = random.Random(index)
            client = Client({"host": host.base}, ledger, timeout=30)
            while client.login("host", "user.police", PASSWORD).status != 200:
                time.sleep(0.1)
            ready.wait(timeout=60)
            while not stop.is_set():
                case_id = rng.choice(cases)
                if rng.random() < 0.5:
                    answer = client.call(
                        "host",
                        "POST",
                        f"/api/v1/cases/{case_id}/notes",
                        "create note",
                        json_body={"body": "Test note", "category": "general", "visibility": "shared"},
                    )
                    if answer.status == 201:
                        notes.append(answer.json["id"])
                else:
                    answer = client.call("host", "GET", f"/api/v1/cases/{case_id}", "read case")
                if answer.status in (200, 201):
                    continue
                problem = answer.json or {}
                if (
                    answer.status != 503
                    or answer.header("Content-Type") != "application/problem+json"
                    or answer.header("Retry-After") != RETRY_AFTER
                    or problem.get("type") != "/problems/database-unavailable"
                ):
                    odd.append(f"{answer.status} {answer.header('Content-Type')} {answer.body[:200]!r}")
                time.sleep(0.05)  # a client that was told to come back does not hammer
            client.close()

        def watching() -> None:
            # a probe as a load balancer's or orchestrator's: no answer within its timeout is "not ready"
            client = Client({"host": host.base}, Ledger("readyz"), timeout=PROBE_TIMEOUT)
            ready.wait(timeout=60)
            while not stop.is_set():
                answer = client.call("host", "GET", "/readyz", "readyz", token=False)
                readiness.append((time.monotonic(), answer.status))
                time.sleep(0.1)
            client.close()

        ready = threading.Barrier(CLIENTS + 2)
        threads = [threading.Thread(target=loading, args=(i,), daemon=True) for i in range(CLIENTS)]
        threads.append(threading.Thread(target=watching, daemon=True))
        for thread in threads:
            thread.start()
        ready.wait(timeout=60)
        marks = []
        for name, seconds in PHASES:
            marks.append((name, time.monotonic()))
            proxy.refuse(name == "down")
            proxy.freeze(name == "frozen")
            time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        same_workers = host.workers() == workers
        on_the_server = served(host)

    with app.app_context():
        stored = set(db.session.scalars(select(Note.id)))
        db.session.remove()
    events = {}
    for event in sealed(app):
        if (event["request_id"] or "").startswith("outage-"):
            events[event["request_id"]] = events.get(event["request_id"], 0) + 1
    verdict = world["auditor"].get("/api/v1/audit/verify").json

    load = [r for r in ledger.records if r.label != "login"]
    at = dict(marks)
    finished = marks[-1][1] + PHASES[-1][1]
    lines = ledger.figures(finished - marks[0][1])
    outages = {}  # the outage, when it began and ended, and when the service was back
    for outage, back, until in (("down", "recovering", at["frozen"]), ("frozen", "after", finished)):
        began, ended = at[outage], at[back]
        refused = [r for r in load if r.status == 503 and began <= r.at < until]
        first_ok = min((r.at for r in load if r.status in (200, 201) and r.at > ended), default=None)
        ready_again = min((t for t, status in readiness if status == 200 and t > ended), default=None)
        not_ready = sum(1 for t, status in readiness if began <= t < ended and status in (503, 0))
        outages[outage] = (began, ended, refused, first_ok, ready_again, not_ready)
        seen = f"from {refused[0].at - began:.1f} s to {refused[-1].at - began:.1f} s" if refused else "never"
        lines.append(
            f"{outage} for {ended - began:.0f} s: clients were answered 503 {len(refused)} times, {seen} "
            f"after it began ({latency(r.elapsed for r in refused)}); /readyz not ready {not_ready} times "
            f"(503, or no answer within the probe's {PROBE_TIMEOUT} s)"
        )
        if first_ok and ready_again:
            lines.append(
                f"  back: first 2xx {first_ok - ended:.2f} s and /readyz 200 {ready_again - ended:.2f} s "
                f"after the database was"
            )
    taken = [seconds for rid, (status, seconds) in on_the_server.items() if rid.startswith("outage-")]
    lines.append(
        f"time taken on the server, once a worker thread had the request: {latency(taken)}; "
        f"the rest of what the clients saw is the wait for a free thread"
    )
    lines.append(
        f"writes answered 201: {len(notes)}, all stored: {set(notes) <= stored}; "
        f"audit events of the answered requests: {sum(events.values())}"
    )
    figures(f"a database outage under load (one host of 2 workers, {CLIENTS} clients, through a TCP proxy)", lines)

    assert odd == []
    assert {r.status for r in load} <= {200, 201, 503}, ledger.statuses()  # no 500, and no hang: every one answered
    assert max(taken) < BOUND  # no request is held past the stated bound…
    assert max(r.elapsed for r in load) < 2 * BOUND  # …nor queued behind more than one round of them
    for outage, (_began, ended, refused, first_ok, ready_again, not_ready) in outages.items():
        assert refused and not_ready, outage  # the clients and /readyz saw it…
        assert first_ok is not None and first_ok - ended < BOUND, outage  # …and it passed
        assert ready_again is not None and ready_again - ended < BOUND, outage
    assert all(status == 200 for t, status in readiness if t > outages["frozen"][4])
    assert same_workers  # recovered without a restart, not even of a worker
    assert set(notes) <= stored  # every write answered 201 is there
    answered = {r.request_id for r in ledger.records if r.status in (200, 201)}
    assert answered <= set(events) and set(events.values()) == {1}  # each with its one audit event
    assert verdict["valid"] is True and verdict["unsealed"] == 0, verdict
