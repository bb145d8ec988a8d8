"""Schemathesis over the whole OpenAPI document against a live `casesvc serve` (README,
"Development": "API conformance"): real gunicorn on a loopback port, on the suite's database
(SQLite, or PostgreSQL when CASESVC_TEST_DATABASE_URL is set), with the demo world seeded and a
little more, once with a police token and once with an admin token. Every check Schemathesis has,
and ours (tests/schemathesis_hooks.py), a bounded number of examples; any finding fails the test.
The exceptions are in schemathesis.toml and tests/schemathesis_hooks.py, each with its reason.

CASESVC_SCHEMATHESIS_SEED=<n> repeats a run's generated data (each run prints its seed). In CI (`CI`
set) the seed is fixed, CI_SEED, so that a red run is repeatable from its log and a change is judged
on the same data as the one before it; a run on a developer's machine draws a new seed each time and
goes on exploring."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import requests
from casesvc.auth.clients import create_client
from casesvc.demo.seed import seed
from casesvc.extensions import db
from tests.conftest import run_worker, serve_process

ROOT = Path(__file__).resolve().parent.parent
CI_SEED = "20261202"  # the data of CI's runs (module docstring)
CONFIG = ROOT / "schemathesis.toml"
ST = Path(sys.executable).parent / "st"

pytestmark = pytest.mark.skipif(not ST.exists(), reason="Schemathesis is part of the test extra (make install)")

# Each operation is run with the token of the role that uses it (the operations of these tags with
# the admin's, all others with the police user's); that a role is refused elsewhere is the policy
# matrix's to prove (tests/access), and runs twice as long here.
ADMIN_TAGS = ("agencies", "webhooks", "users", "clients", "audit", "review", "emergency", "statistics")

# path parameter -> the seeded ids Schemathesis draws from (as often as from generated values)
ID_PROBABILITY = 0.5


@contextlib.contextmanager
def live_service(app, tmp_path):
    """`casesvc serve` (2 workers) on the suite's database, seeded; stopped afterwards (the suite
    empties the database after the test, as after any other)."""
    env = {
        **os.environ,
        "CASESVC_ENV": "development",
        "CASESVC_INSTANCE_PATH": str(tmp_path / "instance"),
        "CASESVC_DATABASE_URL": app.config["CASESVC"].database_url,
        "CASESVC_LOG_FORMAT": "text",
        "CASESVC_TOKEN_TTL": "3600",
    }
    for name in ("CASESVC_METRICS_TOKEN", "CASESVC_SECRET_KEY", "CASESVC_PUBLIC_URL"):
        env.pop(name, None)
    with app.app_context():  # in-process: quicker than three more `casesvc` commands
        seed()
        create_client("conformance-client", "police", "demo-police", "cases:read")
        db.session.commit()
    run_worker(app)
    log = tmp_path / "serve.log"
    with serve_process(env, log, workers=2) as (base, _proc):
        yield base, log


class Session:
    """An API user over HTTP, logged in with the password grant."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        resp = requests.post(
            f"{base}/api/v1/auth/token",
            timeout=10,
            data={"grant_type": "password", "username": username, "password": password},
        )
        assert resp.status_code == 200, resp.text
        self.token = resp.json()["access_token"]

    def call(self, method: str, path: str, status: int = 200, **kw) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        resp = requests.request(method, self.base + path, headers=headers, timeout=10, **kw)
        assert resp.status_code == status, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def items(self, path: str) -> list[dict]:
        return self.call("GET", path)["items"]


