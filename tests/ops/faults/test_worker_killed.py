"""A gunicorn worker killed (SIGKILL) in the middle of a burst of creates: gunicorn forks a
replacement, the service goes on answering, and the database holds no youth without the audit
event of its creation and no creation event without its youth (the two commit together or not
at all, README "The audit log"). The only answers the clients miss are those of the requests the
killed worker held; none is a 5xx."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import date

from sqlalchemy import select

from casesvc.extensions import db
from casesvc.youths.models import Youth
from tests.conftest import PASSWORD, sealed
from tests.ops.faults.harness import (
    POSTGRES_URL,
    Client,
    Ledger,
    NationalIds,
    host_env,
    new_secret,
    pg_only,
    serving,
    youth_body,
)

CLIENTS = 16
KILLS = 3
SECONDS_BETWEEN_KILLS = 2.0


def _replacement(host, gone: int, known: set[int], timeout: float = 15.0) -> tuple[int, float]:
    """The worker gunicorn forked in place of `gone`, and how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        workers = host.workers()
        if gone not in workers and len(workers) == 2 and workers - known:
            return next(iter(workers - known)), time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"no replacement for worker {gone} within {timeout} s:\n{host.log_text()}")


@pg_only
def test_a_worker_killed_mid_write_is_replaced_and_leaves_no_write_without_its_audit_event(
    world, app, tmp_path, figures
):
    home = tmp_path / "host"
    env = host_env(POSTGRES_URL, home, new_secret())
    ledger = Ledger("kill")
    ids = NationalIds(date(2009, 1, 1))
    stop = threading.Event()
    created: list[str] = []
    retries: list[tuple[str, object]] = []  # (the unanswered request's id, the retry's answer)

    with serving([("host", env, home)]) as [host]:
        known = host.workers()
        born = sorted(known)  # the workers in the order they were forked

        def creating():
            client = Client({"host": host.base}, ledger)
            logged_in = client.login("host", "user.police", PASSWORD).status == 200
            ready.wait(timeout=60)
            while logged_in and not stop.is_set():
                body, key = youth_body(ids), str(uuid.uuid4())
                answer = client.call(
                    "host", "POST", "/api/v1/youths", "create youth", json_body=body, headers={"Idempotency-Key": key}
                )
                if answer.status == 0:  # no answer: the same request again, at once, as a careful client does
                    first = answer.request_id
                    answer = client.call(
                        "host", "POST", "/api/v1/youths", "retry", json_body=body, headers={"Idempotency-Key": key}
                    )
                    retries.append((first, answer))
                if answer.status == 201:
                    created.append(answer.json["id"])
            client.close()

        ready = threading.Barrier(CLIENTS + 1)  # the burst begins once every client holds a token
        threads = [threading.Thread(target=creating, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        ready.wait(timeout=60)
        started = time.monotonic()
        kills, replaced_in = [], []
        for _ in range(KILLS):
            time.sleep(SECONDS_BETWEEN_KILLS)
            # the worker alive longest: it holds the most keep-alive connections, so requests in flight
            victim = next(pid for pid in born if pid in host.workers())
            os.kill(victim, signal.SIGKILL)
            kills.append(time.monotonic())
            new, took = _replacement(host, victim, known)
            known.add(new)
            born.append(new)
            replaced_in.append(took)
        time.sleep(SECONDS_BETWEEN_KILLS)  # the service goes on answering after the last kill
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        seconds = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads)

        after_last_kill = [
            r for r in ledger.records if r.label == "create youth" and r.at > kills[-1] + max(replaced_in) + 0.5
        ]
        unanswered = {r.request_id for r in ledger.records if r.status == 0}
        events = [e for e in sealed(app) if (e["request_id"] or "").startswith("kill-")]
        with app.app_context():
            youths = set(db.session.scalars(select(Youth.id)))
            db.session.remove()
        by_request: dict[str, list[dict]] = {}
        for event in events:
            by_request.setdefault(event["request_id"], []).append(event)
        figures(
            "a worker killed mid-write (SIGKILL, 3 times, 16 clients creating youths, one host of 2 workers)",
            [
                *ledger.figures(seconds),
                f"replacement forked in: {', '.join(f'{t * 1000:.0f} ms' for t in replaced_in)}",
                f"requests the clients got no answer to: {len(unanswered)}, of which committed before the "
                f"worker died: {len(unanswered & set(by_request))}, not there (rolled back, or never read by a "
                f"worker): {len(unanswered - set(by_request))}",
                "retried at once with the same Idempotency-Key: "
                f"{sum(1 for _, a in retries if a.header('Idempotent-Replayed') == 'true')} replayed, "
                f"{sum(1 for _, a in retries if a.status == 201 and not a.header('Idempotent-Replayed'))} "
                f"created, {sum(1 for _, a in retries if a.status == 409)} answered 409 (the key held)",
            ],
        )

        # nothing but 201, and no answer for what the killed worker held: no 5xx, no error answer
        assert ledger.statuses("login") == {200: CLIENTS}
        assert set(ledger.statuses("create youth")) <= {201, 0}, ledger.statuses()
        assert set(ledger.statuses("retry")) <= {201, 409}, ledger.statuses()
        assert unanswered and len(unanswered) <= KILLS * CLIENTS  # each client lost at most its request in flight
        assert after_last_kill and all(r.status == 201 for r in after_last_kill), "the service stopped answering"
        assert len(host.workers()) == 2

        verdict = world["auditor"].get("/api/v1/audit/verify").json
        assert verdict["valid"] is True and verdict["unsealed"] == 0, verdict

    # the retry with the same Idempotency-Key: the stored answer when the first had committed, a
    # create when it never reached a worker, 409 while the key is held by the request that died
    for first, again in retries:
        committed = first in by_request
        if again.status == 201 and again.header("Idempotent-Replayed") == "true":
            assert committed and again.json["id"] in youths
        else:
            assert not committed and again.status in (201, 409), (again.status, again.body)
    assert set(created) <= youths  # every create answered 201 is there
    written = {e["resource_id"] for e in events if e["action"] == "youths.create_youth" and e["status"] == 201}
    assert youths == written, youths ^ written  # no youth without its event, no event without its youth
    assert all(len(found) == 1 for found in by_request.values())  # one event per request
    answered = {r.request_id for r in ledger.records if r.status}
    assert answered <= set(by_request)  # every answered request is audited, the logins included
    assert set(by_request) - answered <= unanswered  # and no other
