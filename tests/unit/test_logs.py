"""JSON logs: one object per line, extra fields kept, exceptions included."""

from __future__ import annotations

import logging

import orjson

from shared.logs import JsonFormatter


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord(
        {
            "name": "ripples.test",
            "levelname": "WARNING",
            "levelno": logging.WARNING,
            "msg": message,
            "args": (),
        }
    )
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_record_is_one_json_object() -> None:
    line = JsonFormatter("ingest").format(record("broker unreachable", reason="timeout"))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["msg"] == "broker unreachable"
    assert entry["level"] == "warning"
    assert entry["service"] == "ingest"
    assert entry["logger"] == "ripples.test"
    assert entry["reason"] == "timeout"
    assert entry["ts"].endswith("Z")


def test_exceptions_are_included() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made = record("failed")
        made.exc_info = sys.exc_info()
    entry = orjson.loads(JsonFormatter("x").format(made))
    assert "ValueError: boom" in entry["exc"]


def test_values_that_are_not_json_become_strings() -> None:
    entry = orjson.loads(JsonFormatter("x").format(record("m", topics={"a"})))
    assert entry["topics"] == "{'a'}"
