"""The audit log's own bench: export and verification of a large sealed chain on PostgreSQL.

    .venv/bin/python bench/audit.py [--events 1000000] [--skip-insert] [--database-url URL]

1. Creates (or resets) the database `casesvc_audit_bench` and runs the real migrations.
2. Inserts N sealed events (default 1,000,000) built with `casesvc.audit.chain.link` — a valid
   chain — through COPY in batches, with the mix a service would record (reads, lists with ids,
   denials, writes).
3. Times `casesvc.audit.export.export_lines` writing JSONL (and CSV) to a file, each in a
   subprocess of its own; its peak RSS is counted from the start of the export (Linux
   /proc/self/clear_refs), the start-up's own peak is printed beside it.
4. Times `casesvc.audit.verify.verify_database()` over the whole chain (also in a subprocess),
   then `casesvc.audit.verify.verify_export` over the JSONL file.
5. Prints the figures and their ratios to the targets: export >= 100,000 events/s with a
   peak under 200 MB; verify of 1,000,000 events under 15 s. Beside each, the CPU seconds of
   the Python process and of the PostgreSQL backends (read from /proc when PostgreSQL runs on
   the same machine): wall-clock figures depend on what else the machine is doing.

Options: --events N, --skip-insert (reuse the last run's events), --keep-files, --database-url
(or CASESVC_AUDIT_BENCH_DATABASE_URL).

The audited GET throughput is measured by bench/run.py, not here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/casesvc_audit_bench"
TARGET_EXPORT_RATE = 100_000  # events/s
TARGET_EXPORT_PEAK_MB = 200
TARGET_VERIFY_SECONDS = 15.0  # for 1,000,000 events
COPY_BATCH = 50_000
ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    pass


# --- database ------------------------------------------------------------------------------------


def reset_database(url: str) -> None:
    """Create the database if missing, empty it, then `casesvc db upgrade`."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import OperationalError

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise BenchError("the audit bench needs PostgreSQL (postgresql+psycopg://...)")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}):
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
                print(f"created database {parsed.database}")
    except OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL ({exc.orig.__class__.__name__})") from exc
    finally:
        admin.dispose()
    engine = create_engine(parsed)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    env = {
        **os.environ,
        "CASESVC_DATABASE_URL": url,
        "CASESVC_ENV": "test",
        "CASESVC_INSTANCE_PATH": tempfile.mkdtemp(prefix="casesvc-audit-bench-"),
    }
    subprocess.run(
        [sys.executable, "-m", "casesvc.cli", "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL
    )


def _libpq_dsn(url: str) -> str:
    from sqlalchemy import make_url

    parsed = make_url(url)
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "dbname": parsed.database,
        "user": parsed.username or "postgres",
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


# --- a million sealed events ---------------------------------------------------------------------

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
    "prev_hash",
    "hash",
)

ROLES = [
    ("police", "oslo-police"),
    ("school_health", "oslo-health"),
    ("nav", "oslo-nav"),
    ("child_welfare", "oslo-cw"),
    ("coordinator", "oslo-slt"),
]


def event_stream(count: int, seed: int = 20261122):
    """Rows for COPY of `count` linked events: reads of a case, list calls with 50 ids, denials,
    writes, logins — ids and codes only, as the service records them (`ids` of an event without
    a list is JSON null, as SQLAlchemy stores it)."""
    from casesvc.audit import chain

    rng = random.Random(seed)
    users = [(str(uuid.UUID(int=rng.getrandbits(128))), *ROLES[i % len(ROLES)]) for i in range(400)]
    cases = [(str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128)))) for _ in range(5000)]
    start = datetime(2027, 1, 1, tzinfo=UTC)
    prev = chain.GENESIS
    case_id: str | None
    youth_id: str | None
    rtype: str | None
    rid: str | None
    for seq in range(1, count + 1):
        user, role, agency = users[rng.randrange(len(users))]
        case_id, youth_id = cases[rng.randrange(len(cases))]
        at = start + timedelta(microseconds=seq * 31_536)  # about a year for a million events
        kind = rng.random()
        ids = None
        if kind < 0.55:
            action, rtype, rid, outcome, status = "cases.get_case", "case", case_id, "allowed", 200
        elif kind < 0.75:
            action, rtype, rid, outcome, status = "cases.list_cases", None, None, "allowed", 200
            ids = [cases[rng.randrange(len(cases))][0] for _ in range(50)]
            case_id = youth_id = None
        elif kind < 0.85:
            action, rtype, rid, outcome, status = "followups.create_note", "note", str(uuid.uuid4()), "allowed", 201
        elif kind < 0.95:
            action, rtype, rid, outcome, status = "cases.get_case", "case", case_id, "denied", 404
        else:
            action, rtype, rid, outcome, status = "auth.token", None, None, "allowed", 200
            case_id = youth_id = None
        view = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": user,
            "actor_role": role,
            "actor_agency": agency,
            "action": action,
            "resource_type": rtype,
            "resource_id": rid,
            "case_id": case_id,
            "youth_id": youth_id,
            "ids": ids,
            "outcome": outcome,
            "status": status,
            "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "ip": f"10.0.{seq % 250}.{seq % 199}",
        }
        sealed = chain.link(view, seq, prev)
        prev = sealed["hash"]
        row = (
            seq,
            view["id"],
            at.replace(tzinfo=None),
            user,
            role,
            agency,
            action,
            rtype,
            rid,
            case_id,
            youth_id,
            json.dumps(ids),
            outcome,
            status,
            view["request_id"],
            view["ip"],
            sealed["prev_hash"],
            sealed["hash"],
        )
        yield row


