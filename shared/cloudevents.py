"""CloudEvents 1.0 bindings: HTTP (structured, binary, batch) and Kafka (binary mode).

Parsing never raises anything but :class:`InvalidEvent` (bad content) or
:class:`UnsupportedContentType`, so the HTTP layer can turn every failure into a 4xx
problem+json document that names the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast, get_type_hints

import msgspec

from shared.events import BY_TYPE, INBOUND_TYPES, Envelope, InboundEvent

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"

_decode_inbound = msgspec.json.Decoder(InboundEvent).decode
_decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_inbound_list = msgspec.json.Decoder(list[InboundEvent]).decode
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode

# CloudEvents context attributes carried as `ce-` HTTP headers / `ce_` Kafka headers.
_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "dataschema")


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one event: where (a dotted field path) and what."""

    field: str
    detail: str
    reason: str = "invalid"
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "detail": self.detail}
        if self.index is not None:
            out["index"] = self.index
        return out


class InvalidEvent(Exception):
    """The body is not a valid contract event (or batch of them).

    ``event_types[i]`` is the type of the event ``errors[i]`` is about, or ``unknown``.
    """

    def __init__(self, errors: Sequence[FieldError], event_types: Sequence[str] = ()) -> None:
        super().__init__("; ".join(f"{e.field}: {e.detail}" for e in errors))
        self.errors = list(errors)
        self.event_types = list(event_types)


class UnsupportedContentType(Exception):
    def __init__(self, content_type: str, accepted: Iterable[str]) -> None:
        self.content_type = content_type
        self.accepted = list(accepted)
        super().__init__(
            f"content type {content_type or '(none)'!r} is not accepted here; "
            f"use {' or '.join(self.accepted)}"
        )


# --- errors ----------------------------------------------------------------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_NAMED = re.compile(r"^`(?P<name>\w+)` ")  # our own checks name their field first


# msgspec raises UnicodeDecodeError (not a MsgspecError) for invalid UTF-8 inside a string.
_DECODE_ERRORS = (msgspec.MsgspecError, RecursionError, UnicodeDecodeError)


def _field_error(
    exc: msgspec.MsgspecError | RecursionError | UnicodeDecodeError, prefix: str = ""
) -> FieldError:
    """Turn a msgspec error into a field path and a human sentence.

    ``Object missing required field `id` - at `$.data``` → field ``data.id``.
    """
    if isinstance(exc, RecursionError):
        return FieldError(prefix.rstrip(".") or "$", "JSON nested too deeply", "malformed")
    if isinstance(exc, UnicodeDecodeError):
        return FieldError(prefix.rstrip(".") or "$", "malformed JSON: invalid UTF-8", "malformed")
    if not isinstance(exc, msgspec.ValidationError):
        return FieldError(prefix.rstrip(".") or "$", f"malformed JSON: {exc}", "malformed")
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, path = match["msg"], (match["path"] or "").lstrip(".")
    missing = _MISSING.match(message)
    reason = "invalid"
    if missing:
        path = f"{path}.{missing['name']}" if path else missing["name"]
        message = "required field is missing"
        reason = "missing_field"
    elif named := _NAMED.match(message):
        path = f"{path}.{named['name']}" if path else named["name"]
    if path == "type":
        reason = "unknown_type"
        message = f"{message}; known types: {', '.join(INBOUND_TYPES)}"
    field = (prefix + path) if path else (prefix.rstrip(".") or "$")
    return FieldError(field, message, reason)


def _raw_type(raw: bytes) -> str:
    """Best-effort `type` of an event that failed validation, for metric labels."""
    try:
        value = _decode_object(raw).get("type")
    except _DECODE_ERRORS:
        return "unknown"
    return value if isinstance(value, str) and value in INBOUND_TYPES else "unknown"


# --- HTTP --------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_structured(body: bytes) -> Envelope:
    """One event in structured mode: the whole event is the JSON body."""
    try:
        event: Envelope = _decode_inbound(body)
    except _DECODE_ERRORS as exc:
        raise InvalidEvent([_field_error(exc)], [_raw_type(body)]) from None
    return event


def parse_binary(headers: Mapping[str, str], body: bytes) -> Envelope:
    """One event in binary mode: attributes in ``ce-*`` headers, the body is ``data``."""
    attributes: dict[str, Any] = {}
    for name in _ATTRIBUTES:
        value = headers.get(f"ce-{name}")
        if value is not None:
            attributes[name] = value
    event_type = attributes.get("type")
    try:
        attributes["data"] = _decode_object(body)
    except _DECODE_ERRORS as exc:
        raise InvalidEvent([_field_error(exc, "data.")], [str(event_type)]) from None
    try:
        event: Envelope = msgspec.convert(attributes, InboundEvent)
    except msgspec.ValidationError as exc:
        error = _field_error(exc)
        if error.field in _ATTRIBUTES:
            error = FieldError(f"ce-{error.field}", error.detail, error.reason)
        label = event_type if event_type in INBOUND_TYPES else "unknown"
        raise InvalidEvent([error], [str(label)]) from None
    return event


