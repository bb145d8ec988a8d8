"""What the fault and load tests share: `casesvc serve` started as an operator starts it (real
gunicorn, on a free loopback port, against the test's PostgreSQL database), HTTP clients with a
keep-alive connection each, and a record of every request (status, latency, request id); the
figures each test measured go to the `figures` fixture (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from casesvc.youths import national_id
from tests.conftest import SERVE_CLI, spawn_serve

POSTGRES_URL = os.environ.get("CASESVC_TEST_DATABASE_URL", "")
pg_only = pytest.mark.skipif(
    not POSTGRES_URL.startswith("postgresql"),
    reason="real servers on the production database: needs PostgreSQL (set CASESVC_TEST_DATABASE_URL)",
)
CLI = SERVE_CLI  # `casesvc` as the tests run it


def host_env(database_url: str, home: Path, secret_key: str, **extra: str) -> dict:
    """The environment of one host: the shared database and signing key, its own instance
    directory and metrics, loopback webhooks allowed (not production)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESVC_")}
    env.update(
        {
            "CASESVC_ENV": "development",
            "CASESVC_DATABASE_URL": database_url,
            "CASESVC_SECRET_KEY": secret_key,
            "CASESVC_INSTANCE_PATH": str(home),
            "CASESVC_METRICS_DIR": str(home / "metrics"),
            "CASESVC_LOG_FORMAT": "text",
            **extra,
        }
    )
    return env


def new_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass
class Host:
    """One `casesvc serve` process (the gunicorn master) and its workers."""

    name: str
    port: int
    proc: subprocess.Popen
    log: Path
    env: dict

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> set[int]:
        """The pids of the master's children that are gunicorn's workers, from /proc: not the
        audit sealer's process, which the master forks too (its pid is in the log)."""
        sealers = {int(pid) for pid in re.findall(r"audit sealer started \(pid (\d+)\)", self.log_text())}
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis
            fields = stat.rpartition(")")[2].split()
            if fields and fields[0] != "Z" and int(fields[1]) == self.proc.pid:
                found.add(int(entry))
        return found - sealers

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_host(name: str, env: dict, home: Path, workers: int = 2) -> Host:
    log = home / "serve.log"
    proc, port = spawn_serve(env, log, workers)
    return Host(name, port, proc, log, env)


def wait_ready(host: Host, workers: int = 2, timeout: float = 60) -> None:
    """Ready: /readyz answers 200 and every worker has been forked."""
    deadline = time.monotonic() + timeout
    while True:
        assert host.proc.poll() is None, host.log_text()
        try:
            if status_of(host.base + "/readyz") == 200 and len(host.workers()) >= workers:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{host.name} was not ready within {timeout} s:\n{host.log_text()}"
        time.sleep(0.2)


def stop_host(host: Host) -> None:
    if host.proc.poll() is None:
        host.proc.send_signal(signal.SIGTERM)
        try:
            host.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            host.proc.wait(timeout=10)


@contextlib.contextmanager
def serving(hosts: list[tuple[str, dict, Path]], workers: int = 2):
    """Start every host at once, wait until all are ready, stop them all afterwards."""
    started = [start_host(name, env, home, workers) for name, env, home in hosts]
    try:
        for host in started:
            wait_ready(host, workers)
        yield started
    finally:
        for host in started:
            stop_host(host)


def status_of(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path)
        return conn.getresponse().status
    finally:
        conn.close()


def run_cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), env=env, capture_output=True, text=True, timeout=timeout)


# --- HTTP clients and what they saw ------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer (the connection failed or timed out)
    headers: dict
    body: bytes
    elapsed: float
    error: str | None = None
    request_id: str = ""

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Record:
    label: str
    host: str
    status: int
    elapsed: float
    request_id: str
    at: float  # time.monotonic() when the answer came
    error: str | None = None


