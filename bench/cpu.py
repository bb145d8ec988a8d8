"""CPU per request, in-process: what one request costs casesvc's Python and PostgreSQL's backend,
and how many SQL statements it sends, for the requests `make bench` loads.

On a machine shared with other work, wrk's req/s moves with the neighbours; the CPU a request
takes does not (much). This calls the app as gunicorn does (a WSGI call per request, no test
client, no network), on the PostgreSQL database of `bench/run.py` (seeded there), under the
production settings, without the background sealer (its cost per event is timed apart), and
reads the CPU time of this process and of the database's backends from the operating system.

    .venv/bin/python bench/cpu.py [--requests 2000] [--rounds 3] [--only single,list,event,patch]
                                  [--profile NAME] [--plans]

`--profile NAME` prints a cProfile of that request instead, timed in CPU (sorted by cumulative time,
or by `BENCH_PROFILE_SORT=tottime`).
Needs the bench database (`CASESVC_BENCH_DATABASE_URL`) seeded by `bench/run.py` once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from run import DEFAULT_DATABASE_URL, BenchError, police_token, some_case_id

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the database's backend processes (Linux /proc; 0 for one gone)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def backend_pids(engine, database: str) -> list[int]:
    with engine.connect() as conn:
        return [
            row[0]
            for row in conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = %(d)s", {"d": database})
        ]


class Caller:
    """Calls the WSGI app with a prepared environ, as a server would."""

    def __init__(self, app, token: str):
        self.app = app
        self.token = token
        self.status: int | None = None
        self.headers: dict | None = None

    def _start(self, status, headers, exc_info=None):
        self.status = int(status.split()[0])
        self.headers = dict(headers)

    def __call__(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
        from werkzeug.datastructures import Headers
        from werkzeug.test import EnvironBuilder

        sent = Headers({"Authorization": f"Bearer {self.token}", **(headers or {})})
        builder = EnvironBuilder(
            path=path,
            method=method,
            data=body,
            headers=sent,
            content_type="application/json" if body is not None else None,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        environ = builder.get_environ()
        result = self.app(environ, self._start)
        try:
            return b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()


def requests_of(case_id: str):
    """name -> a function (caller, state) making one request; the PATCH carries the ETag it last saw."""
    event_body = json.dumps(
        {
            "kind": "meeting",
            "occurred_at": datetime.now(UTC).isoformat(),
            "summary": "Bench meeting",
            "category": "general",
            "visibility": "shared",
        }
    ).encode()

    def single(call, state):
        return call("GET", f"/api/v1/cases/{case_id}")

    def page(call, state):
        return call("GET", "/api/v1/cases?limit=50")

    def event(call, state):
        return call("POST", f"/api/v1/cases/{case_id}/events", event_body)

    def patch(call, state):
        if "etag" not in state:
            call("GET", f"/api/v1/cases/{case_id}")
            state["etag"] = call.headers["ETag"]
        state["n"] = state.get("n", 0) + 1
        body = call(
            "PATCH",
            f"/api/v1/cases/{case_id}",
            json.dumps({"summary": f"Bench case, changed {state['n']} times"}).encode(),
            {"If-Match": state["etag"]},
        )
        state["etag"] = call.headers.get("ETag", state["etag"])
        return body

    return {"single": (single, 200), "list": (page, 200), "event": (event, 201), "patch": (patch, 200)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="single,list,event,patch")
    parser.add_argument("--profile", metavar="NAME")
    parser.add_argument(
        "--plans", action="store_true", help="after each request, the prepared statements PostgreSQL plans each time"
    )
    args = parser.parse_args()

    url = os.environ.get("CASESVC_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    workdir = Path(tempfile.mkdtemp(prefix="casesvc-cpu-"))
    os.environ.update(
        {
            "CASESVC_ENV": "production",
            "CASESVC_SECRET_KEY": secrets.token_urlsafe(48),
            "CASESVC_DATABASE_URL": url,
            "CASESVC_PUBLIC_URL": "https://casesvc.bench.invalid",
            "CASESVC_AUDIT_SEAL_INTERVAL": "0",
        }
    )
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import make_url

    from casesvc import create_app
    from casesvc.audit.sealing import seal
    from casesvc.extensions import db
    from casesvc.logging_setup import REQUEST_LOGGER

    app = create_app(instance_path=workdir)
    # as under `make bench` (run_gunicorn(access_log=False)): no per-request log line
    logging.getLogger(REQUEST_LOGGER).disabled = True
    with app.app_context():
        token, _ = police_token()
        case_id = some_case_id()
        engine = db.engine
        db.session.remove()
    call = Caller(app, token)
    todo = requests_of(case_id)
    names = [name for name in args.only.split(",") if name]

    statements: list[str] = []
    sa_event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def once(name, state):
        make, expected = todo[name]
        body = make(call, state)
        if call.status != expected:
            raise BenchError(f"{name} answered {call.status}, not {expected}: {body[:300]!r}")

    # anything logged goes nowhere (a terminal would cost more than a server's log does)
    real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 (restored at the end of main)

    if args.profile:
        import cProfile
        import pstats

        state: dict = {}
        for _ in range(200):
            once(args.profile, state)
        profiler = cProfile.Profile(time.process_time)  # CPU, not the waits for the database
        profiler.enable()
        for _ in range(args.requests):
            once(args.profile, state)
        profiler.disable()
        order = os.environ.get("BENCH_PROFILE_SORT", "cumulative")  # or tottime
        stats = pstats.Stats(profiler, stream=real_stderr).sort_stats(order)
        stats.print_stats(45)
        if os.environ.get("BENCH_PROFILE_DUMP"):  # for pstats or snakeviz
            stats.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
        if os.environ.get("BENCH_PROFILE_CALLERS"):
            stats.print_callers(os.environ["BENCH_PROFILE_CALLERS"])
        return 0

    database = make_url(url).database or ""
    print(
        f"{args.requests} requests per round, {args.rounds} rounds (best round shown); load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"{'request':<8}{'statements':>11}{'python ms':>11}{'postgres ms':>13}{'total ms':>10}{'wall ms':>9}")
    for name in names:
        state = {}
        for _ in range(100):  # warm-up: statements compiled and cached, connections open
            once(name, state)
        statements.clear()
        once(name, state)
        count = len(statements)
        best: tuple[float, ...] | None = None
        for _ in range(args.rounds):
            pids = backend_pids(engine, database)
            cpu0, pg0, wall0 = time.process_time(), backend_cpu_seconds(pids), time.perf_counter()
            for _ in range(args.requests):
                once(name, state)
            cpu, pg, wall = (time.process_time() - cpu0, backend_cpu_seconds(pids) - pg0, time.perf_counter() - wall0)
            figures = tuple(1000 * value / args.requests for value in (cpu, pg, cpu + pg, wall))
            if best is None or figures[2] < best[2]:
                best = figures
        if best is None:
            raise SystemExit("--rounds must be at least 1")
        print(f"{name:<8}{count:>11}{best[0]:>11.3f}{best[1]:>13.3f}{best[2]:>10.3f}{best[3]:>9.3f}", flush=True)
        if args.plans:
            replanned(engine)
    with app.app_context():  # what the background sealer does for these events, per event
        pids = backend_pids(engine, database)
        sealed_cpu, sealed_pg = time.process_time(), backend_cpu_seconds(pids)
        sealed = seal()
        if sealed:
            python_ms = 1000 * (time.process_time() - sealed_cpu) / sealed
            postgres_ms = 1000 * (backend_cpu_seconds(pids) - sealed_pg) / sealed
            print(f"sealing {sealed} events: {python_ms:.3f} ms of Python, {postgres_ms:.3f} of PostgreSQL per event")
    return 0


def replanned(engine) -> None:
    """The statements the pooled connections hold prepared whose plan PostgreSQL makes anew on
    each execution (a custom plan: its generic plan looked dearer for the values given), with how
    often: each such execution pays the planning again."""
    held = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        counts: dict[str, list[int]] = {}
        for conn in held:
            cursor = conn.cursor()
            cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            for statement, generic, custom in cursor.fetchall():
                seen = counts.setdefault(" ".join(statement.split())[:150], [0, 0])
                seen[0] += generic
                seen[1] += custom
            cursor.close()
    finally:
        for conn in held:
            conn.close()
    replanned_now = sorted(
        ((statement, generic, custom) for statement, (generic, custom) in counts.items() if custom > generic),
        key=lambda item: -item[2],
    )
    print("  prepared statements planned anew on each execution (generic plans, custom plans):", end="")
    print("" if replanned_now else " none")
    for statement, generic, custom in replanned_now:
        print(f"    {generic:>7} {custom:>7}  {statement}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
