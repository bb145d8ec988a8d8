"""casesvc: case management for alternative reactions to youth drug cases."""

from __future__ import annotations

import inspect
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.sessions import SessionInterface

from casesvc.common.jsonio import JSONProvider
from casesvc.config import load_settings
from casesvc.logging_setup import configure_logging
from casesvc.openapi_doc import SECURITY_SCHEMES, servers
from casesvc.ops import database
from casesvc.version import __version__

API_TITLE = "casesvc"
API_VERSION = __version__  # the package's version (casesvc/version.py)


def _default_instance_path() -> Path:
    return Path.cwd() / "instance"


class App(Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask asks `inspect.iscoroutinefunction` of every hook and view on every request
    (`ensure_sync`): a dozen times per request here, and in a profile of a read 3 % of its CPU.
    casesvc has no coroutine views or hooks, but the answer is kept per function, whatever it
    is, so one added later still runs as Flask would run it."""

    _SYNC_CACHE_SIZE = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):
        # a bound method is made anew on each access: kept by its function (same answer)
        key = getattr(func, "__func__", func)
        is_coroutine = self._sync.get(key)
        if is_coroutine is None:
            if len(self._sync) >= self._SYNC_CACHE_SIZE:
                self._sync.clear()
            is_coroutine = self._sync[key] = inspect.iscoroutinefunction(func)
        return self.async_to_sync(func) if is_coroutine else func


def create_app(overrides: dict | None = None, instance_path: str | Path | None = None) -> Flask:
    """Config, extensions, blueprints, error handlers — nothing else."""
    instance = Path(instance_path) if instance_path else _default_instance_path()
    settings = load_settings(instance, overrides)
    app = App(__name__, instance_path=str(instance.resolve()), instance_relative_config=False)
    app.config.update(
        CASESVC=settings,
        TESTING=settings.env == "test",
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=database.engine_options(settings),
        MAX_CONTENT_LENGTH=1024 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        JWT_SECRET_KEY=settings.secret_key,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.token_ttl),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=settings.refresh_ttl),
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Case management for alternative reactions to youth drug cases. "
                "See README.md for the access model."
            },
            "servers": servers(settings.public_url),
            "components": {"securitySchemes": SECURITY_SCHEMES},
            "security": [{"bearerAuth": []}],
        },
    )
    if settings.trusted_proxies > 0:
        # behind N reverse proxies: the client address (audit, rate limits) comes from X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to add middleware
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.json = JSONProvider(app)  # orjson, fields in schema order; JSON nested too deeply is malformed
    app.session_interface = _NoCookieSessions()  # bearer tokens only: no session cookie to read
    configure_logging(settings.log_format)  # README: Logs
    from casesvc import i18n

    i18n.init_app(app)  # problems in the caller's language (README "The API at a glance")

    from casesvc import models  # noqa: F401  (every table registered before migrations run)
    from casesvc.audit.sealing import register_audit_hooks
    from casesvc.auth.jwt_errors import register_jwt_errors
    from casesvc.common.connection import register_late_transactions
    from casesvc.errors import register_database_error_handlers, register_error_handlers
    from casesvc.extensions import api, db, jwt, migrate
    from casesvc.migrations_runner import migrations_directory
    from casesvc.requests import register_request_hooks

    db.init_app(app)
    with app.app_context():
        database.install(app, db.engine)  # bounded waits (the engine is made, no connection yet)
        register_late_transactions(db.engine)  # a write's transaction begun late (common/connection.py)
    app.extensions["casesvc.readiness"] = database.Readiness(app)
    migrate.init_app(app, db, directory=migrations_directory())
    jwt.init_app(app)
    register_jwt_errors(jwt)
    api.init_app(app)
    register_error_handlers(app, api)
    register_database_error_handlers(app, db)
    register_request_hooks(app)
    register_audit_hooks(app)
    from casesvc.reminders import handlers as reminder_handlers

    reminder_handlers.connect()
    from casesvc.statistics import handlers as statistics_handlers

    statistics_handlers.connect()

    from casesvc.agencies.directory import blp as agency_directory_blp
    from casesvc.agencies.views import agencies_blp, users_blp
    from casesvc.audit.review_views import blp as review_blp
    from casesvc.audit.views import blp as audit_blp
    from casesvc.auth.client_views import blp as clients_blp
    from casesvc.auth.views import blp as auth_blp
    from casesvc.cases.views import blp as cases_blp
    from casesvc.consents.views import blp as consents_blp
    from casesvc.continuity.views import blp as continuity_blp
    from casesvc.emergency.views import blp as emergency_blp
    from casesvc.followups.views import blp as followups_blp
    from casesvc.ops.views import blp as ops_blp, register_docs
    from casesvc.reactions.views import blp as reactions_blp
    from casesvc.record.views import blp as record_blp
    from casesvc.reminders.views import blp as reminders_blp, hooks_blp as webhooks_blp
    from casesvc.statistics.views import blp as statistics_blp
    from casesvc.youths.views import blp as youths_blp

    for blueprint in (
        auth_blp,
        audit_blp,
        youths_blp,
        cases_blp,
        reactions_blp,
        followups_blp,
        consents_blp,
        reminders_blp,
        webhooks_blp,
        statistics_blp,
        ops_blp,
        emergency_blp,
        record_blp,
        review_blp,
    ):
        api.register_blueprint(blueprint)
    api.register_blueprint(clients_blp)
    api.register_blueprint(agencies_blp)
    api.register_blueprint(agency_directory_blp)
    api.register_blueprint(users_blp)
    api.register_blueprint(continuity_blp)
    register_docs(app)
    from casesvc.ops.cors import init_cors

    init_cors(app)

    from casesvc.auth.limits import init_limits

    init_limits(app)  # wraps the token endpoint: after the blueprints
    return app


class _NoCookieSessions(SessionInterface):
    """casesvc keeps no Flask session: every request gets the null session (writing to it
    fails loudly) without the signed-cookie machinery being set up for it."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None
