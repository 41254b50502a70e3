"""The four channels, each speaking its peer's documented format. One attempt each; the
dispatcher decides about retries from the :class:`~services.notifier.policy.Outcome`.

Every attempt carries the idempotency key (the recognition id, or a digest's id) in an
``X-Ripples-Recognition-Id`` header; Slack ``chat.postMessage`` also gets it as message
metadata, a webhook as the Standard Webhooks ``webhook-id``, and e-mail as a deterministic
``Message-ID``, so a receiver can drop a repeat.

An attempt ends at ``attempt_deadline_s`` whatever its phases do, reads at most
:data:`MAX_RESPONSE_BYTES` of the answer, and posts only to URLs :mod:`~services.notifier.egress`
allows (the connection itself is guarded by the client's network backend).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import ssl
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import orjson

from services.notifier import egress
from services.notifier.policy import SENT, Outcome, classify_smtp, classify_status
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
# httpx logs every request with its full URL at INFO; a Slack or Teams webhook URL is a
# secret (whoever has it may post), so only its warnings are let through.
logging.getLogger("httpx").setLevel(logging.WARNING)

KEY_HEADER = "X-Ripples-Recognition-Id"
SIGNATURE_HEADER = "X-Ripples-Signature"
MAX_RESPONSE_BYTES = 64 * 1024
"""The most of a peer's answer that is read; a longer answer fails the attempt (too_large)."""
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# Vendor limits (tests/unit/test_vendor_limits.py cites the pages). Slack Block Kit: a
# header block's plain_text at most 150 characters, a section's text at most 3000.
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
# Teams incoming webhooks and Workflows: a message of at most 28 KB (measured on the body).
TEAMS_MAX_BYTES = 28 * 1000
ELLIPSIS = "\u2026"
# Characters that belong to the one before them: a cut never separates them from it.
_ZWJ = "\u200d"
_JOINERS = {_ZWJ, "\ufe0e", "\ufe0f"}
# Slack Web API errors that mean "try again later" (answered with HTTP 200 and ok=false).
_SLACK_TRANSIENT = {"ratelimited", "service_unavailable", "fatal_error", "internal_error",
                    "request_timeout"}  # fmt: skip


@dataclass(frozen=True)
class Attachment:
    """A file an e-mail carries (the scheduled report's PDF)."""

    filename: str
    maintype: str
    subtype: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """One message to one employee (or a report's recipient). ``key`` is the idempotency
    key: the recognition id, a digest's id or a report's ledger id; ``recognition_ids``
    lists what it covers; ``attachments`` go with an e-mail only."""

    key: str
    kind: str
    employee_id: str
    locale: str
    title: str
    text: str
    address: str
    recognition_ids: Sequence[str]
    attachments: Sequence[Attachment] = ()


def webhook_body(message: Outgoing) -> bytes:
    """CONTRACT §6 body (plus ``title`` and ``recognition_ids``)."""
    return orjson.dumps(
        {
            "recognition_id": message.key,
            "kind": message.kind,
            "employee_id": message.employee_id,
            "text": message.text,
            "title": message.title,
            "locale": message.locale,
            "recognition_ids": list(message.recognition_ids),
        }
    )


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_webhooks_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key (standardwebhooks.com, "Signature scheme": secrets are
    serialised base64 behind ``whsec_``); a secret without the prefix is used as its bytes.
    A ``whsec_`` secret that is not base64 raises ValueError (the notifier refuses to start)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret is base64 after the prefix") from None
    return secret.encode()


def webhook_id(key: str) -> str:
    """The Standard Webhooks ``webhook-id`` of an idempotency key: the same on every retry,
    and free of ``.`` (the spec: message id and timestamp must not contain one)."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def standard_webhooks_headers(
    key: bytes, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` (integer Unix seconds) and ``webhook-signature``
    = ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{digest}",
    }


class ResponseTooLarge(Exception):
    """The peer's answer is longer than :data:`MAX_RESPONSE_BYTES`."""


def _joins(char: str) -> bool:
    """Whether ``char`` attaches to the character before it (a combining mark, a variation
    selector, a zero-width joiner, an emoji skin tone)."""
    return (
        bool(unicodedata.combining(char))
        or char in _JOINERS
        or "\U0001f3fb" <= char <= "\U0001f3ff"
    )