def seeded_ids(base: str) -> dict[str, list[str]]:
    """Adds to the demo world what it lacks (a second case, a manual reminder, an emergency access),
    and returns the real ids of every kind a path names."""
    police = Session(base, "demo.police", "demo-police-password")
    nav = Session(base, "demo.nav", "demo-nav-password")
    admin = Session(base, "demo.admin", "demo-admin-password")
    (youth,) = police.items("/api/v1/youths")
    second = police.call(
        "POST",
        "/api/v1/cases",
        201,
        json={
            "youth_id": youth["id"],
            "origin": "school",
            "summary": "Conformance: a second case",
            "participants": ["demo-nav", "demo-slt"],
        },
    )
    nav.call(
        "POST",
        f"/api/v1/cases/{second['id']}/emergency-access",
        201,
        json={"reason": "Conformance run: a documented emergency reading"},
    )
    cases = police.items("/api/v1/cases")
    ids: dict[str, set[str]] = {
        name: set()
        for name in (
            "case_id",
            "youth_id",
            "reaction_id",
            "event_id",
            "note_id",
            "consent_id",
            "reminder_id",
            "user_id",
            "code",
            "client_id",
            "access_id",
        )
    }
    for case in cases:
        ids["case_id"].add(case["id"])
        ids["youth_id"].add(case["youth_id"])
        police.call(
            "POST",
            f"/api/v1/cases/{case['id']}/reminders",
            201,
            json={"due_at": "2030-01-01T08:00:00Z", "assignee_agency": "demo-police", "text": "Conformance reminder"},
        )
        for kind, key in (
            ("reactions", "reaction_id"),
            ("events", "event_id"),
            ("notes", "note_id"),
            ("consents", "consent_id"),
        ):
            ids[key].update(item["id"] for item in police.items(f"/api/v1/cases/{case['id']}/{kind}"))
    ids["reminder_id"].update(r["id"] for r in police.items("/api/v1/reminders"))
    me = admin.call("GET", "/api/v1/auth/me")
    # not the admin itself: a run that changed its password or disabled it would test nothing after
    ids["user_id"].update(u["id"] for u in admin.items("/api/v1/users?limit=200") if u["id"] != me["subject"])
    ids["code"].update(a["code"] for a in admin.items("/api/v1/agencies?limit=200"))
    ids["client_id"].update(c["client_id"] for c in admin.items("/api/v1/clients"))
    ids["access_id"].update(a["id"] for a in admin.items("/api/v1/audit/emergency-accesses"))
    missing = [name for name, found in ids.items() if not found]
    assert not missing, f"the seeded world has no {missing}"
    return {name: sorted(found) for name, found in ids.items()}


def run_config(tmp_path: Path, ids: dict[str, list[str]]) -> Path:
    """schemathesis.toml, with the seeded ids as dictionaries for the path parameters."""
    lines = [CONFIG.read_text(), ""]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = {ID_PROBABILITY} }}' for name in ids]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis_run(base: str, token: str, tags: list[str], config: Path, report: Path) -> tuple[int, str, dict]:
    command = [
        str(ST),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "--checks",
        "all",
        "-H",
        f"Authorization: Bearer {token}",
        *tags,
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    seed = os.environ.get("CASESVC_SCHEMATHESIS_SEED") or (CI_SEED if os.environ.get("CI") else "")
    if seed:
        command += ["--seed", seed]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report.with_suffix(".log").write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr, json.loads(report.read_text()) if report.exists() else {}


def summary(who: str, dialect: str, result: dict, seconds: float) -> str:
    ops, cases = result.get("operations", {}), result.get("test_cases", {})
    found = ", ".join(f"{f['code']} {f['title']}: {f['count']}" for f in result.get("failures", [])) or "none"
    errors = ", ".join(f"{e['title']}: {e['count']}" for e in result.get("errors", [])) or "none"
    return (
        f"schemathesis [{dialect}, {who}]: {ops.get('tested')}/{ops.get('total')} operations, "
        f"{cases.get('generated')} test cases, findings: {found}; errors: {errors}; "
        f"accepted by the hooks: {result.get('filtered', 0)}; {seconds:.0f} s; seed {result.get('seed')}"
    )


def test_schemathesis_finds_nothing_as_police_and_as_admin(app, tmp_path, figures):
    dialect = "postgresql" if app.config["CASESVC"].database_url.startswith("postgresql") else "sqlite"
    with live_service(app, tmp_path) as (base, log):
        config = run_config(tmp_path, seeded_ids(base))
        outcomes = []
        # police first: the admin run may disable users and change passwords
        for who, username, password, tags in (
            ("police", "demo.police", "demo-police-password", [f"--exclude-tag={tag}" for tag in ADMIN_TAGS]),
            ("admin", "demo.admin", "demo-admin-password", [f"--include-tag={tag}" for tag in ADMIN_TAGS]),
        ):
            token = Session(base, username, password).token
            started = time.monotonic()
            code, output, result = schemathesis_run(base, token, tags, config, tmp_path / f"{who}.json")
            line = summary(who, dialect, result, time.monotonic() - started)
            figures("schemathesis against the served document", [line])
            outcomes.append((who, code, output, line))
        server_log = log.read_text()
    failed = [(who, output, line) for who, code, output, line in outcomes if code != 0]
    assert not failed, "\n\n".join(f"{line}\n{output}" for _, output, line in failed)
    assert "Traceback" not in server_log, server_log
