"""The ingest API against a real broker: every event type round-trips HTTP → Kafka → decoded
equal, and every error path answers problem+json."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import msgspec
import orjson
import pytest

from shared import sealing
from shared.cloudevents import parse_structured
from shared.events import BY_TYPE, INBOUND_TYPES, Envelope
from tests import samples, sealed
from tests.conftest import API_KEYS, Running, metric, read_events

pytestmark = pytest.mark.integration

STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def read_opened(
    broker: Running, ingest: Running, topic: str, ids: set[str]
) -> dict[str, tuple[bytes | None, Envelope]]:
    """The events as sent: ingest's sealed records opened with its key table."""
    lookup = sealed.key_table(ingest.env["DATABASE_URL"])
    return await sealed.read_events(broker.address, topic, ids, lookup)


def assert_as_sent(received: Envelope, sent: dict[str, object]) -> None:
    """``received`` (opened) is the event ``sent``. An erasure is the exception: with
    ``INGEST_SHRED_GRACE_S`` 0 (the test services') it shreds the applicant's key in its own
    transaction, so its record, sealed under that key, no longer opens and names the
    applicant by the key id only (docs/asyncapi.yaml, "Sealed personal fields")."""
    expected = parse_structured(orjson.dumps(sent))
    if received.type == "ripples.applicant.erased.v1":
        kid = getattr(received.data, "applicant_id", "")
        assert sealing.is_kid(kid), kid
        data = msgspec.structs.replace(expected.data, applicant_id=kid)
        expected = msgspec.structs.replace(expected, data=data)
    assert received == expected


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
async def test_every_type_round_trips_structured(
    client: httpx.AsyncClient, broker: Running, ingest: Running, event_type: str
) -> None:
    sent = samples.event(event_type, subject="something")
    response = await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == sent["id"]

    topic = BY_TYPE[event_type].topic.name
    ((key, received),) = (await read_opened(broker, ingest, topic, {sent["id"]})).values()
    assert_as_sent(received, sent)
    assert received.type == event_type
    if event_type.startswith("ripples.applicant."):  # sealed: the record key is the kid
        assert key is not None
        assert sealing.is_kid(key.decode())
    else:
        assert key == samples.KEYS[event_type].encode()


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
async def test_every_type_round_trips_binary(
    client: httpx.AsyncClient, broker: Running, ingest: Running, event_type: str
) -> None:
    sent = samples.event(event_type)
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": sent["id"],
        "ce-source": sent["source"],
        "ce-type": event_type,
        "ce-time": sent["time"],
    }
    response = await client.post("/v1/events", content=orjson.dumps(sent["data"]), headers=headers)
    assert response.status_code == 202, response.text

    topic = BY_TYPE[event_type].topic.name
    ((_, received),) = (await read_opened(broker, ingest, topic, {sent["id"]})).values()
    assert_as_sent(received, sent)


async def test_batch_publishes_every_event(
    client: httpx.AsyncClient, broker: Running, ingest: Running
) -> None:
    sent = [samples.event(t) for t in INBOUND_TYPES for _ in range(3)]
    response = await client.post("/v1/events:batch", content=orjson.dumps(sent), headers=BATCH)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(sent)
    for event_type in INBOUND_TYPES:
        ids = {e["id"] for e in sent if e["type"] == event_type}
        found = await read_opened(broker, ingest, BY_TYPE[event_type].topic.name, ids)
        assert {e.type for _, e in found.values()} == {event_type}


async def test_missing_required_field_names_the_field(client: httpx.AsyncClient) -> None:
    sent = samples.event("ripples.post.metrics.v1")
    del sent["data"]["post_id"]
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert body["errors"] == [{"field": "data.post_id", "detail": "required field is missing"}]
    assert "data.post_id" in str(body["detail"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"impressions": -1}, "data.impressions"),
        ({"observed_at": "2026-06-04T08:00:00"}, "data.observed_at"),
        ({"observed_at": "yesterday"}, "data.observed_at"),
        ({"clicks": "many"}, "data.clicks"),
        ({"post_id": ""}, "data.post_id"),
    ],
)
async def test_invalid_values_name_the_field(
    client: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    sent = samples.event(
        "ripples.post.metrics.v1", {**samples.DATA["ripples.post.metrics.v1"], **change}
    )
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert [e["field"] for e in body["errors"]] == [field]


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"type": "ripples.unknown.v1"}, "type"),
        ({"id": ""}, "id"),
        ({"time": "not a time"}, "time"),
    ],
)
async def test_invalid_envelope_names_the_attribute(
    client: httpx.AsyncClient, attributes: dict[str, str], field: str
) -> None:
    sent = samples.event("ripples.applicant.erased.v1") | attributes
    body = problem(
        await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED), 422
    )
    assert [e["field"] for e in body["errors"]] == [field]


