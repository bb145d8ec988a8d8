"""Secrets the service must read back — a webhook's signing secret — are kept encrypted at rest,
so a copy of the database (a backup, a dump) does not hand them out.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived with HKDF from
CASESVC_SECRET_KEY. Keys in CASESVC_SECRET_KEY_PREVIOUS still decrypt: after a key rotation the
stored secrets stay readable while the previous key is kept (set each webhook again before
dropping it). A value without the prefix was stored before encryption and is read as it is.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

PREFIX = "enc1:"
_INFO = b"casesvc: secrets at rest"


class UnreadableSecret(ValueError):
    """Encrypted under a key the service no longer has, or altered."""


def _fernet_key(secret_key: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(derived)


def _keys() -> MultiFernet:
    settings = current_app.config["CASESVC"]
    return MultiFernet([Fernet(_fernet_key(k)) for k in (settings.secret_key, *settings.secret_keys_previous)])


def encrypt_at_rest(plain: str) -> str:
    return PREFIX + _keys().encrypt(plain.encode()).decode()


def decrypt_at_rest(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _keys().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise UnreadableSecret("encrypted under a key this service no longer has, or altered") from exc
