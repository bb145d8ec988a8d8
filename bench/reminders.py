"""The reminders worker at scale: `casesvc reminders run` over 100,000 active cases with
conditions on PostgreSQL. Targets: the first run under 60 s, a second run with nothing
new under 5 s, peak memory under 300 MB.

    .venv/bin/python bench/reminders.py [--cases 100000] [--database-url URL] [--skip-seed]

It creates (drops and recreates) its own database, `casesvc_reminders_bench`, applies the
migrations with `casesvc db upgrade`, bulk-loads synthetic data with COPY (no real person's data:
names are "Bench", national ids are placeholders), starts a webhook receiver on 127.0.0.1 for one
agency that is responsible for 1 % of the conditions, and times three runs of the real command in
a child process, reading that process's peak resident memory:

1. first run at T: creates everything that is due (and the next condition_due of every case);
2. second run at T: nothing new;
3. third run at T + 1 day: what one more day brings;
4. fourth run at T + 3 days: the reminders created overdue on the first run escalate (a reminder
   gives its assignee three days from when it exists before the coordinator is told).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/casesvc_reminders_bench"
TARGETS = {"first_s": 60.0, "second_s": 5.0, "peak_mb": 300.0}
POLICE, HEALTH, SLT, HOOKED = "bench-police", "bench-health", "bench-slt", "bench-hooked"
HOOKED_SHARE = 0.01
SECRET = "bench-webhook-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    pass


def _conninfo(url: str) -> tuple[str, str]:
    """(libpq URL of the bench database, of the maintenance database)."""
    match = re.fullmatch(r"postgresql(?:\+psycopg)?://(.+)/([A-Za-z0-9_]+)", url)
    if not match:
        raise BenchError(f"expected postgresql+psycopg://…/<name>, got {url!r}")
    return f"postgresql://{match.group(1)}/{match.group(2)}", f"postgresql://{match.group(1)}/postgres"


def recreate_database(url: str) -> None:
    import psycopg

    target, maintenance = _conninfo(url)
    name = target.rsplit("/", 1)[1]
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def casesvc(env: dict, *args: str) -> tuple[float, float, str]:
    """Run `casesvc <args>` in a child process; (seconds, peak MB of that process, stdout)."""
    code = (
        "import resource, sys\n"
        "from casesvc.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"casesvc {' '.join(args)} failed: {done.stderr.strip()}")
    found = re.search(r"PEAK_KB (\d+)", done.stderr)
    if found is None:
        raise BenchError(f"casesvc {' '.join(args)} reported no PEAK_KB")
    peak = int(found.group(1)) / 1024
    return seconds, peak, done.stdout


# --- synthetic data ------------------------------------------------------------------------------


def seed(url: str, cases: int, now: datetime, hook_url: str) -> dict:
    import psycopg

    target, _ = _conninfo(url)
    rng = random.Random(20261122)
    today = now.date()
    stamp = now.replace(tzinfo=None)
    figures = {"cases": cases, "conditions": cases, "events": 0, "consents": cases}
    with psycopg.connect(target) as conn:
        conn.execute(
            "INSERT INTO agencies (code, kind, name, municipalities, created_at) VALUES "
            "(%s, 'police', 'Bench politi', '[\"0301\"]', %s), (%s, 'school_health', 'Bench helse', "
            "'[\"0301\"]', %s), (%s, 'coordinator', 'Bench SLT', '[\"0301\"]', %s), "
            "(%s, 'school_health', 'Bench helse med webhook', '[\"0301\"]', %s)",
            (POLICE, stamp, HEALTH, stamp, SLT, stamp, HOOKED, stamp),
        )
        user_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO users (id, username, password_hash, role, agency_code, active, created_at) "
            "VALUES (%s, 'bench.police', 'not-a-password-hash', 'police', %s, true, %s)",
            (user_id, POLICE, stamp),
        )
        conn.execute(
            "INSERT INTO webhooks (agency_code, url, secret, created_at, updated_at, version) "
            "VALUES (%s, %s, %s, %s, %s, 1)",
            (HOOKED, hook_url, SECRET, stamp, stamp),
        )
        cur = conn.cursor()
        tables = (
            "youths",
            "cases",
            "case_participants",
            "reactions",
            "conditions",
            "events",
            "consents",
            "consent_agencies",
        )
        rows: dict[str, list[tuple]] = {name: [] for name in tables}
        for n in range(cases):
            youth, case, reaction, condition, consent = (str(uuid.uuid4()) for _ in range(5))
            hooked = rng.random() < HOOKED_SHARE
            responsible = HOOKED if hooked else HEALTH
            born = today - timedelta(days=rng.randint(13 * 365, 17 * 365))
            opened = stamp - timedelta(days=rng.randint(1, 90), seconds=rng.randint(0, 86399))
            starts = (opened + timedelta(days=1)).date()
            rows["youths"].append(
                (youth, f"9{n:010d}", "Bench", f"Youth {n}", born, "0301", None, POLICE, stamp, 1, stamp)
            )
            rows["cases"].append(
                (
                    case,
                    youth,
                    "0301",
                    "police",
                    None,
                    POLICE,
                    None,
                    "active",
                    opened,
                    None,
                    None,
                    None,
                    False,
                    1,
                    opened,
                )
            )
            for code in (POLICE, HEALTH, SLT) + ((HOOKED,) if hooked else ()):
                rows["case_participants"].append((case, code, opened))
            rows["reactions"].append(
                (
                    reaction,
                    case,
                    "drug_contract",
                    "conditional_waiver",
                    None,
                    starts,
                    starts + timedelta(days=rng.randint(60, 365)),
                    None,
                    None,
                    None,
                    "active",
                    None,
                    POLICE,
                    1,
                    opened,
                )
            )
            rows["conditions"].append((condition, reaction, 0, "drug_test", None, rng.choice((7, 14)), responsible))
            if rng.random() < 0.5:
                occurred = stamp - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
                if occurred > opened:
                    rows["events"].append(
                        (
                            str(uuid.uuid4()),
                            case,
                            "drug_test",
                            occurred,
                            reaction,
                            condition,
                            responsible,
                            "negative",
                            None,
                            None,
                            "health",
                            "shared",
                            POLICE,
                            user_id,
                            occurred,
                        )
                    )
            rows["consents"].append(
                (
                    consent,
                    case,
                    "both",
                    starts,
                    today + timedelta(days=rng.randint(1, 365)),
                    "Oppfølging",
                    True,
                    True,
                    None,
                    POLICE,
                    opened,
                )
            )
            rows["consent_agencies"].append((consent, HEALTH))
        figures["events"] = len(rows["events"])
        columns = {
            "youths": "id, national_id, given_name, family_name, birth_date, municipality, school, "
            "created_by_agency, updated_at, version, created_at",
            "cases": "id, youth_id, municipality, origin, summary, lead_agency, coordinator, status, opened_at, "
            "closed_at, outcome, status_reason, legal_hold, version, created_at",
            "case_participants": "case_id, agency_code, added_at",
            "reactions": "id, case_id, type, legal_basis, police_reference, starts_on, ends_on, probation_ends_on, "
            "scheduled_at, held_at, status, status_reason, created_by_agency, version, created_at",
            "conditions": "id, reaction_id, position, kind, description, every_days, responsible_agency",
            "events": "id, case_id, kind, occurred_at, reaction_id, condition_id, condition_agency, result, "
            "summary, corrects, category, visibility, author_agency, author_user, created_at",
            "consents": "id, case_id, given_by, given_on, expires_on, purpose, covers_general, covers_health, "
            "withdrawn_at, recorded_by_agency, created_at",
            "consent_agencies": "consent_id, agency_code",
        }
        for table, cols in columns.items():
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows[table]:
                    copy.write_row(row)
            rows[table] = []
        conn.commit()
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return figures


# --- a webhook receiver ----------------------------------------------------------------------------


class Receiver:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bench-hook"


def counts(url: str) -> dict:
    import psycopg

    target, _ = _conninfo(url)
    with psycopg.connect(target) as conn:
        kinds: dict[str, int] = dict(
            conn.execute("SELECT kind, count(*) FROM reminders GROUP BY kind ORDER BY kind").fetchall()
        )
        states: dict[str, int] = dict(
            conn.execute("SELECT state, count(*) FROM webhook_deliveries GROUP BY state").fetchall()
        )
    return {"reminders": kinds, "deliveries": states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("CASESVC_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--skip-seed", action="store_true", help="reuse the database as it is (runs are then not first runs)"
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    receiver = Receiver()
    env = {
        **os.environ,
        "CASESVC_DATABASE_URL": args.database_url,
        "CASESVC_ENV": "development",
        "CASESVC_INSTANCE_PATH": str(ROOT / "instance" / "bench-reminders"),
        "CASESVC_WEBHOOK_TIMEOUT": "5",
    }
    try:
        if not args.skip_seed:
            print(f"creating the database and {args.cases:,} active cases …", flush=True)
            recreate_database(args.database_url)
            casesvc(env, "db", "upgrade")
            started = time.perf_counter()
            figures = seed(args.database_url, args.cases, now, receiver.url)
            print(f"  seeded {figures} in {time.perf_counter() - started:.1f} s", flush=True)
        at = now.isoformat().replace("+00:00", "Z")
        first = casesvc(env, "reminders", "run", "--now", at)
        print(f"first run   (--now {at}): {first[0]:6.1f} s, peak {first[1]:5.0f} MB  {first[2].strip()}")
        second = casesvc(env, "reminders", "run", "--now", at)
        print(f"second run  (same --now):        {second[0]:6.1f} s, peak {second[1]:5.0f} MB  {second[2].strip()}")
        later = (now + timedelta(days=1)).isoformat().replace("+00:00", "Z")
        third = casesvc(env, "reminders", "run", "--now", later)
        print(f"next day    (--now {later}): {third[0]:6.1f} s, peak {third[1]:5.0f} MB  {third[2].strip()}")
        backlog = (now + timedelta(days=3)).isoformat().replace("+00:00", "Z")
        fourth = casesvc(env, "reminders", "run", "--now", backlog)
        print(f"escalations (--now {backlog}): {fourth[0]:6.1f} s, peak {fourth[1]:5.0f} MB  {fourth[2].strip()}")
        print(f"stored: {json.dumps(counts(args.database_url))}; receiver got {receiver.count} POSTs")
        peak = max(first[1], second[1], third[1], fourth[1])
        verdict = {
            "first run < 60 s": first[0] < TARGETS["first_s"],
            "second run < 5 s": second[0] < TARGETS["second_s"],
            "peak memory < 300 MB": peak < TARGETS["peak_mb"],
            "second run created nothing": set(json.loads(second[2])["created"].values()) == {0},
        }
        for name, ok in verdict.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
        return 0 if all(verdict.values()) else 1
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        receiver.server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
