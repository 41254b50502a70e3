"""Calls out (issue 13 part 3): the notifier POSTs only where it may.

Addresses come from data (an HR record's ``notify.address``), so the notifier resolves the
host, refuses loopback, private, link-local, multicast, reserved and unspecified addresses
and the IPv4-mapped / 6to4 / NAT64 / Teredo forms of them, and connects to the address it
checked, as the OWASP SSRF prevention cheat sheet says
(https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html:
"validate ... the IP address(es) the domain name resolves to", and DNS pinning against
rebinding). A refused address is a permanent failure with the closed reason
``address_not_allowed``, and nothing reaches a listener on the refused address.

Against the real notifier process, the real broker and PostgreSQL:
- a notifier in deployment mode (https only, loopback refused) pointed at 127.0.0.1,
  169.254.169.254, [::1], [::ffff:10.0.0.1], 0.0.0.0, the 6to4 and NAT64 forms of loopback
  and link-local, names that resolve (through this machine's own resolver, /etc/hosts) to a
  loopback address, plain http, and a Slack address outside the Slack allow-list;
- a notifier in local-stack mode (loopback allowed explicitly) with a slow-drip response
  (the overall attempt deadline), an oversized response (the 64 KiB read cap), link-local
  still refused, and a normal delivery carrying the Standard Webhooks headers;
- the notifier refusing to start without a webhook secret.
The resolver and connect step are also tested in-process with an injected resolver: a name
resolving to a private address, a mixed answer, and a rebinding resolver (public on the
check, loopback afterwards) — the connection goes to the address that was checked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpcore
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.cloudevents import to_kafka
from shared.events import Envelope
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.conftest import API_KEYS, Running, free_port, start_broker, start_service
from tests.notifier.conftest import SECRET, employee_event, recognition_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
COMMON = {
    "NOTIFIER_WEBHOOK_SECRET": SECRET,
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
    "NOTIFIER_CLAIM_LEASE_S": "10",
    "NOTIFIER_ATTEMPT_DEADLINE_S": "2",
    "NOTIFIER_REQUEST_TIMEOUT_S": "10",
    # a retry waits a minute: the first attempt's reason stays visible on the pending row
    "NOTIFIER_BACKOFF_BASE_S": "60",
    "NOTIFIER_BACKOFF_MAX_S": "60",
    "NOTIFIER_MAX_ATTEMPTS": "3",
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
}
DEPLOYMENT = COMMON | {"NOTIFIER_ALLOW_LOOPBACK": "false", "NOTIFIER_ALLOW_HTTP": "false"}
LOCAL = COMMON | {"NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_ALLOW_HTTP": "true"}


class Listener:
    """A TCP listener on 127.0.0.1 and ::1 (one port) that counts the connections it gets and
    answers each with a scripted raw HTTP response (bytes, optionally dripped)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self.requests: list[bytes] = []
        self.answer: list[bytes] = [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
        self.drip_s = 0.0  # pause between the chunks of the answer
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        self._servers.append(await asyncio.start_server(self._serve, "127.0.0.1", self.port))
        if socket.has_ipv6:
            self._servers.append(await asyncio.start_server(self._serve, "::1", self.port))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            self.requests.append(head + await reader.readexactly(length))
            for chunk in self.answer:
                writer.write(chunk)
                await writer.drain()
                if self.drip_s:
                    await asyncio.sleep(self.drip_s)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    server = Listener()
    await server.start()
    yield server
    await server.stop()


def _notifier(postgres: Running, tmp: Path, env: dict[str, str]) -> Iterator[Running]:
    """A notifier of its own (own broker, own database) with ``env``."""
    broker = start_broker(tmp / "broker")
    asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=broker.address)))

    database = postgres.address.rsplit("/", 1)[0] + f"/egress_{os.urandom(6).hex()}"
    asyncio.run(_create_database(postgres.address, database.rsplit("/", 1)[1]))
    running = start_service("notifier", tmp / "notifier", broker, DATABASE_URL=database, **env)
    try:
        yield running
    finally:
        running.stop()
        broker.stop()


