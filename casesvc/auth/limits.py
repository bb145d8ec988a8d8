"""Brute-force limits on the token endpoint (Flask-Limiter).

Failed attempts (answers 400 or 401) are counted per client address and per username (or
client_id); once a limit is reached every further attempt is 429 with `Retry-After` until the
window has moved on, a correct password included. Successful logins cost nothing.

Counters live in CASESVC_RATELIMIT_STORAGE_URI: in-process memory by default (each gunicorn
worker counts for itself), or Redis (`redis://host:6379`), shared by every worker and host.
If Redis cannot be reached the limits fall back to in-process counting rather than refusing
logins. Keys are prefixed with CASESVC_RATELIMIT_KEY_PREFIX.

Behind a reverse proxy the client address is the proxy's unless the proxy's
`X-Forwarded-For` is trusted (werkzeug's ProxyFix); without that, the per-address limit
counts the proxy.
"""
from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, current_app, jsonify
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

TOKEN_ENDPOINT = "auth.token"


def _counts(response) -> bool:
    return response.status_code in (400, 401)


def _login_name() -> str | None:
    """Who the attempt is for: the username (password grant) or the client_id."""
    from casesvc.auth.tokens import OAuthError
    from casesvc.auth.views import client_credentials, token_params

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
    from sqlalchemy import select

    from casesvc.audit.service import note
    from casesvc.auth.models import ApiClient, User
    from casesvc.auth.tokens import OAuthError
    from casesvc.auth.views import client_credentials, token_params
    from casesvc.extensions import db

    try:
        params = token_params()
    except OAuthError:
        return
    who = None
    if params.get("grant_type") == "password" and params.get("username"):
        who = db.session.scalar(select(User).where(User.username == params["username"]))
    elif params.get("grant_type") == "client_credentials":
        client_id = client_credentials(params)[0]
        who = db.session.get(ApiClient, client_id) if client_id else None
    if who is not None:
        note(actor=who.id, actor_role=who.role, actor_agency=who.agency_code)


def _too_many(limiter: Limiter):
    _note_who()
    limit = limiter.current_limit
    reset_at = limit.reset_at if limit is not None else time.time() + 60
    retry_after = max(1, math.ceil(reset_at - time.time()))
    response = jsonify({"error": "slow_down",
                        "error_description": f"Too many failed attempts; try again in {retry_after} seconds."})
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_limits(app: Flask) -> Limiter:
    """One Limiter per app (its storage is per instance); wraps the token endpoint's view."""
    settings = app.config["CASESVC"]
    # Retry-After is set by _too_many alone (Flask-Limiter's own headers would rewrite it)
    app.config.update(RATELIMIT_ENABLED=settings.ratelimit_enabled, RATELIMIT_HEADERS_ENABLED=False)
    limiter = Limiter(key_func=_address, storage_uri=settings.ratelimit_storage_uri,
                      key_prefix=settings.ratelimit_key_prefix, strategy="moving-window",
                      in_memory_fallback_enabled=True, headers_enabled=False)
    limiter.init_app(app)
    # Only the token endpoint is limited, by its own decorators below (they check inside the
    # view). The before-request check Flask-Limiter adds for default limits would find none on
    # any request, at a real cost per request: it is taken out.
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)
    app.extensions["casesvc.limiter"] = limiter
    view = app.view_functions[TOKEN_ENDPOINT]
    per_username = limiter.limit(lambda: current_app.config["CASESVC"].ratelimit_login_per_username,
                                 key_func=lambda: _login_name() or "", exempt_when=lambda: _login_name() is None,
                                 deduct_when=_counts, scope="login-name")
    per_address = limiter.limit(lambda: current_app.config["CASESVC"].ratelimit_login_per_ip,
                                key_func=_address, deduct_when=_counts, scope="login-address")
    limited = per_address(per_username(view))

    def token_view(*args, **kwargs):
        try:
            return limited(*args, **kwargs)
        except RateLimitExceeded:
            return _too_many(limiter)

    token_view.__name__, token_view.__doc__ = view.__name__, view.__doc__
    app.view_functions[TOKEN_ENDPOINT] = token_view
    return limiter
