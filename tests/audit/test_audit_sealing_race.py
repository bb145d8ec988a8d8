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
from casesvc.audit.service import seal
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
    caplog.set_level(logging.DEBUG, logger="casesvc.audit.service")
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
