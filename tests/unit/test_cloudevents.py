"""The CloudEvents bindings: HTTP structured, binary and batch; Kafka binary mode.

The rules are those of the CloudEvents 1.0 specification (github.com/cloudevents/spec,
cloudevents/spec.md, formats/json-format.md, bindings/http-protocol-binding.md 1.0.2,
bindings/kafka-protocol-binding.md); each test below names the section it holds to."""

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


@pytest.mark.parametrize(("body", "reason"), [(b"{}", "invalid"), (b"[", "malformed")])
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


# --- the specification's rules, one test each ------------------------------------------------


def structured(**attributes: object) -> bytes:
    return orjson.dumps(samples.event("ripples.link.clicked.v1", **attributes))


def refused(body: bytes) -> list[str]:
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_structured(body)
    return [e.field for e in caught.value.errors]


@pytest.mark.parametrize("name", ["traceParent", "trace-parent", "trace_parent", "tracé", "Id"])
def test_attribute_names_are_lower_case_letters_and_digits(name: str) -> None:
    """spec.md "Naming Conventions": "attribute names MUST consist of lower-case letters ('a'
    to 'z') or digits ('0' to '9') from the ASCII character set"."""
    assert refused(structured(**{name: "x"})) == [name]
    headers = {**binary_headers(), f"ce-{name}".lower(): "x"}
    if not name.lower().isalnum() or not name.isascii():
        with pytest.raises(ce.InvalidEvent) as caught:
            ce.parse_binary(headers, DATA)
        assert caught.value.errors[0].field == f"ce-{name}".lower()


def test_long_attribute_names_are_only_discouraged() -> None:
    """spec.md "Naming Conventions": names "SHOULD NOT exceed 20 characters" — a SHOULD, so a
    longer name is accepted and carried."""
    found: list[ce.Extensions] = []
    ce.parse_structured(structured(averyveryverylongextensionname="x"), found)
    assert found == [[("ce_averyveryverylongextensionname", b"x")]]


def test_data_is_not_an_attribute_name() -> None:
    """spec.md "Naming Conventions": "CloudEvent attributes MUST NOT have the name data"."""
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_binary({**binary_headers(), "ce-data": "{}"}, DATA)
    assert caught.value.errors[0].field == "ce-data"


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (True, b"true"),
        (False, b"false"),
        (42, b"42"),
        (-(2**31), b"-2147483648"),
    ],
)
def test_extension_values_use_the_canonical_string_encoding(value: object, header: bytes) -> None:
    """spec.md "Type System": Boolean, Integer and String values, each with its canonical
    string encoding (what goes into a Kafka header)."""
    found: list[ce.Extensions] = []
    ce.parse_structured(structured(myext=value), found)
    assert found == [[("ce_myext", header)]]


@pytest.mark.parametrize("value", [{"a": 1}, [1], 1.5, 2**31, -(2**31) - 1, ""])
def test_extension_values_outside_the_type_system_are_refused(value: object) -> None:
    """spec.md "Type System": "All context attribute values MUST be of one of the types listed
    above"; an Integer is within 32 bits."""
    assert refused(structured(myext=value)) == ["myext"]


def test_a_null_extension_is_absent() -> None:
    found: list[ce.Extensions] = []
    ce.parse_structured(structured(myext=None), found)
    assert found == [None]


@pytest.mark.parametrize(
    ("attribute", "escaped", "field"),
    [
        ("id", b"a\\u0001b", "id"),
        ("id", b"a\\u0085b", "id"),  # C1 control
        ("id", b"a\\ufffeb", "id"),  # a noncharacter
        ("id", b"a\\ud800b", "$"),  # a lone surrogate: msgspec refuses the JSON itself
        ("subject", b"\\u007f", "subject"),
        ("myext", b"x\\u001bx", "myext"),
    ],
)
def test_strings_refuse_control_characters_noncharacters_and_lone_surrogates(
    attribute: str, escaped: bytes, field: str
) -> None:
    """spec.md "Type System", String: control characters U+0000-U+001F and U+007F-U+009F,
    noncharacters and unpaired surrogates are disallowed."""
    body = structured(**{attribute: "PLACEHOLDER"}).replace(b"PLACEHOLDER", escaped)
    assert refused(body) == [field]


