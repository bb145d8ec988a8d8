"""Webhooks (README "Reminders and webhooks"): the admin endpoints, and delivery by the worker to a real receiver on
127.0.0.1 — signed, ids only, retried with backoff from the run's now and then failed, every
attempt recorded, a slow receiver cut off at the timeout, a crashed worker's claim taken over
after its lease, nothing sent for a reminder settled before it was due."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from casesvc.common.timeutil import oslo_today, rfc3339, utcnow
from casesvc.extensions import db
from casesvc.reminders import webhooks, worker
from casesvc.reminders.models import Reminder, Webhook, WebhookAttempt, WebhookDelivery
from tests.conftest import assert_problem, run_worker as run_worker_with

SECRET = "receiver-shared-secret-123"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (the worker's timeout) is expected here


def recording_handler(receiver):
    """A request handler that records each POST in `receiver.requests` and answers
    `receiver.status` (and `receiver.location`), once `receiver.gate` is set when there is one."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if receiver.gate is not None:
                receiver.gate.wait(30)
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records what it is sent and answers `status`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.location = None
        self.gate: threading.Event | None = None  # when set, the answer waits for it (a slow receiver)
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), recording_handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/casesvc/hook"

    def close(self):
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# this file's webhook settings: a short backoff and four attempts
WEBHOOK_SETTINGS = {
    "webhook_timeout": 5.0,
    "webhook_backoff_seconds": 60,
    "webhook_backoff_max_seconds": 600,
    "webhook_max_attempts": 4,
}


def settings_of(app, **overrides):
    return replace(app.config["CASESVC"], **{**WEBHOOK_SETTINGS, **overrides})


def run_worker(app, now, **overrides):
    return run_worker_with(app, now, **{**WEBHOOK_SETTINGS, **overrides})


def hook(world, receiver, agency="health", secret=SECRET):
    resp = world["admin"].put(f"/api/v1/agencies/{agency}/webhook", json={"url": receiver.url, "secret": secret})
    assert resp.status_code in (200, 201), resp.json
    return resp


