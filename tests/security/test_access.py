"""Access (CONTRACT §7 "Access", issue 13 parts 1 and 5), tried against the real services as
an attacker inside the cluster network would: every ``/v1/*`` route of ingest, attribution and
the notifier needs ``Authorization: Bearer <key>``; anything else (no header, a wrong key, a
malformed or non-ASCII header) is a 401 problem+json with ``WWW-Authenticate: Bearer``, never a
500. The routes are read from each service's own route table, so a route added later is
checked without anyone remembering to list it here. The operational routes, the redirector
and the signed vendor webhooks stay open. A service without keys refuses to start. And with
PostgreSQL stopped, attribution and the notifier answer 503 with ``Retry-After``, not 500.

The last test stops this module's PostgreSQL: keep it last."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from ripples import stack
from services.attribution.settings import AttributionSettings
from services.notifier.settings import NotifierSettings
from shared.auth import check_keys
from shared.settings import SettingsError, load
from tests import samples
from tests.attribution.test_pipeline import FAST
from tests.conftest import (
    API_KEYS,
    AUTH,
    Running,
    new_database,
    start_service,
)
from tests.routes import route_table

pytestmark = pytest.mark.integration

SERVICES = ("ingest", "attribution", "notifier")
KEY_VARIABLES = {name: f"{name.upper()}_API_KEYS" for name in SERVICES}
ENV = FAST | {
    "INGEST_LINKEDIN_CLIENT_SECRET": "security-linkedin-secret",
    "INGEST_LINK_ALLOWED_HOSTS": "careers.example.com",
    "NOTIFIER_WEBHOOK_SECRET": "security-webhook-secret",
}
# One protected route per service that answers 2xx with a valid key.
PROBE = {
    "ingest": ("POST", "/v1/events"),
    "attribution": ("GET", "/v1/summary"),
    "notifier": ("GET", "/v1/recognitions?employee_id=nobody"),
}


def protected_routes(service: str) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every route that needs a key: all of
    ``/v1/*`` but the vendor webhooks, which check their own signatures."""
    found = []
    for route in route_table(service):
        path = route.path
        if not path.startswith("/v1/") or path.startswith("/v1/webhooks/"):
            continue
        concrete = re.sub(r"\{[^}]*\}", "x", path)
        found.extend((method, concrete) for method in sorted(route.methods or ()))
    return found


def test_the_route_tables_hold_the_contract_routes() -> None:
    """The discovery below sees what CONTRACT §7 names (so an empty table cannot pass)."""
    expected = {
        "ingest": {("POST", "/v1/events"), ("POST", "/v1/events:batch"), ("POST", "/v1/links")},
        "attribution": {
            ("GET", "/v1/summary"),
            ("GET", "/v1/sharers"),
            ("GET", "/v1/sharers/x"),
            ("GET", "/v1/conversions/x"),
            ("GET", "/v1/ripples"),
        },
        "notifier": {("GET", "/v1/recognitions")},
    }
    for service, routes in expected.items():
        assert routes <= set(protected_routes(service)), service


@pytest.fixture(scope="module")
async def services(
    own_broker: Running, own_postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Running]]:
    """The three services, started together (each with the keys of tests.conftest)."""
    started: dict[str, Running] = {}
    try:
        for name in SERVICES:
            url = await new_database(own_postgres, f"security_{name}")
            started[name] = start_service(
                name,
                tmp_path_factory.mktemp(name),
                own_broker,
                wait_ready=False,
                DATABASE_URL=url,
                **ENV,
            )
        for running in started.values():
            running.component.wait_ready(90)
        yield started
    finally:
        for running in started.values():
            running.stop()


def assert_401(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), what
    if response.request.method != "HEAD":
        assert response.headers["content-type"] == "application/problem+json", what
        body = response.json()
        assert body["status"] == 401, what
        assert body["title"], what
        assert body["detail"], what


@pytest.mark.parametrize("service", SERVICES)
async def test_every_v1_route_refuses_a_request_without_a_key(
    services: dict[str, Running], service: str
) -> None:
    refused, answered = 0, []
    async with httpx.AsyncClient(base_url=services[service].address, timeout=10) as anonymous:
        for method, path in protected_routes(service):
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            response = await anonymous.request(method, path, content=body)
            if response.status_code == 401 and "www-authenticate" in response.headers:
                assert_401(response, f"{method} {path}")
                refused += 1
            else:
                answered.append(f"{method} {path} -> {response.status_code}")
    assert not answered, f"{service} answered without a key: {answered}"
    assert refused >= 1


