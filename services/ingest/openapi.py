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
from shared.http import PROBLEM_SCHEMA, operational_paths

_REF = "#/components/schemas/{name}"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_AUTH_ERRORS = {
    "401": _problem("Missing or invalid API key."),
    "413": _problem("Body (or batch) too large."),
    "415": _problem("Content type not accepted here."),
    "431": _problem("Request line and headers too large (`INGEST_MAX_HEADER_BYTES`)."),
    "422": _problem("Not a valid contract event; `errors` names each field."),
    "503": {
        **_problem("The broker did not acknowledge; retry after `Retry-After` seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


_LINK_REQUEST = {
    "type": "object",
    "required": ["target_url"],
    "properties": {
        "target_url": {
            "type": "string",
            "format": "uri",
            "description": "http(s) URL on a host of INGEST_LINK_ALLOWED_HOSTS",
        },
        "employee_id": {"type": "string", "description": "absent: a company link"},
        "job_id": {"type": "string", "description": "becomes utm_campaign"},
        "post_id": {"type": "string"},
    },
}
_LINK = {
    "type": "object",
    "required": ["link_code", "url", "target_url"],
    "properties": {
        "link_code": {"type": "string", "pattern": "^[A-Za-z0-9]+$"},
        "url": {"type": "string", "format": "uri", "description": "the public /r/{code} URL"},
        "target_url": {"type": "string", "format": "uri"},
        "employee_id": {"type": ["string", "null"]},
        "job_id": {"type": ["string", "null"]},
        "post_id": {"type": ["string", "null"]},
    },
}
_DELIVERY_RESULT = {
    "type": "object",
    "required": ["status", "events"],
    "properties": {
        "status": {"enum": ["accepted", "duplicate", "ignored"]},
        "events": {"type": "integer", "description": "contract events published"},
    },
}


def _webhook(summary: str, description: str, signature: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                {
                    "name": signature,
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "the vendor's signature (see the description)",
                }
            ]
            if signature
            else [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {
                    "description": "Published (or a duplicate / an event Ripples does not use).",
                    "content": {"application/json": {"schema": _DELIVERY_RESULT}},
                },
                "401": _problem("Missing or invalid signature."),
                "413": _problem("Body too large."),
                "422": _problem("Signed, but not the vendor's documented shape."),
                "503": _problem("Broker, database or vendor API unavailable; redeliver."),
            },
        }
    }


def _connector_paths() -> dict[str, Any]:
    return {
        "/v1/links": {
            "post": {
                "summary": "Create a tracked link",
                "description": "Answers 201 once `ripples.link.created.v1` was acknowledged.",
                "tags": ["links"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _LINK_REQUEST}},
                },
                "responses": {
                    "201": {
                        "description": "Created; `Location` is the public link.",
                        "content": {"application/json": {"schema": _LINK}},
                    },
                    "401": _problem("Missing or invalid API key."),
                    "413": _problem("Body too large."),
                    "422": _problem("Invalid body, or a target host not on the allow-list."),
                    "503": _problem("Broker or database unavailable; retry."),
                },
            }
        },
        "/r/{link_code}": {
            "get": {
                "summary": "Follow a tracked link",
                "description": "302 to the target with utm_source=linkedin, "
                "utm_medium=employee_advocacy, utm_campaign=<job_id>, utm_content=<code> and "
                "ripples_ref=<code>; sets the `ripples_vid` visitor cookie (HttpOnly, "
                "SameSite=Lax, one year) unless a valid one is sent; emits "
                "`ripples.link.clicked.v1` in the background.",
                "tags": ["links"],
                "security": [],
                "parameters": [
                    {
                        "name": "link_code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "302": {
                        "description": "Redirect to the tagged target.",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            "Set-Cookie": {"schema": {"type": "string"}},
                        },
                    },
                    "404": _problem("Unknown code, or a target no longer allowed."),
                    "503": _problem("The link is not cached and the database is unavailable."),
                },
            }
        },
        "/v1/webhooks/greenhouse": _webhook(
            "Greenhouse web hook",
            "`new_candidate_application` → applicant.applied.v1, `hire_candidate` → "
            "applicant.hired.v1. `Signature: sha256 <hex HMAC-SHA256 of the raw body>`; "
            "deduplicated on `Greenhouse-Event-ID`.",
            "Signature",
        ),
        "/v1/webhooks/teamtailor": _webhook(
            "Teamtailor company webhook",
            "`job_application.create` → applicant.applied.v1, `job_application.update` to a "
            "stage of type `hired` → applicant.hired.v1. Body `{payload, signature}`, where "
            "`signature` is Base64 of the hex HMAC-SHA256 of the `payload` JSON.",
            "",
        ),
        "/v1/webhooks/lever": _webhook(
            "Lever webhook",
            "`applicationCreated` → applicant.applied.v1, `candidateHired` → "
            "applicant.hired.v1. `signature` = hex HMAC-SHA256 of `token + triggeredAt` with "
            "the signature token; deduplicated on `id`.",
            "",
        ),
        "/v1/webhooks/linkedin": {
            "get": {
                "summary": "LinkedIn webhook validation",
                "tags": ["webhooks"],
                "security": [],
                "parameters": [
                    {
                        "name": "challengeCode",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "`challengeResponse` = hex HMAC-SHA256 of the code "
                        "with the client secret.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "challengeCode": {"type": "string"},
                                        "challengeResponse": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _problem("No challengeCode."),
                },
            },
            **_webhook(
                "LinkedIn organization social-action notifications",
                "LIKE/COMMENT/SHARE → post.engagement.v1; a SHARE by a known employee → "
                "post.published.v1 with reshare_of. `X-LI-Signature` = hex HMAC-SHA256 of the "
                "raw body with the client secret; deduplicated on `notificationId`.",
                "X-LI-Signature",
            ),
        },
    }


@functools.cache
def openapi() -> dict[str, Any]:
    (event_ref,), components = msgspec.json.schema_components([InboundEvent], ref_template=_REF)
    components["Problem"] = PROBLEM_SCHEMA
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
            **_connector_paths(),
            **operational_paths("The broker and the database are reachable"),
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
