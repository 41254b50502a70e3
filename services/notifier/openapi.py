"""The notifier's OpenAPI 3.1 document.

``python -m services.notifier.openapi`` prints it; the committed copy
(``services/notifier/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import orjson

from services.notifier.policy import REASONS
from shared.events import CONNECTION_KINDS, RECOGNITION_KINDS
from shared.openapi import (
    BEARER,
    LICENSE,
    OPEN,
    components,
    invalid_parameter,
    json_body,
    operational_paths,
    unauthorized,
    unavailable,
)
from shared.params import IDENTIFIER_SCHEMA

MAX_LIMIT = 500
REQUIRED = ["recognition_id", "kind", "employee_id", "status", "channel", "attempts", "sent_at"]
_RECOGNITION = {
    "type": "object",
    "description": "One recognition in the delivery ledger.",
    "required": [*REQUIRED, "reason"],
    "properties": {
        "recognition_id": {"type": "string", "examples": ["reach_milestone:emp-1:10000"]},
        "kind": {
            "type": "string",
            "enum": [*RECOGNITION_KINDS, *CONNECTION_KINDS, "report"],
            "description": "`report`: the scheduled period report to one recipient (extension).",
        },
        "employee_id": {
            "type": "string",
            "description": "Empty for a scheduled report (it goes to a configured recipient).",
        },
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
        "reason": {
            "type": ["string", "null"],
            "enum": [*REASONS, None],
            "description": "Why it was suppressed or why the last attempt failed; null otherwise.",
        },
        "due_at": {"type": "string", "format": "date-time", "description": "Extension."},
        "digest_id": {
            "type": ["string", "null"],
            "description": "Extension: the digest that carried it (daily cap).",
        },
    },
}
_RECOGNITION_EXAMPLE = {
    "recognition_id": "reach_milestone:emp-1:10000",
    "kind": "reach_milestone",
    "employee_id": "emp-1",
    "status": "sent",
    "channel": "slack",
    "attempts": 1,
    "sent_at": "2026-06-04T08:01:12Z",
    "reason": None,
    "due_at": "2026-06-04T08:01:10Z",
    "digest_id": None,
}
_MESSAGE = {
    "type": "object",
    "description": "CONTRACT §6: the message a `webhook` channel receives.",
    "required": ["recognition_id", "kind", "employee_id", "text", "locale"],
    "properties": {
        "recognition_id": {
            "type": "string",
            "description": "The recognition's id (for a digest: the digest's id).",
        },
        "kind": {"type": "string", "enum": [*RECOGNITION_KINDS, "digest", *CONNECTION_KINDS]},
        "employee_id": {"type": "string"},
        "text": {"type": "string", "description": "The message, in the employee's locale."},
        "title": {"type": "string"},
        "locale": {"type": "string", "enum": ["da", "en"]},
        "recognition_ids": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Every recognition the message covers (one, or a digest's).",
        },
    },
}
_MESSAGE_EXAMPLE = {
    "recognition_id": "first_post:emp-1",
    "kind": "first_post",
    "employee_id": "emp-1",
    "text": "Tillykke med dit første opslag! Dine kolleger kan nu se, hvad du laver.",
    "title": "Dit første opslag",
    "locale": "da",
    "recognition_ids": ["first_post:emp-1"],
}


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    }


def _webhook() -> dict[str, Any]:
    """The notifier's outgoing call to a `webhook` channel's `notify.address`."""
    return {
        "post": {
            "operationId": "recognitionWebhook",
            "summary": "A recognition message, POSTed to an employee's webhook address",
            "description": "Sent once per recognition id (a receiver drops a repeat by "
            "`webhook-id`). Signed twice: `X-Ripples-Signature` (CONTRACT §6) and the "
            "Standard Webhooks headers, which also carry a timestamp so a receiver can refuse "
            "replays. Any 2xx counts as delivered; 408, 429 (honouring `Retry-After`) and 5xx "
            "are retried with backoff up to `NOTIFIER_MAX_ATTEMPTS`; any other 4xx is a "
            "permanent failure.",
            "tags": ["webhooks"],
            "security": OPEN,
            "parameters": [
                _header(
                    "X-Ripples-Signature",
                    "`sha256=` and the hex HMAC-SHA256 of the raw body, keyed with "
                    "`NOTIFIER_WEBHOOK_SECRET`.",
                    "sha256=4f1c…64 hex digits",
                ),
                _header(
                    "webhook-id",
                    "Standard Webhooks: the message id (the recognition id), the same on "
                    "every attempt.",
                    "first_post:emp-1",
                ),
                _header(
                    "webhook-timestamp",
                    "Standard Webhooks: when it was sent, integer Unix seconds.",
                    "1780563672",
                ),
                _header(
                    "webhook-signature",
                    "Standard Webhooks: space-separated `v1,<Base64 of the HMAC-SHA256 of "
                    "`{webhook-id}.{webhook-timestamp}.{raw body}`>`.",
                    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                ),
                _header(
                    "X-Ripples-Recognition-Id",
                    "The idempotency key (the same as `webhook-id`).",
                    "first_post:emp-1",
                ),
            ],
            "requestBody": {
                "required": True,
                "content": json_body({"$ref": "#/components/schemas/Message"}, _MESSAGE_EXAMPLE),
            },
            "responses": {
                "200": {"description": "Received (any 2xx)."},
                "429": {
                    "description": "Slow down: retried after `Retry-After` seconds.",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds (or an HTTP date) to wait.",
                            "schema": {"type": "string"},
                        }
                    },
                },
                "503": {"description": "Unavailable (any 5xx): retried with backoff."},
            },
        }
    }


@functools.cache
def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples notifier API",
            "version": "1.0.0",
            "license": LICENSE,
            "description": (
                "The delivery ledger of recognition messages: one row per recognition id, "
                "delivered at most once successfully. The `webhooks` section describes the "
                "call the notifier makes to a `webhook` channel."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8082"}],
        "paths": {
            "/v1/recognitions": {
                "get": {
                    "operationId": "listRecognitions",
                    "summary": "Recognitions and their delivery state (one employee's, or all)",
                    "tags": ["recognitions"],
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "employee_id",
                            "in": "query",
                            "required": False,
                            "description": "Only this employee's; without it, everyone's. 1-256 "
                            "characters, no control characters.",
                            "schema": IDENTIFIER_SCHEMA,
                            "example": "emp-1",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": f"At most this many rows (1-{MAX_LIMIT}).",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_LIMIT,
                                "default": 100,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "Opaque: only from the `Link` header of a previous "
                            "page; anything else is a 422.",
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Ordered by due_at, then recognition_id; the body "
                            "is the contract's list.",
                            "headers": {
                                "Link": {
                                    "description": "When there are more rows: "
                                    '`<…/v1/recognitions?cursor=…>; rel="next"` (RFC 8288).',
                                    "schema": {"type": "string"},
                                    "example": "</v1/recognitions?limit=100&cursor=eyJ0Ijo>; "
                                    'rel="next"',
                                }
                            },
                            "content": json_body(
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Recognition"},
                                },
                                [_RECOGNITION_EXAMPLE],
                            ),
                        },
                        "401": unauthorized(),
                        "422": invalid_parameter(
                            "A bad parameter, named in `errors[].field`: an empty value, "
                            "control characters, over 256 characters, `limit` not a whole "
                            "number from 1 to 500, a `cursor` not from a `Link` header.",
                            "employee_id",
                            "must not contain control characters",
                        ),
                        "503": unavailable(
                            "The database is unavailable; retry after `Retry-After` seconds."
                        ),
                    },
                }
            },
            **operational_paths(
                "notifier",
                "The database answers and partitions are assigned",
                ["database", "partitions"],
            ),
        },
        "webhooks": {"recognition": _webhook()},
        "components": components({"Recognition": _RECOGNITION, "Message": _MESSAGE}),
    }


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
