"""Settings from CASESVC_* environment variables.

Defaults are safe: development gets conveniences (an SQLite file, a signing key kept under
instance/), production refuses to start without the settings that protect data.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("development", "test", "production")
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names it."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: str
    token_ttl: int
    refresh_ttl: int
    metrics_token: str | None
    allow_synthetic_ids: bool
    password_hash_profile: str
    instance_path: Path


def _dev_secret(instance_path: Path) -> str:
    """A per-installation key kept beside the SQLite file, so `make run` needs no setup
    and every gunicorn worker signs with the same key."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_settings(instance_path: Path, overrides: dict | None = None) -> Settings:
    overrides = overrides or {}
    env = overrides.get("env") or _env("CASESVC_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CASESVC_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    default_db = f"sqlite:///{instance_path / 'casesvc.sqlite3'}"
    database_url = overrides.get("database_url") or _env("CASESVC_DATABASE_URL", default_db)
    secret = overrides.get("secret_key") or _env("CASESVC_SECRET_KEY")
    if env == "production":
        if not secret:
            raise ConfigError("CASESVC_SECRET_KEY is required when CASESVC_ENV=production")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"CASESVC_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if database_url.startswith("sqlite"):
            raise ConfigError("CASESVC_DATABASE_URL must name PostgreSQL when CASESVC_ENV=production")
    elif not secret:
        # test: a fresh random key per process (tokens are minted in-process); development: a key
        # kept under instance/ so that every worker and restart agrees. Neither is guessable.
        secret = secrets.token_urlsafe(48) if env == "test" else _dev_secret(instance_path)
    return Settings(
        env=env,
        database_url=database_url,
        secret_key=secret,
        token_ttl=_int("CASESVC_TOKEN_TTL", 900),
        refresh_ttl=_int("CASESVC_REFRESH_TTL", 8 * 3600),
        metrics_token=_env("CASESVC_METRICS_TOKEN"),
        allow_synthetic_ids=_bool("CASESVC_ALLOW_SYNTHETIC_IDS", env != "production"),
        password_hash_profile="fast" if env == "test" else "default",
        instance_path=instance_path,
    )
