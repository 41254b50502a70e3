"""Signed, expiring share links to a report (CONTRACT §9), in the one format of every link a
person opens without a key (:mod:`shared.signing`, purpose ``report``): the payload is the
report's period, model and locale, and the link's expiry. The first configured secret signs;
every configured secret verifies, so a secret is rotated by putting the new one first and
dropping the old one once its links have expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.attribution.report.catalogue import LOCALES
from shared import signing
from shared.events import MODELS

PURPOSE = "report"
"""What a share link's token is signed for: it opens no other kind of link (nor they it)."""


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


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _locale(payload: dict[str, object]) -> str:
    locale = payload.get("locale")
    return locale if isinstance(locale, str) and locale in LOCALES else "en"


def sign(link: Link, secret: str) -> str:
    payload = {
        "from": _stamp(link.start),
        "to": _stamp(link.end),
        "model": link.model,
        "locale": link.locale,
    }
    return signing.sign(PURPOSE, payload, link.expires_at, secret)


def verify(token: str, secrets: tuple[str, ...], now: datetime) -> Link:
    """The link a token stands for; :class:`LinkError` when it is tampered with, signed by no
    configured secret or expired (its page in the language the token asks for)."""
    try:
        body = signing.verify(PURPOSE, token, secrets, now)
    except signing.TokenError as error:
        raise LinkError(error.expired, _locale(signing.claimed(token))) from None
    locale = _locale(body)
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
    return link
