"""Secrets at rest (casesvc.common.crypto): encrypted under CASESVC_SECRET_KEY, still readable
under a previous key after rotation, refused when altered or when the key is gone."""

from __future__ import annotations

import pytest

from casesvc import create_app
from casesvc.common.crypto import PREFIX, UnreadableSecret, decrypt_at_rest, encrypt_at_rest

KEY_A = "a-first-signing-key-for-tests-0123456789abcdef"
KEY_B = "a-second-signing-key-for-tests-0123456789abcdef"
SECRET = "receiver-shared-secret-123"


def app_with(tmp_path, key, previous=()):
    return create_app(
        {
            "env": "test",
            "database_url": f"sqlite:///{tmp_path / 'crypto.sqlite3'}",
            "secret_key": key,
            "secret_keys_previous": tuple(previous),
        },
        instance_path=tmp_path,
    )


def test_a_secret_is_stored_encrypted_and_read_back(tmp_path):
    with app_with(tmp_path, KEY_A).app_context():
        stored, again = encrypt_at_rest(SECRET), encrypt_at_rest(SECRET)
        assert stored.startswith(PREFIX) and SECRET not in stored
        assert stored != again  # a fresh IV each time: equal secrets do not look equal
        assert decrypt_at_rest(stored) == decrypt_at_rest(again) == SECRET


def test_after_a_key_rotation_the_previous_key_still_reads(tmp_path):
    with app_with(tmp_path, KEY_A).app_context():
        stored = encrypt_at_rest(SECRET)
    with app_with(tmp_path, KEY_B, previous=[KEY_A]).app_context():
        assert decrypt_at_rest(stored) == SECRET
    with app_with(tmp_path, KEY_B).app_context():
        with pytest.raises(UnreadableSecret):
            decrypt_at_rest(stored)


def test_an_altered_value_is_refused(tmp_path):
    with app_with(tmp_path, KEY_A).app_context():
        stored = encrypt_at_rest(SECRET)
        flipped = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
        with pytest.raises(UnreadableSecret):
            decrypt_at_rest(flipped)


def test_a_value_stored_before_encryption_reads_as_it_is(tmp_path):
    with app_with(tmp_path, KEY_A).app_context():
        assert decrypt_at_rest(SECRET) == SECRET
