"""The ingest service's OpenAPI 3.1 document, built from the same models that validate.

``python -m services.ingest.openapi`` prints it; the committed copy
(``services/ingest/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import msgspec
import orjson

from shared.events import InboundEvent

_REF = "#/components/schemas/{name}"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "What is wrong, field by field (and, in a batch, index by index).",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {
                    "field": {"type": "string", "description": "Dotted path, e.g. data.post_id"},
                    "detail": {"type": "string"},
                    "index": {"type": "integer", "description": "Position in the batch"},
                },
            },
        },
    },
}

_AUTH_ERRORS = {
    "401": _problem("Missing or invalid API key."),
    "413": _problem("Body (or batch) too large."),
    "415": _problem("Content type not accepted here."),
    "422": _problem("Not a valid contract event; `errors` names each field."),
    "503": {
        **_problem("The broker did not acknowledge; retry after `Retry-After` seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


def _operational(summary: str, ok: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["operations"],
            "responses": {"200": {"description": ok}},
        }
    }


@functools.cache
def openapi() -> dict[str, Any]:
    (event_ref,), components = msgspec.json.schema_components([InboundEvent], ref_template=_REF)
    components["Problem"] = _PROBLEM_SCHEMA
    binary_headers = [
        {
            "name": f"ce-{name}",
            "in": "header",
            "required": False,
            "description": f"CloudEvents `{name}` attribute (binary mode).",
            "schema": {"type": "string"},
        }
        for name in ("specversion", "id", "source", "type", "time", "subject")
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples ingest API",
            "version": "1.0.0",
            "description": (
                "Takes the contract events (CloudEvents 1.0, JSON data) from other systems "
                "and publishes them to Kafka. A 202 means the broker acknowledged every "
                "event (acks=all). Events are identified by (source, id): sending one twice "
                "is harmless."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Publish one event (structured or binary mode)",
                    "tags": ["events"],
                    "parameters": binary_headers,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents+json": {"schema": event_ref},
                            "application/json": {
                                "schema": {"type": "object"},
                                "description": "Binary mode: the event's `data`; attributes in "
                                "`ce-*` headers.",
                            },
                        },
                    },
                    "responses": {
                        "202": {"description": "Acknowledged by the broker."},
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/v1/events:batch": {
                "post": {
                    "summary": "Publish a batch of events, all or nothing",
                    "tags": ["events"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents-batch+json": {
                                "schema": {"type": "array", "minItems": 1, "items": event_ref}
                            }
                        },
                    },
                    "responses": {
                        "202": {"description": "Every event acknowledged by the broker."},
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/livez": _operational("The process is alive", "Alive."),
            "/readyz": _operational("The broker is reachable", "Ready (503 when not)."),
            "/metrics": _operational("Prometheus metrics", "Text exposition format."),
            "/openapi.json": _operational("This document", "OpenAPI 3.1."),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