async def _create_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def guarded(postgres: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Deployment mode: https only, loopback refused (the defaults of a deployment)."""
    yield from _notifier(postgres, tmp_path_factory.mktemp("guarded"), DEPLOYMENT)


@pytest.fixture(scope="module")
def local(postgres: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Local-stack mode: loopback (and plain http) allowed explicitly, as `ripples up` does."""
    yield from _notifier(postgres, tmp_path_factory.mktemp("local"), LOCAL)


async def publish(notifier: Running, *events: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=notifier.env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        for event in events:
            key, value, headers = to_kafka(event)
            await producer.send_and_wait(event.topic.name, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def row_of(notifier: Running, employee_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=notifier.address, headers=AUTH, timeout=5) as client:
        response = await client.get("/v1/recognitions", params={"employee_id": employee_id})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows[0] if rows else {}


async def attempted(notifier: Running, employee_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The ledger row once its first attempt has a result (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        row = await row_of(notifier, employee_id)
        if row.get("status") not in (None, "pending") or row.get("reason") is not None:
            return row
        await asyncio.sleep(0.2)
    pytest.fail(f"{employee_id}: no attempt result within {timeout_s} s: {row}")


async def deliver(
    notifier: Running, employee_id: str, address: str, channel: str = "webhook"
) -> dict[str, Any]:
    await publish(notifier, employee_event(employee_id, channel, address))
    await publish(
        notifier, recognition_event(f"first_post:{employee_id}", employee_id, "first_post")
    )
    return await attempted(notifier, employee_id)


REFUSED = {
    "loopback": "https://127.0.0.1:{port}/hook",
    "loopback-8": "https://127.9.9.9:{port}/hook",
    "metadata": "https://169.254.169.254/latest/meta-data/",
    "ipv6-loopback": "https://[::1]:{port}/hook",
    "mapped-private": "https://[::ffff:10.0.0.1]/hook",
    "mapped-loopback": "https://[::ffff:127.0.0.1]:{port}/hook",
    "unspecified": "https://0.0.0.0:{port}/hook",
    "6to4-loopback": "https://[2002:7f00:1::]:{port}/hook",
    "nat64-metadata": "https://[64:ff9b::a9fe:a9fe]/hook",
    "name-localhost": "https://localhost:{port}/hook",
    "name-hostname": "https://{hostname}:{port}/hook",
    "plain-http": "http://127.0.0.1:{port}/hook",
}


async def test_deployment_refuses_every_internal_address(
    guarded: Running, listener: Listener
) -> None:
    hostname = socket.gethostname()
    # the names resolve (through this machine's resolver) to a loopback address
    for name in ("localhost", hostname):
        resolved = {info[4][0] for info in socket.getaddrinfo(name, 443)}
        assert all(not ipaddress.ip_address(a.split("%")[0]).is_global for a in resolved), resolved
    for case, template in REFUSED.items():
        address = template.format(port=listener.port, hostname=hostname)
        await publish(guarded, employee_event(f"egress-{case}", "webhook", address))
    await publish(
        guarded,
        *(
            recognition_event(f"first_post:egress-{case}", f"egress-{case}", "first_post")
            for case in REFUSED
        ),
    )
    rows = {case: await attempted(guarded, f"egress-{case}") for case in REFUSED}
    outcome = {case: (r["status"], r["attempts"], r["reason"]) for case, r in rows.items()}
    assert outcome == dict.fromkeys(REFUSED, ("failed", 1, "address_not_allowed")), outcome
    assert listener.connections == 0
    assert "last_error" not in rows["loopback"]


async def test_deployment_refuses_a_slack_address_outside_its_allow_list(
    guarded: Running,
) -> None:
    # Slack incoming webhooks live on hooks.slack.com (https://api.slack.com/messaging/webhooks);
    # a look-alike host is refused before any DNS lookup.
    row = await deliver(
        guarded, "egress-slack", "https://hooks.slack.com.evil.example/services/T/B/x", "slack"
    )
    assert (row["status"], row["reason"]) == ("failed", "address_not_allowed")


async def test_slow_drip_is_cut_by_the_attempt_deadline(local: Running, listener: Listener) -> None:
    # Headers at once, then one byte every half second: no per-phase timeout ever fires.
    listener.answer = [b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n"] + [b"x"] * 200
    listener.drip_s = 0.5
    started = time.monotonic()
    row = await deliver(local, "egress-drip", f"http://127.0.0.1:{listener.port}/drip")
    elapsed = time.monotonic() - started
    assert (row["status"], row["attempts"], row["reason"]) == ("pending", 1, "timeout")
    assert listener.connections == 1
    # the deadline is 2 s; the rest is the consumer, the database and a loaded machine
    assert elapsed < 15, elapsed


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_oversized_response_is_not_read_past_the_cap(
    local: Running, listener: Listener, framing: str
) -> None:
    body = b"x" * (1024 * 1024)
    if framing == "content-length":
        listener.answer = [f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode(), body]
    else:
        chunks = [
            b"%x\r\n%s\r\n" % (16384, body[i : i + 16384]) for i in range(0, len(body), 16384)
        ]
        listener.answer = [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            *chunks,
            b"0\r\n\r\n",
        ]
    row = await deliver(local, f"egress-big-{framing}", f"http://127.0.0.1:{listener.port}/big")
    assert (row["status"], row["attempts"], row["reason"]) == ("failed", 1, "too_large")


async def test_local_mode_still_refuses_link_local(local: Running) -> None:
    row = await deliver(local, "egress-local-metadata", "http://169.254.169.254/latest/meta-data/")
    assert (row["status"], row["reason"]) == ("failed", "address_not_allowed")


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key as the Standard Webhooks spec serialises it: ``whsec_`` + base64; a secret
    without the prefix is used as its bytes (the notifier's documented rule)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


async def test_delivery_carries_the_standard_webhooks_headers(
    local: Running, listener: Listener
) -> None:
    # https://www.standardwebhooks.com/ (spec/standard-webhooks.md, "Signature scheme" and
    # "Webhook headers"): webhook-id, webhook-timestamp (integer Unix seconds) and
    # webhook-signature = "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
    row = await deliver(local, "egress-ok", f"http://127.0.0.1:{listener.port}/ok")
    assert (row["status"], row["reason"]) == ("sent", None)
    (raw,) = listener.requests
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = {
        k.strip().lower(): v.strip()
        for k, v in (line.split(":", 1) for line in head.decode().split("\r\n")[1:])
    }
    webhook_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert "." not in webhook_id
    assert webhook_id.startswith("msg_")
    assert abs(int(timestamp) - time.time()) < 120
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(
        hmac.new(standard_webhooks_key(SECRET), signed, hashlib.sha256).digest()
    ).decode()
    assert headers["webhook-signature"].split(" ") == [f"v1,{expected}"]
    # CONTRACT §6's own signature, unchanged beside it
    legacy = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-ripples-signature"] == f"sha256={legacy}"


def test_refuses_to_start_without_a_webhook_secret(guarded: Running) -> None:
    # everything else it needs is there (a broker and a database that answer)
    env = guarded.env | {"NOTIFIER_WEBHOOK_SECRET": "", "NOTIFIER_PORT": str(free_port())}
    env.pop("NOTIFIER_WEBHOOK_SECRET_FILE", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.notifier"],
            env=env,
            capture_output=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the notifier kept running without a webhook secret")
    assert done.returncode != 0
    assert b"NOTIFIER_WEBHOOK_SECRET" in done.stderr + done.stdout


# --- the resolve-check-connect step, in-process, with an injected resolver --------------------


class Recorder(httpcore.AsyncNetworkBackend):
    """Stands in for the network: records where it was asked to connect, connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(self, host: str, port: int, *_: Any, **__: Any) -> Any:
        self.connects.append(host)
        raise httpcore.ConnectError("no network here")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def scripted(*answers: list[str]) -> tuple[Any, list[str]]:
    asked: list[str] = []
    queue = list(answers)

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return resolve, asked


async def test_a_name_resolving_to_a_private_address_is_refused_without_connecting() -> None:
    from services.notifier.egress import AddressNotAllowed, GuardedBackend

    for answer in (["10.0.0.7"], ["93.184.215.14", "192.168.1.1"], ["fd00::2"], ["fe80::1"]):
        resolve, _ = scripted(answer)
        network = Recorder()
        backend = GuardedBackend(allow_loopback=True, resolve=resolve, network=network)
        with pytest.raises(AddressNotAllowed):
            await backend.connect_tcp("intranet.example", 443)
        assert network.connects == []


async def test_rebinding_resolver_cannot_move_the_connection() -> None:
    from services.notifier.egress import GuardedBackend

    # An attacker's DNS answers a public address first and loopback afterwards (TTL 0). The
    # backend resolves once per connection and connects to the address it checked.
    resolve, asked = scripted(["93.184.215.14"], ["127.0.0.1"])
    network = Recorder()
    backend = GuardedBackend(allow_loopback=False, resolve=resolve, network=network)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rebind.example", 443)
    assert asked == ["rebind.example"]
    assert network.connects == ["93.184.215.14"]


def test_address_rules() -> None:
    from services.notifier.egress import address_allowed

    refused = [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
        "198.18.0.1", "::", "::1", "fe80::1", "fc00::1", "fd00::2", "ff02::1",
        "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::10.0.0.1",
        "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:0a00:0001::", "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
    ]  # fmt: skip
    allowed = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2002:5db8:d70e::1",
               "64:ff9b::808:808", "::ffff:8.8.8.8"]  # fmt: skip
    assert [a for a in refused if address_allowed(ipaddress.ip_address(a), False)] == []
    assert [a for a in allowed if not address_allowed(ipaddress.ip_address(a), False)] == []
    # the local stack's switch allows loopback, never link-local or private
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), True)
    assert address_allowed(ipaddress.ip_address("::1"), True)
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), True)
    assert not address_allowed(ipaddress.ip_address("169.254.169.254"), True)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), True)
