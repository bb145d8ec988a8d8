"""Statistics at scale (issue 14): 100,000 cases across 20 municipalities and 5 years on
PostgreSQL. Targets: a municipality-year answer p50 < 300 ms, the whole window for every
municipality p50 < 2 s, the report p50 < 1 s; and the statements per answer do not grow with the
number of periods.

    .venv/bin/python bench/statistics_bench.py [--cases 100000] [--database-url URL] [--skip-seed] [--runs 11]
    make bench-statistics

It drops and recreates its own database (default `casesvc_statistics_bench`), applies the
migrations, bulk-loads synthetic data with Core inserts (no real person's data: names are
"Bench", national ids are placeholders), and times the real requests in-process through the
Flask test client — token check, policy, the queries, the rule, the audit event — as a
coordinator of one municipality and as admin. It prints the p50 (and max) of each.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

# the repository root, so that `casesvc` imports from the checkout
sys.path[0] = str(Path(__file__).resolve().parent.parent)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/casesvc_statistics_bench"
TARGETS_MS = {"municipality_year": 300.0, "all_municipalities_window": 2000.0, "report": 1000.0}
MUNICIPALITIES = [f"{3001 + i:04d}" for i in range(20)]
FIRST, LAST = date(2022, 1, 1), date(2026, 12, 31)
BATCH = 5000


class BenchError(RuntimeError):
    pass


def recreate_database(url: str) -> None:
    import psycopg

    match = re.fullmatch(r"postgresql(?:\+psycopg)?://(.+)/([A-Za-z0-9_]+)", url)
    if not match:
        raise BenchError(f"expected postgresql+psycopg://…/<name>, got {url!r}")
    with psycopg.connect(f"postgresql://{match.group(1)}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{match.group(2)}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{match.group(2)}"')


def _instant(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))


def seed(db, n_cases: int) -> dict:
    """Agencies, one user, and per case: a youth, the case, 0-2 reactions (most made active, many
    ended) and 0-5 events (a third of them drug tests)."""
    from casesvc.cases.models import Case
    from casesvc.followups.models import Event
    from casesvc.reactions.models import Reaction
    from casesvc.statistics.models import ReactionSpan
    from casesvc.vocabulary import CASE_ORIGINS, DRUG_TEST_RESULTS, REACTION_TYPES
    from casesvc.youths.models import Youth

    rng = random.Random(14)
    now = datetime(2027, 1, 15, tzinfo=UTC)
    span_days = (LAST - FIRST).days + 1
    tables: dict[str, list[dict]] = {"youths": [], "cases": [], "reactions": [], "spans": [], "events": []}
    counts = dict.fromkeys(tables, 0)
    author = db.session.execute(db.text("SELECT id FROM users WHERE username = 'bench.slt.3001'")).scalar_one()

    def flush(force=False):
        order = [
            ("youths", Youth),
            ("cases", Case),
            ("reactions", Reaction),
            ("spans", ReactionSpan),
            ("events", Event),
        ]
        if not force and len(tables["events"]) < BATCH:
            return
        with db.engine.begin() as conn:
            for name, model in order:
                if tables[name]:
                    conn.execute(model.__table__.insert(), tables[name])
                    counts[name] += len(tables[name])
                    tables[name].clear()

    for i in range(n_cases):
        municipality = MUNICIPALITIES[i % len(MUNICIPALITIES)]
        opened_on = FIRST + timedelta(days=rng.randrange(span_days))
        opened = _instant(opened_on, rng)
        born = opened_on - timedelta(days=rng.randrange(12 * 365, 19 * 365))
        youth_id, case_id = str(uuid.uuid4()), str(uuid.uuid4())
        tables["youths"].append(
            {
                "id": youth_id,
                "national_id": f"{i:011d}",
                "given_name": "Bench",
                "family_name": "Bench",
                "birth_date": born,
                "municipality": municipality,
                "created_by_agency": f"police-{municipality}",
                "created_at": opened,
                "updated_at": opened,
                "version": 1,
            }
        )
        closed = opened + timedelta(days=rng.randrange(20, 500)) if rng.random() < 0.8 else None
        if closed is not None and closed > now:
            closed = None
        tables["cases"].append(
            {
                "id": case_id,
                "youth_id": youth_id,
                "municipality": municipality,
                "origin": rng.choice(CASE_ORIGINS),
                "lead_agency": f"police-{municipality}",
                "status": "completed" if closed else "active",
                "opened_at": opened,
                "closed_at": closed,
                "outcome": "completed" if closed else None,
                "legal_hold": False,
                "created_at": opened,
                "version": 1,
            }
        )
        for _ in range(rng.choice((0, 1, 1, 1, 2))):
            kind = rng.choice(REACTION_TYPES)
            basis = (
                "consent"
                if kind in ("concern_conversation", "follow_up_plan")
                else rng.choice(("conditional_waiver", "youth_follow_up"))
            )
            starts = opened_on + timedelta(days=rng.randrange(0, 90))
            reaction_id = str(uuid.uuid4())
            active = rng.random() < 0.85
            ended = active and rng.random() < 0.6
            ending = rng.choice(("completed", "completed", "breached", "cancelled")) if ended else None
            if ending == "breached" and kind == "concern_conversation":
                ending = "completed"
            tables["reactions"].append(
                {
                    "id": reaction_id,
                    "case_id": case_id,
                    "type": kind,
                    "legal_basis": basis,
                    "starts_on": starts,
                    "status": ending or ("active" if active else "draft"),
                    "created_by_agency": f"police-{municipality}",
                    "created_at": opened,
                    "version": 1,
                }
            )
            if active:
                tables["spans"].append(
                    {
                        "reaction_id": reaction_id,
                        "activated_on": starts,
                        "ended_on": starts + timedelta(days=rng.randrange(20, 400)) if ended else None,
                        "ended_status": ending,
                    }
                )
        for _ in range(rng.randrange(0, 6)):
            drug_test = rng.random() < 0.33
            tables["events"].append(
                {
                    "id": str(uuid.uuid4()),
                    "case_id": case_id,
                    "kind": "drug_test" if drug_test else rng.choice(("meeting", "conversation")),
                    "occurred_at": opened + timedelta(hours=rng.randrange(-48, 24 * 200)),
                    "result": rng.choice(DRUG_TEST_RESULTS) if drug_test else None,
                    "category": "health" if drug_test else "general",
                    "visibility": "shared",
                    "author_agency": f"police-{municipality}",
                    "author_user": author,
                    "created_at": opened,
                }
            )
        flush()
    flush(force=True)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(db.text("ANALYZE"))
    return counts


def timed(client, url, headers, runs: int) -> tuple[list[float], int]:
    from sqlalchemy import event

    from casesvc.extensions import db

    statements = [0]

    def count(*_):
        statements[0] += 1

    client.get(url, headers=headers)  # warm: compiled statements, template
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        resp = client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            raise BenchError(f"{url}: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
    with client.application.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get(url, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return samples, statements[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("CASESVC_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--skip-seed", action="store_true", help="reuse the data of the last run")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)

    from flask_jwt_extended import create_access_token
    from flask_migrate import upgrade

    from casesvc import create_app
    from casesvc.agencies.service import create_agency, create_user
    from casesvc.extensions import db
    from casesvc.migrations_runner import migrations_directory

    if not args.skip_seed:
        recreate_database(args.database_url)
    app = create_app(
        {"env": "test", "database_url": args.database_url, "audit_seal_interval": 1e9},
        instance_path=tempfile.mkdtemp(prefix="casesvc-statistics-bench-"),
    )
    with app.app_context():
        upgrade(directory=migrations_directory(), revision="head")
        if not args.skip_seed:
            for m in MUNICIPALITIES:
                create_agency(f"police-{m}", "police", f"Bench politi {m}", [m])
                create_agency(f"slt-{m}", "coordinator", f"Bench SLT {m}", [m])
            create_user("bench.slt.3001", "coordinator", "slt-3001", "bench password 0123456789")
            create_user("bench.admin", "admin", None, "bench password 0123456789")
            db.session.commit()
            started = time.perf_counter()
            counts = seed(db, args.cases)
            print(
                f"seeded in {time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{v:,} {k}" for k, v in counts.items()),
                flush=True,
            )
        rows = db.session.execute(
            db.text("SELECT id, username FROM users WHERE username IN ('bench.slt.3001', 'bench.admin')")
        ).all()
        ids = {name: uid for uid, name in rows}
        tokens = {
            "slt": create_access_token(
                identity=ids["bench.slt.3001"],
                additional_claims={
                    "role": "coordinator",
                    "agency": "slt-3001",
                    "scope": "statistics:read",
                    "username": "bench.slt.3001",
                },
            ),
            "admin": create_access_token(
                identity=ids["bench.admin"],
                additional_claims={
                    "role": "admin",
                    "agency": None,
                    "scope": "statistics:read",
                    "username": "bench.admin",
                },
            ),
        }
        n_cases = db.session.execute(db.text("SELECT count(*) FROM cases")).scalar_one()
    client = app.test_client()
    slt, admin = ({"Authorization": f"Bearer {tokens[k]}"} for k in ("slt", "admin"))
    year = "/api/v1/statistics?municipality=3001&from=2025-01-01&to=2025-12-31"
    window = f"/api/v1/statistics?from={FIRST.isoformat()}&to={LAST.isoformat()}"
    measures = {
        "municipality_year": (f"{year}&period=month", slt),
        "all_municipalities_window": (f"{window}&period=month", admin),
        "report": ("/api/v1/statistics/report?municipality=3001&year=2025", slt),
    }
    load = os.getloadavg()
    print(
        f"{n_cases:,} cases, {len(MUNICIPALITIES)} municipalities, {FIRST.year}-{LAST.year}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    failed = False
    for name, (url, headers) in measures.items():
        samples, statements = timed(client, url, headers, args.runs)
        p50 = median(samples)
        ok = p50 < TARGETS_MS[name]
        failed |= not ok
        print(
            f"{name:28s} p50 {p50:8.1f} ms  max {max(samples):8.1f} ms  target < {TARGETS_MS[name]:.0f} ms  "
            f"{'ok' if ok else 'MISSED'}  ({statements} statements)",
            flush=True,
        )
    per_period = {}
    for period in ("year", "quarter", "month"):
        per_period[period] = timed(client, f"{window}&period={period}", admin, 1)[1]
    same = len(set(per_period.values())) == 1
    print(
        "statements per answer by period: "
        + ", ".join(f"{k} {v}" for k, v in per_period.items())
        + ("  (the same)" if same else "  GROWS"),
        flush=True,
    )
    return 0 if same and not failed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
