"""Tokens at rest: AES-GCM with rotating keys, bound to their row and purpose."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.tokens import TokenCipher, TokenKeyError, parse_keys, status_of

A, B = os.urandom(32), os.urandom(32)


def test_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old = TokenCipher([A])
    sealed = old.encrypt("AQV-secret-token", "emp-1:access")
    assert b"AQV-secret-token" not in sealed
    rotated = TokenCipher([B, A])
    assert rotated.decrypt(sealed, "emp-1:access") == "AQV-secret-token"
    # New ciphertexts use the first key: the old key alone cannot read them.
    with pytest.raises(TokenKeyError):
        old.decrypt(rotated.encrypt("AQV-new", "emp-1:access"), "emp-1:access")
    # Once the old key is dropped, its ciphertexts are refused (not garbage).
    with pytest.raises(TokenKeyError):
        TokenCipher([B]).decrypt(sealed, "emp-1:access")


def test_a_ciphertext_moved_to_another_row_or_tampered_does_not_decrypt() -> None:
    cipher = TokenCipher([A])
    sealed = cipher.encrypt("AQV-secret-token", "emp-1:access")
    for context in ("emp-2:access", "emp-1:refresh"):
        with pytest.raises(TokenKeyError):
            cipher.decrypt(sealed, context)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(TokenKeyError):
        cipher.decrypt(flipped, "emp-1:access")
    # Two encryptions of one token differ (random nonce).
    assert cipher.encrypt("x", "c") != cipher.encrypt("x", "c")


def test_keys_are_32_bytes_of_base64() -> None:
    key = base64.urlsafe_b64encode(A).decode().rstrip("=")
    assert parse_keys([key]) == [A]
    for bad in ("not base64!", base64.urlsafe_b64encode(b"short").decode()):
        with pytest.raises(TokenKeyError):
            parse_keys([bad])


def test_status() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    week = timedelta(days=7)
    assert status_of(None, False, False, now, week) == "none"
    assert status_of(now + timedelta(days=30), True, False, now, week) == "revoked"
    assert status_of(now - timedelta(seconds=1), False, True, now, week) == "expired"
    assert status_of(now + timedelta(days=6), False, False, now, week) == "expiring"
    assert status_of(now + timedelta(days=6), False, True, now, week) == "connected"
    assert status_of(now + timedelta(days=30), False, False, now, week) == "connected"