BAD_AUTHORIZATIONS = [
    pytest.param(b"Bearer wrong-key", id="wrong-key"),
    pytest.param(b"Bearer " + API_KEYS[0][:-1].encode(), id="prefix-of-a-key"),
    pytest.param(b"Bearer " + API_KEYS[0].encode() + b"x", id="key-plus-a-byte"),
    pytest.param(b"Bearer " + (API_KEYS[0] + API_KEYS[1]).encode(), id="two-keys-glued"),
    pytest.param(b"Basic " + API_KEYS[0].encode(), id="wrong-scheme"),
    pytest.param(API_KEYS[0].encode(), id="no-scheme"),
    pytest.param(b"Bearer", id="scheme-only"),
    pytest.param(b"Bearer " + "nøgle-æøå".encode(), id="non-ascii-utf8"),
    pytest.param(b"Bearer \xff\xfe\xfd", id="not-utf8"),
    pytest.param(b"Bearer " + API_KEYS[0].encode() + b"\xc3\xa6", id="key-plus-non-ascii"),
    pytest.param(b"Bearer " + API_KEYS[0].encode() + b" " + API_KEYS[1].encode(), id="two-keys"),
]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
async def test_wrong_and_malformed_keys_get_401_not_500(
    services: dict[str, Running], service: str, authorization: bytes
) -> None:
    method, path = PROBE[service]
    async with httpx.AsyncClient(base_url=services[service].address, timeout=10) as client:
        response = await client.request(
            method, path, headers=[(b"Authorization", authorization)], content=b"{}"
        )
    assert_401(response, f"{service} {authorization!r}")


async def _probe(client: httpx.AsyncClient, service: str, authorization: str) -> httpx.Response:
    """The :data:`PROBE` request of ``service`` (a valid one) with this ``Authorization``."""
    method, path = PROBE[service]
    headers = {"Authorization": authorization}
    content = None
    if service == "ingest":
        headers["Content-Type"] = "application/cloudevents+json"
        content = orjson.dumps(samples.event("ripples.applicant.erased.v1"))
    return await client.request(method, path, headers=headers, content=content)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_configured_key_is_let_in(services: dict[str, Running], service: str) -> None:
    """Both keys of the rotation, and the scheme in any case (RFC 9110 §11.1)."""
    async with httpx.AsyncClient(base_url=services[service].address, timeout=10) as client:
        for authorization in (
            f"Bearer {API_KEYS[0]}",
            f"Bearer {API_KEYS[1]}",
            f"bearer {API_KEYS[0]}",
            f"BEARER  {API_KEYS[1]}",
        ):
            response = await _probe(client, service, authorization)
            assert response.status_code in (200, 202), (service, response.text[:300])


@pytest.mark.parametrize("service", SERVICES)
async def test_operational_routes_stay_open(services: dict[str, Running], service: str) -> None:
    async with httpx.AsyncClient(base_url=services[service].address, timeout=10) as anonymous:
        for path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
            response = await anonymous.get(path)
            assert response.status_code == 200, (service, path, response.status_code)


async def test_the_redirector_and_the_signed_webhooks_need_no_key(
    services: dict[str, Running],
) -> None:
    async with httpx.AsyncClient(base_url=services["ingest"].address, timeout=10) as anonymous:
        unknown = await anonymous.get("/r/nosuchcode")
        assert unknown.status_code == 404, unknown.text  # the redirector: no key asked
        # LinkedIn's challenge is checked by its HMAC, never by a bearer key (a type-4 UUID,
        # the documented form of challengeCode).
        challenge = str(uuid.uuid4())
        response = await anonymous.get("/v1/webhooks/linkedin", params={"challengeCode": challenge})
        assert response.status_code == 200, response.text
        assert response.json()["challengeCode"] == challenge


async def _exit_log(running: Running, timeout_s: float) -> str | None:
    """The log of a service that exited within ``timeout_s`` (None while it still runs).
    Exited = no longer running, with something in its log: right after the spawn the child
    is not yet the service (its command line is still the parent's)."""
    name = running.component.name
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = "\n".join(stack.log_tail(running.state, name, 30))
        if log and not running.component.running(running.state):
            return log
        await asyncio.sleep(0.2)
    return None


@pytest.mark.parametrize(
    ("service", "form"),
    # The _FILE form is read by the same shared settings code for every service: once.
    [*((service, "empty") for service in SERVICES), ("notifier", "blank-file")],
)
async def test_a_service_without_keys_refuses_to_start(
    own_broker: Running, own_postgres: Running, tmp_path: Path, service: str, form: str
) -> None:
    variable = KEY_VARIABLES[service]
    if form == "empty":
        env = {variable: " , "}
    else:
        empty = tmp_path / "keys"
        empty.write_text("\n")
        env = {f"{variable}_FILE": str(empty)}
    url = await new_database(own_postgres, f"nokey_{service}_{form.replace('-', '_')}")
    running = start_service(
        service, tmp_path, own_broker, wait_ready=False, DATABASE_URL=url, **(ENV | env)
    )
    try:
        log = await _exit_log(running, 30)
        tail = "\n".join(stack.log_tail(running.state, service, 30))[-1500:]
        assert log is not None, f"{service} started without keys; its log ends:\n{tail}"
        assert variable in log, log[-1500:]
        assert "Traceback" not in log, log[-1500:]  # a clear message, not a stack trace
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("settings", "prefix"), [(AttributionSettings, "ATTRIBUTION_"), (NotifierSettings, "NOTIFIER_")]
)
def test_keys_come_from_the_variable_or_its_file(
    tmp_path: Path, settings: type[AttributionSettings | NotifierSettings], prefix: str
) -> None:
    secret = tmp_path / "keys"
    secret.write_text("k1,k2\n")
    variable = f"{prefix}API_KEYS"
    assert load(settings, prefix, {f"{variable}_FILE": str(secret)}).api_keys == ("k1", "k2")
    assert load(settings, prefix, {variable: " k3 , "}).api_keys == ("k3",)