def parse_batch(body: bytes) -> list[Envelope]:
    """A batch: a JSON array of structured events. All or nothing: every bad item is named.

    A valid batch is decoded in one pass (3.5x faster than item by item); only a batch that
    fails is decoded again item by item, to name every bad item, not just the first."""
    try:
        events = cast(list[Envelope], _decode_inbound_list(body))
    except _DECODE_ERRORS:
        pass
    else:
        if events:
            return events
    try:
        items = _decode_raw_list(body)
    except _DECODE_ERRORS as exc:
        raise InvalidEvent([_field_error(exc)], ["unknown"]) from None
    if not items:
        raise InvalidEvent([FieldError("$", "a batch holds at least one event", "empty_batch")])
    events = []
    errors: list[FieldError] = []
    types: list[str] = []
    for index, raw in enumerate(items):
        try:
            event: Envelope = _decode_inbound(raw)
        except _DECODE_ERRORS as exc:
            error = _field_error(exc)
            errors.append(FieldError(error.field, error.detail, error.reason, index))
            types.append(_raw_type(raw))
        else:
            events.append(event)
    if errors:
        raise InvalidEvent(errors, types)
    return events


def to_structured(event: Envelope) -> bytes:
    """The structured-mode JSON of an event (what a client POSTs)."""
    return _encode(event)


# --- Kafka (binary content mode) -------------------------------------------------------------


KafkaHeaders = list[tuple[str, bytes]]


def _format_time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


_SPECVERSION_HEADER = ("ce_specversion", b"1.0")
_CONTENT_TYPE_HEADER = ("content-type", JSON.encode())


def to_kafka(event: Envelope) -> tuple[bytes, bytes, KafkaHeaders]:
    """Key, value and headers of an event in the Kafka binary content mode.

    The value is the JSON ``data``; the context attributes travel as ``ce_`` headers; the key
    is the entity the event is about, so all events of one entity land on one partition.
    """
    _, key, value, headers = kafka_records((event,))[0]
    return key, value, headers


_RECORD_PARTS = {
    cls: (cls.topic.name, ("ce_type", tag.encode()), cls.key_field) for tag, cls in BY_TYPE.items()
}


KafkaRecord = tuple[str, bytes, bytes, KafkaHeaders]
"""topic, key, value, headers (``shared.kafka.Record``)."""


def kafka_records(events: Iterable[Envelope]) -> list[KafkaRecord]:
    """``(topic, key, value, headers)`` of each event (see :func:`to_kafka`): the records of a
    whole request at once. Called for every published event, so it avoids per-event work:
    each class's topic, ``ce_type`` header and key field are looked up in one dict, the
    constant headers are built once, and msgspec writes the time in RFC 3339 (``…Z`` for UTC,
    the same text as :func:`_format_time`)."""
    out: list[KafkaRecord] = []
    append = out.append
    encode = _encode
    parts = _RECORD_PARTS
    for event in events:
        kind = type(event)
        topic, type_header, key_field = parts.get(kind) or (
            kind.topic.name,
            ("ce_type", event.type.encode()),
            kind.key_field,
        )
        attributes: KafkaHeaders = [
            _SPECVERSION_HEADER,
            ("ce_id", event.id.encode()),
            ("ce_source", event.source.encode()),
            type_header,
            ("ce_time", encode(event.time)[1:-1]),
            _CONTENT_TYPE_HEADER,
        ]
        if event.subject is not None:
            attributes.append(("ce_subject", event.subject.encode()))
        if event.dataschema is not None:
            attributes.append(("ce_dataschema", event.dataschema.encode()))
        data = event.data
        entity: str = getattr(data, key_field)
        append((topic, entity.encode(), encode(data), attributes))
    return out


_DATA_DECODERS: dict[type[Envelope], msgspec.json.Decoder[Any]] = {
    cls: msgspec.json.Decoder(get_type_hints(cls)["data"]) for cls in BY_TYPE.values()
}


_HEADER_ATTRIBUTES = {f"ce_{name}": name for name in _ATTRIBUTES}


def from_kafka(headers: Iterable[tuple[str, bytes]], value: bytes) -> Envelope:
    """Decode a binary-mode Kafka record back into its typed event.

    The hot path of every consumer: one dict comprehension over the headers, the data decoded
    straight from the value's bytes into its typed struct, one ``convert`` of the envelope."""
    pairs = headers if isinstance(headers, list | tuple) else list(headers)
    try:
        attributes: dict[str, Any] = {
            _HEADER_ATTRIBUTES[name]: raw.decode()
            for name, raw in pairs
            if name in _HEADER_ATTRIBUTES
        }
    except UnicodeDecodeError:  # a poison record: dead-lettered, never a crash
        name = next(n for n, raw in pairs if n in _HEADER_ATTRIBUTES and not _is_utf8(raw))
        raise InvalidEvent([FieldError(name, "not UTF-8", "malformed")]) from None
    event_type = BY_TYPE.get(attributes.get("type", ""))
    if event_type is None:
        raise InvalidEvent(
            [
                FieldError(
                    "ce_type", f"unknown event type {attributes.get('type')!r}", "unknown_type"
                )
            ]
        )
    try:
        attributes["data"] = _DATA_DECODERS[event_type].decode(value)
        event: Envelope = msgspec.convert(attributes, event_type)
    except _DECODE_ERRORS as exc:
        raise InvalidEvent([_field_error(exc, "data.")], [str(attributes["type"])]) from None
    return event


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
