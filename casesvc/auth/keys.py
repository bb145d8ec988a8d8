"""The service's own signing keys (HS256) and their rotation.

Every token the service issues names its key in the `kid` header. Tokens are verified with the
key their `kid` names, looked up among CASESVC_SECRET_KEY (the one that signs) and
CASESVC_SECRET_KEY_PREVIOUS (keys that only verify): set a new key, keep the old one as
previous until the longest-lived token signed with it has expired (CASESVC_REFRESH_TTL), then
drop it. A token naming no known key is checked against the current key, and so refused.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from flask_jwt_extended import JWTManager


def kid_for(key: str) -> str:
    """A public name for a key: 16 hex digits of a hash, which tells nothing about the key."""
    return hashlib.sha256(b"casesvc-signing-key:" + key.encode()).hexdigest()[:16]


def _keyring() -> dict[str, str]:
    settings = current_app.config["CASESVC"]
    ring = {kid_for(k): k for k in settings.secret_keys_previous}
    ring[kid_for(settings.secret_key)] = settings.secret_key
    return ring


def register_signing_keys(jwt: JWTManager) -> None:
    @jwt.additional_headers_loader
    def _headers(identity) -> dict:
        return {"kid": kid_for(current_app.config["CASESVC"].secret_key)}

    @jwt.decode_key_loader
    def _decode_key(header: dict, payload: dict) -> str:
        kid = header.get("kid")
        current = current_app.config["CASESVC"].secret_key
        if not isinstance(kid, str):
            return current
        return _keyring().get(kid, current)