def cut(text: str, limit: int, escape: Callable[[str], str] = lambda t: t) -> str:
    """``escape(text)`` if it is at most ``limit`` characters long, else the longest start of
    ``text`` whose escaped form fits with an ellipsis after it. The cut falls on a character
    boundary: never inside an escape (``&amp;``), never between a character and a mark or
    joiner that belongs to it."""
    whole = escape(text)
    if len(whole) <= limit:
        return whole
    budget = limit - len(ELLIPSIS)
    used = end = 0
    for char in text:
        used += len(escape(char))
        if used > budget:
            break
        end += 1
    while end > 0 and (_joins(text[end]) or text[end - 1] == _ZWJ):
        end -= 1
    return escape(text[:end].rstrip()) + ELLIPSIS


def slack_escape(text: str) -> str:
    """Slack's control characters as the HTML entities Slack decodes (only these three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_body(message: Outgoing, limit: int = TEAMS_MAX_BYTES) -> bytes:
    """The encoded Teams message, at most ``limit`` bytes: the text (then, if need be, the
    title) cut as little as needed, measured on the JSON body itself."""
    title, text = message.title, message.text
    body = orjson.dumps(teams_payload(title, text, message.locale))
    if len(body) <= limit:
        return body
    for which in ("text", "title"):
        source = text if which == "text" else title
        low, high = 0, len(source)  # the longest cut that fits, by bisection
        while low < high:
            middle = (low + high + 1) // 2
            trial = cut(source, middle)
            parts = (title, trial) if which == "text" else (trial, cut(text, 0))
            if len(orjson.dumps(teams_payload(*parts, message.locale))) <= limit:
                low = middle
            else:
                high = middle - 1
        if which == "text":
            text = cut(text, low)
        else:
            title, text = cut(title, low), cut(text, 0)
        body = orjson.dumps(teams_payload(title, text, message.locale))
        if len(body) <= limit:
            return body
    return body


def teams_payload(title: str, text: str, locale: str) -> dict[str, Any]:
    """A message with one Adaptive Card, as Teams incoming webhooks and Workflows take it."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": ADAPTIVE_CARD,
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "lang": locale,
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": title,
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": text, "wrap": True},
                    ],
                },
            }
        ],
    }


def slack_payload(message: Outgoing, channel: str | None) -> dict[str, Any]:
    """An incoming-webhook message (``channel`` None) or a ``chat.postMessage`` call: the
    header's plain text cut to 150 characters, the section's mrkdwn escaped and cut to 3000,
    and the notification fallback ``text`` (mrkdwn too) made of the same two."""
    title = cut(message.title, SLACK_HEADER_MAX)
    text = cut(message.text, SLACK_SECTION_MAX, slack_escape)
    payload: dict[str, Any] = {
        "text": f"*{slack_escape(title)}*\n{text}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        ],
    }
    if channel is not None:
        payload["channel"] = channel
        payload["metadata"] = {
            "event_type": "ripples_recognition",
            "event_payload": {"recognition_id": message.key, "kind": message.kind},
        }
    return payload


