"""Signed, expiring tokens for links a person opens without an API key.

One format for every such link (report share links, CONTRACT §9; the employee's page,
CONTRACT §11): ``base64url(payload) "." base64url(HMAC-SHA256(secret, purpose ":" payload))``,
where the payload is a JSON object carrying the link's fields and its expiry ``exp`` (Unix
seconds). The ``purpose`` is part of what is signed, so a token made for one kind of link never
opens another even when the services share a secret. The first configured secret signs; every
configured secret verifies, so a secret is rotated by putting the new one first and dropping the
old one once its links have expired.

Verification is constant-time on bytes and never raises anything but :class:`TokenError`: a
token is URL path material an attacker controls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["PAGE", "TokenError", "claimed", "page_employee", "page_token", "sign", "verify"]

PAGE = "employee-page"
"""The purpose of the employee's page link (CONTRACT §11), signed by ingest and the notifier."""

_MAX_TOKEN = 2048


class TokenError(Exception):
    """A token that opens nothing. ``expired`` tells an expired but genuine token from a
    tampered one; ``payload`` is the genuine token's payload (for the page's language), else
    ``{}``."""

    def __init__(self, expired: bool, payload: dict[str, Any] | None = None) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired
        self.payload = payload or {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: str) -> bytes:
    message = f"{purpose}:{payload}".encode("ascii")
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest()).encode("ascii")


def sign(purpose: str, payload: dict[str, Any], expires_at: datetime, secret: str) -> str:
    """A token for ``payload`` (JSON-serialisable; ``exp`` is added) valid until ``expires_at``."""
    if not secret:
        raise ValueError("a signing secret is required")
    body = _b64(orjson.dumps({**payload, "exp": int(expires_at.timestamp())}))
    return f"{body}.{_mac(secret, purpose, body).decode('ascii')}"


def verify(purpose: str, token: str, secrets: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """The payload of a genuine, unexpired token signed by one of ``secrets`` for ``purpose``
    (``exp`` included); :class:`TokenError` otherwise."""
    body, dot, signature = token.partition(".")
    if not dot or len(token) > _MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise TokenError(expired=False)
    given = signature.encode("ascii")
    good = False
    for secret in secrets:
        if secret and hmac.compare_digest(_mac(secret, purpose, body), given):
            good = True
    if not good:
        raise TokenError(expired=False)
    try:
        payload = orjson.loads(_unb64(body))
        expires = int(payload["exp"])
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError):
        raise TokenError(expired=False) from None
    if not isinstance(payload, dict):
        raise TokenError(expired=False)
    if expires <= int(now.astimezone(UTC).timestamp()):
        raise TokenError(expired=True, payload=payload)
    return payload


def page_token(employee_id: str, expires_at: datetime, secret: str) -> str:
    """The token of the employee's page link (CONTRACT §11): ``{base}/me/{token}``."""
    return sign(PAGE, {"employee_id": employee_id}, expires_at, secret)


def page_employee(token: str, secrets: tuple[str, ...], now: datetime) -> str:
    """The employee a genuine, unexpired page token is for; :class:`TokenError` otherwise."""
    employee = verify(PAGE, token, secrets, now).get("employee_id")
    if not isinstance(employee, str) or not employee:
        raise TokenError(expired=False)
    return employee


def claimed(token: str) -> dict[str, Any]:
    """The payload a token *claims*, unverified: only to choose the language of the page
    that refuses it (a tampered token still says which language its reader asked for);
    ``{}`` when it holds none. Never to decide anything else."""
    body = token.partition(".")[0]
    if len(token) > _MAX_TOKEN or not body.isascii():
        return {}
    try:
        payload = orjson.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
