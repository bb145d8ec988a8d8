"""The access-log review (README "Access-log review") over a large audit log: time and memory.

    .venv/bin/python bench/review.py --database-url postgresql+psycopg://…/DB [--events 1000000]

1. Builds a fresh schema with the real migrations in the PostgreSQL database given (**its tables
   are dropped**).
2. Inserts N audit events (default 1,000,000) through COPY, spread over 30 days with the mix a
   service records: case and youth reads by 1,000 users over 20,000 youths, youth lists with the
   ids they returned (mostly in office hours), writes, 403/404 refusals, searches by national id (some fruitless), a
   few emergency accesses and reviews, and a handful of users who read in bulk, at night, or
   probe. (The chain fields are filled but not linked: the review does not verify the chain.)
3. Runs `casesvc.audit.review.review()` over the 30 days three times, printing the wall time,
   the number of findings of each kind, and the growth of the process's resident memory during
   the run (sampled from /proc every 5 ms). Target: < 10 s, memory flat.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import Peak  # bench/record.py

if TYPE_CHECKING:
    import psycopg

TARGET_SECONDS = 10.0
START = datetime(2027, 1, 1, tzinfo=UTC)
DAYS = 30
COLUMNS = (
    "seq",
    "id",
    "at",
    "actor",
    "actor_role",
    "actor_agency",
    "action",
    "resource_type",
    "resource_id",
    "case_id",
    "youth_id",
    "ids",
    "outcome",
    "status",
    "request_id",
    "ip",
    "basis",
    "prev_hash",
    "hash",
)


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def events(n: int, rng: random.Random):
    users = [
        (str(uuid.uuid4()), role, f"{role}{i % 8}")
        for i, role in enumerate(["police", "school_health", "nav", "child_welfare", "coordinator"] * 200)
    ]
    youths = [str(uuid.uuid4()) for _ in range(20_000)]
    cases = [(str(uuid.uuid4()), rng.choice(youths)) for _ in range(25_000)]
    bulk, night, prober = users[0], users[1], users[2]
    case_id: str | None
    youth_id: str | None
    for seq in range(1, n + 1):
        # office hours, 07-16 in Oslo (06-15 UTC in winter), but for one event in fifty
        hour = rng.random() * 24 if rng.random() < 0.02 else 6 + rng.random() * 9
        at = START + timedelta(days=rng.randrange(DAYS), hours=hour)
        user = rng.choice(users)
        roll = rng.random()
        case_id, youth_id = rng.choice(cases)
        ids = resource_type = basis = None
        outcome, status = "allowed", 200
        if roll < 0.55:
            action, resource_type = rng.choice(
                [
                    ("cases.get_case", "case"),
                    ("followups.list_events", None),
                    ("followups.list_notes", None),
                    ("reactions.list_reactions", None),
                ]
            )
            if action != "cases.get_case":
                ids = json.dumps([str(uuid.uuid4()) for _ in range(rng.randint(0, 5))])
        elif roll < 0.65:
            action, case_id, youth_id = "youths.list_youths", None, None
            ids = json.dumps(rng.sample(youths, rng.randint(0, 5)))
        elif roll < 0.80:
            action, status = rng.choice(["followups.create_event", "followups.create_note"]), 201
        elif roll < 0.90:
            action, outcome, status = "cases.get_case", "denied", rng.choice([403, 404])
        elif roll < 0.95:
            action, case_id, youth_id, resource_type = "youths.list_youths", None, None, "youth_search"
            ids = json.dumps([] if rng.random() < 0.3 else [rng.choice(youths)])
        elif roll < 0.99996:
            action, case_id, youth_id, status = "auth.token", None, None, 200
        else:
            action, resource_type, basis, status = "emergency.open_access", "emergency_access", "emergency", 201
        if seq % 5000 == 0:  # the users the review should find
            user = bulk
            action, status, outcome, case_id, youth_id = "cases.get_case", 200, "allowed", *rng.choice(cases)
            at = START + timedelta(days=3, seconds=rng.random() * 3600)
        elif seq % 5000 == 1:
            user, action, status, outcome = night, "cases.get_case", 200, "allowed"
            at = START + timedelta(days=rng.randint(0, DAYS - 1), hours=23)  # after midnight in Oslo
        elif seq % 5000 == 2:
            user, action, status, outcome = prober, "cases.get_case", 404, "denied"
            at = START + timedelta(days=7, seconds=rng.random() * 1800)
        resource_id = str(uuid.uuid4()) if action == "emergency.open_access" else case_id
        yield (
            seq,
            str(uuid.uuid4()),
            at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            user[0],
            user[1],
            user[2],
            action,
            resource_type,
            resource_id,
            case_id,
            youth_id,
            ids,
            outcome,
            status,
            None,
            "10.0.0.1",
            basis,
            "0" * 64,
            f"{seq:064x}",
        )


def build(app, n: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from casesvc.extensions import db
    from casesvc.migrations_runner import migrations_directory

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            raise SystemExit("bench/review.py needs PostgreSQL (--database-url postgresql+psycopg://…)")
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            conn.execute(text("DROP FUNCTION IF EXISTS audit_events_append_only() CASCADE"))
        upgrade(directory=migrations_directory(), revision="head")
        rng = random.Random(15)
        started = time.perf_counter()
        with db.engine.connect() as conn:
            raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    buffer = io.StringIO()
                    for i, row in enumerate(events(n, rng), 1):
                        buffer.write("\t".join(_copy_value(v) for v in row) + "\n")
                        if i % 50_000 == 0:
                            copy.write(buffer.getvalue())
                            buffer = io.StringIO()
                    copy.write(buffer.getvalue())
            raw.commit()
            conn.execute(text("ANALYZE audit_events"))
            conn.commit()
        print(f"inserted {n:,} events in {time.perf_counter() - started:.1f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-insert", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    from casesvc import create_app
    from casesvc.audit import review

    tmp = tempfile.mkdtemp(prefix="casesvc-review-bench-")
    app = create_app(
        {"env": "test", "database_url": args.database_url, "audit_seal_interval": 1e9}, instance_path=Path(tmp)
    )
    if not args.skip_insert:
        build(app, args.events)
    ok = True
    with app.app_context():
        for run in range(args.runs):
            with Peak() as peak:
                started = time.perf_counter()
                result = review.review(START, START + timedelta(days=DAYS))
                elapsed = time.perf_counter() - started
            kinds = Counter(f["kind"] for f in result["findings"])
            growth = peak.peak - peak.base
            ok &= elapsed < TARGET_SECONDS
            print(
                f"run {run + 1}: {elapsed:5.2f} s over {args.events:,} events, RSS growth {growth:5.1f} MB, "
                f"findings {dict(sorted(kinds.items()))} (target < {TARGET_SECONDS:.0f} s)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