def email_message(message: Outgoing, sender: str) -> EmailMessage:
    """A plain-text e-mail; with attachments, ``multipart/mixed`` (the text first, then each
    file base64-encoded with its name), as ``EmailMessage.add_attachment`` builds it."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.address
    mail["Subject"] = message.title
    mail["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:40]}@ripples>"
    mail["Content-Language"] = message.locale
    mail[KEY_HEADER] = message.key
    mail.set_content(message.text)
    for attachment in message.attachments:
        mail.add_attachment(
            attachment.data,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return mail


class Channels:
    """Sends one attempt over a channel and says what came of it."""

    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self._smtp_tls: ssl.SSLContext | None = None

    async def send(self, channel: str, message: Outgoing) -> Outcome:
        """One attempt, ended at the overall deadline whatever its phases do."""
        try:
            async with asyncio.timeout(self.settings.attempt_deadline_s):
                return await self._send(channel, message)
        except TimeoutError:
            return Outcome("retry", "timeout: attempt deadline", code="timeout")

    async def _send(self, channel: str, message: Outgoing) -> Outcome:
        try:
            if channel == "webhook":
                return await self._webhook(message)
            if channel == "slack":
                return await self._slack(message)
            if channel == "teams":
                url = self._check(message.address, self.settings.teams_allowed_hosts)
                return await self._post(url, teams_body(message), message)
            if channel == "email":
                return await self._email(message)
        except egress.AddressNotAllowed as exc:  # its text is one of a few fixed words
            return Outcome("permanent", f"address not allowed: {exc}", code="address_not_allowed")
        except ResponseTooLarge:
            return Outcome("permanent", "answer over 64 KiB", code="too_large")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            return Outcome("permanent", "invalid address", code="address_not_allowed")
        except httpx.TimeoutException:
            return Outcome("retry", "timeout", code="timeout")
        except httpx.TransportError as exc:
            return Outcome("retry", f"connection: {type(exc).__name__}", code="connection_error")
        except aiosmtplib.SMTPResponseException as exc:
            return classify_smtp(exc.code, exc.message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            return classify_smtp(first.code if first else 550, first.message if first else "")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return Outcome("retry", "timeout", code="timeout")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome("retry", f"connection: {type(exc).__name__}", code="connection_error")
        except Exception as exc:
            # Anything else is counted as a failed attempt, so it ends in `failed` after the
            # configured attempts instead of stopping the dispatcher. Only the type is logged:
            # messages may carry addresses.
            log.error("unexpected error while sending", extra={"error": type(exc).__name__})
            return Outcome("retry", f"error: {type(exc).__name__}", code="connection_error")
        return Outcome("permanent", f"unknown channel {channel!r}", code="rejected")

    def _check(self, url: str, allowed_hosts: Sequence[str]) -> str:
        """``url`` if the deployment rules allow posting to it (else AddressNotAllowed)."""
        return str(egress.check_url(url, self.settings.allow_http, allowed_hosts))

    async def _request(
        self, url: str, content: bytes, headers: dict[str, str]
    ) -> tuple[int, httpx.Headers, bytes]:
        """POST and read the answer, at most :data:`MAX_RESPONSE_BYTES` of it (uncompressed:
        a small compressed answer cannot grow past the cap while it is decoded)."""
        async with self.client.stream(
            "POST",
            url,
            content=content,
            headers=headers | {"Accept-Encoding": "identity"},
            timeout=self.settings.request_timeout_s,
        ) as response:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ResponseTooLarge
            return response.status_code, response.headers, bytes(body)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    async def _post(
        self,
        url: str,
        payload: dict[str, Any] | bytes,
        message: Outgoing,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        status, answer_headers, _ = await self._request(
            url,
            payload if isinstance(payload, bytes) else orjson.dumps(payload),
            {"Content-Type": "application/json", KEY_HEADER: message.key} | (headers or {}),
        )
        return classify_status(status, answer_headers.get("Retry-After"), self._now())

    async def _webhook(self, message: Outgoing) -> Outcome:
        url = self._check(message.address, self.settings.webhook_allowed_hosts)
        body = webhook_body(message)
        secret = self.settings.webhook_secret
        standard = standard_webhooks_headers(
            standard_webhooks_key(secret), webhook_id(message.key), int(self._now().timestamp()),
            body,
        )  # fmt: skip
        status, answer_headers, _ = await self._request(
            url,
            body,
            {
                "Content-Type": "application/json",
                KEY_HEADER: message.key,
                SIGNATURE_HEADER: signature(secret, body),
            }
            | standard,
        )
        return classify_status(status, answer_headers.get("Retry-After"), self._now())

    async def _slack(self, message: Outgoing) -> Outcome:
        if message.address.startswith(("https://", "http://")):
            url = self._check(message.address, self.settings.slack_allowed_hosts)
            return await self._post(url, slack_payload(message, None), message)
        if not self.settings.slack_bot_token:
            return Outcome(
                "permanent", "slack: NOTIFIER_SLACK_BOT_TOKEN is not set", code="rejected"
            )
        url = self._check(self.settings.slack_api_url.rstrip("/") + "/chat.postMessage", ())
        status, answer_headers, content = await self._request(
            url,
            orjson.dumps(slack_payload(message, message.address)),
            {
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {self.settings.slack_bot_token}",
                KEY_HEADER: message.key,
            },
        )
        outcome = classify_status(status, answer_headers.get("Retry-After"), self._now())
        if outcome is not SENT:
            return outcome
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError:
            return Outcome("retry", "slack: answer is not JSON", code="server_error")
        if answer.get("ok") is True:
            return SENT
        error = str(answer.get("error", "unknown"))[:100]
        if error in _SLACK_TRANSIENT:
            code = {"ratelimited": "rate_limited", "request_timeout": "timeout"}
            return Outcome("retry", f"slack: {error}", code=code.get(error, "server_error"))
        return Outcome("permanent", f"slack: {error}", code="rejected")

    async def _email(self, message: Outgoing) -> Outcome:
        settings = self.settings
        if not settings.smtp_host:
            return Outcome("permanent", "email: NOTIFIER_SMTP_HOST is not set", code="rejected")
        if self._smtp_tls is None:
            self._smtp_tls = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
        await aiosmtplib.send(
            email_message(message, settings.smtp_from),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            tls_context=self._smtp_tls,
            timeout=settings.request_timeout_s,
        )
        return SENT