def manual(world, case, due_at, agency="health", text=None, by="police"):
    body = {"due_at": rfc3339(due_at), "assignee_agency": agency}
    if text:
        body["text"] = text
    resp = world[by].post(f"/api/v1/cases/{case['id']}/reminders", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def attempts(world, agency="health", **query):
    resp = world["admin"].get(f"/api/v1/agencies/{agency}/webhook/deliveries", query_string=query)
    assert resp.status_code == 200, resp.json
    return resp.json["items"]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def due_reminder(world, receiver):
    """A webhook for health and a manual reminder for health that fell due a minute ago."""
    hook(world, receiver)
    case = world.case(participants=("health",))
    reminder = manual(world, case, utcnow() - timedelta(minutes=1), text="Call the guardian about the youth")
    return case, reminder


# --- the secret at rest --------------------------------------------------------------------------


def stored_secret(app, agency="health") -> str:
    with app.app_context():
        return db.session.get(Webhook, agency).secret


def test_the_secret_is_stored_encrypted_and_deliveries_are_signed_with_it(world, app, receiver, due_reminder):
    stored = stored_secret(app)
    assert stored.startswith("enc1:") and SECRET not in stored
    assert run_worker(app, utcnow())["deliveries"]["delivered"] == 1
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert webhooks.verify(
        SECRET, headers["x-casesvc-timestamp"], headers["x-casesvc-signature"], request["body"], now=time.time()
    )


def test_a_secret_that_cannot_be_read_sends_nothing_and_fails_the_attempt(world, app, receiver, due_reminder):
    from casesvc.common.crypto import PREFIX

    with app.app_context():
        webhook = db.session.get(Webhook, "health")
        webhook.secret = PREFIX + "gAAAAABnot-a-token-this-service-made"
        db.session.commit()
    assert run_worker(app, utcnow())["deliveries"]["retrying"] == 1
    assert receiver.requests == []
    [attempt] = attempts(world)
    assert attempt["outcome"] == "retrying" and "set the webhook again" in attempt["error"]
    hook(world, receiver)  # setting it again mends it
    assert run_worker(app, utcnow() + timedelta(minutes=5))["deliveries"]["delivered"] == 1


# --- the admin endpoints ----------------------------------------------------------------------------


def test_an_admin_sets_reads_replaces_and_removes_a_webhook(world, receiver):
    url = "/api/v1/agencies/health/webhook"
    created = world["admin"].put(url, json={"url": receiver.url, "secret": SECRET})
    assert created.status_code == 201, created.json
    assert created.headers["Location"].endswith(url)
    assert created.json["url"] == receiver.url
    assert created.json["agency"] == "health"
    got = world["admin"].get(url)
    assert got.status_code == 200
    assert (got.json["url"], got.json["secret_set"]) == (receiver.url, True)
    replaced = world["admin"].put(url, json={"url": "https://hooks.example.org/x", "secret": SECRET + "-new"})
    assert replaced.status_code == 200
    assert world["admin"].get(url).json["url"] == "https://hooks.example.org/x"
    assert world["admin"].delete(url).status_code == 204
    assert_problem(world["admin"].get(url), 404)
    assert_problem(world["admin"].delete(url), 404)


def test_the_secret_is_never_shown(world, receiver):
    for resp in (hook(world, receiver), world["admin"].get("/api/v1/agencies/health/webhook")):
        assert "secret" not in resp.json
        assert SECRET not in resp.get_data(as_text=True)


@pytest.mark.parametrize("who", ["police", "health", "auditor"])
def test_only_an_admin_manages_webhooks(world, receiver, who):
    url = "/api/v1/agencies/health/webhook"
    assert_problem(world[who].put(url, json={"url": receiver.url, "secret": SECRET}), 403)
    assert_problem(world[who].get(url), 403)
    assert_problem(world[who].delete(url), 403)
    assert_problem(world[who].get(url + "/deliveries"), 403)


def test_an_admin_token_without_the_admin_scope_is_refused(world, receiver):
    admin = world.as_user(world["admin"].user_id, "admin", None, "user.admin", scopes={"audit:read"})
    assert_problem(
        admin.put("/api/v1/agencies/health/webhook", json={"url": receiver.url, "secret": SECRET}),
        403,
        "insufficient-scope",
    )


def test_an_unknown_agency_is_404(world, receiver):
    assert_problem(
        world["admin"].put("/api/v1/agencies/nosuch/webhook", json={"url": receiver.url, "secret": SECRET}), 404
    )
    assert_problem(world["admin"].get("/api/v1/agencies/nosuch/webhook/deliveries"), 404)


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "not a url", "https://u:p@example.org/hook"])
def test_a_non_http_url_is_422(world, url):
    body = assert_problem(
        world["admin"].put("/api/v1/agencies/health/webhook", json={"url": url, "secret": SECRET}), 422
    )
    assert "url" in body["errors"]


def test_an_empty_or_overlong_secret_is_422(world, receiver):
    for secret in ("", "x" * 256):
        body = assert_problem(
            world["admin"].put("/api/v1/agencies/health/webhook", json={"url": receiver.url, "secret": secret}), 422
        )
        assert "secret" in body["errors"]


def test_a_short_secret_is_accepted_and_signs_the_deliveries(world, app, receiver):
    """The contract sets no minimum length (the README recommends a long random secret)."""
    resp = world["admin"].put("/api/v1/agencies/health/webhook", json={"url": receiver.url, "secret": "s3cret"})
    assert resp.status_code == 201, resp.json
    case = world.case(participants=("health",))
    manual(world, case, utcnow() - timedelta(minutes=1))
    assert run_worker(app, utcnow())["deliveries"]["delivered"] == 1
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert webhooks.verify(
        "s3cret", headers["x-casesvc-timestamp"], headers["x-casesvc-signature"], request["body"], now=time.time()
    )


