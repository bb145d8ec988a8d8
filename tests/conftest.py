"""Test harness: one migrated database per run (SQLite file, or PostgreSQL when
CASESVC_TEST_DATABASE_URL is set), emptied after every test, and helpers that build a small
world of agencies and users and call the API as one of them."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import select, text

from casesvc import create_app
from casesvc.agencies.service import create_agency, create_user
from casesvc.audit import sealing as audit_sealing
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.common.timeutil import oslo_today, utcnow
from casesvc.extensions import db
from casesvc.policy import ROLE_SCOPES
from casesvc.reminders import worker
from casesvc.youths import national_id

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"


def assert_problem(resp, status: int, type_suffix: str | None = None) -> dict:
    """The answer is a whole problem document (RFC 9457) with this status, and this type when
    given."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json(force=True)
    for member in ("type", "title", "status", "detail"):
        assert member in body, f"problem without {member}: {body}"
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if type_suffix:
        assert body["type"] == f"/problems/{type_suffix}", body
    return body


def assert_field_error(resp, field: str) -> dict:
    """A 422 validation problem whose `errors` names `field`."""
    body = assert_problem(resp, 422, "validation-error")
    assert field in body.get("errors", {}), body
    assert body["errors"][field] and all(isinstance(m, str) and m for m in body["errors"][field]), body
    return body


def assert_unauthorized(resp) -> dict:
    """A 401 problem with a Bearer challenge (RFC 6750): the token, or its absence, was refused."""
    body = assert_problem(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer"), resp.headers
    return body


def assert_token_granted(resp, scope: str | None = None) -> dict:
    """The token endpoint's 200: a bearer token not to be cached, with the scope granted
    (compared as a set when `scope` is given)."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["token_type"] == "Bearer", body
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert isinstance(body["scope"], str)
    if scope is not None:
        assert set(body["scope"].split()) == set(scope.split()), body
    assert "no-store" in resp.headers["Cache-Control"]
    return body


def assert_oauth_error(resp, status: int, error: str) -> dict:
    """The token endpoint's RFC 6749 error: this status and `error`, no token, not cached."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"] == error, body
    assert "access_token" not in body
    assert "no-store" in resp.headers["Cache-Control"]
    return body


def assert_token_works(client, token: str, username: str | None = None, **claims) -> dict:
    """The access token is accepted: `GET /api/v1/auth/me` is 200 and names its user (and the
    other claims given, e.g. role="police")."""
    resp = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    me = resp.get_json()
    if username is not None:
        assert me["username"] == username, me
    for name, value in claims.items():
        assert me[name] == value, me
    return me


def assert_token_refused(client, token: str) -> dict:
    """The access token is refused: `GET /api/v1/auth/me` is a 401 problem."""
    return assert_unauthorized(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}))


def run_worker(app, now=None, **overrides):
    """One pass of the reminders worker at `now` (default: now), with settings overridden."""
    with app.app_context():
        return worker.run(now or utcnow(), replace(app.config["CASESVC"], **overrides))


def pytest_configure(config):
    """Run in several processes (`make test`: pytest-xdist, one per core), each worker has a
    PostgreSQL database of its own beside the one CASESVC_TEST_DATABASE_URL names (`test_gw0`,
    `test_gw1`, ..., made when missing, so the role needs CREATEDB), and the variable names it
    for everything in that worker: the app below, and the served processes the fault tests
    start. On SQLite each worker's file is in its own temporary directory already."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = os.environ.get("CASESVC_TEST_DATABASE_URL", "")
    if worker and url.startswith("postgresql"):
        os.environ["CASESVC_TEST_DATABASE_URL"] = _worker_database(url, worker)


def _worker_database(url: str, worker: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    given = make_url(url)
    own = given.set(database=f"{given.database}_{worker}")
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}) is None:
                conn.execute(text(f'CREATE DATABASE "{own.database}"'))
    finally:
        engine.dispose()
    return own.render_as_string(hide_password=False)


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("CASESVC_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


# --- figures a test measured, printed at the end of the run ----------------------------------
# Kept in the test's report (user_properties), which pytest-xdist carries from a worker to the
# process that prints the summary: a print in a worker would be lost.

_FIGURES: list[str] = []


@pytest.fixture
def figures(record_property):
    """`figures(title, lines)`: shown in the run's summary, under "figures measured by the tests"."""

    def add(title: str, lines: list[str]) -> None:
        record_property("figures", "\n".join([f"-- {title}", *("   " + line for line in lines)]))

    return add


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        _FIGURES.extend(value for name, value in report.user_properties if name == "figures")