async def test_binary_mode_names_the_missing_header(client: httpx.AsyncClient) -> None:
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-source": "urn:x",
        "ce-type": "ripples.applicant.erased.v1",
        "ce-time": "2026-06-03T08:15:01Z",
    }
    body = problem(
        await client.post("/v1/events", content=b'{"applicant_id": "a"}', headers=headers), 422
    )
    assert [e["field"] for e in body["errors"]] == ["ce-id"]


async def test_conditional_requirements(client: httpx.AsyncClient) -> None:
    post = dict(samples.DATA["ripples.post.published.v1"])
    del post["employee_id"]
    body = problem(
        await client.post(
            "/v1/events",
            content=orjson.dumps(samples.event("ripples.post.published.v1", post)),
            headers=STRUCTURED,
        ),
        422,
    )
    assert "employee_id" in str(body["errors"])

    company = post | {"author_kind": "company"}
    response = await client.post(
        "/v1/events",
        content=orjson.dumps(samples.event("ripples.post.published.v1", company)),
        headers=STRUCTURED,
    )
    assert response.status_code == 202


async def test_bad_batch_names_every_bad_index_and_publishes_nothing(
    client: httpx.AsyncClient, broker: Running
) -> None:
    good = [samples.event("ripples.link.clicked.v1") for _ in range(4)]
    bad_one = samples.event("ripples.link.clicked.v1")
    del bad_one["data"]["visitor_id"]
    bad_two = samples.event("ripples.no.such.type.v1", {})
    batch = [good[0], bad_one, good[1], bad_two, good[2]]
    body = problem(
        await client.post("/v1/events:batch", content=orjson.dumps(batch), headers=BATCH), 422
    )
    errors = body["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (1, "data.visitor_id"),
        (3, "type"),
    ]

    # Nothing of the refused batch reached the topic: a later marker event arrives alone.
    marker = good[3]
    response = await client.post("/v1/events", content=orjson.dumps(marker), headers=STRUCTURED)
    assert response.status_code == 202
    found = await read_events(broker.address, "ripples.links", {marker["id"]})
    assert marker["id"] in found
    refused = {good[0]["id"], good[1]["id"], good[2]["id"]}
    with pytest.raises(pytest.fail.Exception):
        await read_events(broker.address, "ripples.links", refused, timeout_s=2)


@pytest.mark.parametrize("body", [b"{}", b"[1, 2", b"\xff\xfe"])
async def test_malformed_batches(client: httpx.AsyncClient, body: bytes) -> None:
    problem(await client.post("/v1/events:batch", content=body, headers=BATCH), 422)


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe{}", b"[]", b"null", b'"x"'])
async def test_malformed_single_events(client: httpx.AsyncClient, body: bytes) -> None:
    problem(await client.post("/v1/events", content=body, headers=STRUCTURED), 422)


async def test_unknown_data_fields_are_ignored(client: httpx.AsyncClient, broker: Running) -> None:
    data = samples.DATA["ripples.link.clicked.v1"] | {"browser": "Firefox"}
    sent = samples.event("ripples.link.clicked.v1", data)
    response = await client.post("/v1/events", content=orjson.dumps(sent), headers=STRUCTURED)
    assert response.status_code == 202
    ((_, received),) = (await read_events(broker.address, "ripples.links", {sent["id"]})).values()
    assert not hasattr(received.data, "browser")


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer", f"Token {API_KEYS[0]}"]
)
async def test_requests_without_a_valid_key_are_refused(
    ingest: Running, authorization: str | None
) -> None:
    headers = dict(STRUCTURED)
    if authorization is not None:
        headers["Authorization"] = authorization
    event = orjson.dumps(samples.event("ripples.applicant.erased.v1"))
    async with httpx.AsyncClient(base_url=ingest.address) as anonymous:
        for path in ("/v1/events", "/v1/events:batch"):
            response = await anonymous.post(path, content=event, headers=headers)
            problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")