@pytest.mark.parametrize("key", ["two words", "tab\there", "nøgle", "nul\x00"])
def test_a_key_no_client_could_send_is_refused(key: str) -> None:
    with pytest.raises(SettingsError, match="NOTIFIER_API_KEYS: key 2") as refused:
        check_keys(("fine-key", key), "NOTIFIER_API_KEYS")
    assert key not in str(refused.value)  # never echoes a secret


def _counter(metrics: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _errors(client: httpx.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    return _counter(metrics, "ingest_http_requests_total", status="500")


async def test_a_client_that_disconnects_is_not_a_500(services: dict[str, Running]) -> None:
    ingest = services["ingest"]
    async with httpx.AsyncClient(base_url=ingest.address, timeout=10) as client:
        before = await _errors(client)
        host, port = ingest.address.removeprefix("http://").split(":")
        for _ in range(3):  # announce 1000 bytes, send 10, hang up
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(
                    b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\n"
                    + f"Authorization: Bearer {API_KEYS[0]}\r\n".encode()
                    + b"Content-Type: application/cloudevents+json\r\n"
                    + b'Content-Length: 1000\r\n\r\n{"specver'
                )
                await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        after = await _errors(client)
    log = "\n".join(stack.log_tail(ingest.state, "ingest", 200))
    assert after == before, f"disconnects counted as 500s: {before} -> {after}"
    assert "unhandled error" not in log, log[-2000:]
    assert "ClientDisconnect" not in log, log[-2000:]


@pytest.mark.parametrize(
    "query",
    [
        "from=0001-01-01T00:00:00%2B01:00",  # year 0 in UTC: a 500 before issue 13
        "to=9999-12-31T23:59:59-01:00",  # past year 9999 in UTC
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ],
)
async def test_out_of_range_periods_are_422_naming_the_parameter(
    services: dict[str, Running], query: str
) -> None:
    """Issue 13 part 5: a period with no UTC equivalent (or backwards) is the client's error,
    on every attribution route that takes one; the parameter rules themselves are in
    tests/conformance/test_parameters.py."""
    async with httpx.AsyncClient(base_url=services["attribution"].address, headers=AUTH) as c:
        for path in ("/v1/summary", "/v1/sharers", "/v1/report"):
            response = await c.get(f"{path}?{query}")
            assert response.status_code == 422, (path, query, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            fields = {e["field"] for e in response.json()["errors"]}
            assert fields & {"from", "to"}, (path, query, fields)


async def test_ce_type_never_becomes_a_metric_label(services: dict[str, Running]) -> None:
    """The raw ``ce-type`` header of a refused binary-mode event is not a label value."""
    forged = f"attacker.{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=services["ingest"].address, headers=AUTH) as client:
        for body in (b"{not json", b"[]", b'{"employee_id": 1}'):
            response = await client.post(
                "/v1/events",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "ce-specversion": "1.0",
                    "ce-type": forged,
                    "ce-id": "e1",
                    "ce-source": "/security",
                },
            )
            assert response.status_code == 422, response.text
        metrics = (await client.get("/metrics")).text
    assert forged not in metrics
    assert _counter(metrics, "ingest_events_rejected_total", type="unknown") >= 3


async def test_postgres_down_is_503_with_retry_after(
    services: dict[str, Running], own_postgres: Running
) -> None:
    """Attribution and the notifier (every ``/v1`` GET route) and ingest's links, with a valid
    key, while PostgreSQL is stopped. Stops this module's PostgreSQL: the last test."""
    own_postgres.stop()
    problems = []
    for service in ("attribution", "notifier"):
        async with httpx.AsyncClient(
            base_url=services[service].address, headers=AUTH, timeout=30
        ) as client:
            for method, path in protected_routes(service):
                if method != "GET":
                    continue
                for _ in range(2):  # the first use of a pool connection, then a new connect
                    try:
                        response = await client.get(path)
                    except httpx.TransportError as exc:
                        problems.append(f"{service} {path}: {type(exc).__name__}")
                        continue
                    retry = response.headers.get("retry-after", "")
                    if not (
                        response.status_code == 503
                        and retry.isdigit()
                        and response.headers["content-type"] == "application/problem+json"
                    ):
                        problems.append(f"{service} {path}: {response.status_code} {retry!r}")
    async with httpx.AsyncClient(base_url=services["ingest"].address, headers=AUTH) as client:
        link = {"employee_id": "e1", "target_url": "https://careers.example.com/jobs/1"}
        response = await client.post("/v1/links", json=link)
        if response.status_code != 503 or not response.headers.get("retry-after"):
            problems.append(f"ingest /v1/links: {response.status_code}")
    for service in ("attribution", "notifier"):
        log = "\n".join(stack.log_tail(services[service].state, service, 300))
        if "unhandled error" in log:
            problems.append(f"{service} logged an unhandled error")
    assert not problems, problems