def pytest_terminal_summary(terminalreporter):
    if _FIGURES and not os.environ.get("PYTEST_XDIST_WORKER"):
        terminalreporter.section("figures measured by the tests")
        for text in _FIGURES:
            terminalreporter.write_line(text)


def _reset_schema() -> None:
    """Start from nothing, then build the schema with the real migrations."""
    from flask_migrate import upgrade

    from casesvc.migrations_runner import migrations_directory

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if conn.dialect.name == "postgresql":  # what drop_all does not know: the audit trigger's function
            conn.execute(text("DROP FUNCTION IF EXISTS audit_events_append_only() CASCADE"))
    upgrade(directory=migrations_directory(), revision="head")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    # no sealing after requests (it would make query counts vary); what reads the audit log seals first.
    # Made from no CASESVC_ setting of the environment but the tests' own: whichever test first
    # asks for it (in a worker, any file may come first) may have set one for itself.
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("CASESVC_") and not name.startswith("CASESVC_TEST_"):
                env.delenv(name)
        app = create_app(
            {"env": "test", "database_url": _database_url(tmp_path_factory), "audit_seal_interval": 1e9},
            instance_path=tmp_path_factory.mktemp("instance"),
        )
    with app.app_context():
        _reset_schema()
    return app


@pytest.fixture(autouse=True)
def _push_request_context():
    """pytest-flask would hold one request context for the whole test, so every request of a
    test would share `g` and the database session. Each request gets its own here, as in
    production."""
    return


@contextlib.contextmanager
def audit_triggers_off(conn):
    """What someone with database rights can do: lift the append-only triggers for a while.
    Used to empty the database between tests, and by the tests that tamper with the chain."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        yield
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    else:
        saved = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
        ).all()
        for name, _ in saved:
            conn.execute(text(f"DROP TRIGGER {name}"))
        yield
        for _, sql in saved:
            conn.execute(text(sql))


@pytest.fixture(autouse=True)
def _empty_database(app):
    yield
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        # DELETE, children first, on both databases: a test leaves a few rows, and PostgreSQL's
        # TRUNCATE of every table (new files for each) cost about ten times as long
        with db.engine.begin() as conn, audit_triggers_off(conn):
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (the metadata's tables)


# --- building a world ------------------------------------------------------------------------


def youth_number(born: date, start: int = 500) -> str:
    """A valid synthetic national id (never a real person's) for a birth date in the 2000s."""
    return next(n for i in range(start, 1000) if (n := national_id.make(born, i, synthetic=True)))


@dataclass
class Actor:
    """A user and a token; calls the API as them."""

    client: object
    user_id: str
    role: str
    agency: str | None
    token: str
    headers: dict = field(default_factory=dict)

    def _h(self, extra):
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, url, headers=None, **kw):
        return self.client.get(url, headers=self._h(headers), **kw)

    def post(self, url, json=None, headers=None, **kw):
        return self.client.post(url, json=json, headers=self._h(headers), **kw)

    def patch(self, url, json=None, headers=None, **kw):
        return self.client.patch(url, json=json, headers=self._h(headers), **kw)

    def put(self, url, json=None, headers=None, **kw):
        return self.client.put(url, json=json, headers=self._h(headers), **kw)

    def delete(self, url, headers=None, **kw):
        return self.client.delete(url, headers=self._h(headers), **kw)