def test_strings_may_hold_any_other_unicode() -> None:
    event = ce.parse_structured(structured(id="Ørsted-\U0001f600", subject="Kødbyen"))
    assert event.id == "Ørsted-\U0001f600"


@pytest.mark.parametrize("attribute", ["id", "source"])
def test_id_and_source_are_non_empty(attribute: str) -> None:
    """spec.md "id" / "source": "MUST be a non-empty string" / "a non-empty URI-reference"."""
    assert refused(structured(**{attribute: ""})) == [attribute]


@pytest.mark.parametrize("source", ["not a uri", "bad%zz", "a\\b", "1:x", "urn:x y", '/p?q="v"'])
def test_source_is_a_uri_reference(source: str) -> None:
    """spec.md "source": Type URI-reference (RFC 3986 §4.1)."""
    assert refused(structured(source=source)) == ["source"]


@pytest.mark.parametrize(
    "source",
    [
        "https://github.com/cloudevents",
        "mailto:cncf-wg-serverless@lists.cncf.io",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "/cloudevents/spec/pull/123",
        "1-555-123-4567",
        "urn:ripples:ingest:lever",
    ],
)
def test_the_specs_example_sources_are_uri_references(source: str) -> None:
    """spec.md "source", Examples."""
    assert ce.parse_structured(structured(source=source)).source == source


def test_subject_is_non_empty_when_present() -> None:
    """spec.md "subject": "If present, MUST be a non-empty string"."""
    assert refused(structured(subject="")) == ["subject"]


@pytest.mark.parametrize("schema", ["", "relative/schema.json", "https://x.example/a b"])
def test_dataschema_is_a_non_empty_uri(schema: str) -> None:
    """spec.md "dataschema": "If present, MUST be a non-empty URI" (absolute)."""
    assert refused(structured(dataschema=schema)) == ["dataschema"]


@pytest.mark.parametrize(
    "moment", ["2026-06-03", "yesterday", "2026-06-03T08:15:01", "2026-13-03T08:15:01Z"]
)
def test_time_is_rfc_3339(moment: str) -> None:
    """spec.md "time": "If present, MUST adhere to the format specified in RFC 3339" (the
    contract adds: with a UTC designator or offset)."""
    assert refused(structured(time=moment)) == ["time"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.ripples+json",
    ],
)
def test_datacontenttype_may_carry_parameters(content_type: str) -> None:
    """spec.md "datacontenttype": a media type per RFC 2046, parameters included (the HTTP
    binding §2.2 names `application/json;charset=utf-8` itself)."""
    event = ce.parse_structured(structured(datacontenttype=content_type))
    assert event.datacontenttype == "application/json"  # Ripples re-encodes data as UTF-8
    headers = {**binary_headers(), "content-type": content_type}
    assert ce.parse_binary(headers, DATA).datacontenttype == "application/json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "json", ""])
def test_datacontenttype_must_say_json(content_type: str) -> None:
    """Ripples' data is a JSON object (CONTRACT §1), so another media type is refused."""
    assert refused(structured(datacontenttype=content_type)) == ["datacontenttype"]


def test_an_empty_batch_is_valid() -> None:
    """HTTP binding §3.3.2: "The batch MAY be empty"; spec.md "Message": a batch holds "zero
    or more" events."""
    found: list[ce.Extensions] = []
    assert ce.parse_batch(b"[]", found) == []
    assert found == []


def test_a_batch_keeps_each_events_extensions() -> None:
    sent = [
        samples.event("ripples.link.clicked.v1"),
        samples.event("ripples.link.clicked.v1", traceparent="00-a-b-01"),
    ]
    found: list[ce.Extensions] = []
    events = ce.parse_batch(orjson.dumps(sent), found)
    assert [e.id for e in events] == [sent[0]["id"], sent[1]["id"]]
    assert found == [None, [("ce_traceparent", b"00-a-b-01")]]
    records = ce.kafka_records(events, found)
    assert ("ce_traceparent", b"00-a-b-01") in records[1][3]
    assert all(not name.startswith("ce_trace") for name, _ in records[0][3])


