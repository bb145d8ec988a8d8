"""Two hosts on one database: two `casesvc serve` processes (2 gunicorn workers each, as the CLI
starts them) on the same PostgreSQL, with one signing key, under 200 concurrent clients of every
kind for a bounded time. No answer is a 5xx; whatever one host answered 201 the other reads at
once; every request leaves exactly one audit event and the chain stays gapless and valid; the
per-username login limit counts the attempts made on both hosts together (the counters live in
the database, README "Identity"); and four `casesvc reminders run` started at once create and
deliver each due reminder exactly once."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from casesvc.common.timeutil import oslo_today, rfc3339, utcnow
from casesvc.extensions import db
from casesvc.reminders.models import Reminder, WebhookAttempt
from tests.conftest import PASSWORD, sealed
from tests.ops.faults.harness import (
    CLI,
    POSTGRES_URL,
    Client,
    Ledger,
    NationalIds,
    Shared,
    host_env,
    new_secret,
    pg_only,
    run_cli,
    serving,
    youth_body,
)

pytestmark = pg_only

CLIENTS = 200
SECONDS = float(os.environ.get("CASESVC_FAULTS_LOAD_SECONDS", "15"))
LOGIN_LIMIT = 10  # CASESVC_RATELIMIT_LOGIN_PER_USERNAME, the default 10/minute
WEBHOOK_SECRET = "two-hosts-webhook-secret"


@pytest.fixture(scope="module")
def hosts(app, tmp_path_factory):
    """Hosts A and B: the test database, one signing key, the login limits' defaults except the
    per-address one (every client here comes from 127.0.0.1)."""
    secret = new_secret()
    homes = [tmp_path_factory.mktemp(f"host-{name}") for name in "ab"]
    envs = [
        host_env(POSTGRES_URL, home, secret, CASESVC_RATELIMIT_LOGIN_PER_IP="100000/minute", CASESVC_KEEPALIVE="120")
        for home in homes
    ]
    with serving([("a", envs[0], homes[0]), ("b", envs[1], homes[1])]) as started:
        yield {host.name: host for host in started}


def _other(host: str) -> str:
    return "b" if host == "a" else "a"


def _today(days: int = 0) -> str:
    return (oslo_today() + timedelta(days=days)).isoformat()


def _consent_body() -> dict:
    return {
        "given_by": "both",
        "given_on": _today(-1),
        "expires_on": _today(90),
        "purpose": "Follow-up",
        "agencies": ["health", "slt"],
        "categories": ["general"],
    }


NOTE = {"body": "Test note", "category": "general", "visibility": "shared"}


class Load:
    """The clients of one run and what they must see; each kind of client is a method."""

    def __init__(self, hosts: dict, ledger: Ledger, deadline: float):
        self.bases = {name: host.base for name, host in hosts.items()}
        self.ledger = ledger
        self.deadline = deadline
        self.ids = NationalIds(date(2010, 1, 1))
        self.shared = Shared()
        self.unexpected: list[str] = []  # answers outside what the request may get
        self.created: list[tuple[str, str]] = []  # (host that answered 201, Location)

    def expect(self, answer, label: str, allowed: set[int]) -> bool:
        if answer.status not in allowed:
            self.unexpected.append(f"{label}: {answer.status} {answer.body[:300]!r}")
            return False
        return True

    def created_on(self, client: Client, host: str, answer, label: str) -> str | None:
        """A 201 is read at once from the other host, with the same token."""
        if not self.expect(answer, label, {201}):
            return None
        location = answer.header("Location")
        self.created.append((host, location))
        again = client.call(_other(host), "GET", location, "read back from the other host")
        if self.expect(again, f"read back {location}", {200}) and again.json["id"] != answer.json["id"]:
            self.unexpected.append(f"read back {location}: another id")
        return answer.json["id"]

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def police(self, client: Client, home: str, username: str, rng: random.Random) -> None:
        consents: list[tuple[str, str]] = []
        while self.running():
            roll, host = rng.random(), rng.choice("ab")
            case_id = self.shared.some_case(rng)
            if roll < 0.2 or case_id is None:
                youth = client.call(home, "POST", "/api/v1/youths", "create youth", json_body=youth_body(self.ids))
                youth_id = self.created_on(client, home, youth, "create youth")
                if youth_id is None:
                    continue
                case = client.call(
                    home,
                    "POST",
                    "/api/v1/cases",
                    "create case",
                    json_body={
                        "youth_id": youth_id,
                        "origin": "police",
                        "summary": "Test case",
                        "participants": ["health", "slt"],
                    },
                )
                case_id = self.created_on(client, home, case, "create case")
                if case_id:
                    self.shared.add_case(case_id)
            elif roll < 0.4:
                note = client.call(home, "POST", f"/api/v1/cases/{case_id}/notes", "create note", json_body=NOTE)
                self.created_on(client, home, note, "create note")
            elif roll < 0.55:
                self.expect(client.call(host, "GET", "/api/v1/cases?limit=20", "list cases"), "list cases", {200})
            elif roll < 0.7:
                self.expect(client.call(host, "GET", f"/api/v1/cases/{case_id}", "read case"), "read case", {200})
            elif roll < 0.8 and consents and rng.random() < 0.5:
                case_of, consent_id = consents.pop(0)
                withdrawn = client.call(
                    host, "POST", f"/api/v1/cases/{case_of}/consents/{consent_id}/withdraw", "withdraw consent"
                )
                self.expect(withdrawn, "withdraw consent", {200})
            elif roll < 0.9:
                given = client.call(
                    home, "POST", f"/api/v1/cases/{case_id}/consents", "give consent", json_body=_consent_body()
                )
                consent_id = self.created_on(client, home, given, "give consent")
                if consent_id:
                    consents.append((case_id, consent_id))
            else:  # a new token from either host, used on both from now on
                self.expect(client.login(host, username, PASSWORD), "login", {200})

    def reader(self, client: Client, rng: random.Random, allowed: set[int]) -> None:
        """health and slt: participants, who see a case while a consent names them (else 403);
        nav, who takes part in none of them (404)."""
        while self.running():
            roll, host = rng.random(), rng.choice("ab")
            case_id = self.shared.some_case(rng)
            if roll < 0.3 or case_id is None:
                self.expect(client.call(host, "GET", "/api/v1/cases?limit=20", "list cases"), "list cases", {200})
            elif roll < 0.7:
                self.expect(client.call(host, "GET", f"/api/v1/cases/{case_id}", "read case"), "read case", allowed)
            elif roll < 0.9:
                notes = client.call(host, "GET", f"/api/v1/cases/{case_id}/notes", "list notes")
                self.expect(notes, "list notes", allowed)
            else:
                self.expect(client.call(host, "GET", "/api/v1/reminders", "list reminders"), "list reminders", {200})

    def guesser(self, client: Client, rng: random.Random) -> None:
        """Wrong passwords for one user, on both hosts in turn."""
        host = rng.choice("ab")
        while self.running():
            guess = client.call(
                host,
                "POST",
                "/api/v1/auth/token",
                "wrong password",
                token=False,
                form={"grant_type": "password", "username": "user.cw", "password": f"guess {rng.random()}"},
            )
            self.expect(guess, "wrong password", {400, 401, 429})
            host = _other(host)
            time.sleep(0.2)


def _users(world, role: str, agency: str, count: int) -> list[str]:
    names = [f"load.{agency}.{n}" for n in range(count)]
    for name in names:
        world.actor(role, agency, name=name)
    return names


def test_two_hosts_under_200_clients_answer_no_5xx_and_audit_every_request_once(world, app, hosts, figures):
    police = _users(world, "police", "police", 20)  # five clients each: concurrent logins of one name stay
    health = _users(world, "school_health", "health", 8)  # under its limit (a login counts until it succeeds)
    slt = _users(world, "coordinator", "slt", 6)
    nav = _users(world, "nav", "nav", 4)
    ledger = Ledger("two")
    started = time.monotonic()
    load = Load(hosts, ledger, deadline=started + SECONDS + 5)  # + the time the clients take to log in
    ready = threading.Barrier(CLIENTS + 1)

    def client_thread(index: int) -> None:
        rng = random.Random(index)
        home = "ab"[index % 2]
        client = Client(load.bases, ledger, timeout=60)
        kind = index % 20
        try:
            if kind == 19:
                ready.wait(timeout=120)
                load.guesser(client, rng)
                return
            username = (
                police[index % 20]
                if kind < 10
                else health[index % 8]
                if kind < 14
                else slt[index % 6]
                if kind < 17
                else nav[index % 4]
            )
            load.expect(client.login(home, username, PASSWORD), "first login", {200})
            ready.wait(timeout=120)
            if kind < 10:
                load.police(client, home, username, rng)
            elif kind < 17:
                load.reader(client, rng, {200, 403})
            else:
                load.reader(client, rng, {404})
        except Exception as exc:  # noqa: BLE001 (reported below: a client must not fail)
            load.unexpected.append(f"client {index}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=120)
    load.deadline = time.monotonic() + SECONDS
    began = time.monotonic()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)
    seconds = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)

    # the limit of wrong passwords for one name, counted over both hosts: a correct one is refused too
    after = {name: Client(load.bases, ledger).login(name, "user.cw", PASSWORD) for name in "ab"}
    verified = run_cli(hosts["a"].env, "audit", "verify")
    events = [e for e in sealed(app) if (e["request_id"] or "").startswith("two-")]
    once = {}
    for event in events:
        once[event["request_id"]] = once.get(event["request_id"], 0) + 1
    guesses = ledger.statuses("wrong password")
    figures(
        f"two hosts (2 workers each) on one PostgreSQL, {CLIENTS} clients for {SECONDS:.0f} s",
        [
            *ledger.figures(seconds),
            f"created and read back from the other host: {len(load.created)}",
            f"wrong passwords for one user, both hosts: {dict(guesses)} (limit {LOGIN_LIMIT}/minute)",
            f"audit events of these requests: {len(events)}; chain: {verified.stdout.strip()}",
        ],
    )

    assert load.unexpected == []
    answered = [r for r in ledger.records if r.status]
    assert not [r for r in ledger.records if r.status == 0 or r.status >= 500]
    assert len(load.created) > 3 * SECONDS and len(answered) > 30 * SECONDS, "too little load to prove anything"
    assert {r.host for r in answered} == {"a", "b"}
    assert guesses[400] + guesses[401] == LOGIN_LIMIT, guesses  # one count for both hosts
    assert guesses[429] > 0
    assert {name: a.status for name, a in after.items()} == {"a": 429, "b": 429}
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["valid"] is True and verdict["unsealed"] == 0
    assert set(once) == {r.request_id for r in ledger.records}  # every request left an event…
    assert set(once.values()) == {1}  # …and only one
    seqs = [e["seq"] for e in sealed(app)]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless from 1


# --- reminders: four runs at once --------------------------------------------------------------


class Receiver:
    """The webhook receiver the test owns: every body it was sent, and whether each was signed."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.signed: list[bool] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mac = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
                receiver.signed.append(self.headers.get("X-Casesvc-Signature") == f"sha256={mac}")
                receiver.bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _recurring_contract(world, case: dict) -> None:
    """An active drug contract with two conditions due yesterday and the day before (not yet escalated)."""
    starts = oslo_today() - timedelta(days=15)
    body = {
        "type": "drug_contract",
        "legal_basis": "conditional_waiver",
        "starts_on": starts.isoformat(),
        "ends_on": (starts + timedelta(days=180)).isoformat(),
        "signatures": [{"party": "youth", "signed_on": _today()}, {"party": "guardian", "signed_on": _today()}],
        "conditions": [{"kind": "drug_test", "every_days": days, "responsible_agency": "health"} for days in (14, 13)],
    }
    made = world["police"].post(f"/api/v1/cases/{case['id']}/reactions", json=body)
    assert made.status_code == 201, made.json
    active = world["police"].post(
        f"/api/v1/cases/{case['id']}/reactions/{made.json['id']}/transitions", json={"to": "active"}
    )
    assert active.status_code == 200, active.json


