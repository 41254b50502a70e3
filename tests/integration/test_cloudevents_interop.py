"""Interop with clients nobody here wrote, through the real ingest and the real broker.

The official CloudEvents Python SDK (``cloudevents`` 2.2.0, its v1 API) publishes in
structured and in binary mode, as its users would call it; librdkafka (``confluent-kafka``)
reads every record back from the topic and the SDK's own Kafka binding
(``cloudevents.v1.kafka.from_binary``) turns each into an event again: what went in comes out,
extension attributes included (Kafka binding §3.2.3: every attribute, extensions too, is a
``ce_`` header).

Also here, through the real service, what the CloudEvents HTTP binding allows and ingest
refused before: an empty batch (§3.3.2 "The batch MAY be empty") and the SDK's binary mode
without a Content-Type (its default when ``datacontenttype`` is unset; a 415 before).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import to_binary as core_to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as CoreEvent
from cloudevents.v1.conversion import to_binary, to_structured
from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import KafkaMessage, from_binary
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.conftest import API_KEYS, Running

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
TOPIC = "ripples.links"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sdk_event(**extra: Any) -> CloudEvent:
    """A `link.clicked.v1` built with the SDK, as a producer using it would."""
    attributes = {
        "type": "ripples.link.clicked.v1",
        "source": "urn:interop:cloudevents-sdk",
        "id": f"sdk-{uuid.uuid4()}",
        "time": "2026-06-03T08:15:01Z",
        **extra,
    }
    code = f"Sdk{uuid.uuid4().hex[:9]}"
    data = {"link_code": code, "visitor_id": "vid-interop-0000001", "at": "2026-06-03T08:15:00Z"}
    return CloudEvent(attributes, data)


def read_back(bootstrap: str, ids: set[str], timeout_s: float = 30.0) -> dict[str, CloudEvent]:
    """Every record of the topic, read by librdkafka from the beginning (assigned partitions,
    no consumer group to join), decoded by the SDK's Kafka binding, until all ``ids`` are seen."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"interop-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "api.version.request": True,
        }
    )
    found: dict[str, CloudEvent] = {}
    try:
        partitions = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout_s
        while not ids <= found.keys() and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            headers = {name: value for name, value in message.headers() or []}
            if headers.get("ce_id", b"").decode() not in ids:
                continue  # another test's record on the shared broker
            event = from_binary(KafkaMessage(headers, message.key(), message.value()))
            found[event["id"]] = event
    finally:
        consumer.close()
    missing = ids - found.keys()
    assert not missing, f"never read back from {TOPIC}: {sorted(missing)}"
    return found


async def test_sdk_structured_and_binary_round_trip_through_kafka(
    client: httpx.AsyncClient, broker: Running
) -> None:
    structured = sdk_event(traceparent=TRACEPARENT, comexampleextension1="value")
    headers, body = to_structured(structured)
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 202, response.text

    binary = sdk_event(traceparent=TRACEPARENT, subject="plain-ascii")
    headers, body = to_binary(binary)
    assert "content-type" not in {k.lower() for k in headers}  # the SDK's default
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 202, response.text

    # The SDK's newer core API percent-encodes header values (HTTP binding §3.1.3.2).
    danish = sdk_event(traceparent=TRACEPARENT, subject="Kødbyen/Ørestad")
    attributes = {**danish.get_attributes(), "time": datetime(2026, 6, 3, 8, 15, 1, tzinfo=UTC)}
    core = CoreEvent(attributes, danish.get_data())
    message = core_to_binary(core, JSONFormat())
    assert message.headers["ce-subject"] == "K%C3%B8dbyen/%C3%98restad"
    response = await client.post(
        "/v1/events", content=message.body, headers={**message.headers, **AUTH}
    )
    assert response.status_code == 202, response.text

    sent = {e["id"]: e for e in (structured, binary, danish)}
    for event_id, got in read_back(broker.address, set(sent)).items():
        original = sent[event_id]
        for name in ("specversion", "id", "source", "type", "traceparent"):
            assert got[name] == original[name], name
        assert got["time"] == original["time"]
        assert got.get_data() == original.get_data()
        assert got["datacontenttype"] == "application/json"  # Kafka binding §3.2.1
        assert got["partitionkey"] == original.get_data()["link_code"].encode()  # the key
    assert read_back(broker.address, {structured["id"]})[structured["id"]][
        "comexampleextension1"
    ] == ("value")
    assert read_back(broker.address, {danish["id"]})[danish["id"]]["subject"] == "Kødbyen/Ørestad"


async def test_binary_mode_without_content_type_is_accepted(client: httpx.AsyncClient) -> None:
    """Before: 415 "content type '(none)' is not accepted here"."""
    headers, body = to_binary(sdk_event())
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 202, response.text


async def test_binary_header_values_are_percent_decoded(
    client: httpx.AsyncClient, broker: Running
) -> None:
    """HTTP binding §3.1.3.2, with the binding's own example value."""
    event = sdk_event()
    headers, body = to_binary(event)
    headers["ce-subject"] = "Euro%20%E2%82%AC%20%F0%9F%98%80"
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 202, response.text
    got = read_back(broker.address, {event["id"]})[event["id"]]
    assert got["subject"] == "Euro € 😀"


async def test_an_empty_batch_is_accepted_and_publishes_nothing(
    client: httpx.AsyncClient,
) -> None:
    """HTTP binding §3.3.2: "The batch MAY be empty". Before: 422 empty_batch."""
    response = await client.post(
        "/v1/events:batch",
        content=b"[]",
        headers={"Content-Type": "application/cloudevents-batch+json", **AUTH},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "accepted": 0}


async def test_datacontenttype_with_parameters_is_accepted(client: httpx.AsyncClient) -> None:
    """spec.md "datacontenttype" (RFC 2046 media type, parameters included): before, 422
    (only the bare `application/json` was taken)."""
    event = orjson.loads(to_structured(sdk_event())[1])
    event["datacontenttype"] = "application/json; charset=utf-8"
    response = await client.post(
        "/v1/events",
        content=orjson.dumps(event),
        headers={"Content-Type": "application/cloudevents+json; charset=utf-8", **AUTH},
    )
    assert response.status_code == 202, response.text
    headers, body = to_binary(sdk_event())
    headers["content-type"] = "application/json; charset=utf-8"
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 202, response.text


async def test_bad_attribute_names_and_values_are_422_naming_them(
    client: httpx.AsyncClient,
) -> None:
    """spec.md "Naming Conventions" and "Type System", through the real service."""
    event = orjson.loads(to_structured(sdk_event())[1])
    response = await client.post(
        "/v1/events",
        content=orjson.dumps({**event, "traceParent": TRACEPARENT, "myext": {"nested": 1}}),
        headers={"Content-Type": "application/cloudevents+json", **AUTH},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == {"traceParent", "myext"}
    headers, body = to_binary(sdk_event())
    headers["ce-subject"] = "%C0%A0"
    response = await client.post("/v1/events", content=body, headers={**headers, **AUTH})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["ce-subject"]
