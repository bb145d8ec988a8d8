"""CORS for browser front-ends on other origins (README: Security, hardening).

`CASESVC_CORS_ORIGINS` is an allowlist (none by default: no CORS header is ever sent). The
preflight (`OPTIONS`) needs no token — browsers send none with it — and is answered for any
API path; an allowed origin may send the headers an authorised call needs and read the ones
the API answers with. No cookies: the API takes bearer tokens only, so no credentials mode."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

ALLOWED_HEADERS = ("Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-Id", "Accept")
EXPOSED_HEADERS = ("ETag", "Location", "Retry-After", "Idempotent-Replayed", "X-Request-Id", "WWW-Authenticate")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def init_cors(app: Flask) -> None:
    origins = list(app.config["CASESVC"].cors_origins)
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/v1/*": {"origins": origins}},
        methods=list(METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        supports_credentials=False,
        max_age=600,
        vary_header=True,
    )
