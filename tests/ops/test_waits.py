"""Every wait on the database is bounded by a setting, the connection budget is a setting, and
gunicorn's shutdown grace and keep-alive are settings of `casesvc serve` (README "Operations")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from casesvc import create_app
from casesvc.commands import LONG_JOBS
from casesvc.config import ConfigError, load_settings
from casesvc.extensions import db
from casesvc.ops.database import engine_options
from casesvc.server import gunicorn_options

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _settings(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(Path("/tmp"), {"env": "test", "database_url": PG})


def test_the_waits_and_the_pool_follow_their_settings(monkeypatch):
    settings = _settings(
        monkeypatch,
        CASESVC_DB_POOL_SIZE="8",
        CASESVC_DB_MAX_OVERFLOW="2",
        CASESVC_DB_POOL_TIMEOUT="3",
        CASESVC_DB_CONNECT_TIMEOUT="4",
        CASESVC_DB_STATEMENT_TIMEOUT="12.5",
        CASESVC_DB_IDLE_IN_TRANSACTION_TIMEOUT="40",
    )
    options = engine_options(settings)
    assert (options["pool_size"], options["max_overflow"], options["pool_timeout"]) == (8, 2, 3.0)
    assert "pool_pre_ping" not in options  # a ping per checkout would cost a round trip per request
    assert settings.db_ping_after_idle == 1.0  # an idle connection is pinged instead (tests/ops/test_outage.py)
    assert options["connect_args"]["connect_timeout"] == 4
    assert options["connect_args"]["options"] == (
        "-c statement_timeout=12500 -c idle_in_transaction_session_timeout=40000"
    )


@pytest.mark.skipif(
    not os.environ.get("CASESVC_TEST_DATABASE_URL", "").startswith("postgresql"), reason="PostgreSQL's pool"
)
def test_the_pool_hands_out_the_connection_given_back_last(app):
    """The pool is a stack (`pool_use_lifo`): a request takes the connection the one before it gave
    back, whose backend is warm, instead of going round every connection in turn (bench/README.md:
    a read's PostgreSQL time fell by a tenth); the rest idle, and are pinged before use."""
    with app.app_context():
        engine = db.engine
        first, second = engine.raw_connection(), engine.raw_connection()
        first_driver, second_driver = first.dbapi_connection, second.dbapi_connection
        first.close()
        second.close()
        again = engine.raw_connection()
        try:
            assert again.dbapi_connection is second_driver
            assert again.dbapi_connection is not first_driver
        finally:
            again.close()


def test_the_defaults_bound_every_wait(monkeypatch):
    options = engine_options(_settings(monkeypatch))
    assert (options["pool_size"], options["max_overflow"], options["pool_timeout"]) == (5, 5, 5.0)
    assert options["connect_args"] == {
        "connect_timeout": 5,
        "options": ("-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000"),
    }


@pytest.mark.parametrize(
    "name, value",
    [
        ("CASESVC_DB_POOL_SIZE", "0"),
        ("CASESVC_DB_STATEMENT_TIMEOUT", "-1"),
        ("CASESVC_READYZ_TIMEOUT", "0"),
        ("CASESVC_KEEPALIVE", "soon"),
        ("CASESVC_SWITCH_INTERVAL_MS", "0"),
    ],
)
def test_a_wait_that_makes_no_sense_is_refused_at_start(monkeypatch, name, value):
    with pytest.raises(ConfigError, match=name):
        _settings(monkeypatch, **{name: value})


def test_commands_run_without_the_servers_statement_timeouts():
    """An export of millions of events or a first reminders run is one long statement by design."""
    assert LONG_JOBS == {"db_statement_timeout": 0, "db_idle_in_transaction_timeout": 0}
    settings = load_settings(Path("/tmp"), {"env": "test", "database_url": PG, **LONG_JOBS})
    assert "options" not in engine_options(settings)["connect_args"]


@pytest.mark.parametrize("setting, seconds", [({}, 0.001), ({"CASESVC_SWITCH_INTERVAL_MS": "2.5"}, 0.0025)])
def test_each_worker_switches_threads_at_the_interval_set(monkeypatch, setting, seconds):
    options = gunicorn_options(_settings(monkeypatch, **setting), "127.0.0.1", 8000, 2, 4)
    before = sys.getswitchinterval()
    try:
        options["post_fork"](None, None)  # gunicorn calls it in each worker it forks
        assert sys.getswitchinterval() == pytest.approx(seconds)
    finally:
        sys.setswitchinterval(before)


def test_serve_passes_the_shutdown_grace_and_keep_alive_to_gunicorn(monkeypatch):
    settings = _settings(monkeypatch, CASESVC_GRACEFUL_TIMEOUT="45", CASESVC_KEEPALIVE="75")
    options = gunicorn_options(settings, "0.0.0.0", 8000, 4, 4)
    assert (options["graceful_timeout"], options["keepalive"]) == (45, 75)
    # one listening socket for all workers: what a killed worker had queued, another accepts
    # (a socket per worker, SO_REUSEPORT, reset it: tests/ops/faults/test_worker_killed.py)
    assert not options.get("reuse_port")
    assert (options["bind"], options["workers"], options["worker_class"], options["threads"]) == (
        "0.0.0.0:8000",
        4,
        "casesvc.server.BalancedThreadWorker",
        4,
    )


@pytest.mark.skipif(
    not os.environ.get("CASESVC_TEST_DATABASE_URL", "").startswith("postgresql"), reason="the timeouts are PostgreSQL's"
)
def test_the_server_enforces_the_timeouts_the_service_asked_for(app, tmp_path):
    other = create_app(
        {
            "env": "test",
            "database_url": app.config["CASESVC"].database_url,
            "audit_seal_interval": 1e9,
            "db_statement_timeout": 7,
            "db_idle_in_transaction_timeout": 9,
        },
        instance_path=tmp_path,
    )
    with other.app_context():
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
            assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "9s"
        db.engine.dispose()


def test_the_watchdog_goes_on_cutting_after_a_connection_already_lost():
    """A connection the driver already reports lost (with an error of its own kind) is passed
    over; the deadlines of the others are still enforced."""
    import socket
    import time

    import psycopg

    from casesvc.ops.database import Watchdog

    class Lost:
        def fileno(self):
            raise psycopg.OperationalError("the connection is lost")

    class Stuck:
        def __init__(self):
            self.ours, self.theirs = socket.socketpair()

        def fileno(self):
            return self.ours.fileno()

    watchdog = Watchdog(0.05, interval=0.02)
    watchdog.arm(Lost())
    time.sleep(0.2)  # its deadline passed
    stuck = Stuck()
    watchdog.arm(stuck)
    stuck.theirs.settimeout(3)
    try:
        assert stuck.theirs.recv(1) == b""  # shut down by the watchdog, not left hanging
    finally:
        stuck.ours.close()
        stuck.theirs.close()


def test_a_forked_worker_has_a_watchdog_thread_of_its_own():
    """gunicorn forks the workers after the app is made: the parent's watchdog thread is not in
    a worker, so the worker's first statement starts one there (or no deadline would be kept)."""
    import threading

    from casesvc.ops.database import Watchdog

    def threads() -> int:
        return sum(thread.name == "casesvc-db-watchdog" and thread.is_alive() for thread in threading.enumerate())

    watchdog = Watchdog(30)
    watchdog.arm(object())
    before = threads()
    assert before >= 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            os.close(read)
            none_yet = threads() == 0 and not watchdog._deadlines  # the parent's are not the worker's to cut
            watchdog.arm(object())
            os.write(write, b"1" if none_yet and threads() == 1 else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert threads() == before  # the parent's own goes on


def test_the_port_check_names_a_port_in_use_but_not_the_sockets_gunicorn_is_handed(monkeypatch):
    import socket

    from casesvc.server import address_taken

    monkeypatch.delenv("GUNICORN_FD", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert address_taken("127.0.0.1", port) == f"127.0.0.1:{port}: Address already in use"
        monkeypatch.setenv("GUNICORN_FD", "3")  # a USR2 upgrade: the old master holds the port
        assert address_taken("127.0.0.1", port) is None
    monkeypatch.delenv("GUNICORN_FD")
    assert address_taken("127.0.0.1", port) is None  # free again