class World:
    """Agencies of municipality 0301 (and one of 4601), with a user per agency and role."""

    AGENCIES: ClassVar[list[tuple[str, str, list[str]]]] = [
        ("police", "police", ["0301"]),
        ("health", "school_health", ["0301"]),
        ("nav", "nav", ["0301"]),
        ("cw", "child_welfare", ["0301"]),
        ("slt", "coordinator", ["0301"]),
        ("police2", "police", ["0301"]),  # a second police agency in the same municipality
        ("west", "police", ["4601"]),  # another municipality
        ("westhealth", "school_health", ["4601"]),
    ]

    def __init__(self, app, client):
        self.app = app
        self.client = client
        self.actors: dict[str, Actor] = {}
        people = [(kind, code, f"user.{code}") for code, kind, _ in self.AGENCIES]
        people += [("admin", None, "user.admin"), ("auditor", None, "user.auditor")]
        # one context and one commit for the whole world: every test starts with it
        with app.app_context():
            for code, kind, muns in self.AGENCIES:
                create_agency(code, kind, f"Test {code}", muns)
            users = [create_user(name, role, agency, PASSWORD) for role, agency, name in people]
            db.session.commit()
            for user, (role, agency, name) in zip(users, people, strict=True):
                self.actors[agency or role] = self._actor(user.id, role, agency, name, None)

    def actor(self, role: str, agency: str | None, name: str, scopes=None) -> Actor:
        with self.app.app_context():
            user = create_user(name, role, agency, PASSWORD)
            db.session.commit()
            return self._actor(user.id, role, agency, name, scopes)

    def as_user(self, user_id, role, agency, name, scopes=None) -> Actor:
        with self.app.app_context():
            return self._actor(user_id, role, agency, name, scopes)

    def _actor(self, user_id, role, agency, name, scopes) -> Actor:
        """In an app context: a token for the user, with the role's scopes unless given."""
        scopes = sorted(ROLE_SCOPES[role] if scopes is None else scopes)
        token = create_access_token(
            identity=user_id,
            additional_claims={"role": role, "agency": agency, "scope": " ".join(scopes), "username": name},
        )
        return Actor(self.client, user_id, role, agency, token)

    def __getitem__(self, code: str) -> Actor:
        return self.actors[code]

    # --- API shortcuts (asserting success, so a test fails where the setup breaks) -----------

    def youth(self, by: str = "police", born: date | None = None, **fields) -> dict:
        born = born or date(oslo_today().year - 15, 5, 17)
        start = 500 + 7 * len(getattr(self, "_youths", []))
        self._youths = [*getattr(self, "_youths", []), 1]
        body = {
            "given_name": "Test",
            "family_name": "Testesen",
            "birth_date": born.isoformat(),
            "national_id": youth_number(born, start),
            "municipality": "0301",
            "guardians": [{"name": "Test Forelder", "relation": "mother"}],
            **fields,
        }
        resp = self[by].post("/api/v1/youths", json=body)
        assert resp.status_code == 201, resp.json
        return resp.json

    def case(self, by: str = "police", participants=("health", "slt"), youth: dict | None = None, **fields) -> dict:
        youth = youth or self.youth(by=by)
        body = {
            "youth_id": youth["id"],
            "origin": "police",
            "summary": "Test case",
            "participants": list(participants),
            **fields,
        }
        resp = self[by].post("/api/v1/cases", json=body)
        assert resp.status_code == 201, resp.json
        return resp.json

    def consent(self, case: dict, agencies, by: str = "police", categories=("general",), **fields) -> dict:
        today = oslo_today()
        body = {
            "given_by": "both",
            "given_on": (today - timedelta(days=1)).isoformat(),
            "expires_on": (today + timedelta(days=90)).isoformat(),
            "purpose": "Follow-up",
            "agencies": list(agencies),
            "categories": list(categories),
            **fields,
        }
        resp = self[by].post(f"/api/v1/cases/{case['id']}/consents", json=body)
        assert resp.status_code == 201, resp.json
        return resp.json


def all_pages(reader, url, **params) -> list[dict]:
    """Every item of a list, walked page by page through `next_cursor`; no page is larger than
    the `limit` asked for."""
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = reader.get(url, query_string=query)
        assert resp.status_code == 200, resp.json
        if "limit" in params:
            assert len(resp.json["items"]) <= params["limit"]
        items.extend(resp.json["items"])
        pages += 1
        cursor = resp.json["next_cursor"]
        if cursor is None:
            return items
        assert pages < 100


@pytest.fixture
def world(app, client) -> World:
    return World(app, client)


# --- the `casesvc` command, in-process -------------------------------------------------------

_CLI_ENV = ("CASESVC_ENV", "CASESVC_SECRET_KEY", "CASESVC_METRICS_TOKEN", "CASESVC_DEBUG", "CASESVC_AUDIT_SIGNING_KEY")


