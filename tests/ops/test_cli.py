"""README "Operations": the `casesvc` command. Every expected error is one line and a non-zero exit,
never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import start_reminders_worker

VENV_CASESVC = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "casesvc"
GOOD_PASSWORD = "a long enough test password"


@pytest.fixture
def cli(fresh_cli):
    return fresh_cli


@pytest.fixture
def migrated(cli):
    code, _, _ = cli("db", "upgrade")
    assert code == 0
    return cli


def one_line_error(code: int, out: str, err: str, expected_code: int | None = None) -> str:
    assert code != 0
    if expected_code is not None:
        assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("casesvc: ")
    return lines[0]


# --- db ------------------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(cli, tmp_path):
    first = cli("db", "upgrade")
    assert first[0] == 0, first
    assert (tmp_path / "cli.sqlite3").exists()
    second = cli("db", "upgrade")
    assert second[0] == 0, second
    assert "up to date" in second[1]


def test_commands_before_migration_say_so_in_one_line(cli):
    line = one_line_error(
        *cli("agencies", "create", "oslo-police", "--kind", "police", "--name", "Test", "--municipality", "0301")
    )
    assert "db upgrade" in line


# --- agencies ------------------------------------------------------------------------------------


def test_agencies_create(migrated):
    code, out, err = migrated(
        "agencies", "create", "oslo-police", "--kind", "police", "--name", "Test politi", "--municipality", "0301,4601"
    )
    assert code == 0, err
    assert "oslo-police" in out


def test_duplicate_agency_is_a_one_line_error(migrated):
    args = ("agencies", "create", "oslo-police", "--kind", "police", "--name", "Test", "--municipality", "0301")
    assert migrated(*args)[0] == 0
    line = one_line_error(*migrated(*args))
    assert "already exists" in line


@pytest.mark.parametrize(
    "args,word",
    [
        (("--kind", "army", "--name", "Test", "--municipality", "0301"), "--kind"),
        (("--kind", "police", "--name", "Test", "--municipality", "Oslo"), "--municipality"),
        (("--kind", "police", "--name", "Test", "--municipality", "301"), "--municipality"),
        (("--kind", "police", "--name", "Test", "--municipality", "0301,12345"), "--municipality"),
        (("--kind", "police", "--name", "   ", "--municipality", "0301"), "--name"),
    ],
    ids=["kind", "name-of-municipality", "three-digits", "five-digits", "blank-name"],
)
def test_bad_agency_input_is_a_one_line_error(migrated, args, word):
    line = one_line_error(*migrated("agencies", "create", "oslo-police", *args))
    assert word in line


def test_bad_agency_code_is_a_one_line_error(migrated):
    one_line_error(
        *migrated("agencies", "create", "Oslo Police!", "--kind", "police", "--name", "Test", "--municipality", "0301")
    )


def test_missing_required_option_is_usage_error(migrated):
    one_line_error(*migrated("agencies", "create", "oslo-police", "--kind", "police"), expected_code=2)


# --- users ---------------------------------------------------------------------------------------


@pytest.fixture
def with_agency(migrated):
    assert (
        migrated(
            "agencies",
            "create",
            "oslo-health",
            "--kind",
            "school_health",
            "--name",
            "Test helse",
            "--municipality",
            "0301",
        )[0]
        == 0
    )
    return migrated


def test_users_create_reads_the_password_from_stdin(with_agency, tmp_path):
    code, out, err = with_agency(
        "users",
        "create",
        "test.nurse",
        "--role",
        "school_health",
        "--agency",
        "oslo-health",
        "--password-stdin",
        stdin=GOOD_PASSWORD + "\n",
    )
    assert code == 0, err
    assert "test.nurse" in out
    assert GOOD_PASSWORD not in out + err
    # the password read from stdin is the one that logs in
    ok = _login(tmp_path, "test.nurse", GOOD_PASSWORD)
    assert ok.status_code == 200, ok.json
    assert ok.json["scope"]
    assert _token_status(tmp_path, "test.nurse", GOOD_PASSWORD + "\n") == 400


def test_users_create_refuses_without_password_stdin(with_agency):
    line = one_line_error(
        *with_agency(
            "users",
            "create",
            "test.nurse",
            "--role",
            "school_health",
            "--agency",
            "oslo-health",
            stdin=GOOD_PASSWORD + "\n",
        ),
        expected_code=2,
    )
    assert "--password-stdin" in line


def test_users_create_takes_no_password_on_the_command_line(with_agency):
    one_line_error(
        *with_agency(
            "users",
            "create",
            "test.nurse",
            "--role",
            "school_health",
            "--agency",
            "oslo-health",
            "--password",
            GOOD_PASSWORD,
        ),
        expected_code=2,
    )


def test_users_create_refuses_a_short_password(with_agency):
    line = one_line_error(
        *with_agency(
            "users",
            "create",
            "test.nurse",
            "--role",
            "school_health",
            "--agency",
            "oslo-health",
            "--password-stdin",
            stdin="Xq7zkW\n",
        )
    )
    assert "password" in line
    assert "Xq7zkW" not in line  # the password is not echoed


@pytest.mark.parametrize(
    "role,agency",
    [
        ("police", "oslo-health"),
        ("school_health", None),
        ("admin", "oslo-health"),
        ("school_health", "no-such-agency"),
        ("superuser", None),
    ],
    ids=["kind-mismatch", "staff-without-agency", "admin-with-agency", "unknown-agency", "unknown-role"],
)
def test_users_create_refuses_a_role_agency_mismatch(with_agency, role, agency):
    args = ["users", "create", "test.user", "--role", role, "--password-stdin"]
    if agency:
        args += ["--agency", agency]
    one_line_error(*with_agency(*args, stdin=GOOD_PASSWORD + "\n"))


def test_users_create_refuses_a_duplicate_username(with_agency):
    args = ("users", "create", "test.admin", "--role", "admin", "--password-stdin")
    assert with_agency(*args, stdin=GOOD_PASSWORD + "\n")[0] == 0
    line = one_line_error(*with_agency(*args, stdin=GOOD_PASSWORD + "\n"))
    assert "already exists" in line


def _login(tmp_path, username: str, password: str):
    """A password grant against the database the command wrote to."""
    from casesvc import create_app

    app = create_app({"env": "test", "database_url": os.environ["CASESVC_DATABASE_URL"]}, instance_path=tmp_path)
    return app.test_client().post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


def _token_status(tmp_path, username: str, password: str) -> int:
    return _login(tmp_path, username, password).status_code


def test_users_set_password_replaces_the_password_read_from_stdin(migrated, tmp_path):
    assert (
        migrated("users", "create", "test.admin", "--role", "admin", "--password-stdin", stdin=GOOD_PASSWORD + "\n")[0]
        == 0
    )
    new_password = "another long test password"
    code, out, err = migrated("users", "set-password", "test.admin", "--password-stdin", stdin=new_password + "\n")
    assert code == 0, err
    assert "test.admin" in out and new_password not in out + err
    assert _token_status(tmp_path, "test.admin", new_password) == 200
    assert _token_status(tmp_path, "test.admin", GOOD_PASSWORD) == 400


@pytest.mark.parametrize(
    "args,stdin,expected",
    [
        (("users", "set-password", "no.such.user", "--password-stdin"), GOOD_PASSWORD, "no user"),
        (("users", "set-password", "test.admin", "--password-stdin"), "Xq7zkW", "password"),
        (("users", "set-password", "test.admin"), GOOD_PASSWORD, "--password-stdin"),
    ],
    ids=["unknown-user", "short-password", "without-password-stdin"],
)
def test_users_set_password_refuses_in_one_line_and_changes_nothing(migrated, tmp_path, args, stdin, expected):
    assert (
        migrated("users", "create", "test.admin", "--role", "admin", "--password-stdin", stdin=GOOD_PASSWORD + "\n")[0]
        == 0
    )
    line = one_line_error(*migrated(*args, stdin=stdin + "\n"))
    assert expected in line and "Xq7zkW" not in line
    assert _token_status(tmp_path, "test.admin", GOOD_PASSWORD) == 200


# --- demo ----------------------------------------------------------------------------------------


def test_demo_seed_is_idempotent_and_prints_the_users(migrated):
    code, first, err = migrated("demo", "seed")
    assert code == 0, err
    assert "demo.police" in first and "demo.admin" in first
    assert "demo-police-password" in first
    code, second, err = migrated("demo", "seed")
    assert code == 0, err
    assert "already" in second
    assert "demo.police" in second
    # the second run created nothing: the demo agency is still there once, so creating it again fails
    line = one_line_error(
        *migrated("agencies", "create", "demo-police", "--kind", "police", "--name", "X", "--municipality", "0301")
    )
    assert "already exists" in line


def test_demo_seed_users_can_log_in(migrated, tmp_path):
    assert migrated("demo", "seed")[0] == 0
    from casesvc import create_app

    app = create_app({"env": "test", "database_url": os.environ["CASESVC_DATABASE_URL"]}, instance_path=tmp_path)
    resp = app.test_client().post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "demo.nurse", "password": "demo-nurse-password"},
    )
    assert resp.status_code == 200, resp.json


# --- openapi -------------------------------------------------------------------------------------


def test_openapi_export_writes_yaml(cli, tmp_path):
    target = tmp_path / "openapi.yaml"
    code, _, err = cli("openapi", "export", "--output", str(target))
    assert code == 0, err
    spec = yaml.safe_load(target.read_text())
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/cases" in spec["paths"]


def test_openapi_export_to_stdout(cli):
    code, out, _ = cli("openapi", "export")
    assert code == 0
    assert yaml.safe_load(out)["openapi"].startswith("3.1")


# --- usage errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("frobnicate",), ("db", "downgrade"), ("agencies", "create", "x", "--bogus"), ("--no-such-option",)],
    ids=["command", "subcommand", "option", "global-option"],
)
def test_unknown_command_or_option_is_a_one_line_error_exit_2(cli, args):
    one_line_error(*cli(*args), expected_code=2)


def test_help_exits_0(cli):
    code, out, _ = cli("--help")
    assert code == 0
    assert "agencies" in out and "users" in out


def test_bad_config_is_a_one_line_error(cli, monkeypatch):
    monkeypatch.setenv("CASESVC_ENV", "production")
    line = one_line_error(*cli("db", "upgrade"))
    assert "CASESVC_SECRET_KEY" in line


# --- the installed command -----------------------------------------------------------------------


def _installed(tmp_path, *args, stdin: str = ""):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESVC_")}
    env.update(
        CASESVC_INSTANCE_PATH=str(tmp_path / "instance"), CASESVC_DATABASE_URL=f"sqlite:///{tmp_path / 'sub.sqlite3'}"
    )
    return subprocess.run(
        [str(VENV_CASESVC), *args], input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


@pytest.mark.skipif(not VENV_CASESVC.exists(), reason="the console script is not installed in .venv")
def test_installed_command_reports_errors_without_traceback(tmp_path):
    unknown = _installed(tmp_path, "frobnicate")
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr + unknown.stdout
    assert unknown.stderr.strip().count("\n") == 0 and unknown.stderr.startswith("casesvc: ")

    upgrade = _installed(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Traceback" not in upgrade.stderr

    bad = _installed(
        tmp_path, "agencies", "create", "x-police", "--kind", "army", "--name", "Test", "--municipality", "0301"
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr + bad.stdout
    errors = [line for line in bad.stderr.splitlines() if line.startswith("casesvc: ")]
    assert len(errors) == 1 and "--kind" in errors[0]

    short = _installed(
        tmp_path, "users", "create", "test.admin", "--role", "admin", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 1
    assert "Traceback" not in short.stderr + short.stdout


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_the_reminders_worker_stops_at_once_on_sigterm_between_passes(tmp_path, pause):
    """A service manager's SIGTERM right after a pass, or during the wait for the next one (here
    30 s away), ends `casesvc reminders work` at once with status 0."""
    worker, first = start_reminders_worker(tmp_path, 30)
    try:
        assert first.startswith("{")  # the first pass's result
        time.sleep(pause)
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=20)
        assert worker.returncode == 0, err
        assert time.monotonic() - sent < 10
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