def test_loopback_and_private_targets_are_refused_in_production(world, app, monkeypatch):
    monkeypatch.setitem(app.config, "CASESVC", replace(app.config["CASESVC"], env="production"))
    for url in (
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
    ):
        body = assert_problem(
            world["admin"].put("/api/v1/agencies/health/webhook", json={"url": url, "secret": SECRET}), 422
        )
        assert "url" in body["errors"]


def test_loopback_targets_are_allowed_outside_production(world, receiver):
    resp = hook(world, receiver)
    assert resp.status_code == 201
    assert urlsplit(receiver.url).hostname in ("127.0.0.1", "localhost", "::1")
    assert (resp.json["agency"], resp.json["url"]) == ("health", receiver.url)
    assert world["admin"].get("/api/v1/agencies/health/webhook").json["url"] == receiver.url


# --- DNS rebinding: the address checked is the address used -------------------------------------------


def test_in_production_the_name_is_resolved_once_and_that_address_is_used(monkeypatch):
    answers = iter([["93.184.216.34"], ["10.0.0.5"]])  # public at the check, then inward
    asked = []

    def resolve(host, port):
        asked.append((host, port))
        return next(answers)

    sent = []
    monkeypatch.setattr(
        webhooks,
        "_post",
        lambda url, body, headers, timeout, address=None: sent.append(address) or webhooks.Attempt(True, 200, None),
    )
    [result] = webhooks.send_all(
        [("https://hooks.example.test/in", b"{}", {})], 1.0, 1, vetting=lambda url: webhooks.vet(url, True, resolve)
    )
    assert result.ok
    assert asked == [("hooks.example.test", 443)]  # one lookup, not a second one at connect time
    assert sent == ["93.184.216.34"]


def test_a_name_that_resolves_inward_is_refused_before_anything_is_sent(monkeypatch):
    monkeypatch.setattr(webhooks, "_post", lambda *args, **kwargs: pytest.fail("nothing may be sent"))
    [result] = webhooks.send_all(
        [("https://hooks.example.test/in", b"{}", {})],
        1.0,
        1,
        vetting=lambda url: webhooks.vet(url, True, lambda host, port: ["10.0.0.5"]),
    )
    assert not result.ok and result.error.startswith("refused:")


def test_the_attempt_connects_to_the_vetted_address_and_keeps_the_host_name(receiver):
    """`receiver.invalid` resolves nowhere: the request can only arrive through the address given."""
    port = receiver.server.server_address[1]
    result = webhooks._post(
        f"http://receiver.invalid:{port}/casesvc/hook?x=1",
        b'{"a":1}',
        {"Content-Type": "application/json"},
        5.0,
        address="127.0.0.1",
    )
    assert (result.ok, result.status_code) == (True, 200)
    [request] = receiver.requests
    assert request["path"] == "/casesvc/hook?x=1"
    assert request["headers"]["Host"] == f"receiver.invalid:{port}"
    assert request["body"] == b'{"a":1}'


# --- delivery ----------------------------------------------------------------------------------------


