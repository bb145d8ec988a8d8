"""README "The audit log": every worker process runs its own sealer, so sealers meet. On
PostgreSQL a try-lock lets one work at a time; on SQLite the one that comes second waits for the
first to finish and then finds the inbox empty (or only what came since): neither forks the chain,
neither fails, and nothing is logged as if it were news."""

from __future__ import annotations

import logging
import threading
import uuid

from sqlalchemy import func, select

from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.audit.sealing import seal
from casesvc.audit.verify import verify_database
from casesvc.common.timeutil import utcnow
from casesvc.extensions import db

SEALERS = 4
ROUNDS = 15
EVENTS_PER_ROUND = 60


def _inbox_rows(count: int) -> None:
    db.session.execute(
        AuditInbox.__table__.insert(),
        [
            {"id": str(uuid.uuid4()), "at": utcnow(), "action": "cases.get_case", "outcome": "allowed", "status": 200}
            for _ in range(count)
        ],
    )
    db.session.commit()


def test_sealers_running_at_once_never_fork_the_chain_or_skip_a_round(app, caplog):
    caplog.set_level(logging.DEBUG, logger="casesvc.audit.sealing")
    sealed_by_round: list[int] = []
    failures: list[BaseException] = []
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEvent))
        for _ in range(ROUNDS):
            _inbox_rows(EVENTS_PER_ROUND)
            start = threading.Barrier(SEALERS)
            counts: list[int] = []

            def sealer(start=start, counts=counts):
                with app.app_context():
                    try:
                        start.wait()
                        counts.append(seal(batch=EVENTS_PER_ROUND // 3))
                    except BaseException as exc:  # noqa: BLE001 (reported below)
                        failures.append(exc)
                    finally:
                        db.session.remove()

            threads = [threading.Thread(target=sealer, name=f"race-sealer-{i}") for i in range(SEALERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sealed_by_round.append(sum(counts))
        db.session.expire_all()
        after = db.session.scalar(select(func.count()).select_from(AuditEvent))
        left = db.session.scalar(select(func.count()).select_from(AuditInbox))
        report = verify_database()
    assert not failures
    # no sealer of this race lost it: none was run (the records of its own threads: a background
    # sealer an earlier test's app left running may meet a database that test emptied)
    skipped = [
        r for r in caplog.records if r.threadName.startswith("race-sealer-") and "audit seal skipped" in r.getMessage()
    ]
    assert not skipped
    assert sealed_by_round == [EVENTS_PER_ROUND] * ROUNDS  # each round sealed everything, once
    assert left == 0 and after - before == ROUNDS * EVENTS_PER_ROUND
    assert report["valid"] and report["unsealed"] == 0


def test_a_reader_of_the_chain_waits_for_the_sealer_at_work_and_sees_what_it_sealed(app, world):
    """The sealing process is in the middle of a batch (it holds the sealers' lock) when an
    auditor asks for the log: the reader's seal waits for that batch to commit rather than return
    at once, so the events being sealed are in the answer. PostgreSQL (SQLite's sealers take the
    database's write lock, which a reader waits for anyway)."""
    import time

    import pytest
    from sqlalchemy import text

    from casesvc.audit.sealing import SEAL_LOCK_KEY

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the sealers' lock is PostgreSQL's")
        seal()
        engine = db.engine
    auditor = world["auditor"]
    held, done = threading.Event(), threading.Event()
    marker = str(uuid.uuid4())

    def sealer_at_work():
        with app.app_context(), engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_KEY})
            conn.execute(
                AuditInbox.__table__.insert(),
                {"id": marker, "at": utcnow(), "action": "cases.get_case", "outcome": "allowed", "status": 200},
            )
            held.set()
            time.sleep(0.5)  # the batch it works on, committed with the lock's release
        done.set()

    worker = threading.Thread(target=sealer_at_work)
    worker.start()
    try:
        assert held.wait(10)
        resp = auditor.get("/api/v1/audit/events?action=cases.get_case&limit=200")
        assert resp.status_code == 200
        assert done.is_set()  # it waited for the batch at work
        assert marker in {event["id"] for event in resp.json["items"]}
    finally:
        worker.join(10)
