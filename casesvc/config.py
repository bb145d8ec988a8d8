"""Settings from CASESVC_* environment variables.

Defaults are safe: development gets conveniences (an SQLite file, a signing key kept under
instance/), production refuses to start without the settings that protect data.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path

ENVIRONMENTS = ("development", "test", "production")
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names it."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _number(name: str, default, kind, what: str):
    raw = _env(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


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
    audit_seal_interval: float = 0.5
    retention_days: int = 1825
    trusted_proxies: int = 0
    audit_signing_key: str | None = None
    log_format: str = "text"  # "json" or "text" (README: Logs)
    # identity (casesvc/auth): see _identity_settings()
    secret_keys_previous: tuple[str, ...] = ()
    debug: bool = False
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_role_claim: str = "casesvc_role"
    oidc_agency_claim: str = "casesvc_agency"
    oidc_scope_claim: str = "scope"
    oidc_leeway: int = 30
    oidc_jwks_timeout: float = 5.0
    oidc_jwks_cache_seconds: int = 3600
    oidc_jwks_min_refresh_seconds: int = 60
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str = "casesvc-db://"
    ratelimit_key_prefix: str = "casesvc"
    ratelimit_login_per_ip: str = "30/minute"
    ratelimit_login_per_username: str = "10/minute"
    # reminders (casesvc/reminders): see _reminder_settings()
    reminder_reaction_ending_days: int = 14
    reminder_consent_expiring_days: int = 30
    reminder_no_contact_days: int = 30
    reminder_conversation_days: int = 1
    reminder_plan_review_months: int = 3
    reminder_escalation_days: int = 3
    webhook_timeout: float = 5.0
    webhook_backoff_seconds: int = 60
    webhook_backoff_max_seconds: int = 6 * 3600
    webhook_max_attempts: int = 8
    webhook_lease_seconds: int = 300
    webhook_concurrency: int = 8
    # the database connection and serving (casesvc/ops): see _database_settings()
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout: float = 5.0
    db_pool_recycle: int = 1800
    db_ping_after_idle: float = 1.0
    db_connect_timeout: int = 5
    db_statement_timeout: float = 30.0
    db_idle_in_transaction_timeout: float = 60.0
    readyz_timeout: float = 2.0
    retry_after: int = 5
    serve_graceful_timeout: int = 30
    serve_keepalive: int = 5
    # how long a worker's thread runs before another waiting one may take the interpreter
    serve_switch_interval_ms: float = 1.0
    # statistics (casesvc/statistics): counts below this are never shown (README: Statistics)
    statistics_min_cell: int = 5
    cors_origins: tuple[str, ...] = ()
    public_url: str | None = None
    # privacy duties (casesvc/emergency, casesvc/audit/review.py): see _privacy_settings()
    emergency_access_hours: int = 4
    review_bulk_reads: int = 50
    review_off_hours: str = "22-06"
    review_probes: int = 20

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_audience and self.oidc_jwks_url)


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
    database_url: str = overrides.get("database_url") or _env("CASESVC_DATABASE_URL") or default_db
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
    settings = Settings(
        env=env,
        database_url=database_url,
        secret_key=secret,
        token_ttl=_int("CASESVC_TOKEN_TTL", 900),
        refresh_ttl=_int("CASESVC_REFRESH_TTL", 8 * 3600),
        metrics_token=_env("CASESVC_METRICS_TOKEN"),
        allow_synthetic_ids=_bool("CASESVC_ALLOW_SYNTHETIC_IDS", env != "production"),
        password_hash_profile="fast" if env == "test" else "default",
        instance_path=instance_path,
        audit_seal_interval=_float("CASESVC_AUDIT_SEAL_INTERVAL", 0.5),
        audit_signing_key=_env("CASESVC_AUDIT_SIGNING_KEY"),
        retention_days=_int("CASESVC_RETENTION_DAYS", 1825),
        trusted_proxies=_int("CASESVC_TRUSTED_PROXIES", 0),
        statistics_min_cell=_positive("CASESVC_STATISTICS_MIN_CELL", _int("CASESVC_STATISTICS_MIN_CELL", 5)),
        log_format=_log_format(env),
    )
    settings = replace(settings, **_identity_settings(env))
    settings = replace(settings, **_reminder_settings())
    settings = replace(settings, **_database_settings())
    settings = replace(settings, **_web_settings(env))
    settings = replace(settings, **_privacy_settings())
    # any other setting may be given directly (tests, embedding)
    extra = {k: v for k, v in overrides.items() if k not in ("env", "database_url", "secret_key")}
    unknown = set(extra) - {f.name for f in fields(Settings)}
    if unknown:
        raise ConfigError("unknown settings: " + ", ".join(sorted(unknown)))
    return _check_web_settings(_check_identity_settings(replace(settings, **extra)))


LOG_FORMATS = ("json", "text")


def _log_format(env: str) -> str:
    """JSON lines in production (for the log collector), text elsewhere (for a person)."""
    value = _env("CASESVC_LOG_FORMAT", "json" if env == "production" else "text")
    if value not in LOG_FORMATS:
        raise ConfigError(f"CASESVC_LOG_FORMAT must be json or text, got {value!r}")
    return value


OIDC_SETTINGS = ("CASESVC_OIDC_ISSUER", "CASESVC_OIDC_AUDIENCE", "CASESVC_OIDC_JWKS_URL")


def _identity_settings(env: str) -> dict:
    previous = _env("CASESVC_SECRET_KEY_PREVIOUS", "") or ""
    return {
        "secret_keys_previous": tuple(k for k in previous.replace(",", " ").split() if k),
        # Flask's debug mode (the interactive debugger runs code for whoever reaches it);
        # CASESVC_DEBUG only makes the CLI show tracebacks and is no such thing
        "debug": _bool("FLASK_DEBUG", False),
        "oidc_issuer": _env("CASESVC_OIDC_ISSUER"),
        "oidc_audience": _env("CASESVC_OIDC_AUDIENCE"),
        "oidc_jwks_url": _env("CASESVC_OIDC_JWKS_URL"),
        "oidc_role_claim": _env("CASESVC_OIDC_ROLE_CLAIM", "casesvc_role"),
        "oidc_agency_claim": _env("CASESVC_OIDC_AGENCY_CLAIM", "casesvc_agency"),
        "oidc_scope_claim": _env("CASESVC_OIDC_SCOPE_CLAIM", "scope"),
        "oidc_leeway": _int("CASESVC_OIDC_LEEWAY", 30),
        "oidc_jwks_timeout": _float("CASESVC_OIDC_JWKS_TIMEOUT", 5.0),
        "oidc_jwks_cache_seconds": _int("CASESVC_OIDC_JWKS_CACHE_SECONDS", 3600),
        "oidc_jwks_min_refresh_seconds": _int("CASESVC_OIDC_JWKS_MIN_REFRESH_SECONDS", 60),
        # off in the test environment unless asked for: the suite logs in from one address all day
        "ratelimit_enabled": _bool("CASESVC_RATELIMIT_ENABLED", env != "test"),
        # the service's own database: counts shared by every worker and host (README: rate limits)
        "ratelimit_storage_uri": _env("CASESVC_RATELIMIT_STORAGE_URI", "casesvc-db://"),
        "ratelimit_key_prefix": _env("CASESVC_RATELIMIT_KEY_PREFIX", "casesvc"),
        "ratelimit_login_per_ip": _env("CASESVC_RATELIMIT_LOGIN_PER_IP", "30/minute"),
        "ratelimit_login_per_username": _env("CASESVC_RATELIMIT_LOGIN_PER_USERNAME", "10/minute"),
    }


def _check_identity_settings(settings: Settings) -> Settings:
    """Refuse what cannot work, and in production what is unsafe; the message names the setting."""
    from limits import parse_many

    production = settings.env == "production"
    if production and settings.debug:
        raise ConfigError("FLASK_DEBUG must be off when CASESVC_ENV=production (debug mode is on)")
    if production and any(len(k) < MIN_SECRET_LENGTH for k in settings.secret_keys_previous):
        raise ConfigError(f"every key in CASESVC_SECRET_KEY_PREVIOUS must be at least {MIN_SECRET_LENGTH} characters")
    given = dict(
        zip(OIDC_SETTINGS, (settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url), strict=True)
    )
    missing = [name for name, value in given.items() if not value]
    if missing and len(missing) < len(OIDC_SETTINGS):
        raise ConfigError(
            f"{', '.join(missing)} must be set too: an external identity provider needs {', '.join(OIDC_SETTINGS)}"
        )
    jwks = settings.oidc_jwks_url or ""
    if jwks and not jwks.startswith(("https://", "http://")):
        raise ConfigError("CASESVC_OIDC_JWKS_URL must be an http(s) URL")
    if production and jwks and not jwks.startswith("https://"):
        raise ConfigError("CASESVC_OIDC_JWKS_URL must use https when CASESVC_ENV=production")
    for name, value in (
        ("CASESVC_RATELIMIT_LOGIN_PER_IP", settings.ratelimit_login_per_ip),
        ("CASESVC_RATELIMIT_LOGIN_PER_USERNAME", settings.ratelimit_login_per_username),
    ):
        try:
            if not parse_many(value):
                raise ValueError(value)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a rate such as '10/minute', got {value!r}") from exc
    if settings.ratelimit_storage_uri != "casesvc-db://" and not settings.ratelimit_storage_uri.startswith(
        ("memory://", "redis://", "rediss://", "redis+sentinel://", "redis+cluster://", "memcached://")
    ):
        raise ConfigError("CASESVC_RATELIMIT_STORAGE_URI must be casesvc-db://, memory:// or a redis:// URL")
    return settings


def _positive(name: str, value):
    if value <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {value}")
    return value


def _reminder_settings() -> dict:
    """Day counts of the reminder rules and the webhook delivery policy (README: Reminders)."""
    return {
        "reminder_reaction_ending_days": _positive(
            "CASESVC_REMINDER_REACTION_ENDING_DAYS", _int("CASESVC_REMINDER_REACTION_ENDING_DAYS", 14)
        ),
        "reminder_consent_expiring_days": _positive(
            "CASESVC_REMINDER_CONSENT_EXPIRING_DAYS", _int("CASESVC_REMINDER_CONSENT_EXPIRING_DAYS", 30)
        ),
        "reminder_no_contact_days": _positive(
            "CASESVC_REMINDER_NO_CONTACT_DAYS", _int("CASESVC_REMINDER_NO_CONTACT_DAYS", 30)
        ),
        "reminder_conversation_days": _positive(
            "CASESVC_REMINDER_CONVERSATION_DAYS", _int("CASESVC_REMINDER_CONVERSATION_DAYS", 1)
        ),
        "reminder_plan_review_months": _positive(
            "CASESVC_REMINDER_PLAN_REVIEW_MONTHS", _int("CASESVC_REMINDER_PLAN_REVIEW_MONTHS", 3)
        ),
        "reminder_escalation_days": _positive(
            "CASESVC_REMINDER_ESCALATION_DAYS", _int("CASESVC_REMINDER_ESCALATION_DAYS", 3)
        ),
        "webhook_timeout": _positive("CASESVC_WEBHOOK_TIMEOUT", _float("CASESVC_WEBHOOK_TIMEOUT", 5.0)),
        "webhook_backoff_seconds": _positive(
            "CASESVC_WEBHOOK_BACKOFF_SECONDS", _int("CASESVC_WEBHOOK_BACKOFF_SECONDS", 60)
        ),
        "webhook_backoff_max_seconds": _positive(
            "CASESVC_WEBHOOK_BACKOFF_MAX_SECONDS", _int("CASESVC_WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600)
        ),
        "webhook_max_attempts": _positive("CASESVC_WEBHOOK_MAX_ATTEMPTS", _int("CASESVC_WEBHOOK_MAX_ATTEMPTS", 8)),
        "webhook_lease_seconds": _positive("CASESVC_WEBHOOK_LEASE_SECONDS", _int("CASESVC_WEBHOOK_LEASE_SECONDS", 300)),
        "webhook_concurrency": _positive("CASESVC_WEBHOOK_CONCURRENCY", _int("CASESVC_WEBHOOK_CONCURRENCY", 8)),
    }


def _not_negative(name: str, value):
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _database_settings() -> dict:
    """How long anything may wait on the database, the connection pool, and gunicorn's shutdown
    and keep-alive (README "Operations": waits, connection budget). 0 turns a timeout off."""

    def seconds(name: str, default: float, kind=_float):
        return _not_negative(name, kind(name, default))

    return {
        "db_pool_size": _positive("CASESVC_DB_POOL_SIZE", _int("CASESVC_DB_POOL_SIZE", 5)),
        "db_max_overflow": seconds("CASESVC_DB_MAX_OVERFLOW", 5, _int),
        "db_pool_timeout": _positive("CASESVC_DB_POOL_TIMEOUT", _float("CASESVC_DB_POOL_TIMEOUT", 5.0)),
        "db_pool_recycle": _positive("CASESVC_DB_POOL_RECYCLE", _int("CASESVC_DB_POOL_RECYCLE", 1800)),
        "db_ping_after_idle": seconds("CASESVC_DB_PING_AFTER_IDLE", 1.0),
        "db_connect_timeout": _positive("CASESVC_DB_CONNECT_TIMEOUT", _int("CASESVC_DB_CONNECT_TIMEOUT", 5)),
        "db_statement_timeout": seconds("CASESVC_DB_STATEMENT_TIMEOUT", 30.0),
        "db_idle_in_transaction_timeout": seconds("CASESVC_DB_IDLE_IN_TRANSACTION_TIMEOUT", 60.0),
        "readyz_timeout": _positive("CASESVC_READYZ_TIMEOUT", _float("CASESVC_READYZ_TIMEOUT", 2.0)),
        "retry_after": _positive("CASESVC_RETRY_AFTER", _int("CASESVC_RETRY_AFTER", 5)),
        "serve_graceful_timeout": seconds("CASESVC_GRACEFUL_TIMEOUT", 30, _int),
        "serve_keepalive": seconds("CASESVC_KEEPALIVE", 5, _int),
        "serve_switch_interval_ms": _positive("CASESVC_SWITCH_INTERVAL_MS", _float("CASESVC_SWITCH_INTERVAL_MS", 1.0)),
    }


def _origin(name: str, value: str) -> str:
    """An origin or base address as the browser writes it: scheme, host, port, no trailing slash."""
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or any(c in value for c in " *?#"):
        raise ConfigError(f"{name} must hold http(s) addresses such as https://casesvc.example, got {value!r}")
    return value


def _web_settings(env: str) -> dict:
    """What browsers and calendar programs see (README: Security, hardening): the origins allowed
    to call the API from a page (CORS; none by default), and the service's public base address,
    from which the calendar feed's address is built (never from the request's Host header)."""
    origins = tuple(
        _origin("CASESVC_CORS_ORIGINS", o) for o in (_env("CASESVC_CORS_ORIGINS", "") or "").split(",") if o.strip()
    )
    public_url = _env("CASESVC_PUBLIC_URL")
    if public_url:
        public_url = _origin("CASESVC_PUBLIC_URL", public_url)
    return {"cors_origins": origins, "public_url": public_url}


def _check_web_settings(settings: Settings) -> Settings:
    if settings.env == "production":
        if not settings.public_url:
            raise ConfigError(
                "CASESVC_PUBLIC_URL is required when CASESVC_ENV=production "
                "(the address the service is reached at, e.g. https://casesvc.kommune.no)"
            )
        if not settings.public_url.startswith("https://"):
            raise ConfigError("CASESVC_PUBLIC_URL must use https when CASESVC_ENV=production")
    return settings


def off_hours(value: str) -> tuple[int, int] | None:
    """`22-06` -> (22, 6): the Oslo hours from the first up to (not including) the second,
    across midnight when the first is later. Empty: None (no off-hours finding)."""
    value = value.strip()
    if not value:
        return None
    start, sep, end = value.partition("-")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        raise ValueError(value)
    hours = int(start), int(end)
    if not all(0 <= h <= 23 for h in hours) or hours[0] == hours[1]:
        raise ValueError(value)
    return hours


def _privacy_settings() -> dict:
    """Emergency access and the access-log review (README: Privacy duties)."""
    window = (
        _env("CASESVC_REVIEW_OFF_HOURS") or "22-06"
        if "CASESVC_REVIEW_OFF_HOURS" not in os.environ
        else os.environ["CASESVC_REVIEW_OFF_HOURS"]
    )
    try:
        off_hours(window)
    except ValueError as exc:
        raise ConfigError(
            f"CASESVC_REVIEW_OFF_HOURS must be two Oslo hours such as '22-06', or empty, got {window!r}"
        ) from exc
    return {
        "emergency_access_hours": _positive(
            "CASESVC_EMERGENCY_ACCESS_HOURS", _int("CASESVC_EMERGENCY_ACCESS_HOURS", 4)
        ),
        "review_bulk_reads": _positive("CASESVC_REVIEW_BULK_READS", _int("CASESVC_REVIEW_BULK_READS", 50)),
        "review_off_hours": window,
        "review_probes": _positive("CASESVC_REVIEW_PROBES", _int("CASESVC_REVIEW_PROBES", 20)),
    }
