"""`casesvc serve` as an operator runs it: real gunicorn on a loopback port, a migrated SQLite
database, HTTP from outside. The request log line names the route but never the query string
(which may hold a national id); with CASESVC_LOG_FORMAT=json every line the server writes,
gunicorn's own included, is one JSON object."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from casesvc.audit.sealing import SEALER_NICENESS
from tests.conftest import SERVE_CLI, http_status, serve_process

NATIONAL_ID = "01010112345"


@contextlib.contextmanager
def serving(tmp_path, log_format: str = "text", workers: int = 1, **env_extra):
    env = {
        **os.environ,
        "CASESVC_ENV": "development",
        "CASESVC_INSTANCE_PATH": str(tmp_path),
        "CASESVC_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "CASESVC_LOG_FORMAT": log_format,
        **env_extra,
    }
    subprocess.run([*SERVE_CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with serve_process(env, log, workers, stop_within=20) as (base, proc):
        yield base, proc, log


@pytest.fixture
def served(tmp_path):
    with serving(tmp_path) as running:
        yield running


@pytest.fixture(params=["text", "json"])
def served_logging(tmp_path, request):
    with serving(tmp_path, request.param) as running:
        yield (*running, request.param)


def test_serve_answers_over_http_and_logs_no_query_string(served_logging):
    base, proc, log, log_format = served_logging
    assert http_status(base + "/healthz") == 200
    assert http_status(f"{base}/api/v1/youths?national_id={NATIONAL_ID}") == 401  # no token
    proc.terminate()
    proc.wait(timeout=20)
    lines = log.read_text().splitlines()
    assert not any(NATIONAL_ID in line for line in lines)
    if log_format == "text":
        assert any("casesvc.request: GET /api/v1/youths 401 " in line for line in lines), lines
        return
    records = [json.loads(line) for line in lines]  # every line, gunicorn's too, is JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records
    assert any(r["logger"].startswith("gunicorn") for r in records)
    (youths,) = [r for r in records if r["logger"] == "casesvc.request" and r["route"] == "/api/v1/youths"]
    assert (youths["method"], youths["status"], youths["actor"], youths["level"]) == ("GET", 401, None, "INFO")
    assert youths["duration_ms"] >= 0 and youths["request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", youths["time"])


def test_two_workers_requests_add_up_in_one_scrape(tmp_path):
    """Each scrape reaches one worker; what it shows is every worker's requests."""
    metrics_dir = tmp_path / "metrics"
    with serving(tmp_path, workers=2, CASESVC_METRICS_DIR=str(metrics_dir)) as (base, _, _):
        before = _healthz_count(base)
        for _ in range(40):  # a new connection each: the kernel hands them to both workers
            assert http_status(base + "/healthz") == 200
        workers = {path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
        assert len(workers) == 2, workers  # both workers served, each in its own file
        for _ in range(3):  # whichever worker answers the scrape, it adds all of them up
            assert _healthz_count(base) == before + 40


def _healthz_count(base: str) -> int:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.findall(
        r'^casesvc_http_requests_total\{[^}]*route="/healthz"[^}]*status="200"[^}]*\} (\S+)$', text, flags=re.M
    )
    return int(sum(float(v) for v in found))


def test_a_second_server_on_a_port_in_use_refuses_to_start(served, tmp_path):
    """A port in use (here by another casesvc) stops the command at once with one line."""
    base, _, _ = served
    port = base.rsplit(":", 1)[1]
    env = {**os.environ, "CASESVC_ENV": "development", "CASESVC_INSTANCE_PATH": str(tmp_path / "second")}
    second = subprocess.run(
        [*SERVE_CLI, "serve", "--host", "127.0.0.1", "--port", port],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [f"casesvc: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert http_status(base + "/healthz") == 200  # the first one still serves


def _audit_counts(database) -> tuple[int, int]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as conn:
        inbox = conn.execute("SELECT count(*) FROM audit_inbox").fetchone()[0]
        sealed = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    return inbox, sealed


def test_a_process_of_its_own_seals_the_audit_chain_and_ends_with_the_server(tmp_path):
    """README "The audit log": under `casesvc serve` the chain is sealed by one process beside the
    workers (a batch's Python holds up no request thread); it seals what requests record, and
    stops with the server."""
    import time

    with serving(tmp_path, workers=2, CASESVC_AUDIT_SEAL_INTERVAL="0.2") as (base, proc, log):
        (pid,) = [int(m) for m in re.findall(r"audit sealer started \(pid (\d+)\)", log.read_text())]
        os.kill(pid, 0)  # alive
        # below the workers: its batches do not take a core from the requests in flight
        master = os.getpriority(os.PRIO_PROCESS, proc.pid)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, master + SEALER_NICENESS)
        for _ in range(5):
            assert http_status(f"{base}/api/v1/youths") == 401  # each recorded
        deadline = time.monotonic() + 10
        while _audit_counts(tmp_path / "serve.sqlite3") != (0, 5) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _audit_counts(tmp_path / "serve.sqlite3") == (0, 5)
        proc.terminate()
        proc.wait(timeout=20)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Traceback" not in log.read_text()


def test_the_master_ends_a_running_sealing_process_and_leaves_a_reaped_ones_pid_alone(monkeypatch):
    """On exit the master ends the sealing process and waits for it; if that process ended
    already and gunicorn's master reaped it, its pid may belong to another process by now, and
    is not signalled."""
    import time

    from casesvc.audit.sealing import stop_process

    def child(seconds: float) -> int:
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        return pid

    running = child(30)
    started = time.monotonic()
    stop_process(running)
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(running, os.WNOHANG)  # ended and reaped by stop_process

    reaped = child(0)
    os.waitpid(reaped, 0)  # as gunicorn's master reaps every child that ends
    signalled: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, number: signalled.append((pid, number)))
    stop_process(reaped)
    assert signalled == []
