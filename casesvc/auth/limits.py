"""Brute-force limits on the token endpoint (Flask-Limiter).

Failed attempts — refused credentials: `invalid_grant` (wrong password, unknown user, bad
refresh token) and `invalid_client` — are counted per client address and per username (or
client_id); once a limit is reached every further attempt is 429 with `Retry-After` until the
window has moved on, a correct password included. Successful logins cost nothing, and neither
do malformed requests or a scope the role lacks (`invalid_request`, `invalid_scope`,
`unsupported_grant_type`): they guess at no password.

The per-username count is taken before the password is checked, in one atomic step with the
comparison against the limit, and given back when the attempt turns out not to count: attempts
fired at the same moment cannot get past the limit together. The per-address count is taken
after the answer, as Flask-Limiter's `deduct_when` does, so that logins succeeding at the same
moment behind one address (a school's or an office's) never hold each other up.

Counters live in CASESVC_RATELIMIT_STORAGE_URI. The default, `casesvc-db://`, keeps them in the
service's own database (table rate_limit_counters, `DatabaseStorage` below), shared by every
worker and host with no other service to run; `redis://host:6379` shares them through Redis;
`memory://` counts in each worker process for itself. If the database or Redis cannot be
reached the limits fall back to in-process counting rather than refusing logins. Keys are
prefixed with CASESVC_RATELIMIT_KEY_PREFIX.

Behind a reverse proxy the client address is the proxy's unless the proxy's
`X-Forwarded-For` is trusted (werkzeug's ProxyFix); without that, the per-address limit
counts the proxy.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time

from flask import Flask, current_app, jsonify, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits.storage import Storage
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from casesvc.audit.service import note
from casesvc.auth.models import ApiClient, RateLimitCounter, User
from casesvc.auth.tokens import OAuthError
from casesvc.auth.views import client_credentials, token_params
from casesvc.extensions import db

log = logging.getLogger(__name__)

TOKEN_ENDPOINT = "auth.token"  # noqa: S105 (an endpoint's name, not a secret)
NAME_SCOPE = "login-name"
DATABASE_STORAGE_URI = "casesvc-db://"
# what a wrong guess at a password or client secret is answered; nothing else counts
COUNTED_ERRORS = frozenset({"invalid_grant", "invalid_client"})


def _counts(response) -> bool:
    if response.status_code not in (400, 401):
        return False
    body = response.get_json(silent=True)
    return isinstance(body, dict) and body.get("error") in COUNTED_ERRORS


class DatabaseStorage(Storage):
    """A `limits` storage in the service's own database (SQLite or PostgreSQL), for the
    fixed-window strategy: one row per key holds the count and the end of its window.

    Every change is one statement in a short transaction of its own (`engine.begin()`), so a
    counted attempt stays counted when the request's own transaction is rolled back. The
    count is raised by an upsert (INSERT .. ON CONFLICT DO UPDATE, which starts a new window
    when the old one has ended): concurrent workers never lose an increment. Expired rows
    count as empty and are deleted at most once a minute per process."""

    STORAGE_SCHEME = ["casesvc-db"]  # noqa: RUF012 (limits' Storage declares it a plain list attribute)
    CLEANUP_INTERVAL = 60
    MAX_KEY_LENGTH = 255

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_cleanup = 0.0

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    @staticmethod
    def _engine():
        """The current app's database (each app, like each worker, has its own pool)."""
        return db.engine

    @classmethod
    def _key(cls, key: str) -> str:
        """A key longer than the column (a long CASESVC_RATELIMIT_KEY_PREFIX) is stored hashed."""
        if len(key) <= cls.MAX_KEY_LENGTH:
            return key
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        if amount < 0:
            return self._give_back(key, -amount)
        table = RateLimitCounter.__table__
        engine = self._engine()
        now = time.time()
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        ended = table.c.expires_at <= now
        statement = (
            insert(table)
            .values(key=self._key(key), hits=amount, expires_at=now + expiry)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "hits": case((ended, amount), else_=table.c.hits + amount),
                    "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
                },
            )
            .returning(table.c.hits)
        )
        with engine.begin() as conn:
            hits = conn.scalar(statement)
        if now >= self._next_cleanup:
            self._next_cleanup = now + self.CLEANUP_INTERVAL
            self._delete_expired(engine, now)
        return hits

    def _give_back(self, key: str, amount: int) -> int:
        """Lower a live window's count, never below zero; an ended window is left alone (a give
        back must not open a new window in credit)."""
        table = RateLimitCounter.__table__
        lowered = case((table.c.hits > amount, table.c.hits - amount), else_=0)
        with self._engine().begin() as conn:
            hits = conn.scalar(
                table.update()
                .where(table.c.key == self._key(key), table.c.expires_at > time.time())
                .values(hits=lowered)
                .returning(table.c.hits)
            )
        return hits or 0

    @staticmethod
    def _delete_expired(engine, now: float) -> None:
        # its own transaction, after the count's: it holds no counter's row lock while it deletes
        table = RateLimitCounter.__table__
        try:
            with engine.begin() as conn:
                conn.execute(delete(table).where(table.c.expires_at <= now))
        except SQLAlchemyError as exc:  # the next cleanup tries again; expired rows count as empty meanwhile
            log.warning("expired rate limit counters not deleted: %s", exc.__class__.__name__)

    def _live(self, column, key: str):
        table = RateLimitCounter.__table__
        with self._engine().connect() as conn:
            return conn.scalar(select(column).where(table.c.key == self._key(key), table.c.expires_at > time.time()))

    def get(self, key: str) -> int:
        return self._live(RateLimitCounter.__table__.c.hits, key) or 0

    def get_expiry(self, key: str) -> float:
        expires_at = self._live(RateLimitCounter.__table__.c.expires_at, key)
        return expires_at if expires_at is not None else time.time()

    def clear(self, key: str) -> None:
        table = RateLimitCounter.__table__
        with self._engine().begin() as conn:
            conn.execute(delete(table).where(table.c.key == self._key(key)))

    def reset(self) -> int | None:
        with self._engine().begin() as conn:
            return conn.execute(delete(RateLimitCounter.__table__)).rowcount

    def check(self) -> bool:
        """Flask-Limiter asks this, while it counts in memory, to learn when to come back."""
        try:
            with self._engine().connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False


