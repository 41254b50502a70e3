"""Bad input the schema-driven fuzz rarely produces, each refused with a 4xx problem+json
by a real ingest process (and nothing of it published).

Already covered elsewhere, not repeated here: malformed JSON and batches, wrong content
types (415), bodies over the limit (413, also streamed), bad timestamps and negative counts
naming the field (tests/integration/test_ingest_api.py); webhook signatures and a replayed
Greenhouse delivery publishing nothing new (tests/connectors/test_ats.py)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests import samples
from tests.conftest import Running
from tests.reliability.conftest import AUTH, problem

pytestmark = pytest.mark.integration

STRUCTURED = {"Content-Type": "application/cloudevents+json"} | AUTH
BATCH = {"Content-Type": "application/cloudevents-batch+json"} | AUTH


@pytest.fixture
async def client(armed_ingest: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=armed_ingest.address, timeout=15) as c:
        yield c


def _employee(**data: object) -> dict[str, object]:
    base = dict(samples.DATA["ripples.employee.upserted.v1"])
    return samples.event("ripples.employee.upserted.v1", base | data)


@pytest.mark.parametrize("field", ["employee_id", "display_name", "linkedin_member_urn"])
async def test_nul_characters_are_refused_before_publishing(
    client: httpx.AsyncClient, field: str
) -> None:
    # The fuzz found this: JSON allows U+0000, PostgreSQL text does not.
    sent = _employee(**{field: "a\u0000b"})
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert body["errors"] == [{"field": f"data.{field}", "detail": "must not contain U+0000"}]
    batch = [_employee(), sent]
    body = problem(
        await client.post("/v1/events:batch", content=orjson.dumps(batch), headers=BATCH), 422
    )
    assert body["errors"] == [
        {"field": f"data.{field}", "detail": "must not contain U+0000", "index": 1}
    ]


async def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: httpx.AsyncClient) -> None:
    sent = _employee(display_name="C:\\u0000 folder")
    response = await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "body",
    [
        # Invalid UTF-8 inside an otherwise well-formed event.
        orjson.dumps(_employee(display_name="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\xc3\x28"),
        # A lone surrogate escape.
        orjson.dumps(_employee(display_name="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\\ud800"),
        b"\xef\xbb\xbf" + orjson.dumps(_employee()),  # a byte-order mark
        b"",
        b" " * 100,
    ],
    ids=["invalid-utf8", "lone-surrogate", "bom", "empty", "blank"],
)
async def test_undecodable_bodies(client: httpx.AsyncClient, body: bytes) -> None:
    problem(await client.post("/v1/events", content=body, headers=STRUCTURED), 422)
    batch = await client.post("/v1/events:batch", content=b"[" + body + b"]", headers=BATCH)
    if body.strip():
        problem(batch, 422)
    else:  # `[]` is an empty batch, which is valid (CloudEvents HTTP binding §3.3.2)
        assert batch.status_code == 202, batch.text


@pytest.mark.parametrize("depth", [64, 1_000, 100_000])
async def test_deep_nesting(client: httpx.AsyncClient, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    event = orjson.dumps(_employee(display_name="PLACEHOLDER")).replace(b'"PLACEHOLDER"', nested)
    problem(await client.post("/v1/events", content=event, headers=STRUCTURED), 422)
    problem(await client.post("/v1/events:batch", content=nested, headers=BATCH), 422)
    extra = orjson.dumps(_employee(display_name="x"))[:-2] + b',"deep":' + nested + b"}}"
    # Unknown data fields are ignored, but not at any depth: the answer is 202 or 422.
    response = await client.post("/v1/events", content=extra, headers=STRUCTURED)
    if response.status_code != 202:
        problem(response, 422)


@pytest.mark.parametrize(
    "event_type", ["ripples.unknown.v1", "ripples.employee.upserted.v2", "", "x" * 10_000]
)
async def test_unknown_event_types(client: httpx.AsyncClient, event_type: str) -> None:
    sent = _employee() | {"type": event_type}
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert "type" in str(body["errors"])
    body = problem(
        await client.post("/v1/events:batch", content=orjson.dumps([sent]), headers=BATCH), 422
    )
    assert "type" in str(body["errors"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time", "2026-13-40T99:00:00Z"),
        ("time", "1700000000"),
        ("time", ""),
        ("id", ""),
        ("source", ""),
        ("specversion", "0.3"),
    ],
)
async def test_bad_envelope_attributes(client: httpx.AsyncClient, field: str, value: str) -> None:
    sent = _employee() | {field: value}
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert field in str(body["errors"])


async def test_negative_counts_in_a_batch_name_the_index(client: httpx.AsyncClient) -> None:
    good = samples.event("ripples.post.metrics.v1")
    bad = samples.event(
        "ripples.post.metrics.v1", samples.DATA["ripples.post.metrics.v1"] | {"clicks": -5}
    )
    body = problem(
        await client.post("/v1/events:batch", content=orjson.dumps([good, bad]), headers=BATCH),
        422,
    )
    assert body["errors"] == [
        {"field": "data.clicks", "detail": body["errors"][0]["detail"], "index": 1}  # type: ignore[index]
    ]


def _raw(address: str, request: bytes) -> bytes:
    """Send raw bytes over one connection; everything the server answers before closing."""
    parts = urlsplit(address)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def _status_and_body(answer: bytes) -> tuple[bytes, bytes, dict[bytes, bytes]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines)}
    return status_line, body, headers


@pytest.mark.parametrize("size", [20 * 1024, 100 * 1024, 1024 * 1024])
def test_huge_headers_get_431(armed_ingest: Running, size: int) -> None:
    """uvicorn's httptools parser sets no header limit: a 100 KB and a 1 MB header were
    accepted (202) before ingest enforced INGEST_MAX_HEADER_BYTES (16 KiB). Now: 431
    problem+json, never a 5xx or a connection closed without an answer."""
    body = orjson.dumps(samples.event("ripples.applicant.erased.v1"))
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n"
        b"Authorization: " + AUTH["Authorization"].encode() + b"\r\n"
        b"Content-Type: application/cloudevents+json\r\n"
        b"X-Padding: " + b"a" * size + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    status_line, answer, headers = _status_and_body(_raw(armed_ingest.address, request))
    assert status_line.startswith(b"HTTP/1.1 431"), status_line
    assert headers[b"content-type"] == b"application/problem+json"
    assert orjson.loads(answer)["status"] == 431


def test_many_headers_get_431(armed_ingest: Running) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, uuid.uuid4().hex.encode()) for i in range(5_000))
    request = b"GET /livez HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n" + headers + b"\r\n"
    status_line, _, _ = _status_and_body(_raw(armed_ingest.address, request))
    assert status_line.startswith(b"HTTP/1.1 431"), status_line


async def test_a_long_url_gets_431(client: httpx.AsyncClient) -> None:
    problem(await client.get("/r/" + "a" * 20_000), 431)


async def test_headers_under_the_limit_pass(client: httpx.AsyncClient) -> None:
    sent = samples.event("ripples.applicant.erased.v1")
    headers = STRUCTURED | {"X-Padding": "a" * 8_000}
    response = await client.post("/v1/events", content=orjson.dumps(sent), headers=headers)
    assert response.status_code == 202, response.text


async def test_invalid_utf8_in_links_and_webhooks(client: httpx.AsyncClient) -> None:
    """msgspec raises UnicodeDecodeError, not a MsgspecError, for invalid UTF-8 inside a
    string: these answered 500 before (the Teamtailor webhook is reachable without a key)."""
    link = b'{"target_url": "https://careers.example.com/\xc3\x28", "owner_employee_id": "e"}'
    problem(await client.post("/v1/links", content=link, headers=AUTH), 422)
    signed = b'{"payload": "e30=", "signature": "\xc3\x28"}'
    problem(await client.post("/v1/webhooks/teamtailor", content=signed), 401)