async def test_every_configured_key_is_valid(ingest: Running) -> None:
    for key in API_KEYS:
        async with httpx.AsyncClient(
            base_url=ingest.address, headers={"Authorization": f"Bearer {key}"}
        ) as c:
            response = await c.post(
                "/v1/events",
                headers=STRUCTURED,
                content=orjson.dumps(samples.event("ripples.applicant.erased.v1")),
            )
            assert response.status_code == 202


async def test_bodies_over_the_limit_get_413(client: httpx.AsyncClient) -> None:
    huge = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    problem(await client.post("/v1/events:batch", content=huge, headers=BATCH), 413)

    async def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(6):
            yield b" " * (1024 * 1024)

    problem(await client.post("/v1/events", content=chunks(), headers=STRUCTURED), 413)


async def test_too_many_events_in_a_batch_get_413(client: httpx.AsyncClient) -> None:
    sent = [samples.event("ripples.applicant.erased.v1") for _ in range(1001)]
    body = problem(
        await client.post("/v1/events:batch", content=orjson.dumps(sent), headers=BATCH), 413
    )
    assert "1000" in str(body["detail"])


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/events", "text/plain"),
        ("/v1/events", "application/json"),  # JSON without ce-* headers is not a CloudEvent
        ("/v1/events", "application/cloudevents-batch+json"),
        ("/v1/events:batch", "application/cloudevents+json"),
        ("/v1/events:batch", "application/json"),
    ],
)
async def test_wrong_content_types_get_415(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    body = orjson.dumps(samples.event("ripples.applicant.erased.v1"))
    problem(await client.post(path, content=body, headers={"Content-Type": content_type}), 415)


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    problem(await client.get("/v1/nothing"), 404)
    problem(await client.get("/v1/events"), 405)


async def test_operational_endpoints(client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        assert (await anonymous.get("/livez")).json() == {"status": "live"}
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"broker": "ok", "database": "ok"}
        spec = (await anonymous.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")
        assert {"/v1/events", "/v1/events:batch"} <= spec["paths"].keys()


async def test_metrics_count_requests_and_events(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    good = samples.event("ripples.link.clicked.v1")
    bad = samples.event("ripples.link.clicked.v1", {"link_code": "x"})
    await client.post("/v1/events", content=orjson.dumps(good), headers=STRUCTURED)
    await client.post("/v1/events", content=orjson.dumps(bad), headers=STRUCTURED)
    after = (await client.get("/metrics")).text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("ingest_events_accepted_total", type="ripples.link.clicked.v1") == 1
    assert (
        delta(
            "ingest_events_rejected_total", type="ripples.link.clicked.v1", reason="missing_field"
        )
        == 1
    )
    assert delta("ingest_http_requests_total", route="/v1/events", method="POST", status="202") == 1
    assert delta("ingest_http_requests_total", route="/v1/events", method="POST", status="422") == 1
    assert delta("ingest_publish_duration_seconds_count") >= 1
    assert metric(after, "ingest_broker_up") == 1
    # Labels never carry ids or raw paths.
    assert "evt-" not in after
    assert "aB3xY9" not in after
    assert not re.search(r'route="/v1/nothing"', after)


async def test_concurrent_posts_are_all_acknowledged(
    client: httpx.AsyncClient, broker: Running
) -> None:
    sent = [
        samples.event(
            "ripples.post.engagement.v1",
            samples.DATA["ripples.post.engagement.v1"]
            | {"post_id": f"post-{uuid.uuid4().hex[:6]}"},
        )
        for _ in range(60)
    ]
    responses = await asyncio.gather(
        *(client.post("/v1/events", content=orjson.dumps(e), headers=STRUCTURED) for e in sent)
    )
    assert [r.status_code for r in responses] == [202] * len(sent)
    found = await read_events(broker.address, "ripples.posts", {e["id"] for e in sent})
    assert len(found) == len(sent)
    # Every event's key is its post: one post's events stay on one partition, in order.
    assert {key for key, _ in found.values()} == {e["data"]["post_id"].encode() for e in sent}


def test_samples_are_valid() -> None:
    for event_type in INBOUND_TYPES:
        decoded = msgspec.json.decode(
            orjson.dumps(samples.event(event_type)), type=BY_TYPE[event_type]
        )
        assert decoded.type == event_type
