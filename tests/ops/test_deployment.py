"""Deployment as operators do it (README: Operations, "Deploying"): docker-compose.yml and the
systemd units in deploy/systemd/ run `casesvc` commands that exist, with options the commands
take, and with the settings production refuses to start without. No Docker engine or systemd
runs here, so the files are read and their commands and settings checked against the code."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from casesvc.cli import cli
from casesvc.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
UNITS = ROOT / "deploy" / "systemd"
ENV_EXAMPLE = UNITS / "casesvc.env.example"
TEST_SECRETS = {
    "POSTGRES_PASSWORD": "fakepassword123",
    "CASESVC_SECRET_KEY": "k" * 48,
    "CASESVC_PUBLIC_URL": "https://casesvc.example",
}


def casesvc_command(argv: list[str]) -> click.Command:
    """The click command that `casesvc ARGV…` runs, its options parsed as the command would
    (an unknown command or option, or a bad value, fails here)."""
    assert argv and Path(argv[0]).name == "casesvc", argv
    command, args, path = cli, list(argv[1:]), ["casesvc"]
    while isinstance(command, click.Group):
        assert args, f"{' '.join(path)} needs a subcommand"
        name = args.pop(0)
        assert name in command.commands, f"no command `{' '.join([*path, name])}`"
        command = command.commands[name]
        path.append(name)
    try:
        command.make_context(" ".join(path), args)
    except click.ClickException as exc:
        pytest.fail(f"`{' '.join(argv)}`: {exc.format_message()}")
    return command


def production_settings(env: dict[str, str], monkeypatch, tmp_path):
    """What casesvc makes of `env` alone, as a process started with it would."""
    for name in list(os.environ):
        if name.startswith("CASESVC_") or name == "FLASK_DEBUG":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(tmp_path)


# --- docker-compose.yml ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value, variables: dict[str, str]):
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` (unset or empty: an error)."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match):
        name, kind, rest = match.groups()
        given = variables.get(name, "")
        if kind == "?" and not given:
            raise LookupError(f"{name}: {rest}")
        return given if given or kind != "-" else rest

    return _VARIABLE.sub(one, value)


def compose(variables: dict[str, str]) -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), variables)


def casesvc_services(spec: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in spec["services"].items()
        if str(service.get("image", "")).startswith("casesvc")
    }


def test_compose_runs_postgres_migrations_the_api_and_the_worker():
    spec = compose(TEST_SECRETS)
    services = casesvc_services(spec)
    commands = {name: casesvc_command(service["command"]).name for name, service in services.items()}
    assert commands == {"migrate": "upgrade", "api": "serve", "reminders": "work"}
    assert spec["services"]["migrate"]["command"][:3] == ["casesvc", "db", "upgrade"]
    assert spec["services"]["reminders"]["command"][:3] == ["casesvc", "reminders", "work"]
    db = spec["services"]["db"]
    assert db["image"].startswith("postgres:")
    # migrations once, after the database is up; the API and the worker only after they succeeded
    migrate = services["migrate"]
    assert migrate["restart"] == "no" and migrate["build"] == "."
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "healthcheck" in db
    for name in ("api", "reminders"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert services[name]["restart"] == "unless-stopped"
    # the API listens where the port mapping points
    api = services["api"]["command"]
    port = api[api.index("--port") + 1]
    assert api[api.index("--host") + 1] == "0.0.0.0"
    assert services["api"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert services["reminders"]["healthcheck"] == {"disable": True}


def test_compose_gives_every_casesvc_service_the_settings_production_requires(monkeypatch, tmp_path):
    spec = compose(TEST_SECRETS)
    db = spec["services"]["db"]["environment"]
    for name, service in casesvc_services(spec).items():
        settings = production_settings(service["environment"], monkeypatch, tmp_path)
        assert settings.env == "production", name
        assert settings.secret_key == TEST_SECRETS["CASESVC_SECRET_KEY"]
        assert settings.database_url == (
            f"postgresql+psycopg://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@db:5432/{db['POSTGRES_DB']}"
        )


@pytest.mark.parametrize("missing", sorted(TEST_SECRETS))
def test_compose_refuses_to_start_without_a_secret(missing):
    with pytest.raises(LookupError, match=missing):
        compose({name: value for name, value in TEST_SECRETS.items() if name != missing})


# --- systemd units --------------------------------------------------------------------------------


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections, each key with every value it is given (systemd allows repeats)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and _, f"{path.name}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SERVICES = sorted(UNITS.glob("*.service"))
TIMERS = sorted(UNITS.glob("*.timer"))


def exec_start(path: Path) -> list[str]:
    (line,) = unit(path)["Service"]["ExecStart"]
    return shlex.split(line)


def test_the_units_run_existing_casesvc_commands():
    commands = {path.name: " ".join(exec_start(path)[1:3]) for path in SERVICES}
    assert commands == {
        "casesvc.service": "serve --host",
        "casesvc-migrate.service": "db upgrade",
        "casesvc-reminders.service": "reminders run",
        "casesvc-retention.service": "retention run",
    }
    for path in SERVICES:
        argv = exec_start(path)
        assert Path(argv[0]).is_absolute(), path.name  # systemd wants an absolute path
        casesvc_command(argv)


def test_the_api_needs_the_migrations_and_the_timed_passes_are_oneshot():
    api = unit(UNITS / "casesvc.service")
    assert "casesvc-migrate.service" in api["Unit"]["Requires"][0].split()
    assert "casesvc-migrate.service" in api["Unit"]["After"][0].split()
    assert api["Install"]["WantedBy"] == ["multi-user.target"]
    assert unit(UNITS / "casesvc-migrate.service")["Service"]["Type"] == ["oneshot"]
    timed = {}
    for path in TIMERS:
        timer = unit(path)
        (service,) = timer["Timer"]["Unit"]
        assert (UNITS / service).exists(), service
        assert unit(UNITS / service)["Service"]["Type"] == ["oneshot"]
        assert timer["Install"]["WantedBy"] == ["timers.target"]
        timed[" ".join(exec_start(UNITS / service)[1:3])] = timer["Timer"]
    assert set(timed) == {"reminders run", "retention run"}
    assert timed["reminders run"]["OnUnitActiveSec"] == ["1min"]
    assert timed["retention run"]["OnCalendar"] == ["*-*-* 03:15:00"]
    assert timed["retention run"]["Persistent"] == ["true"]


def _unit_environment(path: Path) -> tuple[dict[str, str], list[str]]:
    service = unit(path)["Service"]
    env = dict(value.split("=", 1) for value in service.get("Environment", []))
    return env, service.get("EnvironmentFile", [])


def _env_file(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def test_every_unit_runs_as_production_with_the_example_settings_filled_in(monkeypatch, tmp_path):
    example = _env_file(ENV_EXAMPLE)
    filled = {
        **example,
        "CASESVC_SECRET_KEY": TEST_SECRETS["CASESVC_SECRET_KEY"],
        "CASESVC_PUBLIC_URL": TEST_SECRETS["CASESVC_PUBLIC_URL"],
        "CASESVC_DATABASE_URL": "postgresql+psycopg://casesvc:fakepassword123@db.example.internal/casesvc",
    }
    for path in SERVICES:
        env, files = _unit_environment(path)
        assert files == ["/etc/casesvc/casesvc.env"], path.name  # no leading "-": a missing file stops the unit
        assert env["CASESVC_ENV"] == "production"
        service = unit(path)["Service"]
        assert service["User"] == ["casesvc"] and service["NoNewPrivileges"] == ["yes"], path.name
        settings = production_settings({**env, **filled}, monkeypatch, tmp_path)
        assert settings.env == "production" and settings.database_url.startswith("postgresql+psycopg://")


def test_the_example_settings_as_shipped_do_not_start(monkeypatch, tmp_path):
    """Left empty, the required values stop the service with a message naming them."""
    env, _ = _unit_environment(UNITS / "casesvc.service")
    example = _env_file(ENV_EXAMPLE)
    assert example["CASESVC_SECRET_KEY"] == "" and example["CASESVC_DATABASE_URL"] == ""
    with pytest.raises(ConfigError, match="CASESVC_SECRET_KEY"):
        production_settings({**env, **example}, monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match="CASESVC_DATABASE_URL"):
        production_settings({**env, **example, "CASESVC_SECRET_KEY": "k" * 48}, monkeypatch, tmp_path)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_units(tmp_path):
    """systemd's own check, with ExecStart pointing at this environment's `casesvc`."""
    here = Path(sys.executable).parent / "casesvc"
    for path in SERVICES + TIMERS:
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/casesvc/bin/casesvc", str(here)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "ignoring" not in result.stderr, result.stderr
