"""The notifier's OpenAPI 3.1 document.

``python -m services.notifier.openapi`` prints it; the committed copy
(``services/notifier/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import orjson

from shared.events import RECOGNITION_KINDS
from shared.http import PROBLEM_SCHEMA, operational_paths

REQUIRED = ["recognition_id", "kind", "employee_id", "status", "channel", "attempts", "sent_at"]
_RECOGNITION = {
    "type": "object",
    "description": "One recognition in the delivery ledger.",
    "required": REQUIRED,
    "properties": {
        "recognition_id": {"type": "string", "examples": ["reach_milestone:emp-1:10000"]},
        "kind": {"type": "string", "enum": list(RECOGNITION_KINDS)},
        "employee_id": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "sent", "suppressed", "failed"]},
        "channel": {
            "type": ["string", "null"],
            "enum": ["slack", "teams", "email", "webhook", "none", None],
            "description": "The channel used (or being tried); `none` when suppressed.",
        },
        "attempts": {
            "type": "integer",
            "minimum": 0,
            "description": "Delivery attempts made, retries and repeats after a crash included.",
        },
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "due_at": {"type": "string", "format": "date-time", "description": "Extension."},
        "last_error": {
            "type": ["string", "null"],
            "description": "Extension: why the last attempt failed, or why it was suppressed.",
        },
        "digest_id": {
            "type": ["string", "null"],
            "description": "Extension: the digest that carried it (daily cap).",
        },
    },
}


@functools.cache
def openapi() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples notifier API",
            "version": "1.0.0",
            "description": (
                "The delivery ledger of recognition messages: one row per recognition id, "
                "delivered at most once successfully."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8082"}],
        "paths": {
            "/v1/recognitions": {
                "get": {
                    "summary": "Recognitions and their delivery state (one employee's, or all)",
                    "tags": ["recognitions"],
                    "parameters": [
                        {
                            "name": "employee_id",
                            "in": "query",
                            "required": False,
                            "description": "Only this employee's; without it, everyone's.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": "At most this many rows (default and maximum 10000).",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Ordered by due_at, then recognition_id.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Recognition"},
                                    }
                                }
                            },
                        },
                        "400": {"description": "A parameter is invalid.", "content": problem},
                        "503": {"description": "Database not connected.", "content": problem},
                    },
                }
            },
            **operational_paths("The database answers and partitions are assigned"),
        },
        "components": {"schemas": {"Recognition": _RECOGNITION, "Problem": PROBLEM_SCHEMA}},
    }


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
