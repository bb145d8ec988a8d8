"""The youth's record (README "The youth's record") for a youth with many entries: time and memory.

    .venv/bin/python bench/record.py [--events 5000] [--log 5000] [--database-url URL]

1. Builds a fresh schema with the real migrations in the database given (default: a temporary
   SQLite file; `--database-url postgresql+psycopg://…` for PostgreSQL — **its tables are
   dropped**), the usual agencies and a police user.
2. Registers one youth with one case through the service layer, then inserts N events
   (default 5,000; a mix of shared, agency-only and health entries of two agencies) and a note
   for every tenth, and M sealed audit events of that youth (the access log; default 5,000).
3. Calls `GET /api/v1/youths/{id}/record` in-process (Flask's test client, the body read to the
   end as a client would) as JSON and as HTML, three times each, and prints the wall time and
   the growth of the process's resident memory during the call (sampled from /proc every 5 ms
   against the RSS just before it). Target: < 2 s and < 50 MB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_SECONDS = 2.0
TARGET_MB = 50


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Peak:
    def __init__(self):
        self.base = rss_mb()
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_mb())


def build(app, n_events: int, n_log: int) -> tuple[str, str]:
    from flask_jwt_extended import create_access_token
    from flask_migrate import upgrade
    from sqlalchemy import text

    from casesvc.agencies.service import create_agency, create_user
    from casesvc.audit.models import AuditInbox
    from casesvc.audit.sealing import seal
    from casesvc.cases.service import open_case
    from casesvc.common.timeutil import utcnow
    from casesvc.extensions import db
    from casesvc.followups.models import Event, Note
    from casesvc.migrations_runner import migrations_directory
    from casesvc.policy import ROLE_SCOPES, Principal
    from casesvc.youths import national_id
    from casesvc.youths.service import register_youth

    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            if conn.dialect.name == "postgresql":
                conn.execute(text("DROP FUNCTION IF EXISTS audit_events_append_only() CASCADE"))
        upgrade(directory=migrations_directory(), revision="head")
        create_agency("police", "police", "Bench police", ["0301"])
        create_agency("health", "school_health", "Bench health", ["0301"])
        user = create_user("bench.police", "police", "police", "correct horse battery staple")
        db.session.commit()
        police = Principal(user.id, "police", "police", frozenset({"0301"}), ROLE_SCOPES["police"])
        born = date(utcnow().year - 15, 5, 17)
        number = next(n for i in range(500, 1000) if (n := national_id.make(born, i, synthetic=True)))
        youth = register_youth(
            police,
            {
                "given_name": "Bench",
                "family_name": "Benchesen",
                "birth_date": born,
                "national_id": number,
                "municipality": "0301",
                "guardians": [{"name": "Bench Forelder", "relation": "mother"}],
            },
        )
        case = open_case(
            police, {"youth_id": youth.id, "origin": "police", "summary": "Bench case", "participant_codes": ["health"]}
        )
        db.session.commit()
        start = utcnow() - timedelta(days=400)
        health_user = create_user("bench.health", "school_health", "health", "correct horse battery staple")
        db.session.commit()
        events, notes = [], []
        for i in range(n_events):
            by_police = i % 3 != 0
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "case_id": case.id,
                    "kind": "meeting" if i % 5 else "drug_test",
                    "occurred_at": start + timedelta(hours=i),
                    "result": None if i % 5 else "negative",
                    "summary": f"Follow-up meeting number {i}, went as planned.",
                    "category": "health" if i % 5 == 0 else "general",
                    "visibility": "agency" if i % 7 == 0 else "shared",
                    "author_agency": "police" if by_police else "health",
                    "author_user": user.id if by_police else health_user.id,
                    "created_at": start + timedelta(hours=i),
                }
            )
            if i % 10 == 0:
                notes.append(
                    {
                        "id": str(uuid.uuid4()),
                        "case_id": case.id,
                        "body": f"Note {i}: spoke with the guardian.",
                        "category": "general",
                        "visibility": "shared",
                        "author_agency": "police",
                        "author_user": user.id,
                        "created_at": start + timedelta(hours=i),
                    }
                )
        for chunk in range(0, len(events), 1000):
            db.session.execute(Event.__table__.insert(), events[chunk : chunk + 1000])
        if notes:
            db.session.execute(Note.__table__.insert(), notes)
        log = [
            {
                "id": str(uuid.uuid4()),
                "at": start + timedelta(minutes=i),
                "actor": user.id,
                "actor_role": "police",
                "actor_agency": "police",
                "action": "cases.get_case",
                "resource_type": "case",
                "resource_id": case.id,
                "case_id": case.id,
                "youth_id": youth.id,
                "outcome": "allowed",
                "status": 200,
                "request_id": None,
                "ip": "127.0.0.1",
                "ids": None,
                "basis": None,
            }
            for i in range(n_log)
        ]
        for chunk in range(0, len(log), 1000):
            db.session.execute(AuditInbox.__table__.insert(), log[chunk : chunk + 1000])
        db.session.commit()
        seal()
        token = create_access_token(
            identity=user.id,
            additional_claims={
                "role": "police",
                "agency": "police",
                "scope": " ".join(sorted(ROLE_SCOPES["police"])),
                "username": "bench.police",
            },
        )
        return youth.id, token


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--log", type=int, default=5000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    from casesvc import create_app

    tmp = tempfile.mkdtemp(prefix="casesvc-record-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    app = create_app({"env": "test", "database_url": url, "audit_seal_interval": 1e9}, instance_path=Path(tmp))
    youth_id, token = build(app, args.events, args.log)
    client = app.test_client()
    print(f"database: {url.split('@')[-1]}; events: {args.events}; access-log events: {args.log}")
    ok = True
    for accept in ("application/json", "text/html"):
        for run in range(args.runs):
            with Peak() as peak:
                started = time.perf_counter()
                resp = client.get(
                    f"/api/v1/youths/{youth_id}/record", headers={"Authorization": f"Bearer {token}", "Accept": accept}
                )
                size = sum(len(chunk) for chunk in resp.response)
                resp.close()
                elapsed = time.perf_counter() - started
            growth = peak.peak - peak.base
            ok &= resp.status_code == 200 and elapsed < TARGET_SECONDS and growth < TARGET_MB
            print(
                f"{accept:17} run {run + 1}: {resp.status_code} {size / 2**20:6.2f} MB body in {elapsed:5.2f} s, "
                f"RSS growth {growth:5.1f} MB (targets < {TARGET_SECONDS:.0f} s, < {TARGET_MB} MB)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