def _login_name() -> str | None:
    """Who the attempt is for: the username (password grant) or the client_id."""
    try:
        params = token_params()
    except OAuthError:
        return None
    grant = params.get("grant_type")
    if grant == "password":
        name = "user:" + (params.get("username") or "").casefold()
    elif grant == "client_credentials":
        name = "client:" + (client_credentials(params)[0] or "")
    else:
        return None
    return hashlib.sha256(name.encode()).hexdigest()[:32]  # bounded, and no usernames in Redis


def _address() -> str:
    return "ip:" + (get_remote_address() or "unknown")


def _note_who() -> None:
    """A refused attempt is audited like a failed one: with the user or client when known."""
    try:
        params = token_params()
    except OAuthError:
        return
    who: User | ApiClient | None = None
    if params.get("grant_type") == "password" and params.get("username"):
        who = db.session.scalar(select(User).where(User.username == params["username"]))
    elif params.get("grant_type") == "client_credentials":
        client_id = client_credentials(params)[0]
        who = db.session.get(ApiClient, client_id) if client_id else None
    if who is not None:
        note(actor=who.id, actor_role=who.role, actor_agency=who.agency_code)


def _give_back_name_count(limiter: Limiter) -> None:
    """The attempt guessed at no password (it succeeded, was malformed, or was refused before
    its check): the per-username count it took goes back. A count that cannot be given back is
    left standing, which errs on the side of the limit."""
    for request_limit in limiter.current_limits:
        # the limit's scope, the last of its key's parts, reads "<endpoint>:login-name"
        if request_limit.request_args[-1].rpartition(":")[2] != NAME_SCOPE:
            continue
        try:
            storage = limiter.limiter.storage
            if storage.get(request_limit.key) > 0:
                storage.incr(request_limit.key, request_limit.limit.get_expiry(), amount=-1)
        except Exception as exc:  # noqa: BLE001 (whatever the storage raises; the login's answer stands)
            log.warning("a login count was not given back: %s", exc.__class__.__name__)


