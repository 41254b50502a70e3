"""The committed AsyncAPI document describes the topics and events the code really uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import yaml

from shared.cloudevents import from_kafka, to_kafka
from shared.events import BY_TYPE, INBOUND, INBOUND_TYPES, OUTBOUND, TOPICS, InboundEvent
from shared.kafka import topic_configs
from shared.settings import KafkaSettings

DOC = yaml.safe_load((Path(__file__).parents[2] / "docs" / "asyncapi.yaml").read_text())
MESSAGES: dict[str, Any] = DOC["components"]["messages"]
DOCUMENTATION_ONLY = {"description", "examples", "if", "then", "title"}


def _normalise(schema: Any) -> Any:
    """A schema without documentation, with order-free lists as sets."""
    if isinstance(schema, dict):
        return {
            k: (frozenset(map(orjson.dumps, v)) if k in ("enum", "required") else _normalise(v))
            for k, v in schema.items()
            if k not in DOCUMENTATION_ONLY
        }
    if isinstance(schema, list):
        return [_normalise(v) for v in schema]
    return schema


def test_version_and_servers() -> None:
    assert DOC["asyncapi"].startswith("3.")
    assert DOC["servers"]["local"]["host"] == "127.0.0.1:19092"


def test_documented_channels_match_the_topics() -> None:
    partitions = {t.name: t.partitions for t in TOPICS}
    for channel in DOC["channels"].values():
        assert channel["address"] in partitions, channel["address"]
        assert channel["bindings"]["kafka"]["partitions"] == partitions[channel["address"]]


def test_documented_topic_configs_are_the_ones_created() -> None:
    """Compaction and retention (erasure: what may stay on a topic, and how long) as
    ``ensure_topics`` creates the topics with the default settings."""
    created = {t.name: topic_configs(t, KafkaSettings()) for t in TOPICS}
    for channel in DOC["channels"].values():
        documented = channel["bindings"]["kafka"].get("topicConfiguration", {}) | channel.get(
            "x-kafka-topic-configuration", {}
        )
        as_created = {
            k: ",".join(v) if isinstance(v, list) else str(v) for k, v in documented.items()
        }
        assert as_created == created[channel["address"]], channel["address"]


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
def test_every_inbound_event_is_documented_on_its_topic(event_type: str) -> None:
    (name,) = [k for k, m in MESSAGES.items() if m["name"] == event_type]
    channels = [
        c
        for c in DOC["channels"].values()
        if f"#/components/messages/{name}" in str(c.get("messages"))
    ]
    assert [c["address"] for c in channels] == [BY_TYPE[event_type].topic.name]


def test_payload_schemas_equal_the_models() -> None:
    _, generated = msgspec.json.schema_components(
        [InboundEvent], ref_template="#/components/schemas/{name}"
    )
    documented = DOC["components"]["schemas"]
    for cls in INBOUND:
        data = cls.__annotations__["data"]
        name = data if isinstance(data, str) else data.__name__
        assert _normalise(documented[name]) == _normalise(generated[name]), name


def test_examples_are_valid_records() -> None:
    for message in MESSAGES.values():
        if message["name"] not in INBOUND_TYPES:
            continue
        for example in message.get("examples", []):
            headers = [(k, str(v).encode()) for k, v in example["headers"].items()]
            event = from_kafka(headers, orjson.dumps(example["payload"]))
            key, _, _ = to_kafka(event)
            if event.key_field in example["payload"]:
                assert key.decode() == example["payload"][event.key_field]
            else:  # a key that is not a data field (preferences): its schema's example
                ref = message["bindings"]["kafka"]["key"]["$ref"].rsplit("/", 1)[1]
                assert key.decode() in DOC["components"]["schemas"][ref]["examples"]


def test_every_topic_is_documented() -> None:
    documented = {channel["address"] for channel in DOC["channels"].values()}
    assert documented == {t.name for t in TOPICS}


@pytest.mark.parametrize("cls", OUTBOUND, ids=lambda c: str(c.__struct_config__.tag))
def test_every_output_event_is_documented_on_its_topic(cls: Any) -> None:
    event_type = str(cls.__struct_config__.tag)
    (name,) = [k for k, m in MESSAGES.items() if m["name"] == event_type]
    channels = {
        key: c["address"]
        for key, c in DOC["channels"].items()
        if f"#/components/messages/{name}" in str(c.get("messages"))
    }
    assert list(channels.values()) == [cls.topic.name]
    sends = [
        o
        for o in DOC["operations"].values()
        if o["action"] == "send" and o["channel"]["$ref"] == f"#/channels/{next(iter(channels))}"
    ]
    assert sends, f"no send operation for {event_type}"


def test_output_payload_schemas_equal_the_models() -> None:
    _, generated = msgspec.json.schema_components(
        list(OUTBOUND), ref_template="#/components/schemas/{name}"
    )
    documented = DOC["components"]["schemas"]
    for name in (
        "CreditAssigned",
        "CreditShare",
        "RecognitionDue",
        "RecognitionFacts",
        "LinkedInConnection",
    ):
        assert _normalise(documented[name]) == _normalise(generated[name]), name


def test_output_examples_are_valid_records() -> None:
    outbound = {str(cls.__struct_config__.tag) for cls in OUTBOUND}
    checked = 0
    for message in MESSAGES.values():
        if message["name"] not in outbound:
            continue
        for example in message.get("examples", []):
            headers = [(k, str(v).encode()) for k, v in example["headers"].items()]
            event = from_kafka(headers, orjson.dumps(example["payload"]))
            key, _, _ = to_kafka(event)
            assert key.decode() == example["payload"][event.key_field]
            checked += 1
    assert checked == len(OUTBOUND)