def insert_events(url: str, count: int) -> float:
    import psycopg

    started = time.perf_counter()
    sql = f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(_libpq_dsn(url)) as conn:
        batch: list[tuple] = []
        done = 0

        def flush():
            nonlocal done
            with conn.cursor() as cur, cur.copy(sql) as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()
            done += len(batch)
            batch.clear()
            rate = done / (time.perf_counter() - started)
            print(f"\r  inserted {done:,} / {count:,} ({rate:,.0f}/s)", end="", flush=True)

        for row in event_stream(count):
            batch.append(row)
            if len(batch) >= COPY_BATCH:
                flush()
        if batch:
            flush()
    print()
    with psycopg.connect(_libpq_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_events")
    return time.perf_counter() - started


# --- export in a process of its own ---------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_seconds(url: str) -> float | None:
    """CPU time of the PostgreSQL backends serving this database (only the bench connects to
    it), read from /proc: None when PostgreSQL runs elsewhere."""
    import psycopg

    with psycopg.connect(_libpq_dsn(url), autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
    return total


def _reset_peak_rss() -> int:
    """The process's peak RSS so far (kB), then start counting the peak afresh (Linux
    /proc/self/clear_refs), so that the figure is the work's own, not the start-up's."""
    startup_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return startup_kb


def _peak_rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _figures(url: str, started: float, cpu_before: float) -> dict:
    return {
        "seconds": time.perf_counter() - started,
        "cpu": _cpu_seconds() - cpu_before,
        "pg_cpu": _backend_cpu_seconds(url),
        "peak_kb": _peak_rss_kb(),
    }


def export_child(url: str, fmt: str, output: str) -> None:
    """Runs in the subprocess: export everything to `output`, print the figures as JSON."""
    from casesvc import create_app

    app = create_app({"env": "test", "database_url": url}, instance_path=tempfile.mkdtemp(prefix="casesvc-bench-"))
    with app.app_context():
        from casesvc.audit import export as store

        startup_kb = _reset_peak_rss()
        lines = 0
        started, cpu_before = time.perf_counter(), _cpu_seconds()
        with open(output, "w", encoding="utf-8", newline="") as handle:
            for chunk in store.export_lines(None, None, fmt):
                handle.write(chunk)
                lines += chunk.count("\n")
        figures = _figures(url, started, cpu_before)
    events = lines - (1 if fmt == "csv" else 0)
    print(json.dumps({"events": events, "startup_kb": startup_kb, "bytes": os.path.getsize(output), **figures}))


def verify_child(url: str) -> None:
    """Runs in the subprocess: verify the database's chain, print the verdict and figures as JSON."""
    from casesvc import create_app

    app = create_app({"env": "test", "database_url": url}, instance_path=tempfile.mkdtemp(prefix="casesvc-bench-"))
    with app.app_context():
        from casesvc.audit import verify as store

        _reset_peak_rss()
        started, cpu_before = time.perf_counter(), _cpu_seconds()
        verdict = store.verify_database()
        figures = _figures(url, started, cpu_before)
    print(json.dumps({"verdict": verdict, **figures}))


def run_child(url: str, *child_args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *child_args, "--database-url", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise BenchError(f"the {child_args[0]} subprocess failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def verify_file(path: Path) -> tuple[dict, float]:
    from casesvc.audit import verify as store

    started = time.perf_counter()
    verdict = store.verify_export(str(path))
    return verdict, time.perf_counter() - started


def count_events(url: str) -> int:
    import psycopg

    with psycopg.connect(_libpq_dsn(url)) as conn:
        return conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]  # type: ignore[index]  # count(*) is one row


# --- main -------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default=os.environ.get("CASESVC_AUDIT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--skip-insert", action="store_true", help="reuse the events of the last run")
    parser.add_argument("--keep-files", action="store_true", help="keep the export files")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    if args.child:  # export FORMAT OUTPUT | verify, measured in a process of its own
        if args.child[0] == "export":
            export_child(args.database_url, *args.child[1:])
        else:
            verify_child(args.database_url)
        return 0

    try:
        if not args.skip_insert:
            print(f"resetting {args.database_url.rsplit('/', 1)[-1]} and inserting {args.events:,} sealed events")
            reset_database(args.database_url)
            seconds = insert_events(args.database_url, args.events)
            print(f"  built, hashed and copied in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
        events = count_events(args.database_url)
        if events == 0:
            raise BenchError("no events: run without --skip-insert")
        scale = 1_000_000 / events

        workdir = Path(tempfile.mkdtemp(prefix="casesvc-audit-export-"))
        exports = {}
        for fmt in ("jsonl", "csv"):
            exports[fmt] = run_child(args.database_url, "export", fmt, str(workdir / f"audit.{fmt}"))
            if exports[fmt]["events"] != events:
                raise BenchError(f"the {fmt} export has {exports[fmt]['events']} events, the table {events}")

        verified = run_child(args.database_url, "verify")
        verdict = verified["verdict"]
        if not verdict["valid"] or verdict["checked"] != events:
            raise BenchError(f"the bench chain does not verify: {verdict}")
        file_verdict, file_seconds = verify_file(workdir / "audit.jsonl")
        if not file_verdict["valid"]:
            raise BenchError(f"the exported file does not verify: {file_verdict}")
        if not args.keep_files:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()
    except BenchError as exc:
        print(f"bench/audit.py: {exc}", file=sys.stderr)
        return 1

    print(
        f"\naudit bench: {events:,} sealed events on PostgreSQL; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs (other work on the machine slows every wall-clock figure)"
    )
    print(f"{'':24}{'figure':>16}{'target':>14}{'ratio':>8}")

    def line(label, figure, target, ratio, met, note):
        print(f"{label:24}{figure:>16}{target:>14}{ratio:>7.2f}x  {_verdict(met):6}  {note}")

    def cpu_note(result, count):
        """Where the time went: this process's CPU and PostgreSQL's, and the rate if each had a
        CPU of its own (COPY streams while Python works)."""
        py, pg = result["cpu"], result["pg_cpu"]
        if pg is None:
            return f"Python CPU {py:.1f} s"
        return (
            f"Python CPU {py:.1f} s + PostgreSQL CPU {pg:.1f} s; on two idle CPUs "
            f"~{count / max(py, pg, 1e-9):,.0f} ev/s"
        )

    for fmt, result in exports.items():
        rate = result["events"] / result["seconds"]
        peak_mb = result["peak_kb"] / 1024
        line(
            f"export {fmt} rate",
            f"{rate:,.0f} ev/s",
            ">= 100,000",
            rate / TARGET_EXPORT_RATE,
            rate >= TARGET_EXPORT_RATE,
            f"{result['seconds']:.1f} s, {result['bytes'] / 2**20:,.0f} MiB; " + cpu_note(result, result["events"]),
        )
        line(
            f"export {fmt} peak RSS",
            f"{peak_mb:,.0f} MB",
            "< 200 MB",
            peak_mb / TARGET_EXPORT_PEAK_MB,
            peak_mb < TARGET_EXPORT_PEAK_MB,
            f"during the export; {result['startup_kb'] / 1024:,.0f} MB peak while starting (imports, app)",
        )
    verify_seconds = verified["seconds"]
    verify_1m = verify_seconds * scale
    line(
        "verify (database)",
        f"{verify_seconds:.1f} s",
        "< 15 s",
        verify_1m / TARGET_VERIFY_SECONDS,
        verify_1m < TARGET_VERIFY_SECONDS,
        f"{events / verify_seconds:,.0f} ev/s, peak RSS "
        f"{verified['peak_kb'] / 1024:,.0f} MB; "
        + cpu_note(verified, events)
        + (f"; {verify_1m:.1f} s per million" if scale != 1 else ""),
    )
    print(
        f"{'verify --file (jsonl)':24}{file_seconds:>14.1f} s{'(no target)':>14}{'':>8}  "
        f"offline, {events / file_seconds:,.0f} ev/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