def _hooks_for_the_token_endpoint_only(app, limiter: Limiter) -> None:
    """Flask-Limiter's after-request hook (the deductions of `deduct_when`; headers are off) and
    its teardown (the per-request state of its checks) do something only where a limit is
    checked, the token endpoint: on every other request they would cost time for nothing, so they
    run there alone."""

    def token_endpoint_only(hook):
        @functools.wraps(hook)
        def hook_of_the_token_endpoint(arg):
            return hook(arg) if request.endpoint == TOKEN_ENDPOINT else arg

        return hook_of_the_token_endpoint

    def is_limiters(hook) -> bool:
        bound = getattr(hook, "args", None) or (getattr(hook, "__self__", None),)
        return bound[0] is limiter

    for registry in (app.after_request_funcs, app.teardown_request_funcs):
        funcs = registry.get(None, [])
        registry[None] = [token_endpoint_only(hook) if is_limiters(hook) else hook for hook in funcs]


def _too_many(limiter: Limiter):
    _note_who()
    limit = limiter.current_limit
    reset_at = limit.reset_at if limit is not None else time.time() + 60
    retry_after = max(1, math.ceil(reset_at - time.time()))
    response = jsonify(
        {"error": "slow_down", "error_description": f"Too many failed attempts; try again in {retry_after} seconds."}
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_limits(app: Flask) -> Limiter:
    """One Limiter per app (its storage is per instance); wraps the token endpoint's view."""
    settings = app.config["CASESVC"]
    # Retry-After is set by _too_many alone (Flask-Limiter's own headers would rewrite it)
    app.config.update(RATELIMIT_ENABLED=settings.ratelimit_enabled, RATELIMIT_HEADERS_ENABLED=False)
    # Fixed windows in every storage: a count taken before the password check is given back
    # when the attempt does not count, which a counter allows and a moving window's list of
    # instants does not (the database keeps one row per key, raised by one atomic upsert).
    # swallow_errors: a storage that fails while counting an attempt is logged, not a 500
    limiter = Limiter(
        key_func=_address,
        storage_uri=settings.ratelimit_storage_uri,
        key_prefix=settings.ratelimit_key_prefix,
        strategy="fixed-window",
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        headers_enabled=False,
    )
    limiter.init_app(app)
    # Only the token endpoint is limited, by its own decorators below (they check inside the
    # view). The before-request check Flask-Limiter adds for default limits would find none on
    # any request, at a real cost per request: it is taken out.
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)
    _hooks_for_the_token_endpoint_only(app, limiter)
    app.extensions["casesvc.limiter"] = limiter
    view = app.view_functions[TOKEN_ENDPOINT]
    # per username: counted before the password check (no deduct_when), given back below
    per_username = limiter.limit(
        lambda: current_app.config["CASESVC"].ratelimit_login_per_username,
        key_func=lambda: _login_name() or "",
        exempt_when=lambda: _login_name() is None,
        scope=NAME_SCOPE,
    )
    per_address = limiter.limit(
        lambda: current_app.config["CASESVC"].ratelimit_login_per_ip,
        key_func=_address,
        deduct_when=_counts,
        scope="login-address",
    )
    limited = per_address(per_username(view))

    def token_view(*args, **kwargs):
        try:
            response = current_app.make_response(limited(*args, **kwargs))  # type: ignore[arg-type]  # a sync view
        except RateLimitExceeded:
            _give_back_name_count(limiter)
            return _too_many(limiter)
        if not _counts(response):
            _give_back_name_count(limiter)
        return response

    token_view.__name__, token_view.__doc__ = view.__name__, view.__doc__
    app.view_functions[TOKEN_ENDPOINT] = token_view
    return limiter