class Ledger:
    """Every request the clients made, as they saw it. `list.append` is atomic under the GIL."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.records: list[Record] = []
        self._numbers = iter(range(10**9))
        self._lock = threading.Lock()

    def request_id(self) -> str:
        with self._lock:
            return f"{self.prefix}-{next(self._numbers)}"

    def add(self, record: Record) -> None:
        self.records.append(record)

    def statuses(self, label: str | None = None) -> Counter:
        return Counter(r.status for r in self.records if label is None or r.label == label)

    def figures(self, seconds: float) -> list[str]:
        answered = [r for r in self.records if r.status]
        lines = [
            f"requests: {len(self.records)} in {seconds:.1f} s ({len(self.records) / seconds:.0f}/s), "
            f"answered {len(answered)}",
            "status counts: " + ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(self.statuses().items())),
            "latency: " + latency(r.elapsed for r in answered),
        ]
        for label in sorted({r.label for r in self.records}):
            mine = [r for r in self.records if r.label == label]
            lines.append(
                f"  {label}: {len(mine)}, "
                + ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(Counter(r.status for r in mine).items()))
                + "; "
                + latency(r.elapsed for r in mine if r.status)
            )
        return lines


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(values) -> str:
    values = list(values)
    return (
        f"p50 {percentile(values, 0.50) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, "
        f"max {max(values, default=0) * 1000:.0f} ms"
    )


class Client:
    """One caller: a keep-alive connection per host, a token, every request recorded."""

    def __init__(self, hosts: dict[str, str], ledger: Ledger, timeout: float = 30):
        self.hosts = hosts  # name -> base URL
        self.ledger = ledger
        self.timeout = timeout
        self.token: str | None = None
        self._conns: dict[str, http.client.HTTPConnection] = {}

    def _conn(self, host: str) -> http.client.HTTPConnection:
        conn = self._conns.get(host)
        if conn is None:
            parts = urllib.parse.urlsplit(self.hosts[host])
            conn = self._conns[host] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        return conn

    def call(
        self,
        host: str,
        method: str,
        path: str,
        label: str,
        json_body=None,
        form: dict | None = None,
        headers: dict | None = None,
        token: bool = True,
    ) -> Answer:
        request_id = self.ledger.request_id()
        sent = {"X-Request-Id": request_id, **(headers or {})}
        if token and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.monotonic()
        try:
            conn = self._conn(host)
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, time.monotonic() - started)
            if resp.getheader("Connection", "").lower() == "close":
                self.close(host)
        except (OSError, http.client.HTTPException) as exc:
            self.close(host)
            answer = Answer(0, {}, b"", time.monotonic() - started, error=exc.__class__.__name__)
        answer.request_id = request_id
        self.ledger.add(Record(label, host, answer.status, answer.elapsed, request_id, time.monotonic(), answer.error))
        return answer

    def login(self, host: str, username: str, password: str, label: str = "login") -> Answer:
        answer = self.call(
            host,
            "POST",
            "/api/v1/auth/token",
            label,
            token=False,
            form={"grant_type": "password", "username": username, "password": password},
        )
        if answer.status == 200:
            self.token = answer.json["access_token"]
        return answer

    def close(self, host: str | None = None) -> None:
        for name in [host] if host else list(self._conns):
            conn = self._conns.pop(name, None)
            if conn is not None:
                conn.close()


# --- test data ---------------------------------------------------------------------------------


class NationalIds:
    """Valid synthetic national ids (never a real person's), each handed out once, from any thread."""

    def __init__(self, first_birth_date: date):
        self._lock = threading.Lock()
        self._ids = self._generate(first_birth_date)

    @staticmethod
    def _generate(born: date):
        while True:
            for individual in range(500, 1000):  # the individual numbers of births in 2000–2039
                number = national_id.make(born, individual, synthetic=True)
                if number:
                    yield born, number
            born += timedelta(days=1)

    def next(self) -> tuple[date, str]:
        with self._lock:
            return next(self._ids)


def youth_body(ids: NationalIds) -> dict:
    born, number = ids.next()
    return {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": born.isoformat(),
        "national_id": number,
        "municipality": "0301",
        "guardians": [{"name": "Test Forelder", "relation": "mother"}],
    }


@dataclass
class Shared:
    """What the clients found out together (ids of what was created), guarded by a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cases: list[str] = field(default_factory=list)

    def add_case(self, case_id: str) -> None:
        with self.lock:
            self.cases.append(case_id)

    def some_case(self, rng) -> str | None:
        with self.lock:
            return rng.choice(self.cases) if self.cases else None


def served(host: Host) -> dict[str, tuple[int, float]]:
    """What the host's request log says of each request: request id -> (status, seconds taken
    once a worker thread had it; the time it waited for a free thread is not in it)."""
    found = {}
    for line in host.log_text().splitlines():
        match = _REQUEST_LINE.search(line)
        if match:
            found[match["id"]] = (int(match["status"]), float(match["ms"]) / 1000)
    return found


_REQUEST_LINE = re.compile(r"\[(?P<id>[^\]]+)\] casesvc\.request: \S+ \S+ (?P<status>\d{3}) (?P<ms>[\d.]+)ms")