def test_a_due_reminder_is_posted_once_signed_with_ids_only(world, app, receiver, due_reminder):
    case, reminder = due_reminder
    now = utcnow()
    assert run_worker(app, now)["deliveries"] == {"delivered": 1, "retrying": 0, "failed": 0}
    [request] = receiver.requests
    assert request["path"] == "/casesvc/hook"
    body = request["body"]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert json.loads(body) == {
        "event": "reminder.due",
        "reminder_id": reminder["id"],
        "case_id": case["id"],
        "kind": "manual",
        "due_at": reminder["due_at"],
        "timestamp": int(headers["x-casesvc-timestamp"]),
    }
    assert headers["content-type"] == "application/json"
    # README "Reminders and webhooks": the hex HMAC-SHA256 of the body with the secret
    assert headers["x-casesvc-signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    # what a receiver does: recompute over the raw body; its timestamp is the header's, and fresh
    assert webhooks.verify(
        SECRET, headers["x-casesvc-timestamp"], headers["x-casesvc-signature"], body, now=time.time()
    )
    assert not webhooks.verify(
        "some-other-secret-value", headers["x-casesvc-timestamp"], headers["x-casesvc-signature"], body, now=time.time()
    )
    assert b"guardian" not in body and b"Call" not in body
    run_worker(app, now + timedelta(hours=1))
    assert len(receiver.requests) == 1


def test_the_delivery_is_listed_as_an_attempt(world, app, receiver, due_reminder):
    _, reminder = due_reminder
    now = utcnow().replace(microsecond=0)
    run_worker(app, now)
    [item] = attempts(world)
    assert item["reminder_id"] == reminder["id"]
    assert (item["status_code"], item["outcome"], item["error"]) == (200, "delivered", None)
    assert item["attempted_at"] == rfc3339(now)
    assert set(item) >= {"id", "reminder_id", "attempted_at", "status_code", "outcome", "error"}


def test_a_reminder_not_yet_due_is_posted_only_when_it_falls_due(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    due = utcnow() + timedelta(days=2)
    manual(world, case, due)
    run_worker(app, utcnow())
    assert receiver.requests == []
    run_worker(app, due)
    assert len(receiver.requests) == 1


def test_the_outbox_row_is_written_with_the_reminder(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders", json={"due_at": rfc3339(utcnow()), "assignee_agency": "nav"}
    )
    assert resp.status_code == 422  # refused: neither a reminder nor an outbox row is left behind
    assert (count(app, Reminder), count(app, WebhookDelivery)) == (0, 0)
    manual(world, case, utcnow())
    assert (count(app, Reminder), count(app, WebhookDelivery)) == (1, 1)


def test_reminders_created_by_the_worker_are_queued_for_the_agencys_webhook(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    world.consent(case, ["health"], expires_on=(oslo_today() + timedelta(days=28)).isoformat())
    hook(world, receiver, agency="police")
    result = run_worker(app, utcnow())
    assert result["created"]["consent_expiring"] == 1
    assert result["deliveries"]["delivered"] == 1
    assert json.loads(receiver.requests[0]["body"])["kind"] == "consent_expiring"


def test_an_agency_without_a_webhook_is_not_called(world, app, receiver):
    case = world.case(participants=("health",))
    manual(world, case, utcnow())
    assert run_worker(app, utcnow())["deliveries"] == {"delivered": 0, "retrying": 0, "failed": 0}
    assert receiver.requests == []


def test_a_webhook_set_later_hears_of_reminders_still_to_come(world, app, receiver):
    case = world.case(participants=("health",))
    due = utcnow() + timedelta(days=1)
    manual(world, case, due)
    manual(world, case, utcnow() - timedelta(days=1))  # already due before the webhook existed: not sent
    hook(world, receiver)
    run_worker(app, due)
    assert len(receiver.requests) == 1


def test_a_reminder_settled_before_it_is_due_is_not_posted(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    reminder = manual(world, case, utcnow() + timedelta(hours=2))
    assert world["health"].post(f"/api/v1/reminders/{reminder['id']}/done").status_code == 200
    run_worker(app, utcnow() + timedelta(hours=3))
    assert receiver.requests == []
    with app.app_context():
        assert db.session.scalar(select(WebhookDelivery.state)) == "cancelled"


def test_a_snoozed_reminder_is_posted_at_the_new_time(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    reminder = manual(world, case, utcnow() + timedelta(hours=1))
    until = utcnow().replace(microsecond=0) + timedelta(days=1)
    assert (
        world["health"].post(f"/api/v1/reminders/{reminder['id']}/snooze", json={"until": rfc3339(until)}).status_code
        == 200
    )
    run_worker(app, utcnow() + timedelta(hours=2))
    assert receiver.requests == []
    run_worker(app, until)
    assert json.loads(receiver.requests[0]["body"])["due_at"] == rfc3339(until)


def test_removing_the_webhook_cancels_what_was_not_sent(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    manual(world, case, utcnow() + timedelta(hours=1))
    world["admin"].delete("/api/v1/agencies/health/webhook")
    run_worker(app, utcnow() + timedelta(hours=2))
    assert receiver.requests == []


# --- failures, retries, backoff ----------------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff_from_the_runs_now_then_failed(world, app, receiver, due_reminder):
    receiver.status = 500
    now = utcnow().replace(microsecond=0)
    assert run_worker(app, now)["deliveries"]["retrying"] == 1
    # the same now again: nothing is due yet (idempotent)
    assert run_worker(app, now)["deliveries"] == {"delivered": 0, "retrying": 0, "failed": 0}
    assert run_worker(app, now + timedelta(seconds=59))["deliveries"]["retrying"] == 0
    assert run_worker(app, now + timedelta(seconds=60))["deliveries"]["retrying"] == 1  # after 60 s
    assert run_worker(app, now + timedelta(seconds=179))["deliveries"]["retrying"] == 0
    assert run_worker(app, now + timedelta(seconds=180))["deliveries"]["retrying"] == 1  # after 120 s more
    assert run_worker(app, now + timedelta(seconds=420))["deliveries"]["failed"] == 1  # the 4th and last
    assert run_worker(app, now + timedelta(days=30))["deliveries"] == {"delivered": 0, "retrying": 0, "failed": 0}
    assert len(receiver.requests) == 4
    listed = attempts(world)
    assert [a["outcome"] for a in listed] == ["failed", "retrying", "retrying", "retrying"]
    assert {a["status_code"] for a in listed} == {500}
    assert {a["error"] for a in listed} == {"HTTP 500"}
    assert [a["attempted_at"] for a in reversed(listed)] == [
        rfc3339(now + timedelta(seconds=s)) for s in (0, 60, 180, 420)
    ]
    assert [a["outcome"] for a in attempts(world, outcome="failed")] == ["failed"]


def test_a_receiver_that_recovers_gets_the_delivery(world, app, receiver, due_reminder):
    receiver.status = 503
    now = utcnow()
    run_worker(app, now)
    receiver.status = 200
    assert run_worker(app, now + timedelta(minutes=1))["deliveries"]["delivered"] == 1
    assert [a["outcome"] for a in attempts(world)] == ["delivered", "retrying"]
    # every attempt sends the same event; only `timestamp`, the send time, moves on
    events = [json.loads(r["body"]) for r in receiver.requests]
    assert len(events) == 2 and all(isinstance(e.pop("timestamp"), int) for e in events)
    assert events[0] == events[1]


def test_a_redirect_is_not_followed(world, app, receiver, due_reminder):
    receiver.status = 302
    receiver.location = "http://127.0.0.1:1/elsewhere"
    assert run_worker(app, utcnow())["deliveries"]["retrying"] == 1
    assert len(receiver.requests) == 1
    assert attempts(world)[0]["status_code"] == 302


def test_a_receiver_that_is_down_is_recorded_and_retried(world, app, receiver, due_reminder):
    receiver.close()
    assert run_worker(app, utcnow())["deliveries"]["retrying"] == 1
    [item] = attempts(world)
    assert item["status_code"] is None
    assert item["error"].startswith("connection failed")


def test_a_slow_receiver_does_not_hold_the_worker_past_the_timeout(world, app, receiver, due_reminder):
    receiver.gate = threading.Event()  # the receiver does not answer until the test lets it
    try:
        result = run_worker(app, utcnow(), webhook_timeout=0.5)
    finally:
        receiver.gate.set()
    assert result["deliveries"]["retrying"] == 1
    [item] = attempts(world)
    assert (item["outcome"], item["error"], item["status_code"]) == ("retrying", "timeout", None)


def test_a_target_refused_in_production_is_not_called(world, app, receiver, due_reminder):
    assert run_worker(app, utcnow(), env="production")["deliveries"]["retrying"] == 1
    assert receiver.requests == []
    assert attempts(world)[0]["error"].startswith("refused:")


# --- claims and leases ---------------------------------------------------------------------------------


def test_a_worker_that_dies_after_claiming_loses_nothing(world, app, receiver, due_reminder):
    now = utcnow()
    with app.app_context():
        _token, batch, _ = worker.claim(now, settings_of(app))  # ... and then the worker dies
        assert len(batch) == 1
    # while the lease holds, nobody else takes the row
    assert run_worker(app, now + timedelta(seconds=299))["deliveries"]["delivered"] == 0
    assert receiver.requests == []
    # once it has run out, the next run delivers it, once
    assert run_worker(app, now + timedelta(seconds=300))["deliveries"]["delivered"] == 1
    run_worker(app, now + timedelta(seconds=900))
    assert len(receiver.requests) == 1


def test_a_worker_whose_lease_was_taken_over_does_not_overwrite_the_outcome(world, app, receiver, due_reminder):
    now = utcnow()
    with app.app_context():
        settings = settings_of(app)
        token, batch, _ = worker.claim(now, settings)
    run_worker(app, now + timedelta(seconds=301))  # the lease ran out: another worker delivered it
    receiver.status = 500
    with app.app_context():
        worker.deliver(now + timedelta(seconds=302), settings, token, batch)  # the first wakes up late
        assert db.session.scalar(select(WebhookDelivery.state)) == "delivered"
    assert count(app, WebhookAttempt) == 2  # both attempts are on record


def test_claimed_rows_are_not_claimed_twice(world, app, receiver, due_reminder):
    now = utcnow()
    with app.app_context():
        _, first, _ = worker.claim(now, settings_of(app))
        _, second, _ = worker.claim(now, settings_of(app))
    assert (len(first), len(second)) == (1, 0)


# --- the deliveries list ----------------------------------------------------------------------------


def test_the_deliveries_list_is_paginated_newest_first(world, app, receiver):
    hook(world, receiver)
    case = world.case(participants=("health",))
    base = utcnow().replace(microsecond=0)
    for minutes in (3, 2, 1):
        manual(world, case, base - timedelta(minutes=minutes))
        run_worker(app, base - timedelta(minutes=minutes) + timedelta(seconds=1))
    first = world["admin"].get("/api/v1/agencies/health/webhook/deliveries?limit=2").json
    assert [a["attempted_at"] for a in first["items"]] == [
        rfc3339(base - timedelta(seconds=59)),
        rfc3339(base - timedelta(seconds=119)),
    ]
    second = world["admin"].get(f"/api/v1/agencies/health/webhook/deliveries?limit=2&cursor={first['next_cursor']}")
    assert [a["attempted_at"] for a in second.json["items"]] == [rfc3339(base - timedelta(seconds=179))]
    assert second.json["next_cursor"] is None


def test_the_metrics_count_deliveries_by_outcome(world, app, client, receiver, due_reminder):
    receiver.status = 500
    now = utcnow()
    run_worker(app, now)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'casesvc_webhook_deliveries_total{outcome="retrying"} 1.0' in text
    assert 'casesvc_webhook_deliveries_total{outcome="delivered"} 0.0' in text


def test_the_signature_covers_the_timestamp_so_a_replay_cannot_be_freshened():
    stored = webhooks.payload("r-1", "c-1", "manual", utcnow())
    body, headers = webhooks.signed_request(SECRET, stored.encode(), "d-1", 1_800_000_000)
    sig, stamp = headers[webhooks.SIGNATURE_HEADER], headers[webhooks.TIMESTAMP_HEADER]
    assert webhooks.verify(SECRET, stamp, sig, body, now=1_800_000_010)
    # too old: refused
    assert not webhooks.verify(SECRET, stamp, sig, body, now=1_800_000_000 + 3600)
    # a replayer who moves the header forward no longer matches the signed body
    assert not webhooks.verify(SECRET, "1800003600", sig, body, now=1_800_003_600)
    # and one who rewrites the body's timestamp breaks the signature
    forged = body.replace(b"1800000000", b"1800003600")
    assert not webhooks.verify(SECRET, "1800003600", sig, forged, now=1_800_003_600)
