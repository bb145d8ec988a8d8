"""`make bench`: casesvc on PostgreSQL under gunicorn against a bare Flask app under the same
gunicorn settings, and against the floor (the bare app plus the least database work the contract
asks of a read, and of a write), driven by wrk. See bench/README.md.

    .venv/bin/python bench/run.py [--duration 15] [--connections 16] [--cases 10000] [--skip-seed]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path

import psycopg

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/casesvc_bench"
HOST = "127.0.0.1"
WORKERS = 2
WRK_THREADS = 2
WARMUP_SECONDS = 2
LIST_LIMIT = 50
# issue 13's targets: casesvc's share of the floor, and its p99 against the floor's
TARGET_OF_FLOOR = {"single": 0.6, "list": 0.6, "event": 0.5}
TARGET_P99_OF_FLOOR = {"single": 1.5, "list": 1.5}
WRITE_CASES = 2000  # the writes go round these cases
BATCH = 500
QUIET_IDLE = 0.9  # share of CPU idle before a load starts
QUIET_WAIT_SECONDS = 60

POLICE, HEALTH, SLT, WEST = "bench-police", "bench-health", "bench-slt", "bench-west"
AGENCIES = [
    (POLICE, "police", "Bench politidistrikt", ["0301"]),
    (HEALTH, "school_health", "Bench skolehelsetjeneste", ["0301"]),
    (SLT, "coordinator", "Bench SLT-koordinator", ["0301"]),
    (WEST, "police", "Bench vest politidistrikt", ["4601"]),
]
USERS = [("bench.police", POLICE), ("bench.west", WEST)]


class BenchError(RuntimeError):
    """Stops the bench with a one-line message."""


# --- wrk ---------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed; install the Debian package: sudo apt-get install -y wrk")
    print("wrk is missing: running apt-get install -y wrk", flush=True)
    installed = shutil.which("wrk") if subprocess.run(["apt-get", "install", "-y", "wrk"]).returncode == 0 else None
    if not installed:
        raise BenchError("apt-get install -y wrk failed (try apt-get update first)")
    return installed


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    # CPU per request during the load, in ms, by who spent it (`cpu_seconds`); empty off Linux
    cpu_ms: dict[str, float] = field(default_factory=dict)
    # the app's CPU during the load by process, largest first, as shares (the master's is ~0)
    app_split: list[float] = field(default_factory=list)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M))
    if not rps or set(latency) != {"50", "99"}:
        raise BenchError(f"cannot read wrk's output:\n{output}")

    def ms(text: str) -> float:
        found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
        if found is None:
            raise BenchError(f"wrk printed a time this script does not read: {text!r}")
        number, unit = found.groups()
        return float(number) * _UNITS_MS[unit]

    return Result(float(rps.group(1)), ms(latency["50"]), ms(latency["99"]))


@dataclass
class Load:
    """What wrk sends: a GET of `path`, or the requests of a Lua `script` (the writes)."""

    path: str
    script: Path | None = None


def write_script(path: Path, method: str, urls: list[str], body: str, headers: dict[str, str]) -> Path:
    """A wrk script sending `method` to `urls` in turn, each wrk thread to its own share of them (so
    no two requests change one case at once), `body` with `%d` replaced by a counter (so each PATCH
    changes something), with `headers`."""
    lua_urls = ",\n".join(json.dumps(url) for url in urls)
    lua_headers = ", ".join(f"[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items())
    path.write_text(f"""local urls = {{
{lua_urls}
}}
local headers = {{{lua_headers}, ["Content-Type"] = "application/json"}}
local body = {json.dumps(body)}
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local n = 0
request = function()
  n = n + 1
  local url = urls[((n * {WRK_THREADS} + id) % #urls) + 1]
  return wrk.format({json.dumps(method)}, url, headers, string.format(body, n))
end
""")
    return path


def run_wrk(wrk: str, base: str, load: Load, token: str | None, duration: int, connections: int) -> Result:
    cmd = [wrk, f"-t{WRK_THREADS}", f"-c{max(connections, WRK_THREADS)}", f"-d{duration}s", "--latency"]
    if load.script is not None:
        cmd += ["-s", str(load.script)]
    elif token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    url = base + load.path
    output = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise BenchError(f"{url} answered {errors.group(1)} requests with an error status")
    return parse_wrk(output)


# --- the database --------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the bench database through the `postgres` maintenance database when it is missing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise BenchError("CASESVC_BENCH_DATABASE_URL must name PostgreSQL")
    if not re.fullmatch(r"[A-Za-z0-9_]+", parsed.database or ""):
        raise BenchError(f"unexpected database name {parsed.database!r}")
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}) is None:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
                print(f"created database {parsed.database}")
    except OperationalError as exc:
        raise BenchError(
            f"cannot reach PostgreSQL at {parsed.render_as_string(hide_password=True)} ({exc.orig.__class__.__name__})"
        ) from exc
    finally:
        engine.dispose()


def reset_schema(env: dict) -> None:
    """Drop everything, then `casesvc db upgrade` (the real migrations, as an operator runs them)."""
    from sqlalchemy import text

    from casesvc.extensions import db

    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.engine.dispose()
    upgrade(env)


def upgrade(env: dict) -> None:
    """`casesvc db upgrade`, as an operator runs it (a no-op when the schema is current)."""
    subprocess.run(
        [sys.executable, "-m", "casesvc.cli", "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL
    )


def synthetic_numbers(count: int):
    """(birth date, synthetic national id) pairs, never a real person's, for youths aged 13-17."""
    from casesvc.common.timeutil import oslo_today
    from casesvc.youths.national_id import make

    first = date(oslo_today().year - 17, 1, 1)
    made = 0
    for day in range(5 * 365):
        born = first + timedelta(days=day)
        for individual in range(500, 1000):
            number = make(born, individual, synthetic=True)
            if number:
                yield born, number
                made += 1
                if made == count:
                    return
    raise BenchError(f"cannot make {count} synthetic national ids")


def seed(count: int) -> None:
    """`count` youths with a case each, through the service layer; every fifth in another
    municipality (a case the bench's police user must not see)."""
    from casesvc.agencies.service import create_agency, create_user
    from casesvc.cases.service import open_case
    from casesvc.extensions import db
    from casesvc.policy import ROLE_SCOPES, Principal
    from casesvc.youths.service import register_youth

    agencies = {code: create_agency(code, kind, name, muns) for code, kind, name, muns in AGENCIES}
    principals = {}
    for username, code in USERS:
        user = create_user(username, "police", code, secrets.token_urlsafe(24))
        principals[code] = Principal(
            subject=user.id,
            role="police",
            agency=code,
            municipalities=frozenset(agencies[code].municipalities),
            scopes=ROLE_SCOPES["police"],
            username=username,
        )
    db.session.commit()
    started = time.perf_counter()
    for index, (born, number) in enumerate(synthetic_numbers(count)):
        principal = principals[WEST if index % 5 == 4 else POLICE]
        municipality = next(iter(principal.municipalities))
        youth = register_youth(
            principal,
            {
                "national_id": number,
                "birth_date": born,
                "given_name": "Bench",
                "family_name": f"Testesen {index}",
                "municipality": municipality,
                "school": "Bench ungdomsskole",
                "guardians": [{"name": "Bench Testforelder", "relation": "mother", "phone": "+4700000000"}],
            },
        )
        open_case(
            principal,
            {
                "youth_id": youth.id,
                "origin": "police",
                "summary": f"Bench case {index}: small amount of cannabis at school.",
                "participant_codes": [HEALTH, SLT] if principal.agency == POLICE else [],
            },
        )
        if (index + 1) % BATCH == 0 or index + 1 == count:
            db.session.commit()
            print(f"\r  seeded {index + 1}/{count} cases ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def police_token() -> tuple[str, str]:
    """A police token as the token endpoint issues it, and the id of its user."""
    from flask_jwt_extended import create_access_token
    from sqlalchemy import select
    from sqlalchemy.exc import ProgrammingError

    from casesvc.auth.models import User
    from casesvc.extensions import db
    from casesvc.policy import ROLE_SCOPES

    try:
        user = db.session.scalar(select(User).where(User.username == USERS[0][0]))
    except ProgrammingError:  # no schema yet
        user = None
    if user is None:
        raise BenchError("the bench database has no bench data; run without --skip-seed")
    return create_access_token(
        identity=user.id,
        expires_delta=timedelta(hours=2),
        additional_claims={
            "role": "police",
            "agency": POLICE,
            "scope": " ".join(sorted(ROLE_SCOPES["police"])),
            "username": user.username,
        },
    ), user.id


def some_case_id() -> str:
    from sqlalchemy import func, select

    from casesvc.cases.models import Case
    from casesvc.extensions import db

    visible = select(Case.id).where(Case.lead_agency == POLICE)
    total = db.session.scalar(select(func.count()).select_from(visible.subquery()))
    if not total:
        raise BenchError("the bench database has no cases; run without --skip-seed")
    return db.session.execute(visible.order_by(Case.created_at, Case.id).offset(total // 2).limit(1)).scalar_one()


def write_case_ids(count: int = WRITE_CASES) -> list[str]:
    """Cases the bench's police user leads, for the writes to spread over."""
    from sqlalchemy import select

    from casesvc.cases.models import Case
    from casesvc.extensions import db

    return list(db.session.scalars(select(Case.id).where(Case.lead_agency == POLICE).order_by(Case.id).limit(count)))


def event_body(counter: str = "%d") -> str:
    """The body of the bench's POST /cases/{id}/events (a meeting an hour ago)."""
    from datetime import datetime

    occurred = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {
            "kind": "meeting",
            "occurred_at": occurred,
            "summary": f"Bench meeting {counter}",
            "category": "general",
            "visibility": "shared",
        }
    )


def patch_body(counter: str = "%d") -> str:
    return json.dumps({"summary": f"Bench case, changed {counter} times"})


def query_counts(app, token: str, requests: dict[str, tuple]) -> dict[str, int]:
    """SQL statements per request (BEGIN and COMMIT not counted: they are no statements the app
    sends through SQLAlchemy), in-process (the test client), by name; `requests` maps a name to
    (method, url, body or None, extra headers, expected status)."""
    from sqlalchemy import event

    from casesvc.extensions import db

    counts = {}
    client = app.test_client()
    # the requests share the caller's app context: none may find its session inside a transaction
    # begun here (a read then goes on in it instead of in autocommit, with a statement more)
    db.session.commit()
    for name, (method, url, body, headers, expected) in requests.items():
        seen: list[int] = []

        def record(*_args, seen=seen):  # this URL's list, bound now
            seen.append(1)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            status = client.open(
                url,
                method=method,
                data=body,
                content_type="application/json" if body else None,
                headers={"Authorization": f"Bearer {token}", **headers},
            ).status_code
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        if status != expected:
            raise BenchError(f"{method} {url} answered {status} in-process")
        counts[name] = len(seen)
    return counts


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def get(
    url: str, token: str | None = None, method: str = "GET", body: str | None = None, headers: dict | None = None
) -> bytes:
    request = urllib.request.Request(
        url,
        method=method,
        data=body.encode() if body is not None else None,
        headers={
            **({"Authorization": f"Bearer {token}"} if token else {}),
            **({"Content-Type": "application/json"} if body else {}),
            **(headers or {}),
        },
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.read()


@dataclass
class Served:
    base: str  # http://host:port
    session: int  # the session of the gunicorn master and its workers


@contextmanager
def served(kind: str, env: dict, log: Path):
    """Start `kind` (casesvc, bare or floor) under gunicorn on a free port; always stop it."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the {kind} server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
            try:
                get(base + "/readyz")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise BenchError(f"the {kind} server was not ready within 60 s") from None
                time.sleep(0.2)
        yield Served(base, proc.pid)  # start_new_session: the master leads its own session
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def paused(app: Served):
    """The app's processes stopped (SIGSTOP to its session's process group) while the other app
    is measured: nothing of its own (its sealing process, its timers) runs on the other's CPU."""
    os.killpg(app.session, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(app.session, signal.SIGCONT)


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL of the bench database as libpq (and so psycopg) takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def floor_audit_table(url: str):
    """The floor app's tables: `audit_inbox`'s and `events`' columns, defaults and indexes, so its
    inserts cost what casesvc's do; dropped afterwards."""
    import psycopg

    from floor_app import AUDIT_TABLE, EVENTS_TABLE

    def execute(sql: str) -> None:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(sql)

    for table, like in ((AUDIT_TABLE, "audit_inbox"), (EVENTS_TABLE, "events")):
        execute(f"DROP TABLE IF EXISTS {table}")
        execute(f"CREATE TABLE {table} (LIKE {like} INCLUDING ALL)")
    try:
        yield
    finally:
        for table in (AUDIT_TABLE, EVENTS_TABLE):
            execute(f"DROP TABLE IF EXISTS {table}")


def serve(kind: str, port: int) -> None:
    """The child process: one app under casesvc's own gunicorn settings, without the access log."""
    from casesvc.server import run_gunicorn

    if kind == "casesvc":
        from casesvc import create_app

        app = create_app(instance_path=os.environ["CASESVC_INSTANCE_PATH"])
    elif kind == "floor":
        from floor_app import create_floor_app

        app = create_floor_app(
            os.environ["BENCH_BARE_BODIES"],
            libpq_url(os.environ["CASESVC_DATABASE_URL"]),
            os.environ["BENCH_FLOOR_CALLER"],
            POLICE,
            AGENCIES[0][3][0],
            LIST_LIMIT,
        )
    else:
        from bare_app import create_bare_app

        app = create_bare_app(os.environ["BENCH_BARE_BODIES"])
    workers = int(os.environ.get("BENCH_WORKERS", str(WORKERS)))
    run_gunicorn(app, HOST, port, workers, int(os.environ.get("BENCH_THREADS", "1")), access_log=False)


# --- the run -----------------------------------------------------------------------------------


CPU_GROUPS = ("app", "postgres", "wrk", "other")


def cpu_seconds(app_session: int) -> tuple[dict[str, float], dict[int, float]] | None:
    """CPU seconds spent so far by the served app (its gunicorn master and workers: one session),
    PostgreSQL's processes, the bench's finished children (wrk: its runs are reaped by the time
    they are counted) and every other process (Linux /proc; None elsewhere). Taken before and
    after a load, it says where the machine's CPU went per request: casesvc's gap to the floor is
    its own Python only as far as PostgreSQL's share per request is alike. Also returns the app's
    CPU seconds by process: how evenly the workers shared the load."""
    hz = os.sysconf("SC_CLK_TCK")
    spent = dict.fromkeys(CPU_GROUPS, 0.0)
    by_process: dict[int, float] = {}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent["wrk"] = children.ru_utime + children.ru_stime
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:  # ended meanwhile
            continue
        comm, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        session, ticks = int(fields[3]), int(fields[11]) + int(fields[12])  # session, utime + stime
        group = "app" if session == app_session else "postgres" if comm == "postgres" else "other"
        spent[group] += ticks / hz
        if group == "app":
            by_process[int(pid)] = ticks / hz
    return spent, by_process


def idle_share(seconds: float = 1.0) -> float | None:
    """The share of the machine's CPU time that was idle over the next `seconds` (Linux /proc/stat;
    None elsewhere)."""

    def snapshot() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle_before, total_before = snapshot()
        time.sleep(seconds)
        idle_after, total_after = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    return (idle_after - idle_before) / max(total_after - total_before, 1)


def wait_until_quiet(least_idle: float = QUIET_IDLE, limit: float = QUIET_WAIT_SECONDS) -> None:
    """Before each load: wait until the machine is idle (PostgreSQL's autovacuum and checkpoints,
    or a sealer finishing the last run's events, would otherwise take a core from the next run,
    and one such run moved the bare app's list from 3,987 to 1,432 req/s)."""
    started = time.monotonic()
    while True:
        share = idle_share()
        if share is None or share >= least_idle:
            break
        if time.monotonic() - started > limit:
            print(f"  (the machine stayed busy: {share:.0%} idle after {limit:.0f} s; measuring anyway)", flush=True)
            return
    waited = time.monotonic() - started
    if waited > 1.5:
        print(f"  (waited {waited:.0f} s for the machine to be idle)", flush=True)


def vacuum(url: str) -> None:
    """Before each load, `VACUUM ANALYZE`: the dead rows the last load left (the inbox rows
    casesvc's sealer moved into the chain, the rows a PATCH rewrote) are cleared, as PostgreSQL's
    autovacuum would clear them a minute or so later on a server in service. The bench runs its
    loads back to back, and on a server with autovacuum off (as on the development machine) they
    are never cleared: one evening's runs left 208,270 dead rows in `audit_inbox`, and casesvc got
    slower round by round while the floor, whose audit table is new each round, did not."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def measure(
    wrk: str, app: Served, loads: dict[str, Load], token: str | None, args, url: str, who: str = ""
) -> dict[str, Result]:
    results = {}
    for name, load in loads.items():
        vacuum(url)
        wait_until_quiet(limit=args.quiet_wait)
        run_wrk(wrk, app.base, load, token, WARMUP_SECONDS, args.connections)
        before = cpu_seconds(app.session)
        result = results[name] = run_wrk(wrk, app.base, load, token, args.duration, args.connections)
        after = cpu_seconds(app.session)
        requests = result.rps * args.duration
        if before and after and requests:
            (groups_before, processes_before), (groups_after, processes_after) = before, after
            result.cpu_ms = {
                group: (groups_after[group] - groups_before[group]) * 1000 / requests for group in CPU_GROUPS
            }
            worked = [processes_after[pid] - processes_before.get(pid, 0.0) for pid in processes_after]
            total = sum(worked)
            shares = [w / total for w in worked] if total else []
            result.app_split = sorted((share for share in shares if share >= 0.01), reverse=True)
        cpu = "  ".join(f"{group} {ms:.2f}" for group, ms in result.cpu_ms.items())
        split = " / ".join(f"{share:.0%}" for share in result.app_split)
        print(
            f"  {(who + ' ' if who else '') + name:<29} {result.rps:>8.0f} req/s"
            + (f"   CPU ms/request: {cpu}" if cpu else "")
            + (f"   app by process: {split}" if split else ""),
            flush=True,
        )
    return results


def median_results(rounds: list[dict[str, Result]]) -> dict[str, Result]:
    """Per endpoint, the round with the median req/s (each round has its loads of casesvc and of
    the floor side by side, and the bare app's after them, so one bad round decides nothing)."""
    return {name: sorted((r[name] for r in rounds), key=lambda r: r.rps)[len(rounds) // 2] for name in rounds[0]}


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    ours: dict[str, Result],
    bare: dict[str, Result],
    floor: dict[str, Result],
    sizes: dict[str, int],
    queries: dict[str, int],
) -> None:
    print()
    print(f"{'endpoint':<40}{'body':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    rows = {
        "single": (
            "GET /api/v1/cases/{id}",
            [("  floor: bare + 1 statement", "single"), ("  floor without the audit insert", "single without audit")],
        ),
        "list": (
            f"GET /api/v1/cases?limit={LIST_LIMIT}",
            [("  floor: bare + 1 statement", "list"), ("  floor without the audit insert", "list without audit")],
        ),
        "event": ("POST /api/v1/cases/{id}/events", [("  floor: bare + 1 statement (1 transaction)", "event")]),
        "patch": ("PATCH /api/v1/cases/{id} (If-Match: *)", []),
    }
    lines = [  # (endpoint, who, result): casesvc's, then the bare app's and the floors' beside
        (name, who, result)
        for name, (label, floors) in rows.items()
        for who, result in [
            (label, ours[name]),
            ("  bare Flask, same body", bare[name]),
            *((who, floor[key]) for who, key in floors),
        ]
    ]
    for name, who, r in lines:
        print(f"{who:<40}{sizes.get(name, 0):>8}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}")
    if ours["single"].cpu_ms:
        print()
        print(f"{'CPU ms per request, in that round':<40}" + "".join(f"{group:>10}" for group in CPU_GROUPS))
        for _name, who, r in lines:
            print(f"{who:<40}" + "".join(f"{r.cpu_ms.get(group, 0):>10.2f}" for group in CPU_GROUPS))
    print()
    for name in ("single", "list", "event"):
        share = ours[name].rps / floor[name].rps
        line = (
            f"{name:<7} casesvc {share:.2f} of the floor (target >= {TARGET_OF_FLOOR[name]}: "
            f"{_met(share >= TARGET_OF_FLOOR[name])})"
        )
        if name in TARGET_P99_OF_FLOOR:
            p99 = ours[name].p99_ms / floor[name].p99_ms
            line += (
                f"   p99 {ours[name].p99_ms:.1f} ms = {p99:.2f} x the floor's {floor[name].p99_ms:.1f} "
                f"(target <= {TARGET_P99_OF_FLOOR[name]}: {_met(p99 <= TARGET_P99_OF_FLOOR[name])})"
            )
        print(line)
        without = (
            f", {floor[f'{name} without audit'].rps / bare[name].rps:.2f} without the audit insert"
            if f"{name} without audit" in floor
            else ""
        )
        print(
            f"{'':<7} the floor is {floor[name].rps / bare[name].rps:.2f} of the bare app{without}; "
            f"casesvc {ours[name].rps / bare[name].rps:.2f} of the bare app"
        )
    print(
        f"patch   casesvc {ours['patch'].rps:.0f} req/s, {ours['patch'].rps / bare['patch'].rps:.2f} of the bare app "
        f"(figures only)"
    )
    growing = queries["list_5"] != queries["list_50"]
    print(
        f"statements per request: single {queries['single']}, list limit=5 {queries['list_5']}, "
        f"limit={LIST_LIMIT} {queries['list_50']} ({'GROWS with the page: MISSED' if growing else 'constant: met'}), "
        f"POST event {queries['event']}, PATCH case {queries['patch']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per endpoint (default 15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--cases", type=int, default=10_000, help="cases to seed (default 10000)")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the data of the last run")
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="gunicorn threads per worker, for both apps (default 4, as `casesvc serve`)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=WORKERS,
        help=f"gunicorn workers, for all three apps (default {WORKERS}, as `casesvc serve`)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate casesvc and the bare app this many times and report the median round "
        "(default 1; 3 on a machine shared with others)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET_WAIT_SECONDS,
        help=f"seconds to wait for an idle machine before each load (default {QUIET_WAIT_SECONDS})",
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0

    if args.rounds < 1:
        raise BenchError("--rounds must be at least 1")
    wrk = ensure_wrk()
    url = os.environ.get("CASESVC_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    ensure_database(url)
    secret = secrets.token_urlsafe(48)
    workdir = Path(tempfile.mkdtemp(prefix="casesvc-bench-"))
    env = {
        **os.environ,
        "CASESVC_ENV": "production",
        "CASESVC_SECRET_KEY": secret,
        "CASESVC_DATABASE_URL": url,
        "CASESVC_PUBLIC_URL": "https://casesvc.bench.invalid",
        "CASESVC_INSTANCE_PATH": str(workdir),
        "BENCH_BARE_BODIES": str(workdir / "bodies.json"),
        "BENCH_THREADS": str(args.threads),
        "BENCH_WORKERS": str(args.workers),
    }

    from casesvc import create_app
    from casesvc.extensions import db
    from floor_app import READ_ONLY_PREFIX

    # development settings only for seeding: they accept the synthetic national ids of test data;
    # no audit sealing after requests, so the query counts are those of the request alone
    app = create_app(
        {"env": "development", "database_url": url, "secret_key": secret, "audit_seal_interval": 1e9},
        instance_path=workdir,
    )
    with app.app_context():
        if not args.skip_seed:
            print(f"resetting the schema and seeding {args.cases} cases")
            reset_schema(env)
            seed(args.cases)
        else:
            upgrade(env)  # the data of the last run, under the current migrations
        token, env["BENCH_FLOOR_CALLER"] = police_token()
        case_id = some_case_id()
        writes = write_case_ids()
        paths = {"single": f"/api/v1/cases/{case_id}", "list": f"/api/v1/cases?limit={LIST_LIMIT}"}
        queries = query_counts(
            app,
            token,
            {
                "single": ("GET", paths["single"], None, {}, 200),
                "list_5": ("GET", "/api/v1/cases?limit=5", None, {}, 200),
                "list_50": ("GET", paths["list"], None, {}, 200),
                "event": ("POST", f"/api/v1/cases/{case_id}/events", event_body("0"), {}, 201),
                "patch": (
                    "PATCH",
                    f"/api/v1/cases/{case_id}",
                    patch_body(secrets.token_hex(4)),
                    {"If-Match": "*"},
                    200,
                ),
            },
        )
        db.session.remove()
        db.engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    # the writes: an event on, or a change of, one of WRITE_CASES cases at random
    write_loads = {
        "event": Load(
            "/",
            write_script(
                workdir / "event.lua", "POST", [f"/api/v1/cases/{c}/events" for c in writes], event_body(), auth
            ),
        ),
        "patch": Load(
            "/",
            write_script(
                workdir / "patch.lua",
                "PATCH",
                [f"/api/v1/cases/{c}" for c in writes],
                patch_body(),
                {**auth, "If-Match": "*"},
            ),
        ),
    }
    read_loads = {name: Load(path) for name, path in paths.items()}

    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; gunicorn {args.workers} workers × "
        f"{args.threads} threads, no access "
        f"log; wrk -t{WRK_THREADS} -c{args.connections} -d{args.duration}s after a {WARMUP_SECONDS} s warm-up"
    )
    rounds_ours, rounds_bare, rounds_floor = [], [], []
    sizes: dict[str, int] = {}
    for round_no in range(1, args.rounds + 1):
        label = f" (round {round_no}/{args.rounds})" if args.rounds > 1 else ""
        # casesvc and the floor are up together, and each load of one runs right beside the same
        # load of the other: a machine whose speed drifts (a shared host's neighbours) weighs on
        # both sides of a ratio alike, rather than on one app's loads minutes before the other's
        print(
            "casesvc (CASESVC_ENV=production, PostgreSQL) and the floor: the bare app + one statement per "
            f"request (caller, rows or the write, audit insert), each load beside the other's{label}"
        )
        with ExitStack() as up:
            app = up.enter_context(served("casesvc", env, workdir / "casesvc.log"))
            base = app.base
            if not sizes:
                bodies = {name: get(base + path, token) for name, path in paths.items()}
                bodies["event"] = get(base + f"/api/v1/cases/{writes[0]}/events", token, "POST", event_body("0"))
                bodies["patch"] = get(
                    base + f"/api/v1/cases/{writes[0]}",
                    token,
                    "PATCH",
                    patch_body(secrets.token_hex(4)),
                    {"If-Match": "*"},
                )
                sizes = {name: len(body) for name, body in bodies.items()}
                Path(env["BENCH_BARE_BODIES"]).write_text(
                    json.dumps({name: json.loads(body) for name, body in bodies.items()})
                )
            up.enter_context(floor_audit_table(url))
            floor_app = up.enter_context(served("floor", env, workdir / "floor.log"))  # it answers casesvc's bodies
            floor_sizes = {name: len(get(floor_app.base + path)) for name, path in paths.items()}
            if floor_sizes != {name: sizes[name] for name in paths}:
                raise BenchError(f"the floor app's bodies differ in size: {floor_sizes} != {sizes}")
            ours_round: dict[str, Result] = {}
            floor_round: dict[str, Result] = {}
            for name, load in {**read_loads, "event": write_loads["event"]}.items():
                with paused(floor_app):
                    ours_round |= measure(wrk, app, {name: load}, token, args, url, who="casesvc")
                floor_loads = {name: load}
                if name in paths:
                    floor_loads[f"{name} without audit"] = Load(READ_ONLY_PREFIX + paths[name])
                with paused(app):
                    floor_round |= measure(wrk, floor_app, floor_loads, None, args, url, who="floor")
            with paused(floor_app):
                ours_round |= measure(wrk, app, {"patch": write_loads["patch"]}, token, args, url, who="casesvc")
            rounds_ours.append(ours_round)
            rounds_floor.append(floor_round)
        print(f"bare Flask app (same gunicorn settings, same JSON bodies){label}")
        with served("bare", env, workdir / "bare.log") as app:
            bare_sizes = {name: len(get(app.base + path)) for name, path in paths.items()}
            if bare_sizes != {name: sizes[name] for name in paths}:
                raise BenchError(f"the bare app's bodies differ in size: {bare_sizes} != {sizes}")
            rounds_bare.append(measure(wrk, app, {**read_loads, **write_loads}, None, args, url))
    ours, bare, floor = median_results(rounds_ours), median_results(rounds_bare), median_results(rounds_floor)
    report(ours, bare, floor, sizes, queries)
    for name in ("single", "list", "event"):
        shares = ", ".join(f"{o[name].rps / f[name].rps:.2f}" for o, f in zip(rounds_ours, rounds_floor, strict=True))
        print(f"{name:<7} casesvc's share of the floor in each round (its loads side by side): {shares}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    except subprocess.CalledProcessError as exc:
        print(f"bench: {exc.cmd[0]} failed ({exc.returncode}): {(exc.stderr or '').strip()[:500]}", file=sys.stderr)
        sys.exit(1)
