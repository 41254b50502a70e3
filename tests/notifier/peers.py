"""Local stand-ins for the vendors: an HTTP/1.1 server on 127.0.0.1 that records every
request and answers from a script (status and headers, a hang, or a connection reset), and
an SMTP server with STARTTLS and authentication (aiosmtpd, certificates from trustme).

The HTTP peer is a few lines over asyncio streams rather than a framework, so a test can
make it misbehave the way real peers do: reset the connection, or never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    reset: bool = False  # close the connection without answering
    hang: bool = False  # never answer (until the peer is released)
    hold: bool = False  # answer only when the test opens this request's gate
    delay_s: float = 0.0  # answer after this long (a slow receiver)


class HttpPeer:
    """Records requests; answers with the scripted answers in order, then ``default``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self.arrived = asyncio.Condition()
        self.release = asyncio.Event()
        self.gates: list[asyncio.Event] = []  # one per held request, in arrival order
        self.in_flight = 0
        self.max_in_flight = 0
        # The vendor's own checks: an answer for a request the vendor refuses (before any
        # scripted answer), None to go on with the script.
        self.rules: Callable[[Request], Answer | None] | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Request]:
        """Wait until at least ``count`` requests arrived (bounded)."""
        async with asyncio.timeout(timeout_s), self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body)
                answer = self.rules(request) if self.rules else None
                if answer is None:
                    answer = self.script.pop(0) if self.script else self.default
                gate = asyncio.Event()
                async with self.arrived:
                    self.requests.append(request)
                    if answer.hold:
                        self.gates.append(gate)
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    self.arrived.notify_all()
                if answer.hold:
                    await gate.wait()
                if answer.delay_s:
                    await asyncio.sleep(answer.delay_s)
                self.in_flight -= 1
                if answer.reset:
                    writer.transport.abort()
                    return
                if answer.hang:
                    await self.release.wait()
                    writer.transport.abort()
                    return
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\ncontent-length: {len(answer.body)}\r\n"
                    f"{extra}\r\n".encode()
                    + answer.body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


# --- what Slack and Teams refuse ------------------------------------------------------------

# Slack "Sending messages using incoming webhooks", "Handling errors"
# (https://api.slack.com/messaging/webhooks#handling_errors): a refused message is an HTTP 400
# whose plain-text body names the error (invalid_payload, no_text, invalid_blocks); Block Kit
# limits from "Header block" (text ≤ 150) and "Section block" (text ≤ 3000)
# (https://docs.slack.dev/reference/block-kit/blocks/header-block, …/section-block).
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
# Microsoft Teams "Create incoming webhooks": a message over 28 KB is refused
# (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook);
# the answer is 413 "Request Entity too large".
TEAMS_MAX_BYTES = 28 * 1000


def _refused(status: int, error: str) -> Answer:
    return Answer(status, {"content-type": "text/plain"}, error.encode())


def slack_webhook_rules(request: Request) -> Answer | None:
    """What a Slack incoming webhook answers to a message it refuses, None for a good one."""
    try:
        payload = request.json()
    except orjson.JSONDecodeError:
        return _refused(400, "invalid_payload")
    if not isinstance(payload, dict) or not payload.get("text"):
        return _refused(400, "no_text")
    for block in payload.get("blocks", []):
        text = block.get("text", {}).get("text", "")
        limit = {"header": SLACK_HEADER_MAX, "section": SLACK_SECTION_MAX}.get(block.get("type"))
        if limit is None or not text or len(text) > limit:
            return _refused(400, "invalid_blocks")
    return None


def teams_rules(request: Request) -> Answer | None:
    """What a Teams (Workflows) webhook answers to a message it refuses, None for a good one."""
    if len(request.body) > TEAMS_MAX_BYTES:
        return _refused(413, "Request Entity too large")
    try:
        request.json()
    except orjson.JSONDecodeError:
        return _refused(400, "Bad payload")
    return None


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tls_seen.append(session.ssl is not None)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SmtpPeer:
    """aiosmtpd with STARTTLS required before AUTH, and one valid login."""

    def __init__(self, tmp: Path, username: str, password: str) -> None:
        ca = trustme.CA()
        self.ca_file = tmp / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.mailbox = Mailbox()
        self.port = free_port()
        self.credentials = (username.encode(), password.encode())

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == self.credentials
            if isinstance(data, LoginPassword):
                self.mailbox.logins.append((data.login, data.password))
            # handled=False: aiosmtpd answers the failure itself (535)
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticate,
            ready_timeout=10,
        )

    def __enter__(self) -> SmtpPeer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


@contextlib.contextmanager
def smtp_peer(tmp: Path, username: str, password: str) -> Iterator[SmtpPeer]:
    with SmtpPeer(tmp, username, password) as peer:
        yield peer