def _cli_runner(monkeypatch, capsys):
    from casesvc.cli import main

    def run(*args: str, stdin: str = ""):
        """Returns (exit code, stdout, stderr); never a traceback."""
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


@pytest.fixture
def fresh_cli(tmp_path, monkeypatch, capsys):
    """`casesvc ...` against a fresh SQLite file of its own (not migrated)."""
    for name in _CLI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASESVC_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("CASESVC_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    return _cli_runner(monkeypatch, capsys)


@pytest.fixture
def test_db_cli(app, tmp_path, monkeypatch, capsys):
    """`casesvc ...` against the test database the `world` lives in."""
    for name in _CLI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASESVC_ENV", "test")
    monkeypatch.setenv("CASESVC_DATABASE_URL", app.config["CASESVC"].database_url)
    monkeypatch.setenv("CASESVC_INSTANCE_PATH", str(tmp_path / "instance"))
    return _cli_runner(monkeypatch, capsys)


def sealed(app, within: float = 30) -> list[dict]:
    """Every event of the chain, sealed first, in seq order, as the API gives them. On PostgreSQL
    one sealer works at a time and the others return at once, so while a served process's sealer
    holds the turn this waits for the inbox to empty rather than read a chain without its tail."""
    deadline = time.monotonic() + within
    with app.app_context():
        while True:
            audit_sealing.seal()
            if db.session.scalar(select(AuditInbox.n).limit(1)) is None:
                break
            db.session.rollback()
            assert time.monotonic() < deadline, f"the audit inbox was not emptied within {within:.0f} s"
            time.sleep(0.05)
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        out = [audit_sealing.event_dict(row) for row in rows]
        db.session.remove()
        return out


@pytest.fixture(autouse=True)
def _every_message_translated(app):
    """Every problem a test is sent speaks from the catalogue: a title, detail or field message
    that no catalogue holds (left unmarked in the code, or marked and never extracted) fails
    the test that met it (README "The API at a glance": languages)."""
    unknown = app.extensions["casesvc.i18n.unknown"] = []
    yield
    del app.extensions["casesvc.i18n.unknown"]
    assert not unknown, f"client-visible text without a translation in the catalogue: {sorted(set(unknown))}"


# -- a real `casesvc serve` (gunicorn) in a child process, for the tests that need real HTTP and
# several worker processes: tests/ops/test_serve.py, tests/test_schemathesis.py, tests/ops/faults/

SERVE_CLI = [sys.executable, "-m", "casesvc.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_serve(env: dict, log: Path, workers: int = 2) -> tuple[subprocess.Popen, int]:
    """`casesvc serve` on a free loopback port, its output in `log`, in a session of its own
    (so that a test can signal the whole process group): (the process, its port)."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*SERVE_CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, port


def start_reminders_worker(tmp_path: Path, interval: int, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """`casesvc reminders work --interval N` on a migrated SQLite database in `tmp_path`, as a
    service manager runs it (text pipes, unbuffered): (the process, its first pass's line on
    stdout). Stopping it is the caller's."""
    import select

    env = {
        **os.environ,
        "CASESVC_ENV": "development",
        "CASESVC_INSTANCE_PATH": str(tmp_path),
        "CASESVC_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        **env_extra,
    }
    upgrade = subprocess.run([*SERVE_CLI, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0 and upgrade.stderr == "", upgrade.stderr  # a command says nothing unasked
    worker = subprocess.Popen(
        [*SERVE_CLI, "reminders", "work", "--interval", str(interval)],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([worker.stdout], [], [], 120)  # the first pass's result
        assert ready, "no pass within 120 s"
        return worker, worker.stdout.readline()
    except BaseException:
        worker.kill()
        worker.communicate()
        raise


def http_status(url: str, timeout: float = 5) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@contextlib.contextmanager
def serve_process(env: dict, log: Path, workers: int = 2, ready_within: float = 30, stop_within: float = 30):
    """A served casesvc, once its /readyz answers 200: yields (base URL, process); terminated after."""
    proc, port = spawn_serve(env, log, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while http_status(base + "/readyz") != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"casesvc serve was not ready within {ready_within:.0f} s"
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=stop_within)
