"""Crypto-shredding of personal fields on the topics: seal, open, and the JSON splicing.

A record on a topic cannot be edited, and the local broker (Tansu) neither compacts nor
expires, so erasure cannot reach a personal value once it is on a topic. Instead, ingest
publishes an employee's or an applicant's personal fields *sealed*: encrypted (AES-256-GCM)
under a key of that person's own, kept by ingest and served to the consumers
(``POST /v1/keys:lookup``). Erasure deletes the key; from then on every copy of those fields
on every topic (and in every dump of it) is ciphertext nobody can open.

On the topic, the CloudEvent ``data`` of a sealed record lacks the sealed fields and carries
one extra member instead::

    "sealed": {"kid": "k_<32 hex>", "alg": "A256GCM", "iv": "<base64url>", "ct": "<base64url>"}

``ct`` is the encryption of the JSON object of the sealed fields, in the same nesting as in
``data`` (e.g. ``{"display_name": "…", "notify": {"address": "…"}}``); the associated data is
the key id, so a sealed member moved under another key does not open. Opening merges the
object back into ``data`` (:func:`splice`), so what a consumer decodes is the event as sent.

AES-GCM is ``cryptography``'s (``AESGCM``), as for the LinkedIn tokens at rest
(services/ingest/tokens.py): a well-kept, audited implementation, not hand-written crypto.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALG = "A256GCM"
MEMBER = "sealed"
"""The name of the member of ``data`` that holds the sealed fields."""
KEY_BYTES = 32
_NONCE_BYTES = 12
_KID_PREFIX = "k_"


class SealError(ValueError):
    """A sealed member that is malformed or does not open with its key (tampered, or the
    wrong key): the record is poison, not erased."""


def new_key() -> tuple[str, bytes]:
    """A fresh key id (``k_`` + 32 random hex digits, no relation to the person) and key."""
    return _KID_PREFIX + secrets.token_hex(16), AESGCM.generate_key(bit_length=256)


def is_kid(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == len(_KID_PREFIX) + 32
        and value.startswith(_KID_PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(_KID_PREFIX) :])
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise SealError(f"sealed.{what} is not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError(f"sealed.{what} is not base64url") from None


def seal(kid: str, key: bytes, fields: Mapping[str, Any]) -> dict[str, str]:
    """The ``sealed`` member holding ``fields`` (a JSON object) under ``key``."""
    nonce = os.urandom(_NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, msgspec.json.encode(fields), kid.encode())
    return {"kid": kid, "alg": ALG, "iv": _b64(nonce), "ct": _b64(ct)}


def kid_of(sealed: object) -> str:
    """The key id a ``sealed`` member names; :class:`SealError` when there is none."""
    if not isinstance(sealed, Mapping) or not is_kid(sealed.get("kid")):
        raise SealError("sealed.kid is missing or malformed")
    return str(sealed["kid"])


def open_sealed(key: bytes, sealed: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a ``sealed`` member holds; :class:`SealError` if it does not open."""
    kid = kid_of(sealed)
    if sealed.get("alg") != ALG:
        raise SealError(f"sealed.alg is not {ALG}")
    nonce, ct = _unb64(sealed.get("iv"), "iv"), _unb64(sealed.get("ct"), "ct")
    if len(nonce) != _NONCE_BYTES or len(key) != KEY_BYTES:
        raise SealError("sealed.iv or the key has the wrong length")
    try:
        fields = msgspec.json.decode(AESGCM(key).decrypt(nonce, ct, kid.encode()))
    except InvalidTag:
        raise SealError("sealed does not open with the key of its kid") from None
    except msgspec.DecodeError:
        raise SealError("sealed holds no JSON") from None
    if not isinstance(fields, dict):
        raise SealError("sealed holds no JSON object")
    return fields


def splice(data: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``fields`` merged in (nested objects merged member by member): the
    inverse of taking sealed fields out of ``data``. Mutates and returns ``data``."""
    for name, value in fields.items():
        inner = data.get(name)
        if isinstance(value, Mapping) and isinstance(inner, dict):
            splice(inner, value)
        else:
            data[name] = value
    return data


def take(data: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """Remove the members at ``paths`` (each a path of member names) from ``data`` and return
    them in the same nesting (what :func:`seal` seals and :func:`splice` puts back). Members
    absent or null are left alone. Mutates ``data``."""
    taken: dict[str, Any] = {}
    for path in paths:
        parent: Any = data
        for name in path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(path[-1]) is None:
            continue
        value = parent.pop(path[-1])
        target = taken
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = value
    return taken
