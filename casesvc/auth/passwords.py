"""Password hashing with argon2id (argon2-cffi). Tests use a cheap profile; the format is the
same, so a hash made under one profile verifies under the other."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

_HASHERS = {
    "default": PasswordHasher(),
    "fast": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}


# Verified against when a username is unknown, so a miss costs as long as a wrong password.
@functools.cache
def _dummy(profile: str) -> str:
    """Made on first use, not at import: a full-strength hash takes 64 MiB, which every CLI
    process would otherwise pay for at start-up."""
    return _HASHERS[profile].hash("not-a-real-password")


def _profile(profile: str | None) -> str:
    if profile:
        return profile
    try:
        return current_app.config["CASESVC"].password_hash_profile
    except RuntimeError:  # outside an app (CLI before app creation)
        return "default"


def hash_password(password: str, profile: str | None = None) -> str:
    return _HASHERS[_profile(profile)].hash(password)


def verify_password(password_hash: str | None, password: str, profile: str | None = None) -> bool:
    name = _profile(profile)
    try:
        return _HASHERS[name].verify(password_hash or _dummy(name), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
