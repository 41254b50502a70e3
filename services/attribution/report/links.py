"""Signed, expiring share links to a report (CONTRACT §9).

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, base64url(payload)))``; the
payload is the report's period, model and locale and the link's expiry (Unix seconds). The first
configured secret signs; every configured secret verifies, so a secret is rotated by putting the
new one first and dropping the old one once its links have expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from services.attribution.report.catalogue import LOCALES
from shared.events import MODELS


@dataclass(frozen=True)
class Link:
    start: datetime | None
    end: datetime | None
    model: str
    locale: str
    expires_at: datetime


class LinkError(Exception):
    """A token that does not open a report; ``locale`` is the page's language."""

    def __init__(self, expired: bool, locale: str = "en") -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired
        self.locale = locale


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sign(link: Link, secret: str) -> str:
    payload = _b64(
        orjson.dumps(
            {
                "from": _stamp(link.start),
                "to": _stamp(link.end),
                "model": link.model,
                "locale": link.locale,
                "exp": int(link.expires_at.timestamp()),
            }
        )
    )
    return f"{payload}.{_mac(secret, payload)}"


def verify(token: str, secrets: tuple[str, ...], now: datetime) -> Link:
    """The link a token stands for; :class:`LinkError` when it is tampered with, signed by no
    configured secret or expired."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload.isascii() or not signature.isascii():
        raise LinkError(expired=False)
    good = any(
        hmac.compare_digest(_mac(secret, payload).encode(), signature.encode())
        for secret in secrets
    )
    try:
        body = orjson.loads(_unb64(payload))
        locale = body["locale"] if body.get("locale") in LOCALES else "en"
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise LinkError(expired=False) from None
    if not good:
        raise LinkError(expired=False, locale=locale)
    try:
        link = Link(
            None if body["from"] is None else datetime.fromisoformat(body["from"]),
            None if body["to"] is None else datetime.fromisoformat(body["to"]),
            body["model"],
            locale,
            datetime.fromtimestamp(int(body["exp"]), UTC),
        )
    except (KeyError, ValueError, TypeError, OverflowError):
        raise LinkError(expired=False, locale=locale) from None
    if link.model not in MODELS:
        raise LinkError(expired=False, locale=locale)
    if link.expires_at <= now:
        raise LinkError(expired=True, locale=locale)
    return link
