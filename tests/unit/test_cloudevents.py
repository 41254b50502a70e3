"""The CloudEvents bindings: HTTP structured, binary and batch; Kafka binary mode."""

from __future__ import annotations

import orjson
import pytest

from shared import cloudevents as ce
from shared.events import INBOUND_TYPES
from tests import samples


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
def test_kafka_binary_mode_round_trip(event_type: str) -> None:
    event = ce.parse_structured(orjson.dumps(samples.event(event_type, subject="s-1")))
    key, value, headers = ce.to_kafka(event)
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == event_type.encode()
    assert names["ce_id"] == event.id.encode()
    assert names["ce_source"] == b"urn:ripples:test"
    assert names["ce_time"] == b"2026-06-03T08:15:01Z"
    assert names["ce_subject"] == b"s-1"
    assert names["content-type"] == b"application/json"
    assert key == samples.KEYS[event_type].encode()
    # The value is the data alone (binary mode), not the envelope.
    assert orjson.loads(value).keys() <= set(samples.DATA[event_type]) | {
        "url",
        "reshare_of",
        "link_codes",
        "department",
        "notify",
        "visitor_id",
        "link_code",
        "referrer_employee_id",
        "source",
        "employee_id",
        "job_id",
        "post_id",
        "actor_employee_id",
        "linkedin_member_urn",
    }
    assert ce.from_kafka(headers, value) == event


def test_kafka_records_are_to_kafka_with_the_topic() -> None:
    """The batch form gives, event by event, the topic and exactly to_kafka's record."""
    sent = [samples.event(t) for t in INBOUND_TYPES]
    sent += [
        samples.event(t, subject="s-1", dataschema="https://x.example/s", time=moment)
        for t, moment in zip(
            INBOUND_TYPES, ["2026-06-03T10:15:01+02:00", "2026-06-03T10:15:01.250Z"], strict=False
        )
    ]
    events = ce.parse_batch(orjson.dumps(sent))
    records = ce.kafka_records(events)
    assert len(records) == len(events) == len(sent)
    for event, (topic, key, value, headers) in zip(events, records, strict=True):
        assert topic == event.topic.name
        assert (key, value, headers) == ce.to_kafka(event)
        assert ce.from_kafka(headers, value) == event


def test_kafka_times_keep_their_offset() -> None:
    event = ce.parse_structured(
        orjson.dumps(samples.event("ripples.applicant.erased.v1", time="2026-06-03T10:15:01+02:00"))
    )
    _, value, headers = ce.to_kafka(event)
    assert dict(headers)["ce_time"] == b"2026-06-03T10:15:01+02:00"
    assert ce.from_kafka(headers, value).time == event.time


def test_from_kafka_refuses_what_is_not_a_contract_event() -> None:
    with pytest.raises(ce.InvalidEvent, match="unknown event type"):
        ce.from_kafka([("ce_type", b"x.v1")], b"{}")
    event = ce.parse_structured(orjson.dumps(samples.event("ripples.link.clicked.v1")))
    _, _, headers = ce.to_kafka(event)
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.from_kafka(headers, b'{"link_code": "abc"}')
    assert caught.value.errors[0].field == "data.visitor_id"


def test_binary_mode_equals_structured_mode() -> None:
    sent = samples.event("ripples.post.engagement.v1", subject="post")
    headers = {f"ce-{k}": str(v) for k, v in sent.items() if k != "data"}
    binary = ce.parse_binary(headers, orjson.dumps(sent["data"]))
    assert binary == ce.parse_structured(orjson.dumps(sent))


def test_binary_mode_errors_name_headers_and_fields() -> None:
    sent = samples.event("ripples.post.engagement.v1")
    headers = {f"ce-{k}": str(v) for k, v in sent.items() if k not in ("data", "source")}
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_binary(headers, orjson.dumps(sent["data"]))
    assert [e.field for e in caught.value.errors] == ["ce-source"]
    headers["ce-source"] = "x"
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_binary(headers, b"{not json")
    assert caught.value.errors[0].reason == "malformed"


def test_batch_names_each_bad_index() -> None:
    good = samples.event("ripples.applicant.erased.v1")
    bad = samples.event("ripples.applicant.erased.v1", {"applicant_id": 7})
    body = orjson.dumps([good, bad, good, {"type": "nope"}, 5])
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_batch(body)
    found = [(e.index, e.field) for e in caught.value.errors]
    assert found == [(1, "data.applicant_id"), (3, "type"), (4, "$")]
    assert caught.value.event_types == ["ripples.applicant.erased.v1", "unknown", "unknown"]


def test_batch_of_valid_events() -> None:
    sent = [samples.event(t) for t in INBOUND_TYPES]
    events = ce.parse_batch(orjson.dumps(sent))
    assert [e.type for e in events] == list(INBOUND_TYPES)


@pytest.mark.parametrize(
    ("body", "reason"), [(b"[]", "empty_batch"), (b"{}", "invalid"), (b"[", "malformed")]
)
def test_batch_shapes(body: bytes, reason: str) -> None:
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_batch(body)
    assert caught.value.errors[0].reason == reason


@pytest.mark.parametrize(
    ("header", "media"),
    [
        ("application/cloudevents+json; charset=utf-8", "application/cloudevents+json"),
        ("Application/JSON", "application/json"),
        (None, ""),
    ],
)
def test_media_type(header: str | None, media: str) -> None:
    assert ce.media_type(header) == media


def test_deeply_nested_input_is_refused_not_crashed() -> None:
    deep = b'{"data": ' * 10_000 + b"{}" + b"}" * 10_000
    with pytest.raises(ce.InvalidEvent):
        ce.parse_structured(deep)


def test_output_events_round_trip_on_kafka() -> None:
    from datetime import UTC, datetime

    from shared.events import (
        CreditAssigned,
        CreditAssignedEvent,
        CreditShare,
        RecognitionDue,
        RecognitionDueEvent,
        RecognitionFacts,
    )

    at = datetime(2026, 6, 5, 12, tzinfo=UTC)
    credit = CreditAssignedEvent(
        specversion="1.0",
        id="credit:app-1:applied:3",
        source="urn:ripples:attribution",
        time=at,
        data=CreditAssigned(
            applicant_id="app-1",
            conversion="applied",
            job_id="job-1",
            at=at,
            credit={
                "linear": [
                    CreditShare(employee_id="e1", ring=1, weight=0.5),
                    CreditShare(employee_id=None, ring=0, weight=0.5),
                ]
            },
        ),
    )
    due = RecognitionDueEvent(
        specversion="1.0",
        id="reach_milestone:e1:1000",
        source="urn:ripples:attribution",
        time=at,
        data=RecognitionDue(
            recognition_id="reach_milestone:e1:1000",
            kind="reach_milestone",
            employee_id="e1",
            due_at=at,
            facts=RecognitionFacts(threshold=1000),
        ),
    )
    for event in (credit, due):
        _, value, headers = ce.to_kafka(event)
        assert ce.from_kafka(headers, value) == event
    assert ce.to_kafka(due)[0] == b"e1"
    assert ce.to_kafka(credit)[0] == b"app-1"


def test_ingest_does_not_take_output_events() -> None:
    event = samples.event("ripples.applicant.erased.v1", type="ripples.recognition.due.v1")
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_structured(orjson.dumps(event))
    assert caught.value.errors[0].field == "type"