def test_a_batch_names_each_bad_attribute_by_index() -> None:
    sent = [
        samples.event("ripples.link.clicked.v1", Bad="x"),
        samples.event("ripples.link.clicked.v1", source="a b"),
    ]
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_batch(orjson.dumps(sent))
    assert [(e.index, e.field) for e in caught.value.errors] == [(0, "Bad"), (1, "source")]


DATA = orjson.dumps(samples.DATA["ripples.link.clicked.v1"])


def binary_headers() -> dict[str, str]:
    sent = samples.event("ripples.link.clicked.v1")
    return {f"ce-{k}": str(v) for k, v in sent.items() if k != "data"}


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ("caf%C3%A9", "café"),
        ("caf%c3%a9", "café"),  # "decoding MUST accept lower-case values"
        ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"),  # the binding's own example
        ('"quoted \\"value\\""', 'quoted "value"'),  # RFC 7230 §3.2.6 quoted-string
        ("100%25", "100%"),
    ],
)
def test_binary_header_values_are_percent_decoded(header: str, subject: str) -> None:
    """HTTP binding §3.1.3.2: a header value is unescaped from a double-quoted string, then
    "A single round of percent-decoding MUST then be performed"."""
    event = ce.parse_binary({**binary_headers(), "ce-subject": header}, DATA)
    assert event.subject == subject


@pytest.mark.parametrize("header", ["%C0%A0", "%FF", "%E2%82"])
def test_binary_header_values_that_are_not_utf8_are_refused(header: str) -> None:
    """HTTP binding §3.1.3.2: "encoded byte sequences which are invalid in UTF-8 MUST be
    rejected. (For example, "%C0%A0" is an overlong encoding of U+0020 …)"."""
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_binary({**binary_headers(), "ce-subject": header}, DATA)
    assert caught.value.errors[0].field == "ce-subject"


def test_binary_mode_has_no_datacontenttype_header() -> None:
    """HTTP binding §3.1.1: "a ce-datacontenttype HTTP header MUST NOT also be present"."""
    headers = {**binary_headers(), "ce-datacontenttype": "application/json"}
    with pytest.raises(ce.InvalidEvent) as caught:
        ce.parse_binary(headers, DATA)
    assert caught.value.errors[0].field == "ce-datacontenttype"


def test_binary_mode_without_content_type_is_json() -> None:
    """spec.md "datacontenttype": an event without it has JSON data, as the JSON format
    implies (the official Python SDK's binary mode sends no Content-Type by default)."""
    event = ce.parse_binary(binary_headers(), DATA)
    assert event.datacontenttype is None
    assert event.data.link_code == samples.DATA["ripples.link.clicked.v1"]["link_code"]


def test_binary_extensions_go_to_kafka_as_ce_headers() -> None:
    """Kafka binding §3.2.3: "All CloudEvents attributes and CloudEvent Attributes Extensions
    … MUST be individually mapped to and from the Header fields", prefixed `ce_`
    (§3.2.3.1), UTF-8 (§3.2.3)."""
    found: list[ce.Extensions] = []
    headers = {**binary_headers(), "ce-traceparent": "00-a-b-01", "ce-comexampleext": "v%C3%A6"}
    event = ce.parse_binary(headers, DATA, found)
    ((_, _, _, kafka_headers),) = ce.kafka_records([event], found)
    assert ("ce_traceparent", b"00-a-b-01") in kafka_headers
    assert ("ce_comexampleext", "væ".encode()) in kafka_headers


def test_extension_count_is_bounded() -> None:
    many = {f"ext{i}": "x" for i in range(ce.MAX_EXTENSIONS + 1)}
    assert refused(structured(**many)) == ["$"]