def _run_four_at_once(env: dict, now: str) -> list[dict]:
    runs = [
        subprocess.Popen(
            [*CLI, "reminders", "run", "--now", now], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_four_reminder_runs_at_once_create_and_deliver_each_reminder_once(world, app, hosts, receiver, figures):
    for _ in range(6):
        case = world.case(participants=("health",))
        world.consent(case, ["health"])  # health, the assignee, lists the reminders of a case it may see
        _recurring_contract(world, case)
    admin = Client({n: h.base for n, h in hosts.items()}, Ledger("rem"))
    assert admin.login("a", "user.admin", PASSWORD).status == 200
    hook = admin.call(
        "a",
        "PUT",
        "/api/v1/agencies/health/webhook",
        "webhook",
        json_body={"url": receiver.url, "secret": WEBHOOK_SECRET},
    )
    assert hook.status == 201, hook.body
    now = rfc3339(utcnow())
    began = time.monotonic()
    results = _run_four_at_once(hosts["a"].env, now)
    took = time.monotonic() - began

    with app.app_context():
        reminders = {r.id: r for r in db.session.scalars(select(Reminder))}
        attempts = db.session.scalar(select(func.count()).select_from(WebhookAttempt))
        db.session.remove()
    delivered = [json.loads(body)["reminder_id"] for body in receiver.bodies]
    figures(
        "four `casesvc reminders run` at once, beside the two hosts",
        [
            f"created per run: {[sum(r['created'].values()) for r in results]}, "
            f"delivered per run: {[r['deliveries']['delivered'] for r in results]}, all four done in {took:.1f} s"
        ],
    )

    assert sum(r["created"]["condition_due"] for r in results) == 12
    assert sum(sum(r["created"].values()) for r in results) == len(reminders) == 12  # created once each
    assert sorted(delivered) == sorted(reminders)  # delivered once each
    assert all(receiver.signed) and attempts == 12
    assert sum(r["deliveries"]["delivered"] for r in results) == 12

    health = Client({n: h.base for n, h in hosts.items()}, Ledger("rem"))
    assert health.login("b", "user.health", PASSWORD).status == 200
    for name in "ab":  # both hosts list the same twelve, and the deliveries once each
        listed = health.call(name, "GET", "/api/v1/reminders?limit=200", "reminders").json["items"]
        assert sorted(r["id"] for r in listed) == sorted(reminders)
        deliveries = admin.call(name, "GET", "/api/v1/agencies/health/webhook/deliveries?limit=200", "deliveries").json[
            "items"
        ]
        assert sorted(d["reminder_id"] for d in deliveries) == sorted(reminders)
        assert {d["outcome"] for d in deliveries} == {"delivered"}
