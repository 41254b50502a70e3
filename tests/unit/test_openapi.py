"""The committed OpenAPI document is the one the service serves."""

from __future__ import annotations

from pathlib import Path

import orjson

from services.ingest.openapi import openapi
from shared.events import INBOUND_TYPES

COMMITTED = Path(__file__).parents[2] / "services" / "ingest" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    assert orjson.loads(COMMITTED.read_bytes()) == openapi(), "regenerate with: make openapi"


def test_every_event_type_is_in_the_schema() -> None:
    spec = openapi()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    mapping = body["application/cloudevents+json"]["schema"]["discriminator"]["mapping"]
    assert set(mapping) == set(INBOUND_TYPES)
    schemas = spec["components"]["schemas"]
    for ref in mapping.values():
        assert ref.rsplit("/", 1)[1] in schemas
